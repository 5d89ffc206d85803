-- Notifications to merchants: the transactional outbox (doc/NOTIFICATIONS.md).
--
-- Every state change a merchant hears about writes its notification rows in
-- the transaction that makes the change, from triggers on the changed
-- tables: a change that commits is always notified, a change that rolls
-- back never is.  The gateway's workers deliver the rows (pay_notify_claim,
-- pay_notify_record); a row is held by one worker at a time through its
-- lease and is recorded only by the lease's holder.
--
-- Signing secrets are sealed by C (AES-256-GCM under payments_encryption_key,
-- the endpoint id as associated data): this file never sees one in clear.
--
-- SQLSTATEs (class PY, sql/001_schema.sql lists the others):
--   PY010  pay_notify_replay: the notification's endpoint is disabled

SET client_min_messages = warning;

-- The merchants' endpoints, written by the operator (payments-merchant).
CREATE TABLE IF NOT EXISTS notify_endpoints (
    merchant_id         text        NOT NULL,
    endpoint_id         text        NOT NULL
                                    CONSTRAINT notify_endpoints_id_format
                                    CHECK (endpoint_id ~ '^ep_[0-9a-f]{24}$'),
    url                 text        NOT NULL
                                    CONSTRAINT notify_endpoints_url
                                    CHECK (url ~ '^https://' AND length(url) <= 2048),
    host                text        NOT NULL
                                    CONSTRAINT notify_endpoints_host
                                    CHECK (host = lower(host) AND length(host) BETWEEN 1 AND 253),
    -- empty: every type
    event_types         text[]      NOT NULL DEFAULT '{}',
    secret_sealed       text        NOT NULL
                                    CONSTRAINT notify_endpoints_secret
                                    CHECK (secret_sealed LIKE 'v1.%'),
    -- the secret before the last rotation, signing too until prev_until
    prev_secret_sealed  text        CONSTRAINT notify_endpoints_prev_secret
                                    CHECK (prev_secret_sealed LIKE 'v1.%'),
    prev_until          timestamptz,
    disabled_at         timestamptz,
    disabled_reason     text        CONSTRAINT notify_endpoints_reason
                                    CHECK (length(disabled_reason) <= 200),
    -- failed deliveries in a row
    failures            int         NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, endpoint_id),
    CONSTRAINT notify_endpoints_prev CHECK ((prev_secret_sealed IS NULL) = (prev_until IS NULL))
);

-- One row per notification and endpoint.
CREATE TABLE IF NOT EXISTS notifications (
    merchant_id      text        NOT NULL,
    notification_id  text        NOT NULL
                                 CONSTRAINT notifications_id_format
                                 CHECK (notification_id ~ '^msg_[0-9a-f]{24}$'),
    endpoint_id      text        NOT NULL,
    event_type       text        NOT NULL
                                 CONSTRAINT notifications_type
                                 CHECK (event_type IN ('checkout.succeeded', 'checkout.failed',
                                                       'refund.succeeded', 'refund.failed',
                                                       'dispute.opened', 'dispute.won', 'dispute.lost',
                                                       'payout.paid', 'payout.failed')),
    checkout_id      text,
    object_id        text        NOT NULL,
    sequence         int         NOT NULL CONSTRAINT notifications_sequence CHECK (sequence > 0),
    payload          text        NOT NULL,
    status           text        NOT NULL DEFAULT 'PENDING'
                                 CONSTRAINT notifications_status
                                 CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts         int         NOT NULL DEFAULT 0,
    next_at          timestamptz NOT NULL DEFAULT now(),
    lease_owner      text,
    lease_until      timestamptz,
    last_status      int,
    last_error       text        CONSTRAINT notifications_error CHECK (length(last_error) <= 200),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    PRIMARY KEY (merchant_id, notification_id),
    FOREIGN KEY (merchant_id, endpoint_id) REFERENCES notify_endpoints (merchant_id, endpoint_id)
);
-- the claim's scan: only what waits
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (next_at)
    WHERE status = 'PENDING';
-- the rows held by a claim (pay_notify_claim counts them per endpoint): a
-- few, however long the backlog
CREATE INDEX IF NOT EXISTS notifications_leased ON notifications (merchant_id, endpoint_id)
    WHERE status = 'PENDING' AND lease_owner IS NOT NULL;
-- the merchant's list, newest first
CREATE INDEX IF NOT EXISTS notifications_list ON notifications (merchant_id, created_at DESC);

