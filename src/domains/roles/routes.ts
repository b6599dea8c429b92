import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { keyPrincipalOf } from '../../core/auth.ts';
import { etagOf, ifMatchVersions } from '../../core/http-cache.ts';
import { respondToWrite } from '../../core/idempotency.ts';
import { problems } from '../../core/openapi.ts';
import { idParams, noContent } from '../../core/schemas.ts';
import { createRoleBody, listRolesQuery, role, rolePage, updateRoleBody } from './schemas.ts';
import { createRole, deleteRole, getRole, listRoles, updateRole } from './service.ts';

/** API.md §4: roles (kinds of work). Qualifications live under /v1/volunteers/{id}/qualifications. */
export const roleRoutes: FastifyPluginAsyncZod = async (app) => {
  const tags = ['roles'];

  app.post(
    '/roles',
    {
      config: { auth: 'organiser', sends: ['Location', 'ETag'] },
      schema: {
        operationId: 'createRole',
        tags,
        summary: 'Create a role',
        description: 'Names are unique per organisation, whatever their letter case.',
        body: createRoleBody,
        response: { 201: role, ...problems({ 409: 'name-taken' }) },
      },
    },
    (request, reply) =>
      respondToWrite(request, reply, app.db, async (tx) => {
        const created = await createRole(tx, keyPrincipalOf(request), request.body);
        return {
          status: 201,
          body: created.role,
          headers: { location: `/v1/roles/${created.role.id}`, etag: etagOf(created.version) },
        };
      }),
  );

  app.get(
    '/roles',
    {
      config: { auth: 'viewer' },
      schema: {
        operationId: 'listRoles',
        tags,
        summary: 'List roles',
        description: 'Ordered by name, then id.',
        querystring: listRolesQuery,
        response: { 200: rolePage },
      },
    },
    (request) => listRoles(app.db, keyPrincipalOf(request).orgId, request.query),
  );

  app.get(
    '/roles/:id',
    {
      config: { auth: 'viewer', sends: ['ETag'] },
      schema: {
        operationId: 'getRole',
        tags,
        summary: 'Read a role',
        description: 'The `ETag` header is the `If-Match` value for PATCH.',
        params: idParams,
        response: { 200: role },
      },
    },
    async (request, reply) => {
      const found = await getRole(app.db, keyPrincipalOf(request).orgId, request.params.id);
      return reply.header('etag', etagOf(found.version)).send(found.role);
    },
  );

  app.patch(
    '/roles/:id',
    {
      config: { auth: 'organiser', sends: ['ETag'] },
      schema: {
        operationId: 'updateRole',
        tags,
        summary: 'Update a role',
        description:
          'Send `If-Match` with the ETag you read. Making a role restricted does not cancel existing signups.',
        params: idParams,
        body: updateRoleBody,
        response: { 200: role, ...problems({ 409: 'name-taken', 412: 'precondition-failed' }) },
      },
    },
    async (request, reply) => {
      const updated = await app.db.transaction((tx) =>
        updateRole(tx, keyPrincipalOf(request), request.params.id, request.body, ifMatchVersions(request)),
      );
      return reply.header('etag', etagOf(updated.version)).send(updated.role);
    },
  );

  app.delete(
    '/roles/:id',
    {
      config: { auth: 'organiser' },
      schema: {
        operationId: 'deleteRole',
        tags,
        summary: 'Delete a role',
        description: 'Only a role no shift uses (else 409 `invalid-state`); its qualifications go with it.',
        params: idParams,
        response: { 204: noContent, ...problems({ 409: 'invalid-state' }) },
      },
    },
    async (request, reply) => {
      await app.db.transaction((tx) => deleteRole(tx, keyPrincipalOf(request), request.params.id));
      return reply.code(204).send();
    },
  );
};
