import { defineConfig } from 'drizzle-kit';

// drizzle-kit only generates SQL here (`npm run db:generate`); migrations are applied by the app
// itself (src/db/client.ts), because drizzle-kit cannot load PGlite's btree_gist extension.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema.ts',
  out: './migrations',
});
