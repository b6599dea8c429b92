/**
 * Column objects: how a resource is read, written once. A column object maps each field of a row
 * to a Drizzle column or a typed SQL expression (`sql<T>` with `.mapWith` where the driver's value
 * needs decoding). The query builder takes it as its selection (`db.select(columns)`); the few hot
 * statements that stay raw SQL select it with `selectList` and decode with `decodeRows`, so both
 * paths give the same row type, `RowOf<typeof columns>`, and one mapper serves both.
 */
import {
  Column,
  type DriverValueDecoder,
  getTableColumns,
  getTableName,
  is,
  type SQL,
  sql,
  type Table,
} from 'drizzle-orm';
import type { SelectResultFields } from 'drizzle-orm/query-builders/select.types';

export type ColumnObject = Record<string, Column | SQL>;

/**
 * `"table"."column"`, wherever it is written. In the select list of a query that reads one table,
 * Drizzle writes a column's bare name; inside a correlated subquery there, a bare name binds to the
 * subquery's own table when that has a column of the name (`org_id = org_id`: always true).
 */
export function qualified(column: Column): SQL {
  return sql`${sql.identifier(getTableName(column.table))}.${sql.identifier(column.name)}`;
}

/**
 * A table's columns but those named: where a resource's column object starts, so that a column
 * added to the table is read without a second list to keep in step.
 */
export function columnsExcept<T extends Table, K extends keyof T['_']['columns'] & string>(
  table: T,
  except: readonly K[],
): Omit<T['_']['columns'], K> {
  const columns: Record<string, unknown> = { ...getTableColumns(table) };
  for (const key of except) delete columns[key];
  return columns as Omit<T['_']['columns'], K>;
}

/** The row a column object selects, exactly as the query builder returns it. */
export type RowOf<C extends ColumnObject> = SelectResultFields<C>;

/**
 * The column object as a raw select list, each field `as "<key>"`. `instead` gives another
 * expression for some fields (say a value a CTE computed), decoded like the field it replaces.
 * Columns render table-qualified (`"signups"."id"`): select from the table, or from a CTE aliased
 * with the table's name.
 */
export function selectList<C extends ColumnObject>(
  columns: C,
  instead: Partial<Record<keyof C, SQL>> = {},
): SQL {
  return sql.join(
    Object.entries(columns).map(([key, field]) => sql`${instead[key] ?? field} as ${sql.identifier(key)}`),
    sql`, `,
  );
}

function decoderOf(field: Column | SQL): DriverValueDecoder<unknown, unknown> {
  if (is(field, Column)) return field;
  return (field as unknown as { decoder: DriverValueDecoder<unknown, unknown> }).decoder;
}

/** Raw rows selected by `selectList(columns)`, decoded as the query builder decodes its rows. */
export function decodeRows<C extends ColumnObject>(
  columns: C,
  rows: readonly Record<string, unknown>[],
): RowOf<C>[] {
  const fields = Object.entries(columns).map(([key, field]) => [key, decoderOf(field)] as const);
  return rows.map((raw) => {
    const row: Record<string, unknown> = {};
    for (const [key, decoder] of fields) {
      const value = raw[key];
      row[key] = value === null || value === undefined ? null : decoder.mapFromDriverValue(value);
    }
    return row as RowOf<C>;
  });
}
