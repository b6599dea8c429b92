/**
 * How the API's operations answer, decided once (API.md §1). A domain's `routes.ts` declares each
 * operation — its path, who may call it, its documentation, its schemas and the service function
 * that does the work — and the kind of operation fixes the rest, down to how the request becomes
 * the service's arguments (`(db | tx, principal, input)`, ARCHITECTURE.md §2):
 *
 * - `get`: GET, `run(db, principal, query)`, 200 with what it returns (lists, pages);
 * - `read`: GET, `run(db, principal, id)`, 200 with the resource and its version as the `ETag`
 *   (the `If-Match` value);
 * - `create`: POST through `respondToWrite` (one transaction, `Idempotency-Key`),
 *   `run(tx, principal, body)`, 201 with the resource, its `Location` and its `ETag`;
 * - `act`: POST through `respondToWrite`, `run(tx, principal, id)`, 200 with the resource and its
 *   `ETag` (cancel, check-in);
 * - `update`: PATCH in one transaction, `run(tx, principal, id, body, ifMatch)` with the
 *   `If-Match` versions, 200 with the new `ETag`;
 * - `empty`: DELETE or PUT in one transaction, `run(tx, principal, id)`, 204;
 * - `write`: POST through `respondToWrite`, `run(tx, principal)`, with the answer it builds;
 * - `download`: GET, `run(db, principal, request)`, 200 with the body, type and headers it
 *   returns, in one of the content types its answer documents (CSV reports).
 *
 * Each `run` also receives the decoded request last, for a service that needs more of it.
 *
 * The route's `sends` (the headers the OpenAPI document promises) follows from the kind, so the
 * document and the handler cannot disagree; only `write`, whose answer its `run` builds, says it.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { z } from 'zod';
import type { Db, DbOrTx } from '../db/client.ts';
import { type AccessRule, type PrincipalUnder, principalUnder } from './auth.ts';
import type { ProblemCode } from './errors.ts';
import { etagOf, ifMatchVersions } from './http-cache.ts';
import { respondToWrite, type WriteResponse } from './idempotency.ts';
import { type DeclaredHeader, problems } from './openapi.ts';
import { noContent } from './schemas.ts';

type Schema = z.ZodType;
type Decoded<S> = S extends Schema ? z.output<S> : undefined;

/** The request as the route's schemas decode it. */
export type RequestOf<P, Q, B> = FastifyRequest<{
  Params: Decoded<P>;
  Querystring: Decoded<Q>;
  Body: Decoded<B>;
}>;

/** The `:id` of the path, where it has one. */
type IdOf<P> = Decoded<P> extends { id: infer Id } ? Id : undefined;

/** A kind's service call: the database (or the transaction), the caller, the kind's input, the request. */
type Run<R extends AccessRule, P, Q, B, Input, Result> = (
  db: DbOrTx,
  principal: PrincipalUnder<R>,
  input: Input,
  request: RequestOf<P, Q, B>,
) => Promise<Result>;

/** What every operation declares: where it is, who may call it and what the document says. */
interface Declaration<R extends AccessRule, P, Q, B> {
  url: string;
  auth: R;
  operationId: string;
  /** The plugin's tags unless given. */
  tags?: string[];
  summary: string;
  description: string;
  params?: P;
  querystring?: Q;
  body?: B;
  /** The refusals particular to this operation, by status: `{ 409: 'name-taken' }`. */
  refusals?: Record<number, ProblemCode | ProblemCode[]>;
}

/** A declaration with the schema of its successful answer. */
interface Answering<R extends AccessRule, P, Q, B, A extends Schema> extends Declaration<R, P, Q, B> {
  answer: A;
}

/** An answer documented per content type (`text/csv`, or JSON and CSV), as OpenAPI writes it. */
export interface ContentAnswer {
  description: string;
  content: Record<string, { schema: Schema }>;
}

/** What a `download` sends: its body (text, a stream, or an object sent as JSON), type and headers. */
export interface Download {
  body: unknown;
  type?: string;
  headers?: Record<string, string>;
}

/** A service result for one resource: `{ role, version }` for the resource key `role`. */
export type Versioned<K extends string, T> = { [key in K]: T } & { version: number };

/** How one resource's operations are tagged and answered; declared next to its schemas. */
export interface ResourceApi<K extends string> {
  tags: string[];
  /** The key under which the services return the resource with its version (`role`, `shift`). */
  resource?: K;
  /** The collection a created resource joins: its `Location` is `<collection>/<id>`. */
  collection?: string;
}

