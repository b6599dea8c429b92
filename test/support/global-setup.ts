/**
 * One PostgreSQL for the whole run: without TEST_DATABASE_URL, an embedded cluster (the engine
 * `npm start` runs) in a temporary folder, stopped at the end. A template database is migrated
 * once; every test file then gets a fresh copy of it (CREATE DATABASE … TEMPLATE), which is much
 * faster than migrating per file.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { createDatabase } from '../../src/db/client.ts';
import { removeUnheldCluster, startEmbeddedCluster } from '../../src/db/embedded.ts';
import { databaseUrl } from './connection-strings.ts';

/**
 * Settings for a throw-away cluster: durability off (a crash loses only test data), and room for
 * every file's pool plus the server processes the process tests start.
 */
const testClusterSettings = {
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  max_connections: 400,
};

const clusterFolderPrefix = 'together-test-cluster-';

export default async function setup(project: TestProject) {
  let baseUrl = process.env.TEST_DATABASE_URL;
  let stopCluster = async () => {};
  if (!baseUrl) {
    // A run killed outright (SIGKILL, a CI timeout) leaves its cluster running in its folder; the
    // next run stops and removes it (one still held belongs to a run in progress, and is left).
    for (const name of readdirSync(tmpdir())) {
      if (!name.startsWith(clusterFolderPrefix)) continue;
      await removeUnheldCluster(join(tmpdir(), name)).catch((error: Error) =>
        console.warn(`left ${name}: ${error.message}`),
      );
    }
    const dataDir = mkdtempSync(join(tmpdir(), clusterFolderPrefix));
    const cluster = await startEmbeddedCluster({ dataDir, settings: testClusterSettings });
    baseUrl = cluster.adminConnectionString;
    stopCluster = async () => {
      await cluster.stop();
      rmSync(dataDir, { recursive: true, force: true });
    };
  }
  const template = `together_template_${process.pid}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  const version = (await admin.query('show server_version')).rows[0].server_version as string;
  await admin.query(`drop database if exists ${template}`);
  await admin.query(`create database ${template}`);
  const database = await createDatabase({
    DATABASE_URL: databaseUrl(baseUrl, template),
    DATA_DIR: 'unused',
    DATABASE_POOL_SIZE: 1,
  });
  await database.migrate();
  await database.close();
  project.provide('postgresTemplate', template);
  project.provide('postgresUrl', baseUrl);
  project.provide(
    'postgresLabel',
    `${process.env.TEST_DATABASE_URL ? 'external' : 'embedded'} PostgreSQL ${version.split(' ')[0]}`,
  );
  return async () => {
    await admin.query(`drop database if exists ${template} with (force)`);
    await admin.end();
    await stopCluster();
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    postgresTemplate: string;
    postgresUrl: string;
    postgresLabel: string;
  }
}
