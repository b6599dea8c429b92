/**
 * CSV as an organiser's spreadsheet opens it (API.md §10): RFC 4180 (quoted where a cell holds a
 * comma, a quote or a line break; CRLF between records), timestamps in RFC 3339, empty cells for
 * nulls, and every cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return prefixed
 * with `'` (OWASP's defence against formula injection), all by csv-stringify.
 */
import { pipeline, Readable } from 'node:stream';
import { type Stringifier, stringify } from 'csv-stringify';
import type { Download } from '../../core/operations.ts';

function csvOf(columns: readonly string[]): Stringifier {
  return stringify({
    header: true,
    columns: [...columns],
    record_delimiter: 'windows',
    escape_formulas: true,
    cast: { date: (date) => date.toISOString(), boolean: (value) => String(value) },
  });
}

/** The CSV text of `rows`, streamed as they come: a large roster never sits in memory whole. */
export function csvStream<Row extends object>(
  columns: readonly (keyof Row & string)[],
  rows: Iterable<Row> | AsyncIterable<Row>,
): Readable {
  // pipeline: a failure while reading (the database gone mid-roster) ends the answer with it, and a
  // client that goes away stops the reading (the rows' iterator is closed).
  return pipeline(Readable.from(rows), csvOf(columns), () => {});
}

/** The CSV of `rows` as a `download` answers it (`text/csv`), streamed. */
export function csvDownload<Row extends object>(
  columns: readonly (keyof Row & string)[],
  rows: Iterable<Row> | AsyncIterable<Row>,
  headers?: Record<string, string>,
): Download {
  return { body: csvStream(columns, rows), type: 'text/csv; charset=utf-8', ...(headers && { headers }) };
}

/** Opens as a download named `name` (a plain ASCII file name). */
export const attachment = (name: string) => `attachment; filename="${name}"`;
