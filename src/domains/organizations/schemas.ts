import { z } from 'zod';
import { resourceApi } from '../../core/operations.ts';
import { email, pageOf, pageQuery, responseTimestamp, timeZone, uuid } from '../../core/schemas.ts';

export const slug = z
  .string()
  .regex(
    /^[a-z0-9](?:[a-z0-9-]{1,62}[a-z0-9])$/,
    'must be 3–64 lowercase letters, digits or hyphens, starting and ending with a letter or digit',
  )
  .meta({ example: 'riverside-food-bank' });

const organizationName = z.string().trim().min(1).max(200);

export const organization = z
  .object({
    id: uuid,
    name: z.string(),
    slug: z.string(),
    timezone: z.string(),
    contactEmail: z.string(),
    createdAt: responseTimestamp,
    updatedAt: responseTimestamp,
  })
  .meta({
    id: 'Organization',
    examples: [
      {
        id: '0192f1c4-5b7e-7cc1-9a4e-1f2a3b4c5d6e',
        name: 'Riverside Food Bank',
        slug: 'riverside-food-bank',
        timezone: 'Europe/Berlin',
        contactEmail: 'hello@riverside.example',
        createdAt: '2026-11-26T09:00:00.000Z',
        updatedAt: '2026-11-26T09:00:00.000Z',
      },
    ],
  });

export const createOrganizationBody = z
  .strictObject({
    name: organizationName,
    slug,
    timezone: timeZone,
    contactEmail: email,
  })
  .meta({
    examples: [
      {
        name: 'Riverside Food Bank',
        slug: 'riverside-food-bank',
        timezone: 'Europe/Berlin',
        contactEmail: 'hello@riverside.example',
      },
    ],
  });

export const updateOrganizationBody = z
  .strictObject({
    name: organizationName.optional(),
    slug: slug.optional(),
    timezone: timeZone.optional(),
    contactEmail: email.optional(),
  })
  .meta({ examples: [{ contactEmail: 'volunteers@riverside.example' }] });

export const apiKeyRole = z
  .enum(['admin', 'organiser', 'viewer'])
  .describe(
    'admin: everything; organiser: everything but keys, webhooks and organisation settings; viewer: read-only.',
  );

export const apiKey = z
  .object({
    id: uuid,
    name: z.string(),
    role: apiKeyRole,
    createdAt: responseTimestamp,
  })
  .meta({
    id: 'ApiKey',
    examples: [
      {
        id: '0192f1c4-5b7e-7cc1-9a4e-1f2a3b4c5d6f',
        name: 'Volunteer app',
        role: 'organiser',
        createdAt: '2026-11-26T09:00:00.000Z',
      },
    ],
  });

export const apiKeyWithToken = apiKey
  .extend({
    token: z.string().describe('The bearer token. It is shown this once only: store it now.'),
  })
  .meta({
    id: 'ApiKeyWithToken',
    examples: [
      {
        id: '0192f1c4-5b7e-7cc1-9a4e-1f2a3b4c5d6f',
        name: 'Volunteer app',
        role: 'organiser',
        token: 'tg_key_3q2-7wEAAAB1c2VyLXN1cHBsaWVkLXJhbmRvbS1ieXRlcw',
        createdAt: '2026-11-26T09:00:00.000Z',
      },
    ],
  });

export const createdOrganization = z
  .object({ organization, apiKey: apiKeyWithToken })
  .meta({ id: 'CreatedOrganization' });

export const createApiKeyBody = z
  .strictObject({
    name: z.string().trim().min(1).max(100),
    role: apiKeyRole,
  })
  .meta({ examples: [{ name: 'Volunteer app', role: 'organiser' }] });

export const listApiKeysQuery = z.strictObject({ ...pageQuery });
export const apiKeyPage = pageOf(apiKey).meta({ id: 'ApiKeyPage' });

/** How the organisation routes are tagged and answer (core/operations.ts). */
export const organizationApi = resourceApi({ tags: ['organizations'], resource: 'organization' });
