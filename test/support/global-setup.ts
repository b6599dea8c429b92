/**
 * With TEST_DATABASE_URL, migrate one template database once; every test file then gets a fresh
 * copy of it (CREATE DATABASE … TEMPLATE), which is much faster than migrating per file.
 */
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { createDatabase } from '../../src/db/client.ts';
import { adminUrl, databaseUrl } from './postgres.ts';

export default async function setup(project: TestProject) {
  const baseUrl = process.env.TEST_DATABASE_URL;
  if (!baseUrl) return;
  const template = `together_template_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl(baseUrl) });
  await admin.connect();
  await admin.query(`drop database if exists ${template}`);
  await admin.query(`create database ${template}`);
  const database = await createDatabase({
    DATABASE_URL: databaseUrl(baseUrl, template),
    PGLITE_DATA_DIR: 'memory://',
    DATABASE_POOL_SIZE: 1,
  });
  await database.migrate();
  await database.close();
  project.provide('postgresTemplate', template);
  return async () => {
    await admin.query(`drop database if exists ${template} with (force)`);
    await admin.end();
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    postgresTemplate: string;
  }
}
