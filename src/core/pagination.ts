/**
 * Keyset pagination (API.md §1 "lists"): a page is the `limit` rows after the cursor's sort key,
 * never an OFFSET. The cursor is opaque to clients: base64url of the last row's sort key.
 *
 * Sort keys that are timestamps travel as UTC text with microseconds (select `cursorTime(col)`),
 * because a JavaScript Date drops the microseconds PostgreSQL keeps, and a truncated key would
 * repeat or skip rows at a page boundary. The format is fixed, whatever the server's DateStyle.
 */
import { and, asc, desc, type SQL, type SQLWrapper, sql } from 'drizzle-orm';
import type { PgSelect } from 'drizzle-orm/pg-core';
import { AppError } from './errors.ts';

export type CursorValue = string | number;
/** The SQL type of each sort-key column; a cursor value must parse as it. */
export type CursorField = 'timestamptz' | 'uuid' | 'text' | 'int';

/** A list's `limit` and `cursor` query parameters. */
export interface PageQuery {
  limit: number;
  cursor?: string | undefined;
}

export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const timestampPattern = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.\d{6}Z$/;

/** A timestamp as `cursorTime` writes it, naming a real instant (no month 13, no year 0). */
function isCursorTimestamp(value: CursorValue): boolean {
  if (value === 'infinity') return true;
  const match = typeof value === 'string' ? timestampPattern.exec(value) : null;
  if (!match) return false;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as number[];
  const date = new Date(Date.UTC(year ?? 0, (month ?? 0) - 1, day, hour, minute, second));
  return (
    (year ?? 0) >= 1 &&
    date.getUTCFullYear() === year &&
    date.getUTCMonth() + 1 === month &&
    date.getUTCDate() === day &&
    date.getUTCHours() === hour &&
    date.getUTCMinutes() === minute &&
    date.getUTCSeconds() === second
  );
}

/**
 * A timestamp column as a cursor value: UTC with microseconds, `…T08:00:00.000000Z`; null (no
 * time, sorted last as `infinity`) becomes 'infinity'.
 */
export function cursorTime(column: SQLWrapper): SQL<string> {
  return sql<string>`coalesce(to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'infinity')`;
}

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const fieldAccepts: Record<CursorField, (value: CursorValue) => boolean> = {
  // 'infinity' is the sort key of a row without a time (e.g. an event with no shifts yet), sorted last.
  timestamptz: isCursorTimestamp,
  uuid: (value) => typeof value === 'string' && uuidPattern.test(value),
  // A text key is compared in SQL: no NUL, no lone surrogate (PostgreSQL refuses both with a 500).
  text: (value) =>
    typeof value === 'string' &&
    value.length <= 1000 &&
    !value.includes('\u0000') &&
    !loneSurrogate.test(value),
  int: (value) => typeof value === 'number' && Number.isSafeInteger(value),
};

export function encodeCursor(values: CursorValue[]): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}

/** The sort key encoded in `cursor`, or undefined for the first page; 400 `invalid-cursor` if garbage. */
export function decodeCursor(cursor: string | undefined, fields: CursorField[]): CursorValue[] | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  const invalid = () => new AppError('invalid-cursor', 'The cursor is not one this list returned.');
  let values: unknown;
  try {
    values = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (
    !Array.isArray(values) ||
    values.length !== fields.length ||
    !values.every((value, index) => fieldAccepts[fields[index] as CursorField](value as CursorValue))
  ) {
    throw invalid();
  }
  return values as CursorValue[];
}

/**
 * Rows after the cursor for an ascending sort on `columns`: `(a, b) > ($1::t1, $2::t2)`; for a
 * descending one (newest first), `<`.
 */
export function after(
  columns: SQLWrapper[],
  values: CursorValue[],
  fields: CursorField[],
  descending = false,
): SQL {
  const left = sql.join(columns, sql`, `);
  const right = sql.join(
    values.map((value, index) => sql`cast(${value} as ${sql.raw(fields[index] ?? 'text')})`),
    sql`, `,
  );
  return descending ? sql`(${left}) < (${right})` : sql`(${left}) > (${right})`;
}

/** Cuts a `limit + 1` query result into a page and the cursor of the next one. */
export function pageOfRows<Row, Item>(
  rows: Row[],
  limit: number,
  sortKey: (row: Row) => CursorValue[],
  toItem: (row: Row) => Item,
): Page<Item> {
  const hasMore = rows.length > limit;
  const pageRows = hasMore ? rows.slice(0, limit) : rows;
  const last = pageRows.at(-1);
  return {
    data: pageRows.map(toItem),
    nextCursor: hasMore && last ? encodeCursor(sortKey(last)) : null,
  };
}

/** One term of a keyset's sort key: a column or expression, and the SQL type its cursor value has. */
export type SortKey = readonly [key: SQLWrapper, field: CursorField];

/**
 * A list's order as the API states it: "by `key`, then id". The id makes the order total, which a
 * keyset cursor needs (without it, rows with equal keys at a page boundary would repeat or vanish).
 */
export function thenById(key: SortKey, id: SQLWrapper): SortKey[] {
  return [key, [id, 'uuid']];
}

export interface Keyset<Row, Item> {
  /** The sort key, ascending, most significant first; unique per row (end it with the id). */
  orderBy: readonly SortKey[];
  /** Every key descending instead (newest first). */
  descending?: boolean;
  /** The list query's `cursor` and `limit`. */
  page: PageQuery;
  /** A row's values of the sort key, in `orderBy`'s order (timestamps as `cursorTime` writes them). */
  keyOf: (row: Row) => CursorValue[];
  toItem: (row: Row) => Item;
}

/**
 * A page of a keyset-paginated list. Every list runs the same steps, and one that got a step wrong
 * (the order and the cursor on different keys, `limit` instead of `limit + 1`) would repeat or skip
 * rows at page boundaries, so they are written once, here. `query` is `db.select(…).from(…)` (joins
 * allowed) made `$dynamic()` and without a `where`: this sets it (drizzle's `where` replaces, it
 * does not add), to `filters and (keys) > (cursor)`, then `order by keys asc limit limit + 1`: the
 * SQL a list would write by hand, served by the same index on the keys.
 */
export async function keysetPage<Query extends PgSelect, Item>(
  query: Query,
  filters: (SQL | undefined)[],
  keyset: Keyset<Query['_']['result'][number], Item>,
): Promise<Page<Item>> {
  const keys = keyset.orderBy.map(([key]) => key);
  const fields = keyset.orderBy.map(([, field]) => field);
  const { cursor, limit } = keyset.page;
  const position = decodeCursor(cursor, fields);
  const rows: Query['_']['result'] = await query
    .where(and(...filters, position ? after(keys, position, fields, keyset.descending) : undefined))
    .orderBy(...keys.map((key) => (keyset.descending ? desc(key) : asc(key))))
    .limit(limit + 1);
  return pageOfRows(rows, limit, keyset.keyOf, keyset.toItem);
}
