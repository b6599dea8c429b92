import { z } from 'zod';
import { resourceApi } from '../../core/operations.ts';
import { pageOf, pageQuery, responseTimestamp, uuid } from '../../core/schemas.ts';

const name = z.string().trim().min(1).max(100);
const description = z.string().max(2000);

export const role = z
  .object({
    id: uuid,
    name: z.string(),
    description: z.string().nullable(),
    restricted: z.boolean().describe('Only volunteers qualified for this role can claim its shifts.'),
    createdAt: responseTimestamp,
    updatedAt: responseTimestamp,
  })
  .meta({
    id: 'Role',
    examples: [
      {
        id: '0192f1c4-5b7e-7cc1-9a4e-1f2a3b4c5d71',
        name: 'First aid',
        description: 'Holds a current first-aid certificate.',
        restricted: true,
        createdAt: '2026-11-26T09:00:00.000Z',
        updatedAt: '2026-11-26T09:00:00.000Z',
      },
    ],
  });

export const createRoleBody = z
  .strictObject({ name, description: description.optional(), restricted: z.boolean() })
  .meta({ examples: [{ name: 'First aid', restricted: true }] });

export const updateRoleBody = z
  .strictObject({
    name: name.optional(),
    description: description.nullable().optional(),
    restricted: z.boolean().optional(),
  })
  .meta({ examples: [{ restricted: false }] });

export const listRolesQuery = z.strictObject({ ...pageQuery });
export const rolePage = pageOf(role).meta({ id: 'RolePage' });

/** How the role routes are tagged and answer (core/operations.ts). */
export const roleApi = resourceApi({ tags: ['roles'], resource: 'role', collection: '/v1/roles' });
