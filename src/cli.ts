/**
 * Operator commands, run through npm scripts:
 *   npm run db:migrate                       apply pending migrations (advisory-locked on PostgreSQL)
 *   npm run seed                             create a demo organisation and print its admin key
 *   npm run openapi:write                    write openapi/openapi.json from the routes' schemas
 *   npm run keys:create -- <slug> [role] [name]   issue a key for an organisation (e.g. a lost admin key)
 * They read the same environment as the server (DATABASE_URL, DATA_DIR, …). On the embedded engine
 * they start its cluster themselves, so they refuse while a server holds DATA_DIR.
 */
import { writeFileSync } from 'node:fs';
import { buildApp } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';
import type { KeyRole } from './core/auth.ts';
import { openApiText } from './core/openapi.ts';
import { createDatabase, createUnconnectedDatabase, type Database } from './db/client.ts';
import {
  createApiKeyAs,
  createOrganization,
  findOrganizationBySlug,
} from './domains/organizations/service.ts';
import { packagePath } from './package-root.ts';

const quietLogger = {
  info: () => {},
  warn: (object: unknown, message?: string) => console.warn(message ?? '', object),
};

async function withDatabase<T>(run: (database: Database) => Promise<T>): Promise<T> {
  const database = await createDatabase(loadConfig(), quietLogger);
  try {
    await database.migrate();
    return await run(database);
  } finally {
    await database.close();
  }
}

async function migrateCommand() {
  await withDatabase(async (database) => {
    console.log(`migrations applied (${database.location} database)`);
  });
}

async function seedCommand() {
  await withDatabase(async (database) => {
    const slug = process.argv[3] ?? 'riverside-food-bank';
    if (await findOrganizationBySlug(database.db, slug)) {
      console.error(
        `An organisation with slug "${slug}" exists already; use: npm run keys:create -- ${slug} admin`,
      );
      process.exitCode = 1;
      return;
    }
    const created = await database.db.transaction((tx) =>
      createOrganization(
        tx,
        { kind: 'system' },
        {
          name: 'Riverside Food Bank (demo)',
          slug,
          timezone: 'Europe/Berlin',
          contactEmail: 'demo@riverside.example',
        },
      ),
    );
    console.log(`Created organisation "${created.organization.name}" (${created.organization.slug}).`);
    console.log(`Admin key (shown once): ${created.apiKey.token}`);
  });
}

async function keysCreateCommand() {
  const [slug, role = 'admin', name = 'Issued from the command line'] = process.argv.slice(3);
  if (!slug || !['admin', 'organiser', 'viewer'].includes(role)) {
    console.error('usage: npm run keys:create -- <organisation-slug> [admin|organiser|viewer] [name]');
    process.exitCode = 2;
    return;
  }
  await withDatabase(async (database) => {
    const organization = await findOrganizationBySlug(database.db, slug);
    if (!organization) {
      console.error(`No organisation has the slug "${slug}".`);
      process.exitCode = 1;
      return;
    }
    const key = await database.db.transaction((tx) =>
      createApiKeyAs(tx, organization.id, { kind: 'system' }, { name, role: role as KeyRole }),
    );
    console.log(`${key.role} key "${key.name}" for ${slug} (shown once): ${key.token}`);
  });
}

async function openApiWriteCommand() {
  // The document depends on the routes only; a database that is never queried will do.
  const config = loadConfig();
  const database = createUnconnectedDatabase();
  const app = await buildApp({ config, database, logger: false });
  await app.ready();
  const target = packagePath('openapi', 'openapi.json');
  writeFileSync(target, openApiText(app));
  await app.close();
  console.log('wrote openapi/openapi.json');
}

const commands: Record<string, () => Promise<void>> = {
  'db:migrate': migrateCommand,
  seed: seedCommand,
  'keys:create': keysCreateCommand,
  'openapi:write': openApiWriteCommand,
};

const name = process.argv[2] ?? '';
const command = commands[name];
if (!command) {
  console.error(`usage: node --import tsx src/cli.ts <${Object.keys(commands).join('|')}>`);
  process.exit(2);
}
try {
  await command();
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
}
