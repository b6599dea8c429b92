/**
 * Keys of this installation (db table instance_secrets): made at random by the first process that
 * needs one, then read by every process, so that all of them derive the same values. Each is read
 * once per process and database.
 */
import { randomBytes } from 'node:crypto';
import { eq } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { instanceSecrets } from '../db/schema.ts';

const loaded = new WeakMap<Db, Map<string, Promise<Buffer>>>();

async function load(db: Db, name: string): Promise<Buffer> {
  await db
    .insert(instanceSecrets)
    .values({ name, secret: randomBytes(32).toString('base64url') })
    .onConflictDoNothing();
  const [row] = await db
    .select({ secret: instanceSecrets.secret })
    .from(instanceSecrets)
    .where(eq(instanceSecrets.name, name));
  if (!row) throw new Error(`instance secret ${name} is missing`);
  return Buffer.from(row.secret, 'base64url');
}

/** The installation's 32-byte key `name`, from the database `db` (the pool, not a transaction). */
export function instanceSecret(db: Db, name: string): Promise<Buffer> {
  let secrets = loaded.get(db);
  if (!secrets) {
    secrets = new Map();
    loaded.set(db, secrets);
  }
  let secret = secrets.get(name);
  if (!secret) {
    secret = load(db, name);
    // A failure (the database away) is not kept: the next request tries again.
    secret.catch(() => secrets.delete(name));
    secrets.set(name, secret);
  }
  return secret;
}
