-- A shift's counters are its signups, enforced by the database (invariant 1 of API.md §7 in terms
-- of rows, not only of counters). The code changes a counter and its signup in one statement or one
-- transaction; these triggers check at commit that every shift touched still agrees with its rows,
-- so no code path can commit a counter that drifted. (They watch inserts, deletes and status
-- changes of signups and counter changes of shifts; moving a signup to another shift or TRUNCATE,
-- which the app never does, are outside them.) Checked at commit
-- (deferred) because a cancellation with a promotion legitimately passes through states that
-- disagree between its statements.
--
-- Counters that drifted before this check existed are first repaired from the rows, so that no
-- shift becomes unwritable. A repaired count above capacity fails the capacity CHECK and stops the
-- migration: an overbooked shift needs a person to look at it.
UPDATE "shifts" sh SET "confirmed_count" = coalesce(c.confirmed, 0), "waitlist_count" = coalesce(c.waitlisted, 0)
FROM "shifts" target
LEFT JOIN (
  SELECT s.org_id, s.shift_id,
         count(*) FILTER (WHERE s.status IN ('confirmed', 'attended', 'no_show'))::int AS confirmed,
         count(*) FILTER (WHERE s.status = 'waitlisted')::int AS waitlisted
    FROM "signups" s
   WHERE s.status <> 'cancelled'
   GROUP BY s.org_id, s.shift_id
) c ON c.org_id = target.org_id AND c.shift_id = target.id
WHERE sh.org_id = target.org_id AND sh.id = target.id
  AND (sh.confirmed_count <> coalesce(c.confirmed, 0) OR sh.waitlist_count <> coalesce(c.waitlisted, 0));--> statement-breakpoint
CREATE FUNCTION "check_shift_counters"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  target_org uuid;
  target_shift uuid;
  stored record;
BEGIN
  IF TG_TABLE_NAME = 'shifts' THEN
    target_org := NEW.org_id;
    target_shift := NEW.id;
  ELSIF TG_OP = 'DELETE' THEN
    target_org := OLD.org_id;
    target_shift := OLD.shift_id;
  ELSE
    target_org := NEW.org_id;
    target_shift := NEW.shift_id;
  END IF;
  SELECT sh.confirmed_count, sh.waitlist_count,
         count(s.id) FILTER (WHERE s.status IN ('confirmed', 'attended', 'no_show')) AS confirmed_rows,
         count(s.id) FILTER (WHERE s.status = 'waitlisted') AS waitlisted_rows
    INTO stored
    FROM shifts sh
    LEFT JOIN signups s ON s.org_id = sh.org_id AND s.shift_id = sh.id AND s.status <> 'cancelled'
   WHERE sh.org_id = target_org AND sh.id = target_shift
   GROUP BY sh.confirmed_count, sh.waitlist_count;
  -- A shift deleted in the same transaction (an organisation's erasure) has nothing left to agree with.
  IF FOUND AND (stored.confirmed_count <> stored.confirmed_rows OR stored.waitlist_count <> stored.waitlisted_rows) THEN
    RAISE EXCEPTION 'shift % counts % confirmed and % waitlisted, but its signups are % and %',
      target_shift, stored.confirmed_count, stored.waitlist_count, stored.confirmed_rows, stored.waitlisted_rows
      USING ERRCODE = 'check_violation', CONSTRAINT = 'shift_counters_match_signups';
  END IF;
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE CONSTRAINT TRIGGER "signups_counted_on_insert" AFTER INSERT ON "signups"
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (NEW.status <> 'cancelled')
  EXECUTE FUNCTION "check_shift_counters"();--> statement-breakpoint
CREATE CONSTRAINT TRIGGER "signups_counted_on_status" AFTER UPDATE OF "status" ON "signups"
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status)
  EXECUTE FUNCTION "check_shift_counters"();--> statement-breakpoint
CREATE CONSTRAINT TRIGGER "signups_counted_on_delete" AFTER DELETE ON "signups"
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (OLD.status <> 'cancelled')
  EXECUTE FUNCTION "check_shift_counters"();--> statement-breakpoint
CREATE CONSTRAINT TRIGGER "shifts_counters_on_insert" AFTER INSERT ON "shifts"
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (NEW.confirmed_count <> 0 OR NEW.waitlist_count <> 0)
  EXECUTE FUNCTION "check_shift_counters"();--> statement-breakpoint
CREATE CONSTRAINT TRIGGER "shifts_counters_on_update" AFTER UPDATE OF "confirmed_count", "waitlist_count" ON "shifts"
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (OLD.confirmed_count IS DISTINCT FROM NEW.confirmed_count OR OLD.waitlist_count IS DISTINCT FROM NEW.waitlist_count)
  EXECUTE FUNCTION "check_shift_counters"();
