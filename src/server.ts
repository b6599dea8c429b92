/**
 * Entry point: config → database (the embedded cluster, or DATABASE_URL), migrated → buildApp →
 * listen. SIGTERM/SIGINT drain in-flight requests, close the pool, stop the embedded cluster, and
 * exit 0. A failed start-up stops the cluster too and exits 1 with the reason.
 */
import closeWithGrace from 'close-with-grace';
import { buildApp, createLogger } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';
import { purgeExpiredIdempotencyKeys } from './core/idempotency.ts';
import { createDatabase, type Database } from './db/client.ts';

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(1);
    }
    throw error;
  }

  const logger = createLogger(config);
  let database: Database;
  try {
    database = await createDatabase(config, logger);
  } catch (error) {
    logger.fatal({ err: error }, `could not open the database: ${(error as Error).message}`);
    process.exit(1);
  }
  const giveUp = async (what: string, error: unknown): Promise<never> => {
    logger.fatal({ err: error }, what);
    await database.close().catch(() => {});
    process.exit(1);
  };

  if (config.MIGRATE_ON_START) {
    try {
      await database.migrate();
    } catch (error) {
      await giveUp('could not migrate the database', error);
    }
  }

  const app = await buildApp({ config, database, logger });
  // Idempotency records live 24 h; any number of processes may purge them.
  const purge = setInterval(() => {
    purgeExpiredIdempotencyKeys(database.db).catch((error) =>
      app.log.warn({ err: error }, 'idempotency purge failed'),
    );
  }, 3_600_000);
  purge.unref();
  app.addHook('onClose', async () => clearInterval(purge));
  closeWithGrace({ delay: config.SHUTDOWN_GRACE_MS }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'shutting down after an uncaught error');
    else app.log.info({ signal }, 'shutting down: finishing in-flight requests');
    await app.close();
  });

  try {
    const address = await app.listen({ port: config.PORT, host: config.HOST });
    app.log.info({ database: database.location, address, docs: `${address}/docs` }, 'Together is serving');
  } catch (error) {
    await app.close().catch(() => {});
    await giveUp(`could not listen on ${config.HOST}:${config.PORT}`, error);
  }
}

await main();
