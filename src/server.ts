/**
 * Entry point: config → database (migrated) → buildApp → listen. SIGTERM/SIGINT drain in-flight
 * requests, close the pool or PGlite cleanly, and exit 0.
 */
import closeWithGrace from 'close-with-grace';
import { buildApp, createLogger } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';
import { purgeExpiredIdempotencyKeys } from './core/idempotency.ts';
import { createDatabase } from './db/client.ts';

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
  const database = await createDatabase(config, logger);
  if (config.MIGRATE_ON_START) {
    try {
      await database.migrate();
    } catch (error) {
      logger.fatal({ err: error }, 'could not migrate the database');
      await database.close().catch(() => {});
      process.exit(1);
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

  const address = await app.listen({ port: config.PORT, host: config.HOST });
  app.log.info({ engine: database.engine, address, docs: `${address}/docs` }, 'Together is serving');
}

await main();
