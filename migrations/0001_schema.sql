CREATE TYPE "public"."api_key_role" AS ENUM('admin', 'organiser', 'viewer');--> statement-breakpoint
CREATE TYPE "public"."event_status" AS ENUM('draft', 'published', 'cancelled');--> statement-breakpoint
CREATE TYPE "public"."event_visibility" AS ENUM('public', 'unlisted', 'private');--> statement-breakpoint
CREATE TYPE "public"."signup_status" AS ENUM('confirmed', 'waitlisted', 'cancelled', 'attended', 'no_show');--> statement-breakpoint
CREATE TYPE "public"."volunteer_token_kind" AS ENUM('app', 'session');--> statement-breakpoint
CREATE TABLE "api_keys" (
	"org_id" uuid NOT NULL,
	"id" uuid NOT NULL,
	"name" text NOT NULL,
	"role" "api_key_role" NOT NULL,
	"token_hash" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "api_keys_pkey" PRIMARY KEY("org_id","id")
);
--> statement-breakpoint
CREATE TABLE "events" (
	"org_id" uuid NOT NULL,
	"id" uuid NOT NULL,
	"title" text NOT NULL,
	"description" text,
	"timezone" text NOT NULL,
	"location" jsonb,
	"visibility" "event_visibility" DEFAULT 'public' NOT NULL,
	"status" "event_status" DEFAULT 'draft' NOT NULL,
	"tags" text[] DEFAULT '{}'::text[] NOT NULL,
	"starts_at" timestamp with time zone,
	"ends_at" timestamp with time zone,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"published_at" timestamp with time zone,
	"cancelled_at" timestamp with time zone,
	CONSTRAINT "events_pkey" PRIMARY KEY("org_id","id"),
	CONSTRAINT "events_span_order" CHECK ("events"."ends_at" >= "events"."starts_at")
);
--> statement-breakpoint
CREATE TABLE "idempotency_keys" (
	"caller" text NOT NULL,
	"key_hash" text NOT NULL,
	"org_id" uuid,
	"request_hash" text NOT NULL,
	"response_status" integer NOT NULL,
	"response_headers" jsonb NOT NULL,
	"sealed_response_body" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "idempotency_keys_pkey" PRIMARY KEY("caller","key_hash")
);
--> statement-breakpoint
CREATE TABLE "organizations" (
	"id" uuid PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"slug" text NOT NULL,
	"timezone" text NOT NULL,
	"contact_email" text NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "outbox" (
	"org_id" uuid NOT NULL,
	"id" uuid NOT NULL,
	"type" text NOT NULL,
	"resource_type" text NOT NULL,
	"resource_id" uuid NOT NULL,
	"actor" jsonb NOT NULL,
	"payload" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "outbox_pkey" PRIMARY KEY("org_id","id")
);
--> statement-breakpoint
CREATE TABLE "qualifications" (
	"org_id" uuid NOT NULL,
	"volunteer_id" uuid NOT NULL,
	"role_id" uuid NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "qualifications_pkey" PRIMARY KEY("org_id","volunteer_id","role_id")
);
--> statement-breakpoint
CREATE TABLE "roles" (
	"org_id" uuid NOT NULL,
	"id" uuid NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"restricted" boolean DEFAULT false NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "roles_pkey" PRIMARY KEY("org_id","id")
);
--> statement-breakpoint
CREATE TABLE "shifts" (
	"org_id" uuid NOT NULL,
	"id" uuid NOT NULL,
	"event_id" uuid NOT NULL,
	"role_id" uuid,
	"title" text,
	"description" text,
	"location" jsonb,
	"starts_at" timestamp with time zone NOT NULL,
	"ends_at" timestamp with time zone NOT NULL,
	"period" "tstzrange" GENERATED ALWAYS AS (case when ends_at > starts_at then tstzrange(starts_at, ends_at, '[)') else 'empty'::tstzrange end) STORED NOT NULL,
	"capacity" integer NOT NULL,
	"confirmed_count" integer DEFAULT 0 NOT NULL,
	"waitlist_count" integer DEFAULT 0 NOT NULL,
	"waitlist" boolean DEFAULT true NOT NULL,
	"signup_opens_at" timestamp with time zone,
	"signup_closes_at" timestamp with time zone,
	"cancel_until" timestamp with time zone,
	"min_age" integer,
	"cancelled_at" timestamp with time zone,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "shifts_pkey" PRIMARY KEY("org_id","id"),
	CONSTRAINT "shifts_time_order" CHECK ("shifts"."ends_at" > "shifts"."starts_at"),
	CONSTRAINT "shifts_max_duration" CHECK ("shifts"."ends_at" - "shifts"."starts_at" <= interval '7 days'),
	CONSTRAINT "shifts_capacity_range" CHECK ("shifts"."capacity" between 1 and 10000),
	CONSTRAINT "shifts_capacity_not_exceeded" CHECK ("shifts"."confirmed_count" between 0 and "shifts"."capacity"),
	CONSTRAINT "shifts_waitlist_count_nonnegative" CHECK ("shifts"."waitlist_count" >= 0),
	CONSTRAINT "shifts_min_age_range" CHECK ("shifts"."min_age" between 0 and 120)
);
--> statement-breakpoint
CREATE TABLE "signups" (
	"org_id" uuid NOT NULL,
	"id" uuid NOT NULL,
	"shift_id" uuid NOT NULL,
	"volunteer_id" uuid NOT NULL,
	"status" "signup_status" NOT NULL,
	"period" "tstzrange" NOT NULL,
	"note" text,
	"late_cancellation" boolean DEFAULT false NOT NULL,
	"checked_in_at" timestamp with time zone,
	"checked_out_at" timestamp with time zone,
	"hours" numeric(4, 2),
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"cancelled_at" timestamp with time zone,
	CONSTRAINT "signups_pkey" PRIMARY KEY("org_id","id"),
	CONSTRAINT "signups_hours_quarters" CHECK ("signups"."hours" between 0 and 24 and "signups"."hours" * 4 = trunc("signups"."hours" * 4))
);
--> statement-breakpoint
CREATE TABLE "volunteer_tokens" (
	"org_id" uuid NOT NULL,
	"id" uuid NOT NULL,
	"volunteer_id" uuid NOT NULL,
	"kind" "volunteer_token_kind" NOT NULL,
	"token_hash" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "volunteer_tokens_pkey" PRIMARY KEY("org_id","id")
);
--> statement-breakpoint
CREATE TABLE "volunteers" (
	"org_id" uuid NOT NULL,
	"id" uuid NOT NULL,
	"name" text,
	"email" text,
	"phone" text,
	"birth_date" date,
	"notes" text,
	"password_hash" text,
	"calendar_token_hash" text,
	"erased_at" timestamp with time zone,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "volunteers_pkey" PRIMARY KEY("org_id","id")
);
--> statement-breakpoint
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "events" ADD CONSTRAINT "events_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "outbox" ADD CONSTRAINT "outbox_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "qualifications" ADD CONSTRAINT "qualifications_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "qualifications" ADD CONSTRAINT "qualifications_volunteer_fk" FOREIGN KEY ("org_id","volunteer_id") REFERENCES "public"."volunteers"("org_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "qualifications" ADD CONSTRAINT "qualifications_role_fk" FOREIGN KEY ("org_id","role_id") REFERENCES "public"."roles"("org_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "roles" ADD CONSTRAINT "roles_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "shifts" ADD CONSTRAINT "shifts_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "shifts" ADD CONSTRAINT "shifts_event_fk" FOREIGN KEY ("org_id","event_id") REFERENCES "public"."events"("org_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "shifts" ADD CONSTRAINT "shifts_role_fk" FOREIGN KEY ("org_id","role_id") REFERENCES "public"."roles"("org_id","id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "signups" ADD CONSTRAINT "signups_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "signups" ADD CONSTRAINT "signups_shift_fk" FOREIGN KEY ("org_id","shift_id") REFERENCES "public"."shifts"("org_id","id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "signups" ADD CONSTRAINT "signups_volunteer_fk" FOREIGN KEY ("org_id","volunteer_id") REFERENCES "public"."volunteers"("org_id","id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "volunteer_tokens" ADD CONSTRAINT "volunteer_tokens_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "volunteer_tokens" ADD CONSTRAINT "volunteer_tokens_volunteer_fk" FOREIGN KEY ("org_id","volunteer_id") REFERENCES "public"."volunteers"("org_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "volunteers" ADD CONSTRAINT "volunteers_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "api_keys_token_hash_unique" ON "api_keys" USING btree ("token_hash");--> statement-breakpoint
CREATE INDEX "api_keys_active_by_creation" ON "api_keys" USING btree ("org_id","created_at","id") WHERE "api_keys"."revoked_at" is null;--> statement-breakpoint
CREATE INDEX "events_by_start" ON "events" USING btree ("org_id","starts_at","id");--> statement-breakpoint
CREATE INDEX "events_by_update" ON "events" USING btree ("org_id","updated_at","id");--> statement-breakpoint
CREATE INDEX "events_by_tag" ON "events" USING gin ("tags");--> statement-breakpoint
CREATE INDEX "idempotency_keys_by_expiry" ON "idempotency_keys" USING btree ("expires_at");--> statement-breakpoint
CREATE UNIQUE INDEX "organizations_slug_unique" ON "organizations" USING btree ("slug");--> statement-breakpoint
CREATE INDEX "outbox_by_resource" ON "outbox" USING btree ("org_id","resource_id","created_at");--> statement-breakpoint
CREATE INDEX "outbox_by_creation" ON "outbox" USING btree ("org_id","created_at","id");--> statement-breakpoint
CREATE INDEX "qualifications_by_role" ON "qualifications" USING btree ("org_id","role_id");--> statement-breakpoint
CREATE UNIQUE INDEX "roles_name_unique" ON "roles" USING btree ("org_id",lower("name"));--> statement-breakpoint
CREATE INDEX "shifts_by_event_start" ON "shifts" USING btree ("org_id","event_id","starts_at","id");--> statement-breakpoint
CREATE INDEX "shifts_by_start" ON "shifts" USING btree ("org_id","starts_at","id");--> statement-breakpoint
CREATE INDEX "shifts_by_role_start" ON "shifts" USING btree ("org_id","role_id","starts_at","id");--> statement-breakpoint
CREATE INDEX "shifts_by_update" ON "shifts" USING btree ("org_id","updated_at","id");--> statement-breakpoint
CREATE INDEX "shifts_by_period" ON "shifts" USING gist ("org_id","period");--> statement-breakpoint
CREATE UNIQUE INDEX "signups_one_active_per_volunteer" ON "signups" USING btree ("org_id","shift_id","volunteer_id") WHERE "signups"."status" in ('confirmed', 'waitlisted');--> statement-breakpoint
CREATE INDEX "signups_roster" ON "signups" USING btree ("org_id","shift_id","created_at","id");--> statement-breakpoint
CREATE INDEX "signups_waitlist" ON "signups" USING btree ("org_id","shift_id","created_at","id") WHERE "signups"."status" = 'waitlisted';--> statement-breakpoint
CREATE INDEX "signups_by_volunteer" ON "signups" USING btree ("org_id","volunteer_id","created_at","id");--> statement-breakpoint
CREATE INDEX "signups_by_update" ON "signups" USING btree ("org_id","updated_at","id");--> statement-breakpoint
CREATE UNIQUE INDEX "volunteer_tokens_token_hash_unique" ON "volunteer_tokens" USING btree ("token_hash");--> statement-breakpoint
CREATE UNIQUE INDEX "volunteers_email_unique" ON "volunteers" USING btree ("org_id",lower("email")) WHERE "volunteers"."erased_at" is null;--> statement-breakpoint
CREATE UNIQUE INDEX "volunteers_calendar_token_unique" ON "volunteers" USING btree ("calendar_token_hash");--> statement-breakpoint
CREATE INDEX "volunteers_by_name" ON "volunteers" USING btree ("org_id","name","id") WHERE "volunteers"."erased_at" is null;--> statement-breakpoint
CREATE INDEX "volunteers_by_update" ON "volunteers" USING btree ("org_id","updated_at","id");