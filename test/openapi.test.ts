/** The published OpenAPI document (API.md §1 "OpenAPI"). Spectral lints it in `npm run lint`. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { useTestApp } from './support/fixtures.ts';

const suite = useTestApp();

type Operation = {
  operationId?: string;
  tags?: string[];
  summary?: string;
  description?: string;
  security?: unknown[];
  responses: Record<string, { description?: string; content?: Record<string, unknown> }>;
};

describe('/openapi.json', () => {
  it('is byte-identical to the committed openapi/openapi.json (run `npm run openapi:write` when it drifts)', async () => {
    const served = await suite.http.get('/openapi.json').expect(200);
    expect(served.headers['content-type']).toMatch(/^application\/json/);
    expect(served.headers['access-control-allow-origin']).toBe('*');
    const committed = readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8');
    expect(served.text).toBe(committed);
  });

  it('is OpenAPI 3.1 and documents every operation: operationId, tag, summary, errors, examples', async () => {
    const document = (await suite.http.get('/openapi.json').expect(200)).body;
    expect(document.openapi).toBe('3.1.0');
    const operations: [string, Operation][] = [];
    for (const [path, methods] of Object.entries(
      document.paths as Record<string, Record<string, Operation>>,
    )) {
      for (const [method, operation] of Object.entries(methods))
        operations.push([`${method.toUpperCase()} ${path}`, operation]);
    }
    expect(operations.length).toBeGreaterThanOrEqual(8);
    const ids = operations.map(([, operation]) => operation.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const [name, operation] of operations) {
      expect(operation.operationId, name).toMatch(/^[a-z]+[A-Za-z]*$/);
      expect(operation.tags?.length, name).toBeGreaterThan(0);
      expect(operation.summary, name).toBeTruthy();
      const errorStatuses = Object.keys(operation.responses).filter((status) => Number(status) >= 400);
      expect(errorStatuses.length, name).toBeGreaterThan(0);
      for (const status of errorStatuses) {
        expect(operation.responses[status]?.content, `${name} ${status}`).toHaveProperty([
          'application/problem+json',
        ]);
      }
      if (name.includes('/v1/')) {
        expect(errorStatuses, name).toEqual(expect.arrayContaining(['429', '500', '503']));
        if ((operation.security ?? []).length > 0) expect(errorStatuses, name).toContain('401');
      }
    }
    expect(document.components.schemas.Problem.examples?.length).toBeGreaterThan(0);
    expect(document.components.schemas.Organization.examples?.length).toBeGreaterThan(0);
  });

  it('lists the problem codes of each route', async () => {
    const document = (await suite.http.get('/openapi.json').expect(200)).body;
    const create = document.paths['/v1/organizations'].post as Operation;
    expect(create.responses['409']?.description).toContain('slug-taken');
    expect(create.responses['409']?.description).toContain('idempotency-key-in-use');
    expect(create.security).toEqual([{}, { bearerAuth: [] }]);
    const list = document.paths['/v1/api-keys'].get as Operation;
    expect(list.responses['400']?.description).toContain('invalid-cursor');
  });
});

describe('/docs', () => {
  it('serves the interactive documentation', async () => {
    const response = await suite.http.get('/docs/').redirects(2).expect(200);
    expect(response.headers['content-type']).toMatch(/text\/html/);
    expect(response.text).toContain('swagger');
  });
});
