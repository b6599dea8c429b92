import { etagOf } from '../../core/http-cache.ts';
import { domainRoutes, operations } from '../../core/operations.ts';
import { actorOf } from '../../core/outbox.ts';
import { idParams } from '../../core/schemas.ts';
import {
  apiKeyPage,
  apiKeyWithToken,
  createApiKeyBody,
  createdOrganization,
  createOrganizationBody,
  listApiKeysQuery,
  organization,
  organizationApi,
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
export const organizationRoutes = domainRoutes(organizationApi, (route, app) => {
  const keyRoute = operations(app, { tags: ['api-keys'] });

  route.write({
    url: '/organizations',
    auth: 'platform',
    operationId: 'createOrganization',
    summary: 'Create an organisation and its first admin key',
    description:
      'Open to anyone while the server has no `ADMIN_TOKEN`; otherwise send `Authorization: Bearer <ADMIN_TOKEN>`. ' +
      'The response carries an admin API key whose `token` is shown this once only.',
    body: createOrganizationBody,
    answer: createdOrganization,
    status: 201,
    sends: ['Location', 'ETag'],
    refusals: { 409: 'slug-taken' },
    run: async (tx, _nobody, request) => {
      const actor = request.isPlatformAdmin ? { kind: 'admin' as const } : actorOf(request.principal);
      const created = await createOrganization(tx, actor, request.body);
      return {
        body: { organization: created.organization, apiKey: created.apiKey },
        headers: { location: '/v1/organization', etag: etagOf(created.version) },
      };
    },
  });

  route.read({
    url: '/organization',
    auth: 'viewer',
    operationId: 'getOrganization',
    summary: "Read the caller's organisation",
    description:
      'The organisation is the one the API key belongs to. The `ETag` header is the `If-Match` value for PATCH.',
    answer: organization,
    run: (db, principal) => getOrganization(db, principal.orgId),
  });

  route.update({
    url: '/organization',
    auth: 'admin',
    operationId: 'updateOrganization',
    summary: "Update the caller's organisation",
    description: 'Send `If-Match` with the ETag you read to avoid overwriting a concurrent change.',
    body: updateOrganizationBody,
    answer: organization,
    refusals: { 409: 'slug-taken', 412: 'precondition-failed' },
    run: (tx, principal, _id, changes, ifMatch) => updateOrganization(tx, principal, changes, ifMatch),
  });

  keyRoute.write({
    url: '/api-keys',
    auth: 'admin',
    operationId: 'createApiKey',
    summary: 'Create an API key',
    description: 'The `token` of the new key is shown this once only.',
    body: createApiKeyBody,
    answer: apiKeyWithToken,
    status: 201,
    sends: ['Location'],
    run: async (tx, principal, request) => {
      const key = await createApiKey(tx, principal, request.body);
      return { body: key, headers: { location: `/v1/api-keys/${key.id}` } };
    },
  });

  keyRoute.get({
    url: '/api-keys',
    auth: 'admin',
    operationId: 'listApiKeys',
    summary: 'List the active API keys',
    description: 'Ordered by creation time, then id. Tokens are never returned.',
    querystring: listApiKeysQuery,
    answer: apiKeyPage,
    run: listApiKeys,
  });

  keyRoute.empty({
    method: 'DELETE',
    url: '/api-keys/:id',
    auth: 'admin',
    operationId: 'revokeApiKey',
    summary: 'Revoke an API key',
    description:
      'The key stops working at once and leaves the list. The last active admin key cannot be revoked (409 `invalid-state`).',
    params: idParams,
    refusals: { 409: 'invalid-state' },
    run: revokeApiKey,
  });
});