/** A resource's description, with its key's literal type kept (`resource: 'event'`). */
export function resourceApi<K extends string = never>(api: ResourceApi<K>): ResourceApi<K> {
  return api;
}

type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

/** What the request gives a service: the caller under the route's rule, the path's id, the body. */
function inputsOf<R extends AccessRule, P, Q, B>(spec: Declaration<R, P, Q, B>, request: RequestOf<P, Q, B>) {
  return {
    principal: principalUnder(spec.auth, request),
    id: (request.params as { id?: unknown } | undefined)?.id as IdOf<P>,
  };
}

/** The operations of one plugin, answering as the module comment says. */
export function operations<K extends string = never>(app: FastifyInstance, options: ResourceApi<K>) {
  const db: Db = app.db;
  const register = <R extends AccessRule, P, Q, B>(
    method: Method,
    spec: Declaration<R, P, Q, B>,
    answers: { status: number; schema: Schema | ContentAnswer; sends: DeclaredHeader[] },
    handler: (request: RequestOf<P, Q, B>, reply: FastifyReply) => unknown,
  ) => {
    app.route({
      method,
      url: spec.url,
      config: { auth: spec.auth, sends: answers.sends },
      schema: {
        operationId: spec.operationId,
        tags: spec.tags ?? options.tags,
        summary: spec.summary,
        description: spec.description,
        ...(spec.params && { params: spec.params }),
        ...(spec.querystring && { querystring: spec.querystring }),
        ...(spec.body && { body: spec.body }),
        response: { [answers.status]: answers.schema, ...(spec.refusals && problems(spec.refusals)) },
      },
      handler: (request, reply) => handler(request as RequestOf<P, Q, B>, reply),
    });
  };

  /** The kinds that answer with a versioned resource need its key: a declaration error, at start-up. */
  const needsResource = (kind: string) => {
    if (options.resource === undefined) throw new Error(`operations(): \`${kind}\` needs \`resource\``);
  };
  const resourceOf = <T>(found: Versioned<K, T>): T => found[options.resource as K] as T;
  const versionedAnswer = <T>(status: number, found: Versioned<K, T>, location?: string): WriteResponse => ({
    status,
    body: resourceOf(found),
    headers: { etag: etagOf(found.version), ...(location && { location }) },
  });

  return {
    get<R extends AccessRule, P, Q, B, A extends Schema>(
      spec: Answering<R, P, Q, B, A> & {
        run: Run<R, P, Q, B, Decoded<Q>, z.output<A>>;
      },
    ) {
      register('GET', spec, { status: 200, schema: spec.answer, sends: [] }, (request) =>
        spec.run(db, inputsOf(spec, request).principal, request.query as Decoded<Q>, request),
      );
    },

    /** GET answered with what `run` makes of the request: a report as JSON or as CSV. */
    download<R extends AccessRule, P, Q, B>(
      spec: Declaration<R, P, Q, B> & {
        answer: ContentAnswer;
        sends: DeclaredHeader[];
        run: (db: DbOrTx, principal: PrincipalUnder<R>, request: RequestOf<P, Q, B>) => Promise<Download>;
      },
    ) {
      register(
        'GET',
        spec,
        { status: 200, schema: spec.answer, sends: spec.sends },
        async (request, reply) => {
          const answer = await spec.run(db, inputsOf(spec, request).principal, request);
          if (answer.headers) reply.headers(answer.headers);
          if (answer.type) reply.type(answer.type);
          return reply.send(answer.body);
        },
      );
    },

    read<R extends AccessRule, P, Q, B, A extends Schema>(
      spec: Answering<R, P, Q, B, A> & {
        run: Run<R, P, Q, B, IdOf<P>, Versioned<K, z.output<A>>>;
      },
    ) {
      needsResource('read');
      register('GET', spec, { status: 200, schema: spec.answer, sends: ['ETag'] }, async (request, reply) => {
        const { principal, id } = inputsOf(spec, request);
        const found = await spec.run(db, principal, id, request);
        return reply.header('etag', etagOf(found.version)).send(resourceOf(found));
      });
    },

    create<R extends AccessRule, P, Q, B, A extends Schema>(
      spec: Answering<R, P, Q, B, A> & {
        run: Run<R, P, Q, B, Decoded<B>, Versioned<K, z.output<A>>>;
      },
    ) {
      needsResource('create');
      const sends: DeclaredHeader[] = ['Location', 'ETag'];
      register('POST', spec, { status: 201, schema: spec.answer, sends }, (request, reply) =>
        respondToWrite(request, reply, db, async (tx) => {
          const created = await spec.run(
            tx,
            inputsOf(spec, request).principal,
            request.body as Decoded<B>,
            request,
          );
          const { id } = resourceOf(created) as { id: string };
          return versionedAnswer(201, created, options.collection && `${options.collection}/${id}`);
        }),
      );
    },

    act<R extends AccessRule, P, Q, B, A extends Schema>(
      spec: Answering<R, P, Q, B, A> & {
        run: Run<R, P, Q, B, IdOf<P>, Versioned<K, z.output<A>>>;
      },
    ) {
      needsResource('act');
      register('POST', spec, { status: 200, schema: spec.answer, sends: ['ETag'] }, (request, reply) =>
        respondToWrite(request, reply, db, async (tx) => {
          const { principal, id } = inputsOf(spec, request);
          return versionedAnswer(200, await spec.run(tx, principal, id, request));
        }),
      );
    },

    update<R extends AccessRule, P, Q, B, A extends Schema>(
      spec: Answering<R, P, Q, B, A> & {
        run: (
          tx: DbOrTx,
          principal: PrincipalUnder<R>,
          id: IdOf<P>,
          body: Decoded<B>,
          ifMatch: number[] | null,
          request: RequestOf<P, Q, B>,
        ) => Promise<Versioned<K, z.output<A>>>;
      },
    ) {
      needsResource('update');
      register(
        'PATCH',
        spec,
        { status: 200, schema: spec.answer, sends: ['ETag'] },
        async (request, reply) => {
          const { principal, id } = inputsOf(spec, request);
          const ifMatch = ifMatchVersions(request);
          const updated = await db.transaction((tx) =>
            spec.run(tx, principal, id, request.body as Decoded<B>, ifMatch, request),
          );
          return reply.header('etag', etagOf(updated.version)).send(resourceOf(updated));
        },
      );
    },

    empty<R extends AccessRule, P, Q, B>(
      spec: Declaration<R, P, Q, B> & {
        method: 'DELETE' | 'PUT';
        run: Run<R, P, Q, B, IdOf<P>, unknown>;
      },
    ) {
      register(spec.method, spec, { status: 204, schema: noContent, sends: [] }, async (request, reply) => {
        const { principal, id } = inputsOf(spec, request);
        await db.transaction((tx) => spec.run(tx, principal, id, request));
        return reply.code(204).send();
      });
    },

    write<R extends AccessRule, P, Q, B, A extends Schema>(
      spec: Answering<R, P, Q, B, A> & {
        /** The success status: the document's and the answer's. */
        status: number;
        sends: DeclaredHeader[];
        /** See `respondToWrite`: a single atomic statement needs no transaction of its own. */
        atomicEffect?: boolean;
        /** The answer's body and headers (its status is `status`). */
        run: (
          tx: DbOrTx,
          principal: PrincipalUnder<R>,
          request: RequestOf<P, Q, B>,
        ) => Promise<Omit<WriteResponse, 'status'>>;
      },
    ) {
      const answers = { status: spec.status, schema: spec.answer, sends: spec.sends };
      register('POST', spec, answers, (request, reply) =>
        respondToWrite(
          request,
          reply,
          db,
          async (tx) => ({
            status: spec.status,
            ...(await spec.run(tx, inputsOf(spec, request).principal, request)),
          }),
          { atomicEffect: spec.atomicEffect ?? false },
        ),
      );
    },
  };
}

/** A plugin's Fastify instance, with the zod type provider that types its plain routes. */
type PluginApp = Parameters<FastifyPluginAsyncZod>[0];

/** What `operations` returns: the kinds of operation of one resource. */
export type Operations<K extends string> = ReturnType<typeof operations<K>>;

/**
 * A domain's routes plugin: `declare` receives the operations of its resource, the plugin's
 * Fastify instance (for a second kit or a route the kinds do not cover) and its registration
 * options.
 */
export function domainRoutes<
  K extends string = never,
  O extends Record<string, unknown> = Record<never, never>,
>(
  api: ResourceApi<K>,
  declare: (route: Operations<K>, app: PluginApp, options: O) => void | Promise<void>,
): FastifyPluginAsyncZod<O> {
  return async (app, options) => {
    await declare(operations(app, api), app, options);
  };
}
