CREATE TABLE "webhook_deliveries" (
	"org_id" uuid NOT NULL,
	"id" uuid NOT NULL,
	"webhook_id" uuid NOT NULL,
	"message_id" uuid NOT NULL,
	"attempt" integer NOT NULL,
	"status" text NOT NULL,
	"response_status" integer,
	"duration_ms" integer,
	"error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"next_attempt_at" timestamp with time zone,
	CONSTRAINT "webhook_deliveries_pkey" PRIMARY KEY("org_id","id"),
	CONSTRAINT "webhook_deliveries_attempt" CHECK ("webhook_deliveries"."attempt" >= 1),
	CONSTRAINT "webhook_deliveries_status" CHECK ("webhook_deliveries"."status" in ('pending', 'succeeded', 'failed') and ("webhook_deliveries"."status" <> 'pending' or "webhook_deliveries"."next_attempt_at" is not null))
);
--> statement-breakpoint
CREATE TABLE "webhook_fan_out" (
	"name" text PRIMARY KEY NOT NULL,
	"last_txid" bigint NOT NULL,
	"last_id" uuid NOT NULL
);
--> statement-breakpoint
CREATE TABLE "webhook_messages" (
	"org_id" uuid NOT NULL,
	"id" uuid NOT NULL,
	"webhook_id" uuid NOT NULL,
	"outbox_id" uuid,
	"type" text NOT NULL,
	"occurred_at" timestamp with time zone NOT NULL,
	"data" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone,
	CONSTRAINT "webhook_messages_pkey" PRIMARY KEY("org_id","id"),
	CONSTRAINT "webhook_messages_webhook_key" UNIQUE("org_id","id","webhook_id")
);
--> statement-breakpoint
CREATE TABLE "webhook_queues" (
	"org_id" uuid NOT NULL,
	"webhook_id" uuid NOT NULL,
	"next_due_at" timestamp with time zone,
	"leased_by" uuid,
	"lease_until" timestamp with time zone,
	"failing_since" timestamp with time zone,
	CONSTRAINT "webhook_queues_pkey" PRIMARY KEY("org_id","webhook_id")
);
--> statement-breakpoint
ALTER TABLE "outbox" ADD COLUMN "txid" bigint DEFAULT (pg_current_xact_id()::text::bigint) NOT NULL;--> statement-breakpoint
ALTER TABLE "webhooks" ADD COLUMN "enabled_since" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_message_fk" FOREIGN KEY ("org_id","message_id","webhook_id") REFERENCES "public"."webhook_messages"("org_id","id","webhook_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_messages" ADD CONSTRAINT "webhook_messages_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_messages" ADD CONSTRAINT "webhook_messages_webhook_fk" FOREIGN KEY ("org_id","webhook_id") REFERENCES "public"."webhooks"("org_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_queues" ADD CONSTRAINT "webhook_queues_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_queues" ADD CONSTRAINT "webhook_queues_webhook_fk" FOREIGN KEY ("org_id","webhook_id") REFERENCES "public"."webhooks"("org_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "webhook_deliveries_one_pending" ON "webhook_deliveries" USING btree ("org_id","message_id") WHERE "webhook_deliveries"."status" = 'pending';--> statement-breakpoint
CREATE INDEX "webhook_deliveries_next" ON "webhook_deliveries" USING btree ("org_id","webhook_id","next_attempt_at","message_id") WHERE "webhook_deliveries"."status" = 'pending';--> statement-breakpoint
CREATE INDEX "webhook_deliveries_by_webhook" ON "webhook_deliveries" USING btree ("org_id","webhook_id","id");--> statement-breakpoint
CREATE INDEX "webhook_deliveries_failed" ON "webhook_deliveries" USING btree ("org_id","webhook_id","id") WHERE "webhook_deliveries"."status" = 'failed';--> statement-breakpoint
CREATE INDEX "webhook_messages_by_age" ON "webhook_messages" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "webhook_queues_due" ON "webhook_queues" USING btree ("next_due_at") WHERE "webhook_queues"."next_due_at" is not null;--> statement-breakpoint
CREATE INDEX "webhook_queues_by_lease" ON "webhook_queues" USING btree ("leased_by") WHERE "webhook_queues"."leased_by" is not null;--> statement-breakpoint
CREATE INDEX "outbox_by_txid" ON "outbox" USING btree ("txid","id");--> statement-breakpoint
-- The fan-out starts after what is already in the outbox: events written before webhooks were
-- delivered are history, not messages.
INSERT INTO "webhook_fan_out" ("name", "last_txid", "last_id") VALUES ('webhooks', pg_current_xact_id()::text::bigint, 'ffffffff-ffff-ffff-ffff-ffffffffffff');
