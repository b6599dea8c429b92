/**
 * Every table, enum, index and constraint of Together, in one place to read.
 *
 * Tenant rules (ARCHITECTURE.md §3): every tenant-owned table has `org_id`, its primary key is
 * `(org_id, id)`, and every foreign key, unique and exclusion constraint includes `org_id`, so a row
 * of one organisation can never reference a row of another and the schema can be distributed by
 * `org_id` without change. Constraint names are part of the code: `core/errors.ts` maps them to
 * problem codes.
 *
 * What drizzle cannot declare lives in hand-written migrations (see migrations/): the btree_gist
 * extension and the `signups_no_overlap` exclusion constraint.
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  check,
  customType,
  date,
  foreignKey,
  index,
  integer,
  interval,
  jsonb,
  numeric,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

/** PostgreSQL's range of timestamptz, written and read as its text form, e.g. `["2027-03-20 08:00:00+00",...)`. */
const tstzrange = customType<{ data: string; driverData: string }>({
  dataType: () => 'tstzrange',
});

const timestamptz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });
const createdAt = () => timestamptz('created_at').notNull().defaultNow();
const updatedAt = () => timestamptz('updated_at').notNull().defaultNow();
/** Bumped on every change; it is the resource's ETag and the If-Match guard of its UPDATE. */
const version = () => integer('version').notNull().default(1);
const orgId = () =>
  uuid('org_id')
    .notNull()
    .references(() => organizations.id, { onDelete: 'cascade' });

export const apiKeyRole = pgEnum('api_key_role', ['admin', 'organiser', 'viewer']);
export const volunteerTokenKind = pgEnum('volunteer_token_kind', ['app', 'session']);
export const eventVisibility = pgEnum('event_visibility', ['public', 'unlisted', 'private']);
export const eventStatus = pgEnum('event_status', ['draft', 'published', 'cancelled']);
export const signupStatus = pgEnum('signup_status', [
  'confirmed',
  'waitlisted',
  'cancelled',
  'attended',
  'no_show',
]);

// ── Organisations and their keys ─────────────────────────────────────────────────────────────

