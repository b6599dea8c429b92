DROP INDEX "signups_one_active_per_volunteer";--> statement-breakpoint
CREATE UNIQUE INDEX "signups_one_active_per_volunteer" ON "signups" USING btree ("org_id","shift_id","volunteer_id") WHERE "signups"."status" <> 'cancelled';--> statement-breakpoint
ALTER TABLE "shifts" ADD CONSTRAINT "shifts_waitlist_kept" CHECK ("shifts"."waitlist" or "shifts"."waitlist_count" = 0);--> statement-breakpoint
ALTER TABLE "signups" ADD CONSTRAINT "signups_cancelled_at_matches" CHECK (("signups"."status" = 'cancelled') = ("signups"."cancelled_at" is not null));--> statement-breakpoint
ALTER TABLE "signups" ADD CONSTRAINT "signups_check_out_after_in" CHECK ("signups"."checked_out_at" is null or ("signups"."checked_in_at" is not null and "signups"."checked_out_at" >= "signups"."checked_in_at"));