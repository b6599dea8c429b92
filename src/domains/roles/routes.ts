import { domainRoutes } from '../../core/operations.ts';
import { idParams } from '../../core/schemas.ts';
import { createRoleBody, listRolesQuery, role, roleApi, rolePage, updateRoleBody } from './schemas.ts';
import { createRole, deleteRole, getRole, listRoles, updateRole } from './service.ts';

/** API.md §4: roles (kinds of work). Qualifications live under /v1/volunteers/{id}/qualifications. */
export const roleRoutes = domainRoutes(roleApi, (route) => {
  route.create({
    url: '/roles',
    auth: 'organiser',
    operationId: 'createRole',
    summary: 'Create a role',
    description: 'Names are unique per organisation, whatever their letter case.',
    body: createRoleBody,
    answer: role,
    refusals: { 409: 'name-taken' },
    run: createRole,
  });

  route.get({
    url: '/roles',
    auth: 'viewer',
    operationId: 'listRoles',
    summary: 'List roles',
    description: 'Ordered by name, then id.',
    querystring: listRolesQuery,
    answer: rolePage,
    run: (db, principal, query) => listRoles(db, principal.orgId, query),
  });

  route.read({
    url: '/roles/:id',
    auth: 'viewer',
    operationId: 'getRole',
    summary: 'Read a role',
    description: 'The `ETag` header is the `If-Match` value for PATCH.',
    params: idParams,
    answer: role,
    run: (db, principal, id) => getRole(db, principal.orgId, id),
  });

  route.update({
    url: '/roles/:id',
    auth: 'organiser',
    operationId: 'updateRole',
    summary: 'Update a role',
    description:
      'Send `If-Match` with the ETag you read. Making a role restricted does not cancel existing signups.',
    params: idParams,
    body: updateRoleBody,
    answer: role,
    refusals: { 409: 'name-taken', 412: 'precondition-failed' },
    run: updateRole,
  });

  route.empty({
    method: 'DELETE',
    url: '/roles/:id',
    auth: 'organiser',
    operationId: 'deleteRole',
    summary: 'Delete a role',
    description: 'Only a role no shift uses (else 409 `invalid-state`); its qualifications go with it.',
    params: idParams,
    refusals: { 409: 'invalid-state' },
    run: deleteRole,
  });
});
