import { defineConfig } from 'vitest/config';

// CI reads the pass/fail counts from the JSON report (see .ci/run).
const jsonReport = process.env.VITEST_JSON_REPORT;

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // PGlite's initdb takes seconds, and process tests start real servers.
    hookTimeout: 120_000,
    testTimeout: 60_000,
    pool: 'forks',
    reporters: jsonReport ? ['default', 'json'] : ['default'],
    outputFile: jsonReport ? { json: jsonReport } : undefined,
  },
});
