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
      return fc.record(
        Object.fromEntries(
          Object.entries(properties).map(([name, property]) => [
            name,
            allowedValue(property, document, depth + 1),
          ]),
        ),
        { requiredKeys: required.filter((name) => name in properties) },
      );
    }
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
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
