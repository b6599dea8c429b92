-- A shift's counters are kept by the database, in O(1) per change (issue 13). Migration 0009
-- checked at commit that every shift touched still agreed with its signup rows by counting them:
-- a cost that grew with the shift (0.8 ms per claim on a busy one, twice per claim). Now each
-- signup row that starts or stops taking a place (inserted, deleted, or its status changed) adds
-- or subtracts one on its shift in the same statement, and nothing else may write the counters:
-- they equal the rows by construction, and the capacity CHECK (shifts_capacity_not_exceeded) is
-- what refuses a place too many. The same update moves the shift's `updated_at` and `version`, as
-- a change of its counts always did (API.md §1's updatedSince), so a claim still writes the shift
-- row once. (A signup never moves to another shift; TRUNCATE, which the app never does, is outside
-- them, as before.)
DROP TRIGGER "signups_counted_on_insert" ON "signups";--> statement-breakpoint
DROP TRIGGER "signups_counted_on_status" ON "signups";--> statement-breakpoint
DROP TRIGGER "signups_counted_on_delete" ON "signups";--> statement-breakpoint
DROP TRIGGER "shifts_counters_on_insert" ON "shifts";--> statement-breakpoint
DROP TRIGGER "shifts_counters_on_update" ON "shifts";--> statement-breakpoint
DROP FUNCTION "check_shift_counters"();--> statement-breakpoint
CREATE FUNCTION "count_signup_places"() RETURNS trigger LANGUAGE plpgsql AS $$
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
    -- The guard below lets this update, and only this one, write the counters: a transaction-local
    -- flag, set around it.
    PERFORM set_config('together.counting_signups', 'on', true);
    -- A shift deleted in the same statement (an organisation's erasure) is simply not found.
    UPDATE "shifts" SET "confirmed_count" = "confirmed_count" + confirmed_delta,
                        "waitlist_count" = "waitlist_count" + waitlisted_delta,
                        "updated_at" = now(), "version" = "version" + 1
     WHERE "org_id" = target_org AND "id" = target_shift;
    PERFORM set_config('together.counting_signups', 'off', true);
  END IF;
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE TRIGGER "signups_count_places" AFTER INSERT OR DELETE OR UPDATE OF "status", "shift_id", "org_id" ON "signups"
  FOR EACH ROW EXECUTE FUNCTION "count_signup_places"();--> statement-breakpoint
-- Only that trigger writes the counters (it raises a transaction-local flag around its update):
-- any other statement that changes them, at any depth, is refused, and a new shift starts at zero.
CREATE FUNCTION "shift_counters_follow_signups"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.confirmed_count <> 0 OR NEW.waitlist_count <> 0 THEN
      RAISE EXCEPTION 'a new shift has no signups: its counters start at 0'
        USING ERRCODE = 'check_violation', CONSTRAINT = 'shift_counters_match_signups';
    END IF;
  ELSIF coalesce(current_setting('together.counting_signups', true), 'off') <> 'on'
    AND (NEW.confirmed_count IS DISTINCT FROM OLD.confirmed_count OR NEW.waitlist_count IS DISTINCT FROM OLD.waitlist_count) THEN
    RAISE EXCEPTION 'shift % counts % confirmed and % waitlisted, but its signups say % and %: the counters follow the signups and are not written directly',
      NEW.id, NEW.confirmed_count, NEW.waitlist_count, OLD.confirmed_count, OLD.waitlist_count
      USING ERRCODE = 'check_violation', CONSTRAINT = 'shift_counters_match_signups';
  END IF;
  RETURN NEW;
END
$$;--> statement-breakpoint
CREATE TRIGGER "shifts_counters_follow_signups" BEFORE INSERT OR UPDATE OF "confirmed_count", "waitlist_count" ON "shifts"
  FOR EACH ROW EXECUTE FUNCTION "shift_counters_follow_signups"();
