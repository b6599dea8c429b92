import { domainRoutes } from '../../core/operations.ts';
import { idParams } from '../../core/schemas.ts';
import { attachment, csvDownload } from './csv.ts';
import { hoursAnswer, hoursColumns, hoursQuery, reportApi, rosterAnswer, rosterColumns } from './schemas.ts';
import { hoursReport, rosterOf } from './service.ts';

/** API.md §10: the hours report and an event's roster, as JSON or as CSV for a spreadsheet. */
export const reportRoutes = domainRoutes(reportApi, (route) => {
  route.download({
    url: '/reports/hours',
    auth: 'viewer',
    operationId: 'getHoursReport',
    summary: 'Hours per volunteer over a period',
    description:
      'Over the shifts *starting* in `[from, to)` (an exception to the overlap rule of §1, so that each ' +
      "shift's hours count in one period only): one row per volunteer with at least one signup there, " +
      'whatever its status. `hours` sums the recorded hours of attended signups. Ordered by name (erased ' +
      'volunteers, without name and email, last), then id. `format=csv` answers `text/csv` with the same ' +
      "columns, quoted per RFC 4180, formula-like cells prefixed with `'`.",
    querystring: hoursQuery,
    answer: hoursAnswer,
    sends: [],
    run: async (db, principal, request) => {
      const rows = await hoursReport(db, principal.orgId, request.query);
      return request.query.format === 'csv' ? csvDownload(hoursColumns, rows) : { body: { data: rows } };
    },
  });

  route.download({
    url: '/events/:id/roster.csv',
    auth: 'viewer',
    operationId: 'getEventRoster',
    summary: "An event's roster as CSV",
    description:
      'Every signup of the event, whatever its status, one row each, ordered by shift start then signup ' +
      "creation; empty cells for nulls. Streamed: a roster of any size takes the same memory. Cells are quoted per RFC 4180, formula-like ones (also a phone number's leading `+`) prefixed with `'`.",
    params: idParams,
    answer: rosterAnswer,
    sends: ['Content-Disposition'],
    run: async (db, principal, request) =>
      csvDownload(rosterColumns, await rosterOf(db, principal, request.params.id), {
        'content-disposition': attachment(`roster-${request.params.id}.csv`),
      }),
  });
});
