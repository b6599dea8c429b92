-- Invariant 3 of API.md §7: no two confirmed signups of one volunteer overlap in time.
-- `period` is a copy of the shift's interval, written with the signup and rewritten in the same
-- transaction when the shift's times change. drizzle-kit cannot declare EXCLUDE constraints.
ALTER TABLE "signups"
  ADD CONSTRAINT "signups_no_overlap"
  EXCLUDE USING gist ("org_id" WITH =, "volunteer_id" WITH =, "period" WITH &&)
  WHERE ("status" = 'confirmed');
