/** Connection-string helpers for the PostgreSQL test runs. */

/** The same server, any database: used to create and drop the per-file databases. */
export function adminUrl(baseUrl: string): string {
  return baseUrl;
}

export function databaseUrl(baseUrl: string, database: string): string {
  const url = new URL(baseUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

export const testDatabaseUrl = process.env.TEST_DATABASE_URL;
export const onPostgres = Boolean(testDatabaseUrl);
/** The label of tests that need PostgreSQL; they are skipped, with this reason, on PGlite. */
export const needsPostgres = '(needs PostgreSQL: runs when TEST_DATABASE_URL is set)';
