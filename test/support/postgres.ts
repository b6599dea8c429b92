/**
 * The PostgreSQL the suites run on: the embedded cluster that the global set-up started for this
 * run, or the server TEST_DATABASE_URL names. Either way a connection string to a database from
 * which others can be created (the maintenance database `postgres` on the embedded cluster).
 */
import { inject } from 'vitest';

export const testDatabaseUrl: string = inject('postgresUrl');

export { databaseUrl } from './connection-strings.ts';

/** Which server runs the suites, for test names. */
export const serverLabel: string = inject('postgresLabel');
