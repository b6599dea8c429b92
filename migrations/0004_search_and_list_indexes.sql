DROP INDEX "events_by_start";--> statement-breakpoint
CREATE INDEX "events_title_trgm" ON "events" USING gin ("title" gin_trgm_ops);--> statement-breakpoint
CREATE INDEX "shifts_available_by_start" ON "shifts" USING btree ("org_id","starts_at","id") WHERE "shifts"."cancelled_at" is null and "shifts"."confirmed_count" < "shifts"."capacity";--> statement-breakpoint
CREATE INDEX "volunteers_name_trgm" ON "volunteers" USING gin ("name" gin_trgm_ops);--> statement-breakpoint
CREATE INDEX "volunteers_email_trgm" ON "volunteers" USING gin ("email" gin_trgm_ops);--> statement-breakpoint
CREATE INDEX "events_by_start" ON "events" USING btree ("org_id",coalesce("starts_at", 'infinity'::timestamptz),"id");