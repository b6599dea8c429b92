import { domainRoutes } from '../../core/operations.ts';
import { auditApi, auditEventPage, listAuditEventsQuery } from './schemas.ts';
import { listAuditEvents } from './service.ts';

/** API.md §10: the audit log, for admins. */
export const auditRoutes = domainRoutes(auditApi, (route) => {
  route.get({
    url: '/audit-events',
    auth: 'admin',
    operationId: 'listAuditEvents',
    summary: 'Who did what to which resource, when',
    description:
      "Every write of the organisation, newest first, kept for 400 days. `actor.name` is the API key's name, " +
      '`"volunteer"` for a volunteer (never their name), or `"system"`; `data` names the changed fields, never ' +
      'their values.',
    querystring: listAuditEventsQuery,
    answer: auditEventPage,
    run: (db, principal, query) => listAuditEvents(db, principal.orgId, query),
  });
});
