import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { keyPrincipalOf } from '../../core/auth.ts';
import { etagOf, ifMatchVersions } from '../../core/http-cache.ts';
import { respondToWrite } from '../../core/idempotency.ts';
import { problems } from '../../core/openapi.ts';
import { actorOf } from '../../core/outbox.ts';
import { idParams, noContent } from '../../core/schemas.ts';
import {
  apiKeyPage,
  apiKeyWithToken,
  createApiKeyBody,
  createdOrganization,
  createOrganizationBody,
  listApiKeysQuery,
  organization,
  updateOrganizationBody,
} from './schemas.ts';
import {
  createApiKey,
  createOrganization,
  getOrganization,
  listApiKeys,
  revokeApiKey,
  updateOrganization,
} from './service.ts';

/** API.md §2: organisations and API keys, under /v1. */
export const organizationRoutes: FastifyPluginAsyncZod = async (app) => {
  app.post(
    '/organizations',
    {
      config: { auth: 'platform', sends: ['Location', 'ETag'] },
      schema: {
        operationId: 'createOrganization',
        tags: ['organizations'],
        summary: 'Create an organisation and its first admin key',
        description:
          'Open to anyone while the server has no `ADMIN_TOKEN`; otherwise send `Authorization: Bearer <ADMIN_TOKEN>`. ' +
          'The response carries an admin API key whose `token` is shown this once only.',
        body: createOrganizationBody,
        response: { 201: createdOrganization, ...problems({ 409: 'slug-taken' }) },
      },
    },
    (request, reply) =>
      respondToWrite(request, reply, app.db, async (tx) => {
        const actor = request.isPlatformAdmin ? { kind: 'admin' as const } : actorOf(request.principal);
        const created = await createOrganization(tx, actor, request.body);
        return {
          status: 201,
          body: { organization: created.organization, apiKey: created.apiKey },
          headers: { location: '/v1/organization', etag: etagOf(created.version) },
        };
      }),
  );

  app.get(
    '/organization',
    {
      config: { auth: 'viewer', sends: ['ETag'] },
      schema: {
        operationId: 'getOrganization',
        tags: ['organizations'],
        summary: "Read the caller's organisation",
        description:
          'The organisation is the one the API key belongs to. The `ETag` header is the `If-Match` value for PATCH.',
        response: { 200: organization },
      },
    },
    async (request, reply) => {
      const { organization, version } = await getOrganization(app.db, keyPrincipalOf(request).orgId);
      return reply.header('etag', etagOf(version)).send(organization);
    },
  );

  app.patch(
    '/organization',
    {
      config: { auth: 'admin', sends: ['ETag'] },
      schema: {
        operationId: 'updateOrganization',
        tags: ['organizations'],
        summary: "Update the caller's organisation",
        description: 'Send `If-Match` with the ETag you read to avoid overwriting a concurrent change.',
        body: updateOrganizationBody,
        response: { 200: organization, ...problems({ 409: 'slug-taken', 412: 'precondition-failed' }) },
      },
    },
    async (request, reply) => {
      const { organization, version } = await app.db.transaction((tx) =>
        updateOrganization(tx, keyPrincipalOf(request), request.body, ifMatchVersions(request)),
      );
      return reply.header('etag', etagOf(version)).send(organization);
    },
  );

  app.post(
    '/api-keys',
    {
      config: { auth: 'admin', sends: ['Location'] },
      schema: {
        operationId: 'createApiKey',
        tags: ['api-keys'],
        summary: 'Create an API key',
        description: 'The `token` of the new key is shown this once only.',
        body: createApiKeyBody,
        response: { 201: apiKeyWithToken },
      },
    },
    (request, reply) =>
      respondToWrite(request, reply, app.db, async (tx) => {
        const key = await createApiKey(tx, keyPrincipalOf(request), request.body);
        return { status: 201, body: key, headers: { location: `/v1/api-keys/${key.id}` } };
      }),
  );

  app.get(
    '/api-keys',
    {
      config: { auth: 'admin' },
      schema: {
        operationId: 'listApiKeys',
        tags: ['api-keys'],
        summary: 'List the active API keys',
        description: 'Ordered by creation time, then id. Tokens are never returned.',
        querystring: listApiKeysQuery,
        response: { 200: apiKeyPage },
      },
    },
    (request) => listApiKeys(app.db, keyPrincipalOf(request), request.query),
  );

  app.delete(
    '/api-keys/:id',
    {
      config: { auth: 'admin' },
      schema: {
        operationId: 'revokeApiKey',
        tags: ['api-keys'],
        summary: 'Revoke an API key',
        description:
          'The key stops working at once and leaves the list. The last active admin key cannot be revoked (409 `invalid-state`).',
        params: idParams,
        response: { 204: noContent, ...problems({ 409: 'invalid-state' }) },
      },
    },
    async (request, reply) => {
      await app.db.transaction((tx) => revokeApiKey(tx, keyPrincipalOf(request), request.params.id));
      return reply.code(204).send();
    },
  );
};
