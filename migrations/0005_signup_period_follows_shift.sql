ALTER TABLE "shifts" ADD CONSTRAINT "shifts_period_key" UNIQUE("org_id","id","period");--> statement-breakpoint
ALTER TABLE "signups" ADD CONSTRAINT "signups_shift_period_fk" FOREIGN KEY ("org_id","shift_id","period") REFERENCES "public"."shifts"("org_id","id","period") ON DELETE no action ON UPDATE cascade;
