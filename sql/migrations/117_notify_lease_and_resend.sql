-- A replay of a notification whose attempt is in flight (a live lease)
-- keeps the lease and marks the row to be sent again once that attempt is
-- recorded (notifications.resend); an attempt is recorded only for the
-- claim it belongs to, named by the lease the claim returns
-- (pay_notify_lease's lease_until, checked by pay_notify_record).  The
-- claim of the previous release's workers, pay_notify_claim, keeps its
-- nine columns (they take a claim of any other number for none), made by
-- sql/functions/ after the migrations as every function.
SET LOCAL lock_timeout = '5s';
SET client_min_messages = warning;

ALTER TABLE notifications ADD COLUMN resend boolean DEFAULT false NOT NULL;
COMMENT ON COLUMN notifications.resend IS 'replayed while an attempt was in flight: sent again from the start of the schedule once that attempt is recorded';
