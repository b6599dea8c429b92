import { z } from 'zod';
import { resourceApi } from '../../core/operations.ts';
import {
  fromBeforeTo,
  fromBeforeToIssue,
  pageOf,
  pageQuery,
  requestTimestamp,
  responseTimestamp,
  uuid,
} from '../../core/schemas.ts';

export const actorKind = z.enum(['key', 'volunteer', 'system']);

export const auditEvent = z
  .object({
    id: uuid,
    type: z
      .string()
      .describe(
        'The domain event (`event.published`, `signup.cancelled`, `signup.checked_in`, `volunteer.erased`, ' +
          '`api_key.revoked`, `qualification.granted`, …), and `*.created`/`*.updated`/`*.deleted` for other writes.',
      ),
    resourceType: z
      .string()
      .describe('`event`, `shift`, `signup`, `volunteer`, `role`, `api_key`, `organization`.'),
    resourceId: uuid,
    actor: z
      .object({
        kind: actorKind,
        id: uuid.nullable().describe('The API key or the volunteer; null for the system.'),
        name: z
          .string()
          .describe(
            'The key\'s name, `"volunteer"` (never a volunteer\'s name), or `"system"` (also for ADMIN_TOKEN).',
          ),
      })
      .describe('Who did it.'),
    at: responseTimestamp,
    data: z
      .object({ changed: z.array(z.string()).optional().describe('The names of the changed fields.') })
      .describe('What changed, by field name only: never a personal value.'),
  })
  .meta({ id: 'AuditEvent' });

export const auditEventPage = pageOf(auditEvent).meta({ id: 'AuditEventPage' });

export const listAuditEventsQuery = z
  .strictObject({
    ...pageQuery,
    resourceId: uuid.optional().describe('Only the events about this resource.'),
    from: requestTimestamp.optional().describe('Events at or after this instant (RFC 3339).'),
    to: requestTimestamp.optional().describe('Events before this instant (RFC 3339).'),
  })
  .refine(fromBeforeTo, fromBeforeToIssue);

/** How the audit routes are tagged (core/operations.ts). */
export const auditApi = resourceApi({ tags: ['audit'] });
