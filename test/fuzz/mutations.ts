/**
 * The ways the fuzz test spoils a valid request: what strangers on the internet send. Each
 * mutation takes a request built from the document and returns another; `mutation` picks one.
 */
import fc from 'fast-check';
import type { OutOfBounds } from './schema-arbitraries.ts';

export interface FuzzRequest {
  method: string;
  /** The document's path (`/v1/events/{eventId}`) and its parameters' values, already encoded. */
  template: string;
  pathValues: Record<string, string>;
  query: [string, string][];
  headers: Record<string, string>;
  /** The body's text or bytes, and its content type (none: no body). */
  body?: { contentType?: string; content: string | Buffer };
  /** Which mutation made it ("valid" for none). */
  kind: string;
}

const nul = '\u0000';

/** Values no parameter of the API accepts, whatever its type. */
const strangeParameter = fc.constantFrom(
  '',
  'not-a-uuid',
  '%00',
  `a${'%00'}b`,
  '..%2F..%2Fetc',
  '%E2%80%AE',
  '%F0%9F%92%A9',
  '%ff%fe',
  'x'.repeat(3_000),
  '-1',
  '1e309',
  '00000000-0000-0000-0000-000000000000',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
  '0000-01-01T00:00:00Z',
  '99999-01-01T00:00:00Z',
  '2026-02-30T00:00:00Z',
  'true',
  '[]',
);

/** A JSON value of the wrong kind for wherever it lands. */
const wrongValue = fc.constantFrom<unknown>(
  null,
  true,
  0,
  -1,
  1.5,
  2 ** 53 + 1,
  1e308,
  '',
  nul,
  `text${nul}`,
  '\ud800',
  'x'.repeat(100_000),
  [],
  [1, 2, 3],
  {},
  { nested: { deeper: [] } },
  '0000-01-01T00:00:00Z',
  '10000-01-01T00:00:00Z',
);

function replaceIn(value: unknown, pick: number, replacement: unknown): unknown {
  if (value === null || typeof value !== 'object') return replacement;
  const keys = Object.keys(value);
  if (keys.length === 0) return replacement;
  const key = keys[pick % keys.length] as string;
  const copy: Record<string, unknown> = Array.isArray(value) ? ([...value] as never) : { ...value };
  // Half the time one level further down, so that nested fields are spoiled too.
  copy[key] = pick % 2 === 0 ? replaceIn(copy[key], Math.floor(pick / 2), replacement) : replacement;
  return copy;
}

function withoutOne(value: unknown, pick: number): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  if (keys.length === 0) return value;
  const copy: Record<string, unknown> = { ...value };
  delete copy[keys[pick % keys.length] as string];
  return copy;
}

function setAt(value: unknown, path: string[], replacement: unknown): unknown {
  const [key, ...rest] = path;
  if (key === undefined) return replacement;
  const object = value !== null && typeof value === 'object' && !Array.isArray(value) ? value : {};
  return { ...object, [key]: setAt((object as Record<string, unknown>)[key], rest, replacement) };
}

const json = (value: unknown) => ({ contentType: 'application/json', content: JSON.stringify(value) });
const bodyOf = (request: FuzzRequest): unknown => {
  if (!request.body || typeof request.body.content !== 'string') return {};
  try {
    return JSON.parse(request.body.content);
  } catch {
    return {};
  }
};

