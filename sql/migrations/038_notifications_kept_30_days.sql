-- Delivered notifications are kept 30 days, and the outbox's counts read
-- only the rows they count (review of the notifications, issue 14's stop).
--
-- Nothing deleted a notification: the table grew by every payment, refund,
-- dispute and pay-out for good, and two regular queries read all of it:
-- pay_notify_stats counted the dead letters with a scan of the whole table
-- (worker 0 of every gateway, every few seconds for /metrics: 463 ms at 2
-- million rows), and GET /v1/notifications?status=failed walked the
-- merchant's whole history for its few FAILED rows.
--
-- Now pay_purge (the housekeeping's minute) also deletes DELIVERED
-- notifications delivered more than 30 days ago, at most p_limit a call,
-- oldest first, as it does finished idempotency keys; PENDING rows and the
-- dead letters (FAILED, which a merchant may replay) stay.  The two partial
-- indexes hold only what those queries look for.  An endpoint's own rows
-- go with the merchant (foreign key), as before.

CREATE INDEX IF NOT EXISTS notifications_delivered ON notifications (delivered_at)
    WHERE status = 'DELIVERED';
CREATE INDEX IF NOT EXISTS notifications_failed
    ON notifications (merchant_id, created_at DESC, notification_id DESC)
    WHERE status = 'FAILED';

CREATE OR REPLACE FUNCTION pay_purge(p_limit int)
RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    n  int;
    d  int;
BEGIN
    -- 002's: done idempotency keys past their TTL
    WITH victims AS (
        SELECT ik.merchant_id, ik.idem_key
          FROM idempotency_keys ik
         WHERE ik.expires_at <= now() AND ik.state = 'done'
         ORDER BY ik.expires_at
         LIMIT GREATEST(COALESCE(p_limit, 0), 0)
           FOR UPDATE SKIP LOCKED
    )
    DELETE FROM idempotency_keys ik
     USING victims v
     WHERE ik.merchant_id = v.merchant_id AND ik.idem_key = v.idem_key;
    GET DIAGNOSTICS n = ROW_COUNT;

    -- notifications delivered more than 30 days ago
    WITH victims AS (
        SELECT x.merchant_id, x.notification_id
          FROM notifications x
         WHERE x.status = 'DELIVERED'
           AND x.delivered_at < now() - interval '30 days'
         ORDER BY x.delivered_at
         LIMIT GREATEST(COALESCE(p_limit, 0), 0)
           FOR UPDATE SKIP LOCKED
    )
    DELETE FROM notifications x
     USING victims v
     WHERE x.merchant_id = v.merchant_id AND x.notification_id = v.notification_id;
    GET DIAGNOSTICS d = ROW_COUNT;

    RETURN n + d;
END
$$;
