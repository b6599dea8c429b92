/**
 * Retention: deleting what has outlived its time, a batch at a time, so that no purge holds many
 * row locks or one long transaction. Any number of processes may run one at once.
 */
import { type SQL, sql } from 'drizzle-orm';
import type { DbOrTx } from './client.ts';

/**
 * Deletes the rows of `table` (keyed by `(org_id, id)`) that `where` selects, `batch` at a time;
 * returns how many went.
 */
export async function deleteInBatches(db: DbOrTx, table: string, where: SQL, batch = 5_000): Promise<number> {
  let total = 0;
  for (;;) {
    const deleted = await db.execute(sql`
      delete from ${sql.identifier(table)} where (org_id, id) in (
        select org_id, id from ${sql.identifier(table)} where ${where} limit ${batch}
      )`);
    const count = (deleted as { rowCount?: number | null }).rowCount ?? 0;
    total += count;
    if (count < batch) return total;
  }
}