/** One spoiled copy of `request`, by one of the mutations below. */
export function mutation(
  pathParameters: string[],
  boundaries: OutOfBounds[] = [],
): fc.Arbitrary<(request: FuzzRequest) => FuzzRequest> {
  const mutations: fc.Arbitrary<(request: FuzzRequest) => FuzzRequest>[] = [
    // The body: a field of the wrong type or out of range, a missing one, an unknown one.
    fc.tuple(fc.nat(), wrongValue).map(([pick, value]) => (request) => ({
      ...request,
      kind: 'body field of the wrong type or range',
      body: json(replaceIn(bodyOf(request), pick, value)),
    })),
    fc.nat().map((pick) => (request) => ({
      ...request,
      kind: 'body field missing',
      body: json(withoutOne(bodyOf(request), pick)),
    })),
    fc.string({ minLength: 1, maxLength: 20 }).map((name) => (request) => ({
      ...request,
      kind: 'unknown body field',
      body: json({ ...(bodyOf(request) as object), [`_${name}`]: 1 }),
    })),
    // The body as a whole: the wrong JSON, too deep, too big, broken, not UTF-8, not JSON at all.
    wrongValue.map((value) => (request) => ({
      ...request,
      kind: 'body of the wrong type',
      body: json(value),
    })),
    fc.integer({ min: 33, max: 5_000 }).map((depth) => (request) => ({
      ...request,
      kind: `body nested ${depth} deep`,
      body: { contentType: 'application/json', content: `${'['.repeat(depth)}${']'.repeat(depth)}` },
    })),
    fc.constant((request: FuzzRequest) => ({
      ...request,
      kind: 'body over 1 MiB',
      body: json({ ...(bodyOf(request) as object), padding: 'x'.repeat(1_100_000) }),
    })),
    fc.constantFrom('{', '{"a":', '[1,]', 'nul', '"\\u12"', '{"a":1}{"b":2}').map((text) => (request) => ({
      ...request,
      kind: 'malformed JSON',
      body: { contentType: 'application/json', content: text },
    })),
    fc.constant((request: FuzzRequest) => ({
      ...request,
      kind: 'body not UTF-8',
      body: {
        contentType: 'application/json',
        content: Buffer.concat([
          Buffer.from('{"name":"'),
          Buffer.from([0xff, 0xfe, 0xc3]),
          Buffer.from('"}'),
        ]),
      },
    })),
    fc
      .constantFrom(
        'text/plain',
        'application/xml',
        'multipart/form-data; boundary=x',
        'application/json; charset=latin1',
      )
      .map((contentType) => (request) => ({
        ...request,
        kind: `content type ${contentType}`,
        body: { contentType, content: request.body?.content ?? '{}' },
      })),
    // The query: parameters of the wrong type or range, unknown ones, repeated ones.
    fc.tuple(fc.nat(), strangeParameter).map(([pick, value]) => (request) => {
      const query = [...request.query];
      const at = query.length === 0 ? -1 : pick % query.length;
      if (at === -1) query.push(['limit', value]);
      else query[at] = [(query[at] as [string, string])[0], value];
      return { ...request, kind: 'query parameter of the wrong type or range', query };
    }),
    fc
      .constantFrom<[string, string][]>(
        [['limit', '0']],
        [['limit', '100000']],
        [
          ['limit', '1'],
          ['limit', '2'],
        ],
        [
          ['from', '2030-01-01T00:00:00Z'],
          ['to', '2020-01-01T00:00:00Z'],
        ],
        [
          ['from', '0001-01-01T00:00:00Z'],
          ['to', '9999-12-31T23:59:59Z'],
        ],
        [['cursor', 'eyJ4IjoxfQ']],
        [['cursor', '%00']],
        [['unknownParameter', 'x']],
        [['available', 'yes']],
      )
      .map((extra) => (request) => ({
        ...request,
        kind: 'query parameters out of range',
        query: [...request.query, ...extra],
      })),
    // Headers: an idempotency key that is too long or empty, a malformed precondition.
    fc
      .constantFrom<Record<string, string>>(
        { 'idempotency-key': 'k'.repeat(300) },
        { 'idempotency-key': '' },
        { 'if-match': 'not-an-etag' },
        { 'if-none-match': '*' },
        { 'if-none-match': 'W/"x", "y"' },
        { 'x-request-id': 'r'.repeat(500) },
        { authorization: 'Bearer ' },
        { authorization: 'Basic abc' },
        { accept: 'text/html' },
      )
      .map((headers) => (request) => ({
        ...request,
        kind: `header ${Object.keys(headers)[0]}`,
        headers: { ...request.headers, ...headers },
      })),
  ];
  // The body's bounds, each overstepped by one (a capacity of 0, a title one character too long).
  if (boundaries.length > 0) {
    mutations.push(
      fc.constantFrom(...boundaries).map((boundary) => (request) => ({
        ...request,
        kind: `boundary: ${boundary.what}`,
        body: json(setAt(bodyOf(request), boundary.path, boundary.value)),
      })),
    );
  }
  if (pathParameters.length > 0) {
    mutations.push(
      fc.tuple(fc.constantFrom(...pathParameters), strangeParameter).map(([name, value]) => (request) => ({
        ...request,
        kind: `path parameter ${name} of the wrong type`,
        pathValues: { ...request.pathValues, [name]: value },
      })),
    );
  }
  return fc.oneof(...mutations);
}