-- The sequence of each checkout (its refunds and disputes count under it)
-- and of each pay-out: the row lock of the upsert orders concurrent
-- changes of one subject.
CREATE TABLE IF NOT EXISTS notify_sequences (
    merchant_id  text  NOT NULL,
    subject      text  NOT NULL,
    last         int   NOT NULL,
    PRIMARY KEY (merchant_id, subject)
);

-- ---------------------------------------------------------------------------
-- The outbox's writer.

-- One change: nothing when no endpoint of the merchant wants the type (one
-- index probe), else the subject's next sequence number and one row per
-- endpoint that wants it (a disabled one too: its rows wait for it).
CREATE OR REPLACE FUNCTION notify_enqueue(p_merchant text, p_type text,
    p_checkout text, p_object text, p_data jsonb)
RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_seq      int;
    v_payload  text;
BEGIN
    PERFORM 1 FROM notify_endpoints e
     WHERE e.merchant_id = p_merchant
       AND (e.event_types = '{}' OR p_type = ANY (e.event_types))
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;

    INSERT INTO notify_sequences AS s (merchant_id, subject, last)
    VALUES (p_merchant, coalesce(p_checkout, p_object), 1)
    ON CONFLICT (merchant_id, subject) DO UPDATE SET last = s.last + 1
    RETURNING s.last INTO v_seq;

    v_payload := jsonb_build_object(
                     'type', p_type,
                     'timestamp', ts_rfc3339(now()),
                     'data', p_data || jsonb_build_object('merchant_id', p_merchant,
                                                          'sequence', v_seq))::text;

    INSERT INTO notifications (merchant_id, notification_id, endpoint_id, event_type,
                               checkout_id, object_id, sequence, payload)
    SELECT p_merchant, 'msg_' || encode(gen_random_bytes_compat(12), 'hex'), e.endpoint_id,
           p_type, p_checkout, p_object, v_seq, v_payload
      FROM notify_endpoints e
     WHERE e.merchant_id = p_merchant
       AND (e.event_types = '{}' OR p_type = ANY (e.event_types));
END
$$;

-- A checkout succeeded or failed.  Deferred to the commit: the functions
-- that move a checkout update its row before its orders', and the payload
-- lists the orders as they are when the transaction ends.  A deferred
-- trigger runs after the pay_* function returned, as the session's role
-- (the gateway's, which reads no table): so the trigger functions are
-- SECURITY DEFINER, like the functions that fire them.
CREATE OR REPLACE FUNCTION checkouts_notify() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM notify_enqueue(
        NEW.merchant_id,
        CASE NEW.status WHEN 'SUCCESS' THEN 'checkout.succeeded' ELSE 'checkout.failed' END,
        NEW.checkout_id, NEW.checkout_id,
        jsonb_build_object(
            'checkout_id', NEW.checkout_id,
            'status', NEW.status,
            'amount_total_minor', NEW.amount_total,
            'currency', NEW.currency,
            'payment_orders', coalesce((
                SELECT jsonb_agg(jsonb_build_object(
                           'payment_order_id', o.payment_order_id,
                           'status', o.status,
                           'amount_minor', o.amount,
                           'currency', o.currency) ORDER BY o.line_no)
                  FROM payment_orders o
                 WHERE o.merchant_id = NEW.merchant_id
                   AND o.checkout_id = NEW.checkout_id), '[]'::jsonb)));
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS checkouts_notify ON checkouts;
CREATE CONSTRAINT TRIGGER checkouts_notify
    AFTER UPDATE OF status ON checkouts
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status IN ('SUCCESS', 'FAILED'))
    EXECUTE FUNCTION checkouts_notify();

CREATE OR REPLACE FUNCTION refunds_notify() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status IS NOT DISTINCT FROM NEW.status THEN
        RETURN NULL;
    END IF;
    PERFORM notify_enqueue(
        NEW.merchant_id,
        CASE NEW.status WHEN 'SUCCEEDED' THEN 'refund.succeeded' ELSE 'refund.failed' END,
        NEW.checkout_id, NEW.refund_id,
        jsonb_strip_nulls(jsonb_build_object(
            'refund_id', NEW.refund_id,
            'checkout_id', NEW.checkout_id,
            'payment_order_id', NEW.payment_order_id,
            'status', NEW.status,
            'amount_minor', NEW.amount,
            'currency', NEW.currency,
            'failure', NEW.failure)));
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS refunds_notify ON refunds;
CREATE TRIGGER refunds_notify
    AFTER INSERT OR UPDATE OF status ON refunds
    FOR EACH ROW
    WHEN (NEW.status IN ('SUCCEEDED', 'FAILED'))
    EXECUTE FUNCTION refunds_notify();

