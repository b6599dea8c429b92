/**
 * The fan-out: outbox rows become messages for the endpoints subscribed to their type (API.md §10).
 *
 * The outbox is read in the order of the transactions that wrote it (`txid`) and only below the
 * oldest transaction still running (`pg_snapshot_xmin`): every row there is committed or will never
 * be, so a cursor (`webhook_fan_out`) can move past it for good. Reading by id or time would not
 * do: both are made before the commit, and a row committed late would be passed over. The cursor
 * row's lock makes one fan-out run at a time across processes (the others skip it), and the cursor
 * moves in the transaction that writes the messages: a crash undoes both, so a batch makes its
 * messages exactly once. Its cost is that of the batch: nothing here grows with the outbox's size.
 */
import { sql } from 'drizzle-orm';
import { uuidv7 } from 'uuidv7';
import { type Db, type DbOrTx, queryRows } from '../../db/client.ts';

const cursorName = 'webhooks';

interface OutboxRow {
  org_id: string;
  id: string;
  txid: string;
  type: string;
  payload: Record<string, unknown>;
  created_at: string;
  webhook_ids: string[];
}

/**
 * Turns up to `batch` outbox rows into messages, each with its first attempt due now. Returns how
 * many outbox rows it read, or null when another process holds the fan-out.
 */
/** Outbox rows read per fan-out transaction. */
export const fanOutBatch = 500;

export async function fanOut(db: Db, batch = fanOutBatch): Promise<number | null> {
  return db.transaction(async (tx) => {
    const [cursor] = await queryRows<{ last_txid: string; last_id: string }>(
      tx,
      sql`select last_txid::text, last_id from webhook_fan_out where name = ${cursorName} for update skip locked`,
    );
    if (!cursor) return null;
    // An endpoint receives what was written while it was enabled: from its creation, or since it
    // was enabled again.
    const rows = await queryRows<OutboxRow>(
      tx,
      sql`
        select o.org_id, o.id, o.txid::text as txid, o.type, o.payload, o.created_at,
          array(
            select w.id from webhooks w
            where w.org_id = o.org_id and w.enabled and o.type = any(w.events)
              and o.created_at >= w.enabled_since
            order by w.id
          ) as webhook_ids
        from outbox o
        where (o.txid, o.id) > (${cursor.last_txid}::bigint, ${cursor.last_id}::uuid)
          and o.txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
        order by o.txid, o.id
        limit ${batch}`,
    );
    const last = rows.at(-1);
    if (!last) return 0;
    const messages = rows.flatMap((row) =>
      row.webhook_ids.map((webhookId) => ({
        org_id: row.org_id,
        id: uuidv7(),
        webhook_id: webhookId,
        outbox_id: row.id,
        type: row.type,
        occurred_at: row.created_at,
        data: row.payload,
        delivery_id: uuidv7(),
      })),
    );
    if (messages.length > 0) await queueMessages(tx, messages);
    await tx.execute(
      sql`update webhook_fan_out set last_txid = ${last.txid}::bigint, last_id = ${last.id} where name = ${cursorName}`,
    );
    return rows.length;
  });
}

export interface NewMessage {
  org_id: string;
  /** The `webhook-id` of every attempt. */
  id: string;
  webhook_id: string;
  outbox_id: string | null;
  type: string;
  occurred_at: string;
  data: Record<string, unknown>;
  /** The id of its first attempt, pending and due now. */
  delivery_id: string;
}

/**
 * Writes messages with their first attempt due now, and marks their endpoints due: only for
 * endpoints still enabled, read under a share lock, so that a `PATCH { enabled: false }` either
 * waits for this transaction (and then drops what it wrote) or has committed (and nothing is
 * written for it).
 */
export async function queueMessages(tx: DbOrTx, messages: NewMessage[]): Promise<void> {
  await tx.execute(sql`
    with input as (
      select * from jsonb_to_recordset(${JSON.stringify(messages)}::jsonb) as m(
        org_id uuid, id uuid, webhook_id uuid, outbox_id uuid, type text, occurred_at timestamptz,
        data jsonb, delivery_id uuid)
    ), live as (
      select org_id, id from webhooks
      where (org_id, id) in (select org_id, webhook_id from input) and enabled
      for share
    ), inserted as (
      insert into webhook_messages (org_id, id, webhook_id, outbox_id, type, occurred_at, data)
      select i.org_id, i.id, i.webhook_id, i.outbox_id, i.type, i.occurred_at, i.data
      from input i join live on live.org_id = i.org_id and live.id = i.webhook_id
      returning org_id, id, webhook_id
    ), deliveries as (
      insert into webhook_deliveries (org_id, id, webhook_id, message_id, attempt, status, next_attempt_at)
      select i.org_id, input.delivery_id, i.webhook_id, i.id, 1, 'pending', now()
      from inserted i join input on input.org_id = i.org_id and input.id = i.id
    )
    insert into webhook_queues (org_id, webhook_id, next_due_at)
    select distinct org_id, webhook_id, now() from inserted
    on conflict (org_id, webhook_id) do update
      set next_due_at = least(webhook_queues.next_due_at, excluded.next_due_at)`);
}
