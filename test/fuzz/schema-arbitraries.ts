/**
 * fast-check arbitraries made from the served document's JSON Schemas (OpenAPI 3.1): values the
 * schema allows, for the fuzz test's valid requests. What a schema says is followed where it
 * matters for being accepted (types, formats, enums, bounds, required keys, patterns); sizes are
 * kept small, because the mutations (mutations.ts) are where large values come from.
 */
import fc from 'fast-check';

export type Schema = Record<string, unknown>;

/** The document, for `$ref`s. */
export interface Document {
  components?: { schemas?: Record<string, Schema> };
  [key: string]: unknown;
}

export function resolve(schema: Schema, document: Document): Schema {
  const ref = schema.$ref;
  if (typeof ref !== 'string') return schema;
  const target = ref
    .replace(/^#\//, '')
    .split('/')
    .reduce<unknown>(
      (node, key) => (node as Record<string, unknown>)?.[key.replace(/~1/g, '/').replace(/~0/g, '~')],
      document,
    );
  return resolve(target as Schema, document);
}

const tooDeep = 6;

export function allowedValue(
  schema: Schema | undefined,
  document: Document,
  depth = 0,
): fc.Arbitrary<unknown> {
  if (!schema || depth > tooDeep) return fc.constant(null);
  const resolved = resolve(schema, document);
  if ('const' in resolved) return fc.constant(resolved.const);
  if (Array.isArray(resolved.enum)) return fc.constantFrom(...(resolved.enum as unknown[]));
  const alternatives = (resolved.anyOf ?? resolved.oneOf) as Schema[] | undefined;
  if (alternatives)
    return fc.oneof(...alternatives.map((option) => allowedValue(option, document, depth + 1)));
  if (Array.isArray(resolved.allOf))
    return allowedValue(
      Object.assign({}, ...(resolved.allOf as Schema[]).map((part) => resolve(part, document))),
      document,
      depth,
    );
  const type = resolved.type;
  if (Array.isArray(type))
    return fc.oneof(...type.map((one) => allowedValue({ ...resolved, type: one }, document, depth)));
  switch (type) {
    case 'string':
      return stringOf(resolved);
    case 'integer':
      return fc.integer({
        min: Math.max(Number(resolved.minimum ?? -1_000), -1_000_000),
        max: Math.min(Number(resolved.maximum ?? 1_000), 1_000_000),
      });
    case 'number':
      return fc.double({
        min: Math.max(Number(resolved.minimum ?? -1_000), -1_000_000),
        max: Math.min(Number(resolved.maximum ?? 1_000), 1_000_000),
        noNaN: true,
        noDefaultInfinity: true,
      });
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array': {
      const minLength = Number(resolved.minItems ?? 0);
      return fc.array(allowedValue(resolved.items as Schema | undefined, document, depth + 1), {
        minLength,
        maxLength: Math.max(minLength, Math.min(Number(resolved.maxItems ?? 3), 3)),
      });
    }
    case 'object': {
      const properties = (resolved.properties ?? {}) as Record<string, Schema>;
      const required = (resolved.required ?? []) as string[];
      const record = fc.record(
        Object.fromEntries(
          Object.entries(properties).map(([name, property]) => [
            name,
            allowedValue(property, document, depth + 1),
          ]),
        ),
        { requiredKeys: required.filter((name) => name in properties) },
      );
      return 'startsAt' in properties && 'endsAt' in properties ? withTimesInOrder(record) : record;
    }
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

/**
 * What a schema cannot say: a shift's times in order. Three times in four an object with
 * `startsAt` and `endsAt` gets a start in the coming weeks, an end 1 to 8 hours later, and its
 * signup window and cancellation limit before the start, so that creations, changes and claims
 * get past validation to the work behind it; the fourth keeps the independent values.
 */
function withTimesInOrder(
  record: fc.Arbitrary<Record<string, unknown>>,
): fc.Arbitrary<Record<string, unknown>> {
  const hour = 3_600_000;
  return fc
    .tuple(record, fc.integer({ min: 1, max: 24 * 60 }), fc.integer({ min: 1, max: 8 }), fc.nat(3))
    .map(([value, startsInHours, hours, keep]) => {
      if (keep === 0 || value.startsAt === undefined) return value;
      const startsAt = Date.now() + startsInHours * hour;
      const at = (time: number) => new Date(time).toISOString();
      const ordered: Record<string, unknown> = {
        ...value,
        startsAt: at(startsAt),
        endsAt: at(startsAt + hours * hour),
      };
      if ('signupOpensAt' in value) ordered.signupOpensAt = at(Date.now() - hour);
      if ('signupClosesAt' in value) ordered.signupClosesAt = at(startsAt - hour / 2);
      if ('cancelUntil' in value) ordered.cancelUntil = at(startsAt - hour);
      return ordered;
    });
}

const dates = fc
  .date({ min: new Date('2020-01-01T00:00:00Z'), max: new Date('2035-12-31T00:00:00Z'), noInvalidDate: true })
  .map((date) => date.toISOString());

function stringOf(schema: Schema): fc.Arbitrary<string> {
  const minLength = Number(schema.minLength ?? 0);
  const maxLength = Math.max(minLength, Math.min(Number(schema.maxLength ?? 40), 40));
  switch (schema.format) {
    case 'uuid':
      return fc.uuid({ version: 7 });
    case 'date-time':
      return dates;
    case 'date':
      return dates.map((text) => text.slice(0, 10));
    case 'email':
      return fc.stringMatching(/^[a-z]{1,12}@[a-z]{1,12}\.org$/);
    case 'uri':
      return fc.webUrl({ validSchemes: ['https'] });
  }
  if (typeof schema.pattern === 'string') {
    const pattern = new RegExp(schema.pattern);
    return fc
      .stringMatching(pattern)
      .filter((text) => text.length >= minLength && text.length <= Math.max(maxLength, minLength, 200));
  }
  return fc.string({ minLength, maxLength, unit: 'grapheme' });
}

/** A value one step outside what a schema allows, and the path of object keys where it goes. */
export interface OutOfBounds {
  path: string[];
  value: unknown;
  what: string;
}

/** Each bound of `schema` (and its properties'), overstepped by one: the boundary cases. */
export function outOfBounds(
  schema: Schema | undefined,
  document: Document,
  path: string[] = [],
  depth = 0,
): OutOfBounds[] {
  if (!schema || depth > tooDeep) return [];
  const resolved = resolve(schema, document);
  const found: OutOfBounds[] = [];
  const at = (value: unknown, what: string) =>
    found.push({ path, value, what: `${path.join('.') || 'body'} ${what}` });
  if (Array.isArray(resolved.enum)) at('not-one-of-the-values', 'outside its enum');
  switch (resolved.type) {
    case 'integer':
    case 'number':
      if (typeof resolved.minimum === 'number')
        at(resolved.minimum - 1, `below its minimum ${resolved.minimum}`);
      if (typeof resolved.maximum === 'number')
        at(resolved.maximum + 1, `above its maximum ${resolved.maximum}`);
      if (resolved.type === 'integer') at(1.5, 'not an integer');
      break;
    case 'string':
      if (typeof resolved.maxLength === 'number')
        at('x'.repeat(resolved.maxLength + 1), `longer than ${resolved.maxLength}`);
      if (typeof resolved.minLength === 'number' && resolved.minLength > 0)
        at('x'.repeat(resolved.minLength - 1), `shorter than ${resolved.minLength}`);
      if (resolved.format === 'date-time') at('2026-02-30T25:00:00Z', 'not a real time');
      if (resolved.format === 'uuid') at('0000000-not-a-uuid', 'not a uuid');
      break;
    case 'array': {
      const item = fc.sample(allowedValue(resolved.items as Schema | undefined, document), {
        seed: 1,
        numRuns: 1,
      })[0];
      if (typeof resolved.maxItems === 'number' && resolved.maxItems <= 1_000)
        at(Array(resolved.maxItems + 1).fill(item), `with more than ${resolved.maxItems} items`);
      if (typeof resolved.minItems === 'number' && resolved.minItems > 0)
        at([], `with fewer than ${resolved.minItems} items`);
      break;
    }
    case 'object':
      for (const [name, property] of Object.entries((resolved.properties ?? {}) as Record<string, Schema>))
        found.push(...outOfBounds(property, document, [...path, name], depth + 1));
      break;
  }
  return found;
}
