import { type ExtractTablesWithRelations, type SQL, sql } from 'drizzle-orm';
import { drizzle as drizzlePg, NodePgSession, NodePgTransaction } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import { type PgDatabase, PgDialect, type PgQueryResultHKT, type PgTransaction } from 'drizzle-orm/pg-core';
import pg from 'pg';
import { packagePath } from '../package-root.ts';
import { startEmbeddedCluster } from './embedded.ts';
import * as schema from './schema.ts';

export type Schema = typeof schema;
export type Db = PgDatabase<PgQueryResultHKT, Schema>;
export type Tx = PgTransaction<PgQueryResultHKT, Schema, ExtractTablesWithRelations<Schema>>;
/** What services take: the database, or the transaction their caller opened. */
export type DbOrTx = Db | Tx;

export interface Database {
  db: Db;
  /** Where it runs: the embedded cluster under DATA_DIR, or the server DATABASE_URL names. */
  location: 'embedded' | 'external';
  /** Resolves when the database answers a trivial query, rejects otherwise. */
  ping(): Promise<void>;
  /** Applies pending migrations under an advisory lock, so N processes apply them once. */
  migrate(): Promise<void>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  DATABASE_URL?: string | undefined;
  DATA_DIR: string;
  DATABASE_POOL_SIZE: number;
}

interface Logger {
  info(object: unknown, message?: string): void;
  warn(object: unknown, message?: string): void;
}

/**
 * drizzle-orm 0.45's node-postgres `transaction()` sends BEGIN before its try/finally: when the
 * connection dies between checkout and BEGIN (PostgreSQL restarting), the client is never released,
 * the pool keeps it forever, and shutdown's `pool.end()` waits for it until killed (seen in
 * test/concurrency/faults.test.ts). This is the same method with BEGIN inside the try, and with the
 * original error kept when the ROLLBACK fails too.
 */
type SessionInternals = {
  client: pg.Pool | pg.PoolClient;
  dialect: ConstructorParameters<typeof NodePgSession>[1];
  schema: ConstructorParameters<typeof NodePgSession>[2];
  options: ConstructorParameters<typeof NodePgSession>[3];
};
NodePgSession.prototype.transaction = async function transactionReleasingOnEveryPath<T>(
  this: SessionInternals,
  run: (tx: NodePgTransaction<Record<string, unknown>, never>) => Promise<T>,
): Promise<T> {
  const isPool = this.client instanceof pg.Pool;
  const session = isPool
    ? new NodePgSession(await (this.client as pg.Pool).connect(), this.dialect, this.schema, this.options)
    : (this as unknown as NodePgSession<Record<string, unknown>, never>);
  const tx = new NodePgTransaction(this.dialect, session, this.schema) as NodePgTransaction<
    Record<string, unknown>,
    never
  >;
  try {
    await tx.execute(sql`begin`);
    try {
      const result = await run(tx);
      await tx.execute(sql`commit`);
      return result;
    } catch (error) {
      await tx.execute(sql`rollback`).catch(() => {});
      throw error;
    }
  } finally {
    // pg-pool destroys, rather than reuses, a client whose connection failed.
    if (isPool) (session as unknown as { client: pg.PoolClient }).client.release();
  }
} as typeof NodePgSession.prototype.transaction;

export const migrationsFolder = packagePath('migrations');

/** Any fixed 64-bit number works; all API processes of one database must agree on it. */
export const MIGRATION_LOCK_KEY = 7_246_221_883_117;

/**
 * The database the options name: the server at DATABASE_URL, or else the embedded cluster under
 * DATA_DIR, started here and stopped by `close()`.
 */
export async function createDatabase(options: DatabaseOptions, logger: Logger = console): Promise<Database> {
  if (options.DATABASE_URL) {
    return createPostgresDatabase(options.DATABASE_URL, options.DATABASE_POOL_SIZE, logger, 'external');
  }
  const cluster = await startEmbeddedCluster({ dataDir: options.DATA_DIR, log: logger });
  const database = createPostgresDatabase(
    cluster.connectionString,
    options.DATABASE_POOL_SIZE,
    logger,
    'embedded',
  );
  const closePool = database.close;
  return {
    ...database,
    close: async () => {
      try {
        await closePool();
      } finally {
        await cluster.stop();
      }
    },
  };
}

/**
 * A pool that is never used: for tools that need an app but no data (writing the OpenAPI
 * document). node-postgres connects on the first query only.
 */
export function createUnconnectedDatabase(): Database {
  return createPostgresDatabase('postgresql://unused@localhost/unused', 1, console, 'external');
}

