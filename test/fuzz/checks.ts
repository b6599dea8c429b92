/**
 * The fuzz test's judgement of one answer against the served document: the promises listed in
 * openapi-fuzz.test.ts, one finding per broken promise.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { Document, Schema } from './schema-arbitraries.ts';

/** API.md §9: the problem codes each status may carry. */
export const contractCodes: Record<number, string[]> = {
  400: ['validation-failed', 'invalid-cursor'],
  401: ['unauthenticated', 'invalid-credentials'],
  403: ['forbidden'],
  404: ['not-found'],
  409: [
    'idempotency-key-in-use',
    'slug-taken',
    'email-taken',
    'name-taken',
    'shift-cancelled',
    'event-not-published',
    'signup-closed',
    'not-qualified',
    'too-young',
    'already-signed-up',
    'overlapping-signup',
    'shift-full',
    'cancellation-closed',
    'capacity-below-confirmed',
    'event-has-signups',
    'shift-has-signups',
    'invalid-state',
  ],
  412: ['precondition-failed'],
  413: ['payload-too-large'],
  415: ['unsupported-media-type'],
  422: ['idempotency-key-reused'],
  429: ['rate-limited'],
  500: ['internal'],
  503: ['unavailable'],
};

export interface Parameter {
  in: 'path' | 'query' | 'header';
  name: string;
  required?: boolean;
  schema?: Schema;
}

export interface Answer {
  description?: string;
  content?: Record<string, { schema?: Schema }>;
}

export interface Operation {
  method: string;
  path: string;
  operationId: string;
  parameters?: Parameter[];
  requestBody?: { content?: Record<string, { schema?: Schema }> };
  responses: Record<string, Answer>;
}

export interface Sent {
  status: number;
  contentType: string | undefined;
  text: string;
}

/** A judge of answers against `document`: what is wrong with `sent` as an answer of `operation`. */
export function answerChecker(document: Document): (operation: Operation, sent: Sent) => string[] {
  const ajv = new Ajv2020({ strict: false, allErrors: false, validateFormats: true });
  addFormats.default(ajv);
  ajv.addSchema(document as object, 'openapi');
  return (operation, sent) => findings(ajv, operation, sent);
}

/** What is wrong with `sent` as an answer of `operation`, or nothing. */
function findings(ajv: Ajv2020, operation: Operation, sent: Sent): string[] {
  const found: string[] = [];
  if (sent.status >= 500) found.push(`server error ${sent.status}: ${sent.text.slice(0, 200)}`);
  const declared = operation.responses[String(sent.status)] ?? operation.responses.default;
  if (!declared) return [...found, `status ${sent.status} is not declared (${sent.text.slice(0, 160)})`];
  const media = declared.content ?? {};
  if (sent.text.length > 0) {
    if (!sent.contentType || !(sent.contentType in media))
      found.push(`content type ${sent.contentType} is not declared for ${sent.status}`);
  } else if (Object.keys(media).length > 0 && sent.status !== 304) {
    found.push(`an empty body where ${Object.keys(media).join(', ')} is declared`);
  }
  const isJson = sent.contentType === 'application/json' || sent.contentType === 'application/problem+json';
  if (!isJson || sent.text.length === 0) return found;
  let body: unknown;
  try {
    body = JSON.parse(sent.text);
  } catch {
    return [...found, `a ${sent.contentType} body that is not JSON`];
  }
  if (sent.status < 300 && sent.contentType === 'application/json') {
    const pointer = `openapi#/paths/${operation.path.replace(/~/g, '~0').replace(/\//g, '~1')}/${operation.method}/responses/${sent.status}/content/application~1json/schema`;
    const validate = ajv.getSchema(pointer);
    if (!validate) found.push(`no JSON schema is declared for the ${sent.status} body`);
    else if (!validate(body))
      found.push(`the ${sent.status} body does not match its schema: ${ajv.errorsText(validate.errors)}`);
  }
  if (sent.contentType === 'application/problem+json') {
    const problem = body as Record<string, unknown>;
    for (const field of ['type', 'title', 'detail', 'code'])
      if (typeof problem[field] !== 'string') found.push(`a problem without a string ${field}`);
    if (problem.status !== sent.status)
      found.push(`a problem whose status ${problem.status} is not ${sent.status}`);
    const code = String(problem.code);
    if (!(contractCodes[sent.status] ?? []).includes(code))
      found.push(`problem code ${code} is not one of API.md §9 for ${sent.status}`);
    else if (!(declared.description ?? '').includes(`\`${code}\``) && sent.status !== 500)
      found.push(`problem code ${code} is not named in the document's ${sent.status} answer`);
  }
  return found;
}
