-- A claim keeps the shift row HOT (issue 13): the update by which a signup counts on its shift
-- (migration 0016) touched two indexed things, `updated_at` (shifts_by_update) and the counters
-- (the predicate of shifts_available_by_start), so no claim was a heap-only update: each added an
-- entry to every index of the shift and left a dead version behind on the hottest row of a rush.
-- Now the count's change moves `counted_at`, which no index covers, and the partial index goes
-- (`available=true` lists filter the start-ordered rows). The shift's updatedAt (API.md §1) is the
-- later of `updated_at` and `counted_at`; updatedSince finds shifts whose counts changed through
-- their signups' own `updated_at` (signups_by_update), which every change of a signup's status
-- moves to now() or later: the trigger now refuses one that does not. Free space on each page (fillfactor 80) lets
-- the new versions of a busy row stay on its page, where PostgreSQL can prune the old ones.
DROP INDEX "shifts_available_by_start";--> statement-breakpoint
ALTER TABLE "shifts" ADD COLUMN "counted_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "shifts" SET (fillfactor = 80);--> statement-breakpoint
CREATE OR REPLACE FUNCTION "count_signup_places"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  confirmed_delta int := 0;
  waitlisted_delta int := 0;
  target_org uuid;
  target_shift uuid;
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    target_org := OLD.org_id;
    target_shift := OLD.shift_id;
    IF OLD.status IN ('confirmed', 'attended', 'no_show') THEN
      confirmed_delta := confirmed_delta - 1;
    ELSIF OLD.status = 'waitlisted' THEN
      waitlisted_delta := waitlisted_delta - 1;
    END IF;
  END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') THEN
    IF TG_OP = 'UPDATE' AND (NEW.shift_id <> OLD.shift_id OR NEW.org_id <> OLD.org_id) THEN
      RAISE EXCEPTION 'a signup does not move to another shift'
        USING ERRCODE = 'check_violation', CONSTRAINT = 'shift_counters_match_signups';
    END IF;
    target_org := NEW.org_id;
    target_shift := NEW.shift_id;
    IF NEW.status IN ('confirmed', 'attended', 'no_show') THEN
      confirmed_delta := confirmed_delta + 1;
    ELSIF NEW.status = 'waitlisted' THEN
      waitlisted_delta := waitlisted_delta + 1;
    END IF;
  END IF;
  IF confirmed_delta <> 0 OR waitlisted_delta <> 0 THEN
    -- updatedSince finds a shift whose counts changed by its signups' updated_at, which must
    -- therefore be at least the counted_at written below.
    IF TG_OP <> 'DELETE' AND NEW.updated_at < now() THEN
      RAISE EXCEPTION 'a change of a signup''s status moves its updated_at to now()'
        USING ERRCODE = 'check_violation', CONSTRAINT = 'shift_counters_match_signups';
    END IF;
    -- The guard of migration 0016 lets this update, and only this one, write the counters: a
    -- transaction-local flag, set around it.
    PERFORM set_config('together.counting_signups', 'on', true);
    -- A shift deleted in the same statement (an organisation's erasure) is simply not found.
    UPDATE "shifts" SET "confirmed_count" = "confirmed_count" + confirmed_delta,
                        "waitlist_count" = "waitlist_count" + waitlisted_delta,
                        "counted_at" = now(), "version" = "version" + 1
     WHERE "org_id" = target_org AND "id" = target_shift;
    PERFORM set_config('together.counting_signups', 'off', true);
  END IF;
  RETURN NULL;
END
$$;