export const organizations = pgTable(
  'organizations',
  {
    id: uuid('id').primaryKey(),
    name: text('name').notNull(),
    slug: text('slug').notNull(),
    timezone: text('timezone').notNull(),
    contactEmail: text('contact_email').notNull(),
    /**
     * An upper bound of the duration of this organisation's shifts (it only grows). Overlap filters
     * on start-ordered indexes need one: a shift overlapping `from` starts after `from - longest`.
     */
    longestShift: interval('longest_shift').notNull().default('00:00:00'),
    version: version(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex('organizations_slug_unique').on(t.slug)],
);

export const apiKeys = pgTable(
  'api_keys',
  {
    orgId: orgId(),
    id: uuid('id').notNull(),
    name: text('name').notNull(),
    role: apiKeyRole('role').notNull(),
    /** SHA-256 of the token: the token itself is shown once and never stored. */
    tokenHash: text('token_hash').notNull(),
    createdAt: createdAt(),
    revokedAt: timestamptz('revoked_at'),
  },
  (t) => [
    primaryKey({ name: 'api_keys_pkey', columns: [t.orgId, t.id] }),
    uniqueIndex('api_keys_token_hash_unique').on(t.tokenHash),
    index('api_keys_active_by_creation').on(t.orgId, t.createdAt, t.id).where(sql`${t.revokedAt} is null`),
  ],
);

// ── Volunteers ───────────────────────────────────────────────────────────────────────────────

export const volunteers = pgTable(
  'volunteers',
  {
    orgId: orgId(),
    id: uuid('id').notNull(),
    // Personal data: nullable because erasure (DELETE /v1/volunteers/{id}) sets it to null.
    name: text('name'),
    email: text('email'),
    phone: text('phone'),
    birthDate: date('birth_date', { mode: 'string' }),
    notes: text('notes'),
    /** argon2id hash, set by self-registration. */
    passwordHash: text('password_hash'),
    /**
     * SHA-256 of the token in the volunteer's calendar feed URL. The token itself is derived, never
     * stored: an HMAC of the volunteer and `calendarTokenRevision` under the installation's key
     * (instance_secrets), so `GET /v1/me` can show the URL again and a rotation (revision + 1)
     * makes the old one unknown at once.
     */
    calendarTokenHash: text('calendar_token_hash'),
    calendarTokenRevision: integer('calendar_token_revision').notNull().default(0),
    erasedAt: timestamptz('erased_at'),
    version: version(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    primaryKey({ name: 'volunteers_pkey', columns: [t.orgId, t.id] }),
    uniqueIndex('volunteers_email_unique')
      .on(t.orgId, sql`lower(${t.email})`)
      .where(sql`${t.erasedAt} is null`),
    uniqueIndex('volunteers_calendar_token_unique').on(t.calendarTokenHash),
    index('volunteers_by_name').on(t.orgId, t.name, t.id).where(sql`${t.erasedAt} is null`),
    // `q` (substring of name or email) is served by trigram indexes (pg_trgm).
    index('volunteers_name_trgm').using('gin', t.name.op('gin_trgm_ops')),
    index('volunteers_email_trgm').using('gin', t.email.op('gin_trgm_ops')),
    index('volunteers_by_update').on(t.orgId, t.updatedAt, t.id),
  ],
);

export const volunteerTokens = pgTable(
  'volunteer_tokens',
  {
    orgId: orgId(),
    id: uuid('id').notNull(),
    volunteerId: uuid('volunteer_id').notNull(),
    kind: volunteerTokenKind('kind').notNull(),
    tokenHash: text('token_hash').notNull(),
    createdAt: createdAt(),
    revokedAt: timestamptz('revoked_at'),
  },
  (t) => [
    primaryKey({ name: 'volunteer_tokens_pkey', columns: [t.orgId, t.id] }),
    uniqueIndex('volunteer_tokens_token_hash_unique').on(t.tokenHash),
    foreignKey({
      name: 'volunteer_tokens_volunteer_fk',
      columns: [t.orgId, t.volunteerId],
      foreignColumns: [volunteers.orgId, volunteers.id],
    }).onDelete('cascade'),
  ],
);

// ── Roles and qualifications ─────────────────────────────────────────────────────────────────

export const roles = pgTable(
  'roles',
  {
    orgId: orgId(),
    id: uuid('id').notNull(),
    name: text('name').notNull(),
    description: text('description'),
    restricted: boolean('restricted').notNull().default(false),
    version: version(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    primaryKey({ name: 'roles_pkey', columns: [t.orgId, t.id] }),
    uniqueIndex('roles_name_unique').on(t.orgId, sql`lower(${t.name})`),
  ],
);

export const qualifications = pgTable(
  'qualifications',
  {
    orgId: orgId(),
    volunteerId: uuid('volunteer_id').notNull(),
    roleId: uuid('role_id').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    primaryKey({ name: 'qualifications_pkey', columns: [t.orgId, t.volunteerId, t.roleId] }),
    foreignKey({
      name: 'qualifications_volunteer_fk',
      columns: [t.orgId, t.volunteerId],
      foreignColumns: [volunteers.orgId, volunteers.id],
    }).onDelete('cascade'),
    foreignKey({
      name: 'qualifications_role_fk',
      columns: [t.orgId, t.roleId],
      foreignColumns: [roles.orgId, roles.id],
    }).onDelete('cascade'),
    index('qualifications_by_role').on(t.orgId, t.roleId),
  ],
);

// ── Events and shifts ────────────────────────────────────────────────────────────────────────

export type Location = { name: string; address?: string; latitude?: number; longitude?: number };

export const events = pgTable(
  'events',
  {
    orgId: orgId(),
    id: uuid('id').notNull(),
    title: text('title').notNull(),
    description: text('description'),
    timezone: text('timezone').notNull(),
    location: jsonb('location').$type<Location>(),
    visibility: eventVisibility('visibility').notNull().default('public'),
    status: eventStatus('status').notNull().default('draft'),
    tags: text('tags').array().notNull().default(sql`'{}'::text[]`),
    /** The span of the event's shifts, kept by the shift writes so that lists sort on an index. */
    startsAt: timestamptz('starts_at'),
    endsAt: timestamptz('ends_at'),
    version: version(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    publishedAt: timestamptz('published_at'),
    cancelledAt: timestamptz('cancelled_at'),
  },
  (t) => [
    primaryKey({ name: 'events_pkey', columns: [t.orgId, t.id] }),
    // Lists sort on startsAt with events that have no shift yet last: the key is coalesce(…, infinity).
    index('events_by_start').on(t.orgId, sql`coalesce(${t.startsAt}, 'infinity'::timestamptz)`, t.id),
    // The public list (API.md §8) reads only published, public events: its own index, so that an
    // organisation's drafts and private events are never scanned to find them.
    index('events_public_by_start')
      .on(t.orgId, sql`coalesce(${t.startsAt}, 'infinity'::timestamptz)`, t.id)
      .where(sql`${t.status} = 'published' and ${t.visibility} = 'public'`),
    index('events_title_trgm').using('gin', t.title.op('gin_trgm_ops')),
    index('events_by_update').on(t.orgId, t.updatedAt, t.id),
    index('events_by_tag').using('gin', t.tags),
    check('events_span_order', sql`${t.endsAt} >= ${t.startsAt}`),
  ],
);

export const shifts = pgTable(
  'shifts',
  {
    orgId: orgId(),
    id: uuid('id').notNull(),
    eventId: uuid('event_id').notNull(),
    roleId: uuid('role_id'),
    title: text('title'),
    description: text('description'),
    location: jsonb('location').$type<Location>(),
    startsAt: timestamptz('starts_at').notNull(),
    endsAt: timestamptz('ends_at').notNull(),
    /** `[starts_at, ends_at)`, for overlap filters served by a GiST index. */
    // Empty for inverted times, so that the `shifts_time_order` check, not a range error, reports them.
    period: tstzrange('period')
      .notNull()
      .generatedAlwaysAs(
        sql`case when ends_at > starts_at then tstzrange(starts_at, ends_at, '[)') else 'empty'::tstzrange end`,
      ),
    capacity: integer('capacity').notNull(),
    confirmedCount: integer('confirmed_count').notNull().default(0),
    waitlistCount: integer('waitlist_count').notNull().default(0),
    waitlist: boolean('waitlist').notNull().default(true),
    signupOpensAt: timestamptz('signup_opens_at'),
    signupClosesAt: timestamptz('signup_closes_at'),
    cancelUntil: timestamptz('cancel_until'),
    minAge: integer('min_age'),
    cancelledAt: timestamptz('cancelled_at'),
    /** The iCalendar SEQUENCE of the shift's VEVENT: bumped whenever its times change (RFC 5545). */
    timesRevision: integer('times_revision').notNull().default(0),
    version: version(),
    createdAt: createdAt(),
    /** When the shift itself last changed; a change of its counts moves `counted_at` instead. */
    updatedAt: updatedAt(),
    /**
     * When its counts last changed (the signups' trigger, migration 0017), null before the first:
     * the shift's updatedAt is the later of the two. Not indexed, so that a claim's update of the
     * row touches no indexed column and stays a heap-only (HOT) update.
     */
    countedAt: timestamptz('counted_at'),
  },
  (t) => [
    primaryKey({ name: 'shifts_pkey', columns: [t.orgId, t.id] }),
    foreignKey({
      name: 'shifts_event_fk',
      columns: [t.orgId, t.eventId],
      foreignColumns: [events.orgId, events.id],
    }).onDelete('cascade'),
    foreignKey({
      name: 'shifts_role_fk',
      columns: [t.orgId, t.roleId],
      foreignColumns: [roles.orgId, roles.id],
    }),
    check('shifts_time_order', sql`${t.endsAt} > ${t.startsAt}`),
    check('shifts_max_duration', sql`${t.endsAt} - ${t.startsAt} <= interval '7 days'`),
    check('shifts_capacity_range', sql`${t.capacity} between 1 and 10000`),
    // Invariant 1 of API.md §7, as the last guard behind the conditional UPDATE of a claim.
    check('shifts_capacity_not_exceeded', sql`${t.confirmedCount} between 0 and ${t.capacity}`),
    check('shifts_waitlist_count_nonnegative', sql`${t.waitlistCount} >= 0`),
    check('shifts_min_age_range', sql`${t.minAge} between 0 and 120`),
    // A shift that keeps no waitlist has nobody on it.
    check('shifts_waitlist_kept', sql`${t.waitlist} or ${t.waitlistCount} = 0`),
    index('shifts_by_event_start').on(t.orgId, t.eventId, t.startsAt, t.id),
    index('shifts_by_start').on(t.orgId, t.startsAt, t.id),
    index('shifts_by_role_start').on(t.orgId, t.roleId, t.startsAt, t.id),
    index('shifts_by_update').on(t.orgId, t.updatedAt, t.id),
    index('shifts_by_period').using('gist', t.orgId, t.period),
    // The target of signups' (org_id, shift_id, period) foreign key, which keeps each signup's copy
    // of the interval equal to its shift's (ON UPDATE CASCADE), enforced by the database.
    unique('shifts_period_key').on(t.orgId, t.id, t.period),
    // No index covers the counters, not even in a partial index's predicate: a claim would then no
    // longer be a HOT update (`available=true` lists filter the start-ordered rows instead).
  ],
);

// ── Signups ──────────────────────────────────────────────────────────────────────────────────

export const signups = pgTable(
  'signups',
  {
    orgId: orgId(),
    id: uuid('id').notNull(),
    shiftId: uuid('shift_id').notNull(),
    volunteerId: uuid('volunteer_id').notNull(),
    status: signupStatus('status').notNull(),
    /**
     * A copy of the shift's `[starts_at, ends_at)`, so that the exclusion constraint can see it; the
     * `signups_shift_period_fk` foreign key keeps it equal to the shift's.
     */
    period: tstzrange('period').notNull(),
    note: text('note'),
    lateCancellation: boolean('late_cancellation').notNull().default(false),
    checkedInAt: timestamptz('checked_in_at'),
    checkedOutAt: timestamptz('checked_out_at'),
    hours: numeric('hours', { precision: 4, scale: 2, mode: 'number' }),
    version: version(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    cancelledAt: timestamptz('cancelled_at'),
  },
  (t) => [
    primaryKey({ name: 'signups_pkey', columns: [t.orgId, t.id] }),
    foreignKey({
      name: 'signups_shift_fk',
      columns: [t.orgId, t.shiftId],
      foreignColumns: [shifts.orgId, shifts.id],
    }),
    // A change of the shift's times flows into `period` here, and through the exclusion constraint.
    foreignKey({
      name: 'signups_shift_period_fk',
      columns: [t.orgId, t.shiftId, t.period],
      foreignColumns: [shifts.orgId, shifts.id, shifts.period],
    }).onUpdate('cascade'),
    foreignKey({
      name: 'signups_volunteer_fk',
      columns: [t.orgId, t.volunteerId],
      foreignColumns: [volunteers.orgId, volunteers.id],
    }),
    // Invariant 2 of API.md §7: at most one active signup per volunteer and shift; an attended or
    // no-show signup still holds its place, so it counts too (only cancelled ones are history).
    uniqueIndex('signups_one_active_per_volunteer')
      .on(t.orgId, t.shiftId, t.volunteerId)
      .where(sql`${t.status} <> 'cancelled'`),
    check('signups_cancelled_at_matches', sql`(${t.status} = 'cancelled') = (${t.cancelledAt} is not null)`),
    check(
      'signups_check_out_after_in',
      sql`${t.checkedOutAt} is null or (${t.checkedInAt} is not null and ${t.checkedOutAt} >= ${t.checkedInAt})`,
    ),
    check(
      'signups_hours_quarters',
      sql`${t.hours} between 0 and 24 and ${t.hours} * 4 = trunc(${t.hours} * 4)`,
    ),
    index('signups_roster').on(t.orgId, t.shiftId, t.createdAt, t.id),
    index('signups_waitlist')
      .on(t.orgId, t.shiftId, t.createdAt, t.id)
      .where(sql`${t.status} = 'waitlisted'`),
    index('signups_by_volunteer').on(t.orgId, t.volunteerId, t.createdAt, t.id),
    // GET /v1/me/signups: a volunteer's signups in the order of their shifts' starts.
    index('signups_by_volunteer_start').on(t.orgId, t.volunteerId, sql`lower(${t.period})`, t.id),
    index('signups_by_update').on(t.orgId, t.updatedAt, t.id),
  ],
);

// ── Cross-cutting records ────────────────────────────────────────────────────────────────────

/**
 * Idempotency-Key records (API.md §1). The row is inserted in the transaction that performs the
 * request's effect and completed before it commits, so a concurrent duplicate blocks on the primary
 * key until the first commits (then replays) or rolls back (then runs). `caller` identifies the
 * credential (`key:<id>`, `volunteer:<id>`, `platform-admin`, `anonymous:<ip>`), so it is not
 * tenant-scoped. The key is stored as a hash and the response body encrypted with a key derived
 * from the caller's bearer token and the idempotency key, because a replayed body may carry a
 * freshly issued token, and tokens are never stored readable.
 */
export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    caller: text('caller').notNull(),
    keyHash: text('key_hash').notNull(),
    orgId: uuid('org_id'),
    requestHash: text('request_hash').notNull(),
    responseStatus: integer('response_status').notNull(),
    responseHeaders: jsonb('response_headers').$type<Record<string, string>>().notNull(),
    /** `v1.<iv>.<tag>.<ciphertext>`, AES-256-GCM; null for a response without a body. */
    sealedResponseBody: text('sealed_response_body'),
    createdAt: createdAt(),
    expiresAt: timestamptz('expires_at').notNull(),
  },
  (t) => [
    primaryKey({ name: 'idempotency_keys_pkey', columns: [t.caller, t.keyHash] }),
    index('idempotency_keys_by_expiry').on(t.expiresAt),
  ],
);

/**
 * Domain events, written in the same transaction as the change they describe. The webhook
 * dispatcher and the audit log read from here.
 */
export const outbox = pgTable(
  'outbox',
  {
    orgId: orgId(),
    id: uuid('id').notNull(),
    type: text('type').notNull(),
    resourceType: text('resource_type').notNull(),
    resourceId: uuid('resource_id').notNull(),
    /** Who did it: `{ kind: 'key' | 'volunteer' | 'admin' | 'system', id? }`. */
    actor: jsonb('actor').$type<{ kind: string; id?: string }>().notNull(),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    createdAt: createdAt(),
    /**
     * The writing transaction's id (`pg_current_xact_id()`): the webhook dispatcher reads the
     * outbox in this order, up to the oldest transaction still running, so that a row committed
     * late (ids and times are made before the commit) is never passed over (webhooks/fan-out.ts).
     */
    txid: bigint('txid', { mode: 'bigint' }).notNull().default(sql`(pg_current_xact_id()::text::bigint)`),
  },
  (t) => [
    primaryKey({ name: 'outbox_pkey', columns: [t.orgId, t.id] }),
    index('outbox_by_txid').on(t.txid, t.id),
    index('outbox_by_resource').on(t.orgId, t.resourceId, t.createdAt),
    index('outbox_by_creation').on(t.orgId, t.createdAt, t.id),
    // The purge of events past their retention, across organisations.
    index('outbox_by_age').on(t.createdAt),
  ],
);

// ── Webhooks ─────────────────────────────────────────────────────────────────────────────────

/** The event types a webhook can subscribe to (API.md §10). */
export const webhookEventTypes = [
  'event.published',
  'event.cancelled',
  'shift.created',
  'shift.updated',
  'shift.cancelled',
  'shift.filled',
  'signup.confirmed',
  'signup.waitlisted',
  'signup.promoted',
  'signup.cancelled',
] as const;

/** A partner's endpoint and the event types it receives. */
export const webhooks = pgTable(
  'webhooks',
  {
    orgId: orgId(),
    id: uuid('id').notNull(),
    url: text('url').notNull(),
    events: text('events').array().$type<(typeof webhookEventTypes)[number][]>().notNull(),
    description: text('description'),
    enabled: boolean('enabled').notNull().default(true),
    /** Why the service disabled it: `gone` (a 410) or `failing` (5 days of failures); null otherwise. */
    disabledReason: text('disabled_reason').$type<'gone' | 'failing'>(),
    /** Since when it receives messages: its creation, or the last time it was enabled again. */
    enabledSince: timestamptz('enabled_since').notNull().defaultNow(),
    version: version(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    primaryKey({ name: 'webhooks_pkey', columns: [t.orgId, t.id] }),
    check(
      'webhooks_events_known',
      sql`cardinality(${t.events}) between 1 and ${sql.raw(String(webhookEventTypes.length))} and ${t.events} <@ array[${sql.raw(webhookEventTypes.map((type) => `'${type}'`).join(', '))}]::text[]`,
    ),
    check(
      'webhooks_disabled_reason',
      sql`${t.disabledReason} is null or (not ${t.enabled} and ${t.disabledReason} in ('gone', 'failing'))`,
    ),
  ],
);

/**
 * The secrets that sign a webhook's deliveries (Standard Webhooks, `whsec_…`). The current one has
 * no `expires_at`; a rotation gives the previous one 24 hours, and the older ones none.
 */
export const webhookSecrets = pgTable(
  'webhook_secrets',
  {
    orgId: orgId(),
    id: uuid('id').notNull(),
    webhookId: uuid('webhook_id').notNull(),
    secret: text('secret').notNull(),
    createdAt: createdAt(),
    expiresAt: timestamptz('expires_at'),
  },
  (t) => [
    primaryKey({ name: 'webhook_secrets_pkey', columns: [t.orgId, t.id] }),
    foreignKey({
      name: 'webhook_secrets_webhook_fk',
      columns: [t.orgId, t.webhookId],
      foreignColumns: [webhooks.orgId, webhooks.id],
    }).onDelete('cascade'),
    // One current secret per webhook.
    uniqueIndex('webhook_secrets_one_current').on(t.orgId, t.webhookId).where(sql`${t.expiresAt} is null`),
    index('webhook_secrets_by_webhook').on(t.orgId, t.webhookId, t.createdAt),
  ],
);

/**
 * Where the webhook dispatcher has read the outbox to: the last `(txid, id)` it turned into
 * messages. One row; the fan-out that holds its lock is the only one running.
 */
export const webhookFanOut = pgTable('webhook_fan_out', {
  name: text('name').primaryKey(),
  lastTxid: bigint('last_txid', { mode: 'bigint' }).notNull(),
  lastId: uuid('last_id').notNull(),
});

/**
 * One webhook's delivery state: when its next attempt is due, which dispatcher holds it (a lease
 * that expires unless renewed, so that a process killed mid-delivery gives the endpoint back), and
 * since when its attempts have all failed. One dispatcher at a time per endpoint keeps its messages
 * in order.
 */
export const webhookQueues = pgTable(
  'webhook_queues',
  {
    orgId: orgId(),
    webhookId: uuid('webhook_id').notNull(),
    /** The earliest `next_attempt_at` of its pending deliveries; null when none is pending. */
    nextDueAt: timestamptz('next_due_at'),
    leasedBy: uuid('leased_by'),
    leaseUntil: timestamptz('lease_until'),
    /** The first failure since the last success; null after a success. */
    failingSince: timestamptz('failing_since'),
  },
  (t) => [
    primaryKey({ name: 'webhook_queues_pkey', columns: [t.orgId, t.webhookId] }),
    foreignKey({
      name: 'webhook_queues_webhook_fk',
      columns: [t.orgId, t.webhookId],
      foreignColumns: [webhooks.orgId, webhooks.id],
    }).onDelete('cascade'),
    index('webhook_queues_due').on(t.nextDueAt).where(sql`${t.nextDueAt} is not null`),
    index('webhook_queues_by_lease').on(t.leasedBy).where(sql`${t.leasedBy} is not null`),
  ],
);

/** One message for one endpoint: its `webhook-id` (`id`) and body, the same for every attempt. */
export const webhookMessages = pgTable(
  'webhook_messages',
  {
    orgId: orgId(),
    id: uuid('id').notNull(),
    webhookId: uuid('webhook_id').notNull(),
    /** The outbox row it was made from; null for a `ping`. */
    outboxId: uuid('outbox_id'),
    type: text('type').notNull(),
    /** When the change happened: the body's `timestamp`. */
    occurredAt: timestamptz('occurred_at').notNull(),
    data: jsonb('data').$type<Record<string, unknown>>().notNull(),
    createdAt: createdAt(),
    /** When it stopped being pending (delivered, given up or dropped); purged 30 days later. */
    finishedAt: timestamptz('finished_at'),
  },
  (t) => [
    primaryKey({ name: 'webhook_messages_pkey', columns: [t.orgId, t.id] }),
    foreignKey({
      name: 'webhook_messages_webhook_fk',
      columns: [t.orgId, t.webhookId],
      foreignColumns: [webhooks.orgId, webhooks.id],
    }).onDelete('cascade'),
    // The purge's (by creation: finished_at is left out of every index, so that marking a message
    // finished is a HOT update).
    index('webhook_messages_by_age').on(t.createdAt),
    // The target of the deliveries' foreign key, which keeps an attempt's webhook its message's.
    unique('webhook_messages_webhook_key').on(t.orgId, t.id, t.webhookId),
  ],
);

/**
 * The attempts of a message (API.md §10's deliveries), the next one included while it is pending:
 * at most one pending attempt per message, due at `next_attempt_at`.
 */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    orgId: orgId(),
    id: uuid('id').notNull(),
    webhookId: uuid('webhook_id').notNull(),
    messageId: uuid('message_id').notNull(),
    attempt: integer('attempt').notNull(),
    status: text('status').$type<'pending' | 'succeeded' | 'failed'>().notNull(),
    responseStatus: integer('response_status'),
    durationMs: integer('duration_ms'),
    error: text('error'),
    createdAt: createdAt(),
    /** When the message is tried (again); null when it will not be. */
    nextAttemptAt: timestamptz('next_attempt_at'),
  },
  (t) => [
    primaryKey({ name: 'webhook_deliveries_pkey', columns: [t.orgId, t.id] }),
    // An attempt is of its message's webhook: the database holds the copy of `webhook_id` equal.
    foreignKey({
      name: 'webhook_deliveries_message_fk',
      columns: [t.orgId, t.messageId, t.webhookId],
      foreignColumns: [webhookMessages.orgId, webhookMessages.id, webhookMessages.webhookId],
    }).onDelete('cascade'),
    check('webhook_deliveries_attempt', sql`${t.attempt} >= 1`),
    check(
      'webhook_deliveries_status',
      sql`${t.status} in ('pending', 'succeeded', 'failed') and (${t.status} <> 'pending' or ${t.nextAttemptAt} is not null)`,
    ),
    uniqueIndex('webhook_deliveries_one_pending')
      .on(t.orgId, t.messageId)
      .where(sql`${t.status} = 'pending'`),
    // An endpoint's due attempts as the dispatcher takes them (by due time, then message: one
    // fan-out's first attempts in the order written), and when its next one is due: the first.
    index('webhook_deliveries_next')
      .on(t.orgId, t.webhookId, t.nextAttemptAt, t.messageId)
      .where(sql`${t.status} = 'pending'`),
    // The deliveries list, newest first; `?status=failed` (rare among many successes) has its own.
    index('webhook_deliveries_by_webhook').on(t.orgId, t.webhookId, t.id),
    index('webhook_deliveries_failed').on(t.orgId, t.webhookId, t.id).where(sql`${t.status} = 'failed'`),
  ],
);

/**
 * Random keys of this installation, made once by whichever process needs one first, so that every
 * process derives the same values from them (the volunteers' calendar feed tokens).
 */
export const instanceSecrets = pgTable('instance_secrets', {
  name: text('name').primaryKey(),
  /** base64url of 32 random bytes. */
  secret: text('secret').notNull(),
  createdAt: createdAt(),
});
