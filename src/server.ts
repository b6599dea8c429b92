/**
 * Entry point: config → database (the embedded cluster, or DATABASE_URL), migrated → buildApp →
 * listen. SIGTERM/SIGINT drain in-flight requests, close the pool, stop the embedded cluster, and
 * exit 0. A failed start-up stops the cluster too and exits 1 with the reason.
 */
import closeWithGrace from 'close-with-grace';
import { ConfigError, loadConfig } from './config.ts';
import { createLogger } from './core/logger.ts';
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
  // The app's modules load (≈ 0.3 s) while the embedded cluster starts in its own process.
  const appModules = Promise.all([
    import('./app.ts'),
    import('./core/idempotency.ts'),
    import('./domains/audit/service.ts'),
    import('./domains/webhooks/deliveries.ts'),
    import('./domains/webhooks/dispatcher.ts'),
    import('./domains/webhooks/destinations.ts'),
  ]);
  // A signal before the app takes over (closeWithGrace, below) still stops the embedded cluster:
  // Node's default would end the process at once and leave the cluster running. The handler only
  // takes note; start-up checks after each step (a cluster half made, a migration half applied are
  // left to finish, never cut), and nothing listens once a stop was asked for.
  let stopRequested = false;
  const stopDuringStartUp = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'stopping during start-up');
    stopRequested = true;
  };
  process.on('SIGTERM', stopDuringStartUp);
  process.on('SIGINT', stopDuringStartUp);
  let database: Database;
  try {
    database = await createDatabase(config, logger);
  } catch (error) {
    logger.fatal({ err: error }, `could not open the database: ${(error as Error).message}`);
    process.exit(1);
  }
  if (stopRequested) {
    await database.close();
    process.exit(0);
  }
  const giveUp = async (what: string, error: unknown): Promise<never> => {
    logger.fatal({ err: error }, what);
    await database.close().catch(() => {});
    process.exit(1);
  };

  // Migrations run while the app builds (neither needs the other); nothing listens before both.
  const migrated: Promise<unknown> = config.MIGRATE_ON_START
    ? database.migrate().then(
        () => undefined,
        (error: unknown) => error ?? new Error('migration failed'),
      )
    : Promise.resolve(undefined);
  const [
    { buildApp },
    { purgeExpiredIdempotencyKeys },
    { purgeOldAuditEvents },
    { purgeOldDeliveries },
    { WebhookDispatcher },
    { systemResolver },
  ] = await appModules;
  const app = await buildApp({ config, database, logger });
  // Idempotency records live 24 h, audit events 400 days, finished webhook messages 30 days; any
  // number of processes may purge them.
  const purge = setInterval(() => {
    purgeExpiredIdempotencyKeys(database.db).catch((error) =>
      app.log.warn({ err: error }, 'idempotency purge failed'),
    );
    purgeOldAuditEvents(database.db).catch((error) => app.log.warn({ err: error }, 'audit purge failed'));
    purgeOldDeliveries(database.db).catch((error) => app.log.warn({ err: error }, 'webhook purge failed'));
  }, 3_600_000);
  purge.unref();
  app.addHook('onClose', async () => clearInterval(purge));
  // Every process delivers webhooks, sharing the work through the database (dispatcher.ts); it
  // starts once the schema is migrated and stops before the database closes, within the grace.
  const dispatcher = new WebhookDispatcher({
    db: database.db,
    logger: app.log,
    allowPrivate: config.WEBHOOK_ALLOW_PRIVATE,
    resolve: systemResolver,
  });
  app.addHook('preClose', () => dispatcher.stop(config.SHUTDOWN_GRACE_MS / 2));
  const migrationError = await Promise.all([migrated, app.ready()]).then(([error]) => error);
  if (migrationError) {
    await app.close().catch(() => {});
    await giveUp('could not migrate the database', migrationError);
  }
  if (stopRequested) {
    await app.close().catch(() => {});
    await database.close();
    process.exit(0);
  }
  dispatcher.start();
  process.off('SIGTERM', stopDuringStartUp);
  process.off('SIGINT', stopDuringStartUp);
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
