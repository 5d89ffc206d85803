-- A replay of a notification whose attempt is in flight (a live lease)
-- keeps the lease and marks the row to be sent again once that attempt is
-- recorded (notifications.resend); an attempt is recorded only for the
-- claim it belongs to, named by the lease the claim returns
-- (pay_notify_claim's lease_until, checked by pay_notify_record).
-- pay_notify_claim's result type changes: it cannot be replaced, so the
-- earlier definition is dropped here and the current one, in
-- sql/functions/, is created after the migrations (the previous release's
-- workers read its columns by name, all of which it keeps).
SET LOCAL lock_timeout = '5s';
SET client_min_messages = warning;

ALTER TABLE notifications ADD COLUMN resend boolean DEFAULT false NOT NULL;
COMMENT ON COLUMN notifications.resend IS 'replayed while an attempt was in flight: sent again from the start of the schedule once that attempt is recorded';

DROP FUNCTION IF EXISTS pay_notify_claim(text, integer, integer, integer);
