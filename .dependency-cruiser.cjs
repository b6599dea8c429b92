/**
 * The import rules of ARCHITECTURE.md §2, checked by `npm run lint` (dependency-cruiser).
 * A rule broken here is a design decision to discuss, not a lint to silence.
 */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'Two modules that import each other are one responsibility in two places: move the shared part down.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'db-is-the-bottom',
      severity: 'error',
      comment:
        'src/db/ (the driver, the schema, the embedded engine) imports nothing from core/ or the domains.',
      from: { path: '^src/db/' },
      to: { path: '^src/(core|domains)/' },
    },
    {
      name: 'core-imports-no-domain',
      severity: 'error',
      comment: 'Cross-cutting plugins serve every domain and know none.',
      from: { path: '^src/core/' },
      to: { path: '^src/domains/' },
    },
    {
      name: 'only-app-imports-routes',
      severity: 'error',
      comment: 'A routes.ts is a Fastify plugin that app.ts registers; rules live in services.',
      from: { path: '^src/', pathNot: '^src/app\\.ts$' },
      to: { path: '^src/domains/[^/]+/routes\\.ts$' },
    },
    {
      name: 'no-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
