/**
 * The OpenAPI document tells the truth to a frontend team's typed client (issue 14): types made
 * from the served document by `openapi-typescript`, used through `openapi-fetch`, compile a call of
 * `GET /v1/events/{eventId}/shifts` with `query: { available: true }` (a query flag is a boolean
 * in the document), and refuse one with a value the API does not take.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import openapiTS, { astToString } from 'openapi-typescript';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { useTestApp } from './support/fixtures.ts';
import { repositoryRoot } from './support/server-process.ts';

const suite = useTestApp();

/** Type-checks `source` beside the generated `api.d.ts`; the diagnostics' messages. */
function compile(types: string, source: string): string[] {
  const folder = mkdtempSync(join(tmpdir(), 'together-typed-client-'));
  try {
    writeFileSync(join(folder, 'api.d.ts'), types);
    writeFileSync(join(folder, 'client.ts'), source);
    const program = ts.createProgram([join(folder, 'client.ts')], {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      skipLibCheck: true,
      baseUrl: folder,
      paths: { 'openapi-fetch': [join(repositoryRoot, 'node_modules/openapi-fetch')] },
    });
    return ts
      .getPreEmitDiagnostics(program)
      .map((diagnostic) => ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

const call = (available: string) => `
import createClient from 'openapi-fetch';
import type { paths } from './api';
const client = createClient<paths>({ baseUrl: 'https://together.example' });
export const shifts = client.GET('/v1/events/{eventId}/shifts', {
  params: { path: { eventId: '01a23d06-b98b-786f-88a1-307e1408013d' }, query: { available: ${available} } },
});
`;

describe('a typed client', () => {
  it('compiles query: { available: true } from the served document, and refuses a string there', async () => {
    const document = (await suite.http.get('/openapi.json').expect(200)).body;
    const types = astToString(await openapiTS(document));
    expect(compile(types, call('true'))).toEqual([]);
    expect(compile(types, call("'yes'")).join('\n')).toMatch(/not assignable/);
  }, 60_000);
});
