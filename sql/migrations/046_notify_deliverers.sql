-- The hosts whose gateways deliver notifications (payments_notify on): its
-- worker 0 notes the host about once a minute (pay_notify_heartbeat), so
-- that the tools can tell when nothing delivers: payments-merchant
-- add-endpoint warns when no host was seen in the last five minutes.  One
-- row per host, rewritten in place; a host gone for a week is dropped.

CREATE TABLE IF NOT EXISTS notify_deliverers (
    host     text PRIMARY KEY CHECK (length(host) BETWEEN 1 AND 255),
    seen_at  timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE notify_deliverers IS
    'hosts whose gateways deliver notifications, and when each was last seen';
