-- notifications: notifications_error, notifications_id_format, notifications_sequence, notifications_status, notifications_type
CREATE OR REPLACE FUNCTION notifications_row_checks(notification_id text, event_type text, sequence integer, status text, last_error text)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    v_broken := CASE
        WHEN NOT (length(last_error) <= 200) THEN 'notifications_error'
        WHEN NOT ((length(notification_id) = 28) AND (notification_id ~ '^msg_[0-9a-f]*$'::text)) THEN 'notifications_id_format'
        WHEN NOT (sequence > 0) THEN 'notifications_sequence'
        WHEN NOT (status = ANY (ARRAY['PENDING'::text, 'DELIVERED'::text, 'FAILED'::text])) THEN 'notifications_status'
        WHEN NOT (event_type = ANY (ARRAY['checkout.succeeded'::text, 'checkout.failed'::text, 'checkout.paid_after_failure'::text, 'checkout.canceled'::text, 'checkout.approved'::text, 'checkout.authorized'::text, 'checkout.risk_flagged'::text, 'refund.succeeded'::text, 'refund.failed'::text, 'dispute.opened'::text, 'dispute.won'::text, 'dispute.lost'::text, 'payout.paid'::text, 'payout.failed'::text, 'payout.reversed'::text, 'capture.succeeded'::text, 'capture.failed'::text, 'payment_method.saved'::text, 'payment_method.detached'::text])) THEN 'notifications_type'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "notifications" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'notifications', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$function$;
REVOKE ALL ON FUNCTION notifications_row_checks(notification_id text, event_type text, sequence integer, status text, last_error text) FROM PUBLIC;

-- The CHECK that runs it on every row of notifications written, added when
-- the table does not have it yet (a table made before this file was applied,
-- or a migration that dropped it to change its columns).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                    WHERE conrelid = 'public.notifications'::regclass AND conname = 'notifications_row_checks') THEN
        ALTER TABLE notifications ADD CONSTRAINT notifications_row_checks
            CHECK (notifications_row_checks(notification_id, event_type, sequence, status, last_error));
    END IF;
END
$$;