CREATE OR REPLACE FUNCTION disputes_notify() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status IS NOT DISTINCT FROM NEW.status THEN
        RETURN NULL;
    END IF;
    PERFORM notify_enqueue(
        NEW.merchant_id,
        CASE NEW.status WHEN 'OPEN' THEN 'dispute.opened'
                        WHEN 'WON' THEN 'dispute.won' ELSE 'dispute.lost' END,
        NEW.checkout_id, NEW.dispute_id,
        jsonb_build_object(
            'dispute_id', NEW.dispute_id,
            'checkout_id', NEW.checkout_id,
            'status', NEW.status,
            'amount_minor', NEW.amount,
            'currency', NEW.currency));
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS disputes_notify ON disputes;
CREATE TRIGGER disputes_notify
    AFTER INSERT OR UPDATE OF status ON disputes
    FOR EACH ROW
    EXECUTE FUNCTION disputes_notify();

CREATE OR REPLACE FUNCTION payouts_notify() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status IS NOT DISTINCT FROM NEW.status THEN
        RETURN NULL;
    END IF;
    PERFORM notify_enqueue(
        NEW.merchant_id,
        CASE NEW.status WHEN 'PAID' THEN 'payout.paid' ELSE 'payout.failed' END,
        NULL, NEW.payout_id,
        jsonb_strip_nulls(jsonb_build_object(
            'payout_id', NEW.payout_id,
            'seller_account', NEW.seller_account,
            'status', NEW.status,
            'amount_minor', NEW.amount,
            'currency', NEW.currency,
            'failure', NEW.failure)));
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS payouts_notify ON payouts;
CREATE TRIGGER payouts_notify
    AFTER INSERT OR UPDATE OF status ON payouts
    FOR EACH ROW
    WHEN (NEW.status IN ('PAID', 'FAILED'))
    EXECUTE FUNCTION payouts_notify();

-- ---------------------------------------------------------------------------
-- The gateway's side.

-- Up to p_limit due rows, leased to p_owner for p_lease_ms.  SKIP LOCKED:
-- concurrent claimers (workers, gateways) take disjoint rows; a row whose
-- lease ran out (its holder died) is due again.  An endpoint never has more
-- than p_per_endpoint rows leased at once, across every worker and gateway:
-- a slow or hanging endpoint holds that many deliveries, not everybody's.
CREATE OR REPLACE FUNCTION pay_notify_claim(p_owner text, p_limit int, p_lease_ms int,
    p_per_endpoint int)
RETURNS TABLE(notification_id text, merchant_id text, endpoint_id text, url text,
              host text, secret_sealed text, prev_secret_sealed text, attempts int,
              payload text)
-- jit off: the planner prices the index walk as if it read the whole
-- backlog (it stops at the limit), and compiling that costs ~50 ms a claim
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET jit = off AS $$
BEGIN
    IF p_limit < 1 OR p_limit > 1000 OR p_lease_ms < 1000 OR p_per_endpoint < 1
       OR length(p_owner) NOT BETWEEN 1 AND 300
    THEN
        RAISE EXCEPTION 'pay_notify_claim: limit 1..1000, lease >= 1000 ms, per endpoint >= 1, an owner'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    RETURN QUERY
    WITH leased AS (
        SELECT n.merchant_id, n.endpoint_id, count(*) AS busy
          FROM notifications n
         WHERE n.status = 'PENDING' AND n.lease_owner IS NOT NULL
           AND n.lease_until >= clock_timestamp()
         GROUP BY n.merchant_id, n.endpoint_id
    ), candidates AS (
        SELECT c.merchant_id, c.notification_id, c.next_at,
               row_number() OVER (PARTITION BY c.merchant_id, c.endpoint_id
                                  ORDER BY c.next_at) AS rn
          -- the oldest due rows, walking notifications_due in next_at
          -- order and stopping early, however long the backlog
          FROM (SELECT n.merchant_id, n.notification_id, n.endpoint_id, n.next_at
                  FROM notifications n
                 WHERE n.status = 'PENDING'
                   AND n.next_at <= now()
                   AND (n.lease_until IS NULL OR n.lease_until < clock_timestamp())
                   -- a scalar subquery, not a join: the scan stays in
                   -- next_at order and stops at the limit
                   AND (SELECT e.disabled_at FROM notify_endpoints e
                         WHERE e.merchant_id = n.merchant_id
                           AND e.endpoint_id = n.endpoint_id) IS NULL
                 ORDER BY n.next_at
                 LIMIT p_limit * 4) c
    ), due AS (
        SELECT n.merchant_id, n.notification_id
          FROM notifications n
         WHERE (n.merchant_id, n.notification_id) IN (
                   SELECT c.merchant_id, c.notification_id
                     FROM candidates c
                     JOIN notifications x ON x.merchant_id = c.merchant_id
                                         AND x.notification_id = c.notification_id
                     LEFT JOIN leased l ON l.merchant_id = x.merchant_id
                                       AND l.endpoint_id = x.endpoint_id
                    WHERE c.rn + coalesce(l.busy, 0) <= p_per_endpoint)
           AND n.status = 'PENDING'
           AND (n.lease_until IS NULL OR n.lease_until < clock_timestamp())
         ORDER BY n.next_at
         LIMIT p_limit
           FOR UPDATE OF n SKIP LOCKED
    ), claimed AS (
        UPDATE notifications n
           SET lease_owner = p_owner,
               lease_until = clock_timestamp() + make_interval(secs => p_lease_ms / 1000.0),
               attempts = n.attempts + 1,
               updated_at = now()
          FROM due
         WHERE n.merchant_id = due.merchant_id AND n.notification_id = due.notification_id
        RETURNING n.notification_id, n.merchant_id, n.endpoint_id, n.attempts, n.payload
    )
    SELECT c.notification_id, c.merchant_id, c.endpoint_id, e.url, e.host, e.secret_sealed,
           CASE WHEN e.prev_until > now() THEN e.prev_secret_sealed END,
           c.attempts, c.payload
      FROM claimed c
      JOIN notify_endpoints e ON e.merchant_id = c.merchant_id AND e.endpoint_id = c.endpoint_id;
