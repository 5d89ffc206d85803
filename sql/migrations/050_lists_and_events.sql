-- The merchant's lists (GET /v1/checkouts, /v1/payments, /v1/refunds,
-- /v1/payouts): newest first, a page after or before one object, each
-- answered from one index scan of (merchant, created_at, id); a backward
-- scan gives the newest first.  The status and creation-time filters are
-- conditions on the same scan.

CREATE INDEX IF NOT EXISTS checkouts_list
    ON checkouts (merchant_id, created_at, checkout_id);
CREATE INDEX IF NOT EXISTS payment_orders_list
    ON payment_orders (merchant_id, created_at, payment_order_id);
CREATE INDEX IF NOT EXISTS refunds_list
    ON refunds (merchant_id, created_at, refund_id);
CREATE INDEX IF NOT EXISTS payouts_list
    ON payouts (merchant_id, created_at, payout_id);

-- The events feed (GET /v1/events): one row per event, not one per
-- endpoint.  An event is stored once per endpoint that wants it, each with
-- its own id (webhook-id) and the same body; the row of the first of those
-- endpoints (by creation) is the event's row in the feed.
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS in_feed boolean NOT NULL DEFAULT false;

UPDATE notifications n SET in_feed = true
  FROM (SELECT DISTINCT ON (x.merchant_id, split_part(x.event_type, '.', 1), x.object_id, x.sequence)
               x.merchant_id, x.notification_id
          FROM notifications x
          JOIN notify_endpoints e
            ON e.merchant_id = x.merchant_id AND e.endpoint_id = x.endpoint_id
         ORDER BY x.merchant_id, split_part(x.event_type, '.', 1), x.object_id, x.sequence,
                  e.created_at, e.endpoint_id) f
 WHERE n.merchant_id = f.merchant_id AND n.notification_id = f.notification_id;

CREATE INDEX IF NOT EXISTS notifications_feed
    ON notifications (merchant_id, created_at, notification_id) WHERE in_feed;

COMMENT ON COLUMN notifications.in_feed IS
    'the event''s row in GET /v1/events: one per event (the first endpoint''s), whatever the number of endpoints';