function createPostgresDatabase(
  url: string,
  poolSize: number,
  logger: Logger,
  location: Database['location'],
): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    // Fail fast while the database is unreachable, so requests get 503 instead of hanging.
    connectionTimeoutMillis: 3_000,
    idleTimeoutMillis: 30_000,
  });
  // Without these listeners a connection error kills the process: the pool's covers idle clients
  // (e.g. PostgreSQL restarting); a client's own covers it while checked out between two queries
  // of a transaction. The query in flight fails by itself and becomes 503 unavailable.
  pool.on('error', (error) => logger.warn({ err: error }, 'idle database connection lost'));
  pool.on('connect', (client) => {
    client.on('error', (error) => logger.warn({ err: error }, 'database connection lost while in use'));
  });
  const db = drizzlePg({ client: pool, schema });
  let closed = false;
  return {
    db: db as unknown as Db,
    location,
    ping: async () => {
      await pool.query('select 1');
    },
    migrate: async () => {
      const client = await pool.connect();
      let failure: Error | undefined;
      try {
        await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
        try {
          await migratePg(drizzlePg({ client, schema }), { migrationsFolder });
        } finally {
          await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
        }
      } catch (error) {
        failure = error as Error;
        throw error;
      } finally {
        // A connection that failed may still hold the session lock: destroy it, never reuse it.
        client.release(failure);
      }
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}

/** True for the database itself (the pool), false for a transaction. */
export function isDatabaseHandle(db: DbOrTx): db is Db {
  return '$client' in db;
}

/** Runs raw SQL and returns its rows. */
export async function queryRows<T>(db: DbOrTx, query: SQL): Promise<T[]> {
  const result = (await db.execute(query)) as unknown as { rows: T[] };
  return result.rows;
}

/** An ILIKE pattern matching `term` anywhere, with LIKE's wildcards in `term` taken literally. */
export function containsPattern(term: string): string {
  return `%${term.replace(/[\\%_]/g, (character) => `\\${character}`)}%`;
}

/**
 * A list as one array parameter. drizzle's `sql` spreads a JavaScript array into a list of
 * parameters (`($1, $2)`), which cannot be cast to an array, so the array travels as one text
 * parameter in PostgreSQL's array syntax, each element quoted.
 */
function arrayParameter(values: readonly string[], type: 'uuid' | 'text'): SQL {
  const elements = values.map((value) => `"${value.replace(/[\\"]/g, (character) => `\\${character}`)}"`);
  return sql`${`{${elements.join(',')}}`}::${sql.raw(type)}[]`;
}

export const uuidArray = (ids: readonly string[]): SQL => arrayParameter(ids, 'uuid');
export const textArray = (values: readonly string[]): SQL => arrayParameter(values, 'text');

/**
 * Raw rows carry dates, timestamps and intervals as PostgreSQL's text on every path: drizzle's
 * node-postgres session parses these types so (its query builder then maps them per column), and
 * `preparedRows` uses the same list, so a raw row type says `string` and is right at run time.
 */
const { builtins } = pg.types;
const keptAsText = new Set<number>([
  builtins.TIMESTAMPTZ,
  builtins.TIMESTAMP,
  builtins.DATE,
  builtins.INTERVAL,
  1115, // timestamp[]
  1182, // date[]
  1185, // timestamptz[]
  1187, // interval[]
  1231, // numeric[]
]);
const timestampsAsText = {
  getTypeParser: (typeId: number, format?: 'text' | 'binary') =>
    keptAsText.has(typeId) ? (value: string) => value : pg.types.getTypeParser(typeId, format as 'text'),
};

const dialect = new PgDialect();

interface RawClient {
  query(
    config: { name?: string; text: string; values: unknown[]; types?: typeof timestampsAsText } | string,
    values?: unknown[],
  ): Promise<{ rows: unknown[] }>;
}

/**
 * Raw SQL for hot paths, as a named (prepared) statement on PostgreSQL: the server parses and plans
 * it once per connection instead of on every request (measured: roughly double the throughput of
 * an unnamed query). The same `name` must always carry the same SQL text. Inside a transaction it
 * runs as an ordinary query. Either way its rows decode like `queryRows`' (timestamps as text).
 */
export async function preparedRows<T>(db: DbOrTx, name: string, query: SQL): Promise<T[]> {
  const client = (db as { $client?: unknown }).$client;
  if (client instanceof pg.Pool) {
    const { sql: text, params } = dialect.sqlToQuery(query);
    const result = await (client as unknown as RawClient).query({
      name,
      text,
      values: params,
      types: timestampsAsText,
    });
    return result.rows as T[];
  }
  return queryRows<T>(db, query);
}