END
$$;

-- One attempt's outcome, recorded only by the lease's holder (anything
-- else is STALE and changes nothing).  p_retry_ms NULL: no retry, the row
-- is FAILED (the dead-letter list).  An endpoint failing p_disable_after
-- times in a row is disabled; endpoint_disabled is true only on that move.
CREATE OR REPLACE FUNCTION pay_notify_record(p_merchant text, p_id text, p_owner text,
    p_ok boolean, p_http_status int, p_error text, p_retry_ms bigint, p_disable_after int)
RETURNS TABLE(status text, endpoint_disabled boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_endpoint  text;
    v_status    text;
    v_failures  int;
    v_disabled  boolean := false;
BEGIN
    IF p_ok THEN
        UPDATE notifications n
           SET status = 'DELIVERED', delivered_at = now(), lease_owner = NULL,
               lease_until = NULL, last_status = p_http_status, last_error = NULL,
               updated_at = now()
         WHERE n.merchant_id = p_merchant AND n.notification_id = p_id
           AND n.status = 'PENDING' AND n.lease_owner = p_owner
        RETURNING n.endpoint_id, n.status INTO v_endpoint, v_status;
    ELSE
        UPDATE notifications n
           SET status = CASE WHEN p_retry_ms IS NULL THEN 'FAILED' ELSE 'PENDING' END,
               next_at = CASE WHEN p_retry_ms IS NULL THEN n.next_at
                              ELSE now() + make_interval(secs => p_retry_ms / 1000.0) END,
               lease_owner = NULL, lease_until = NULL,
               last_status = p_http_status, last_error = left(p_error, 200),
               updated_at = now()
         WHERE n.merchant_id = p_merchant AND n.notification_id = p_id
           AND n.status = 'PENDING' AND n.lease_owner = p_owner
        RETURNING n.endpoint_id, n.status INTO v_endpoint, v_status;
    END IF;

    IF v_endpoint IS NULL THEN
        RETURN QUERY SELECT 'STALE'::text, false;
        RETURN;
    END IF;

    IF p_ok THEN
        UPDATE notify_endpoints e SET failures = 0
         WHERE e.merchant_id = p_merchant AND e.endpoint_id = v_endpoint AND e.failures <> 0;
    ELSE
        UPDATE notify_endpoints e SET failures = e.failures + 1, updated_at = now()
         WHERE e.merchant_id = p_merchant AND e.endpoint_id = v_endpoint
        RETURNING e.failures INTO v_failures;

        IF p_disable_after > 0 AND v_failures >= p_disable_after THEN
            UPDATE notify_endpoints e
               SET disabled_at = now(), disabled_reason = 'failures', updated_at = now()
             WHERE e.merchant_id = p_merchant AND e.endpoint_id = v_endpoint
               AND e.disabled_at IS NULL;
            v_disabled := FOUND;
        END IF;
    END IF;

    RETURN QUERY SELECT v_status, v_disabled;
END
$$;

-- The merchant API's item.
CREATE OR REPLACE FUNCTION notify_item(n notifications)
RETURNS json
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT json_build_object(
               'id', n.notification_id,
               'type', n.event_type,
               'endpoint_id', n.endpoint_id,
               'status', n.status,
               'attempts', n.attempts,
               'last_status', n.last_status,
               'last_error', n.last_error,
               'created_at', ts_rfc3339(n.created_at),
               'next_attempt_at', CASE WHEN n.status = 'PENDING' THEN ts_rfc3339(n.next_at) END,
               'delivered_at', ts_rfc3339(n.delivered_at),
               'checkout_id', n.checkout_id,
               'object_id', n.object_id,
               'sequence', n.sequence);
$$;

CREATE OR REPLACE FUNCTION pay_notify_list(p_merchant text, p_status text, p_limit int)
RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT coalesce(json_agg(notify_item(l) ORDER BY l.created_at DESC, l.notification_id DESC),
                    '[]'::json)::text
      FROM (SELECT n.*
              FROM notifications n
             WHERE n.merchant_id = p_merchant
               AND (p_status IS NULL OR n.status = p_status)
             ORDER BY n.created_at DESC, n.notification_id DESC
             LIMIT greatest(1, least(p_limit, 100))) l;
$$;

CREATE OR REPLACE FUNCTION pay_notify_get(p_merchant text, p_id text)
RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT notify_item(n)::text
      FROM notifications n
     WHERE n.merchant_id = p_merchant AND n.notification_id = p_id;
$$;

-- Sends a notification again from the start of the schedule, whatever its
-- status, with the same id.  NULL: not the merchant's.
CREATE OR REPLACE FUNCTION pay_notify_replay(p_merchant text, p_id text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v  notifications;
BEGIN
    PERFORM 1
       FROM notifications n
       JOIN notify_endpoints e ON e.merchant_id = n.merchant_id AND e.endpoint_id = n.endpoint_id
      WHERE n.merchant_id = p_merchant AND n.notification_id = p_id
        AND e.disabled_at IS NOT NULL;
    IF FOUND THEN
        RAISE EXCEPTION 'pay_notify_replay: the endpoint is disabled'
            USING ERRCODE = 'PY010';
    END IF;

    UPDATE notifications n
       SET status = 'PENDING', attempts = 0, next_at = now(), lease_owner = NULL,
           lease_until = NULL, delivered_at = NULL, updated_at = now()
     WHERE n.merchant_id = p_merchant AND n.notification_id = p_id
    RETURNING n.* INTO v;

    IF v.notification_id IS NULL THEN
        RETURN NULL;
    END IF;

    RETURN notify_item(v)::text;
END
$$;

-- For /metrics (worker 0, every few seconds).
CREATE OR REPLACE FUNCTION pay_notify_stats()
RETURNS TABLE(pending bigint, oldest_pending_seconds bigint, failed bigint,
              endpoints_disabled bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT (SELECT count(*) FROM notifications n WHERE n.status = 'PENDING'),
           (SELECT coalesce(ts_epoch(now()) - ts_epoch(min(n.created_at)), 0)
              FROM notifications n WHERE n.status = 'PENDING'),
           (SELECT count(*) FROM notifications n WHERE n.status = 'FAILED'),
           (SELECT count(*) FROM notify_endpoints e WHERE e.disabled_at IS NOT NULL);
$$;

-- ---------------------------------------------------------------------------
-- Privileges: the gateway executes the pay_* functions and touches no table.
REVOKE ALL ON notify_endpoints, notifications, notify_sequences FROM PUBLIC;
REVOKE ALL ON FUNCTION
    notify_enqueue(text, text, text, text, jsonb),
    checkouts_notify(), refunds_notify(), disputes_notify(), payouts_notify(),
    notify_item(notifications),
    pay_notify_claim(text, int, int, int),
    pay_notify_record(text, text, text, boolean, int, text, bigint, int),
    pay_notify_list(text, text, int),
    pay_notify_get(text, text),
    pay_notify_replay(text, text),
    pay_notify_stats()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    pay_notify_claim(text, int, int, int),
    pay_notify_record(text, text, text, boolean, int, text, bigint, int),
    pay_notify_list(text, text, int),
    pay_notify_get(text, text),
    pay_notify_replay(text, text),
    pay_notify_stats()
    TO payments_gateway;
