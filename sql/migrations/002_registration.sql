-- ngx_payments schema, part 2: the gateway's role and the functions of
-- doc/CONTRACTS.md section 1, which are all the gateway may do.
--
-- Every pay_* function is SECURITY DEFINER with a pinned search_path, so the
-- gateway's role needs no table privilege at all, and nothing it puts in its
-- own search_path or pg_temp can stand in for one of our tables.
-- They are plpgsql rather than SQL functions on purpose: SECURITY DEFINER
-- functions are never inlined, and plpgsql caches its statements' plans for
-- the life of the connection, where a SQL function is planned on every call.
--
-- Times: now() is the transaction's start, the same for every row one call
-- writes.  Lease deadlines use clock_timestamp() instead: a claim may wait on
-- another transaction's row lock, and a lease is about wall-clock time.

SET client_min_messages = warning;

-- The gateway logs in (NOLOGIN would make the role useless); how it
-- authenticates (password, cert, peer) is pg_hba.conf's business.
-- Roles are per cluster while the migration lock is per database: two
-- databases of one cluster migrating at once may both try to create it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'payments_gateway') THEN
        BEGIN
            CREATE ROLE payments_gateway LOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;   -- the other database's migration made it first
        END;
    ELSIF NOT (SELECT rolcanlogin FROM pg_roles WHERE rolname = 'payments_gateway') THEN
        ALTER ROLE payments_gateway LOGIN;
    END IF;
END
$$;

-- RFC 3339 in UTC, whole seconds: "2026-11-22T10:00:00Z".  A plain SQL
-- function (no SET clause) so that the planner inlines it.
CREATE OR REPLACE FUNCTION ts_rfc3339(ts timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

CREATE OR REPLACE FUNCTION ts_epoch(ts timestamptz) RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.floor(pg_catalog.date_part('epoch', ts))::bigint
$$;

-- ---------------------------------------------------------------------------
-- Authentication: the key's owner, hash (compared in constant time in C), mode
-- and the merchant's return origins, in one round trip.
CREATE OR REPLACE FUNCTION pay_auth(p_key_id text)
RETURNS TABLE(merchant_id text, key_hash text, mode text, origins text[])
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT k.merchant_id, k.key_hash, k.mode,
           ARRAY(SELECT o.origin FROM merchant_return_origins o
                  WHERE o.merchant_id = k.merchant_id ORDER BY o.origin)
      FROM api_keys k
      JOIN merchants m ON m.merchant_id = k.merchant_id
     WHERE k.key_id = p_key_id AND k.revoked_at IS NULL AND NOT m.disabled;
END
$$;

-- ---------------------------------------------------------------------------
-- Claim an idempotency key and, for a new key, register the checkout and its
-- orders in the same transaction (see CONTRACTS.md for the outcomes).
CREATE OR REPLACE FUNCTION pay_claim(
    p_merchant text, p_idem_key text, p_fingerprint text,
    p_lease_seconds int, p_ttl_seconds int,
    p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint,
    p_success_url text, p_cancel_url text, p_buyer_email text,
    p_expires_at bigint, p_psp_request text, p_orders jsonb,
    p_duplicate_body text)
RETURNS TABLE(outcome text, lease bigint, retry_after int,
              response_status int, response_body text,
              psp_request text, expires_at bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    k             idempotency_keys%ROWTYPE;
    v_lease       bigint;
    v_now         timestamptz;
    v_lease_for   interval := p_lease_seconds * interval '1 second';
    v_ttl         interval := p_ttl_seconds * interval '1 second';
    v_sum         numeric;
    v_constraint  text;
    v_request     text;
    v_expires     timestamptz;
BEGIN
    -- Adapter bugs, not client errors: fail loudly rather than store them.
    IF p_lease_seconds IS NULL OR p_lease_seconds < 1
       OR p_ttl_seconds IS NULL OR p_ttl_seconds < 1 THEN
        RAISE EXCEPTION 'pay_claim: lease and ttl must be at least 1 second'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(p_orders) IS DISTINCT FROM 'array' OR p_psp_request IS NULL
       OR p_duplicate_body IS NULL OR p_expires_at IS NULL THEN
        RAISE EXCEPTION 'pay_claim: p_orders must be an array; psp_request, duplicate body and expires_at are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- What the missing foreign key would have checked (001 says why it is
    -- missing), without locking the merchant's row.
    PERFORM 1 FROM merchants m WHERE m.merchant_id = p_merchant;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pay_claim: no merchant %', p_merchant
            USING ERRCODE = 'foreign_key_violation';
    END IF;

    -- The key row is the one thing concurrent requests with the same key
    -- serialise on: a second INSERT waits for the first transaction, then
    -- either conflicts (it committed) or proceeds (it rolled back).  The loop
    -- only repeats when pay_purge deleted the conflicting row in between.
    FOR attempt IN 1..3 LOOP
        INSERT INTO idempotency_keys AS ik
               (merchant_id, idem_key, fingerprint, state, lease, lease_until,
                checkout_id, created_at, expires_at)
        VALUES (p_merchant, p_idem_key, p_fingerprint, 'in_progress', 1,
                clock_timestamp() + v_lease_for, p_checkout_id, now(), now() + v_ttl)
        ON CONFLICT (merchant_id, idem_key) DO NOTHING
        RETURNING ik.lease INTO v_lease;
        EXIT WHEN v_lease IS NOT NULL;

        -- Under READ COMMITTED this statement sees the row that conflicted.
        SELECT * INTO k FROM idempotency_keys ik
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
           FOR UPDATE;
        CONTINUE WHEN NOT FOUND;
        v_now := clock_timestamp();

        IF k.state = 'done' AND k.expires_at <= v_now THEN
            -- Past its TTL a done key counts as absent: claim the row afresh
            -- (the lease counter keeps counting, so old holders stay fenced).
            UPDATE idempotency_keys ik
               SET fingerprint = p_fingerprint, state = 'in_progress',
                   lease = ik.lease + 1, lease_until = v_now + v_lease_for,
                   checkout_id = p_checkout_id, response_status = NULL,
                   response_body = NULL, created_at = now(), expires_at = now() + v_ttl
             WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
            RETURNING ik.lease INTO v_lease;
            EXIT;
        END IF;

        -- The fingerprint first: another body under this key is refused
        -- whatever the key's state, so a lease take-over never resumes a
        -- registration for a different request.
        IF k.fingerprint <> p_fingerprint THEN
            RETURN QUERY SELECT 'reused'::text, NULL::bigint, NULL::int,
                                NULL::int, NULL::text, NULL::text, NULL::bigint;
            RETURN;
        END IF;

        IF k.state = 'done' THEN
            RETURN QUERY SELECT 'replay'::text, NULL::bigint, NULL::int,
                                k.response_status, k.response_body, NULL::text, NULL::bigint;
            RETURN;
        END IF;

        IF k.lease_until > v_now THEN
            RETURN QUERY SELECT 'in_use'::text, NULL::bigint,
                                GREATEST(1, ceil(date_part('epoch', k.lease_until - v_now)))::int,
                                NULL::int, NULL::text, NULL::text, NULL::bigint;
            RETURN;
        END IF;

        -- In progress, lease expired, same request: the holder died.  Take
        -- over with a new lease and hand back what was fixed at claim time,
        -- so the PSP sees the same nonce and byte-identical parameters.
        UPDATE idempotency_keys ik
           SET lease = ik.lease + 1, lease_until = v_now + v_lease_for,
               expires_at = GREATEST(ik.expires_at, now() + v_ttl)
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
        RETURNING ik.lease INTO v_lease;

        SELECT c.psp_request, c.expires_at INTO v_request, v_expires
          FROM checkouts c
         WHERE c.merchant_id = p_merchant AND c.checkout_id = k.checkout_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pay_claim: in-progress key % of merchant % has no checkout',
                p_idem_key, p_merchant USING ERRCODE = 'PY004';
        END IF;
        RETURN QUERY SELECT 'resumed'::text, v_lease, NULL::int, NULL::int,
                            NULL::text, v_request, ts_epoch(v_expires);
        RETURN;
    END LOOP;

    IF v_lease IS NULL THEN
        -- Three rounds of insert-conflict-vanished: let the client retry.
        RAISE EXCEPTION 'pay_claim: key % kept changing under us', p_idem_key
            USING ERRCODE = 'serialization_failure';
    END IF;

    -- A new key: the checkout, its orders (NOT_STARTED -> EXECUTING, written
    -- as EXECUTING with the event that records the move) and the events.
    -- The block is a subtransaction: if the checkout id or an order id is
    -- already this merchant's (even one a concurrent transaction under
    -- another key commits while we wait on its index entry), it is rolled
    -- back and only the key remains, stored as a duplicate.
    BEGIN
        INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce, currency,
                               amount_total, success_url, cancel_url, buyer_email,
                               status, psp_request, expires_at)
        VALUES (p_merchant, p_checkout_id, p_psp, p_merchant || ':' || p_checkout_id,
                p_currency, p_amount_total, p_success_url, p_cancel_url, p_buyer_email,
                'EXECUTING', p_psp_request, to_timestamp(p_expires_at));

        WITH o AS (
            SELECT e.value ->> 'payment_order_id' AS id,
                   e.value ->> 'seller_account' AS seller,
                   (e.value ->> 'amount_minor')::bigint AS amount,
                   e.ord::int AS line_no
              FROM jsonb_array_elements(p_orders) WITH ORDINALITY AS e(value, ord)
        ), ins AS (
            INSERT INTO payment_orders (merchant_id, payment_order_id, checkout_id,
                                        line_no, seller_account, amount, currency, status)
            SELECT p_merchant, o.id, p_checkout_id, o.line_no, o.seller, o.amount,
                   p_currency, 'EXECUTING'
              FROM o
             -- Index entries are taken in id order, so two checkouts racing
             -- on overlapping order ids wait for each other, never deadlock.
             ORDER BY o.id
            RETURNING payment_orders.payment_order_id, payment_orders.line_no,
                      payment_orders.amount
        ), ev AS (
            INSERT INTO order_events (merchant_id, checkout_id, payment_order_id,
                                      from_status, to_status, source)
            SELECT p_merchant, p_checkout_id, ins.payment_order_id,
                   'NOT_STARTED', 'EXECUTING', 'registration'
              FROM ins ORDER BY ins.line_no
        )
        SELECT sum(ins.amount) INTO v_sum FROM ins;
    EXCEPTION WHEN unique_violation THEN
        GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME;
        IF v_constraint NOT IN ('checkouts_pkey', 'payment_orders_pkey',
                                'payment_orders_checkout_order_key') THEN
            RAISE;
        END IF;
        UPDATE idempotency_keys ik
           SET state = 'done', lease_until = NULL, checkout_id = NULL,
               response_status = 409, response_body = p_duplicate_body
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key;
        RETURN QUERY SELECT 'duplicate'::text, NULL::bigint, NULL::int,
                            409, p_duplicate_body, NULL::text, NULL::bigint;
        RETURN;
    END;

    -- The core sums the orders; a mismatch here is a bug, and the whole
    -- transaction (key included) rolls back rather than store it.
    IF v_sum IS DISTINCT FROM p_amount_total THEN
        RAISE EXCEPTION 'pay_claim: orders sum to %, amount_total is %', v_sum, p_amount_total
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    RETURN QUERY SELECT 'claimed'::text, v_lease, NULL::int, NULL::int, NULL::text,
                        p_psp_request, p_expires_at;
END
$$;

-- ---------------------------------------------------------------------------
-- Store the PSP's answer and the final response under the key, in one
-- transaction.  A holder whose lease was taken over is refused (PY003): the
-- new holder finishes, and the old one's client retries into a replay.
CREATE OR REPLACE FUNCTION pay_finish(
    p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text,
    p_status text, p_psp_token text, p_psp_url text, p_psp_expires_at bigint,
    p_failure text, p_response_status int, p_response_body text)
RETURNS TABLE(response_status int, response_body text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    k        idempotency_keys%ROWTYPE;
    v_psp    text;
    v_valid  boolean := p_status IN ('EXECUTING', 'FAILED')
                        AND (p_status = 'FAILED' OR (p_psp_token IS NOT NULL AND p_psp_url IS NOT NULL))
                        AND p_response_status IS NOT NULL AND p_response_body IS NOT NULL;
BEGIN
    -- The usual case in one statement: our key, still in progress under our
    -- lease, becomes done.  The row lock it takes also makes a concurrent
    -- second pay_finish wait, then fall to the slow path and find it done.
    UPDATE idempotency_keys ik
       SET state = 'done', lease_until = NULL,
           response_status = p_response_status, response_body = p_response_body,
           -- the answer is kept for the whole TTL from when it is stored
           expires_at = now() + (ik.expires_at - ik.created_at)
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       AND ik.state = 'in_progress' AND ik.lease = p_lease
       AND ik.checkout_id = p_checkout_id AND v_valid;
    IF NOT FOUND THEN
        SELECT * INTO k FROM idempotency_keys ik
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pay_finish: no key % for merchant %', p_idem_key, p_merchant
                USING ERRCODE = 'PY004';
        END IF;
        -- A done key answers what it stored, whatever this call carries.
        IF k.state = 'done' THEN
            RETURN QUERY SELECT k.response_status, k.response_body;
            RETURN;
        END IF;
        IF v_valid IS NOT TRUE THEN
            RAISE EXCEPTION 'pay_finish: EXECUTING needs a token and url; status and response are required'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF k.lease IS DISTINCT FROM p_lease THEN
            RAISE EXCEPTION 'pay_finish: lease % of key % was taken over (now %)',
                p_lease, p_idem_key, k.lease USING ERRCODE = 'PY003';
        END IF;
        RAISE EXCEPTION 'pay_finish: key % belongs to checkout %, not %',
            p_idem_key, k.checkout_id, p_checkout_id USING ERRCODE = 'PY004';
    END IF;

    -- The status only moves from EXECUTING: should anything have moved the
    -- checkout already, the PSP's answer is still recorded but not applied.
    UPDATE checkouts c
       SET psp_token = p_psp_token, psp_url = p_psp_url,
           expires_at = COALESCE(to_timestamp(p_psp_expires_at), c.expires_at),
           failure = p_failure,
           status = CASE WHEN p_status = 'FAILED' AND c.status = 'EXECUTING'
                         THEN 'FAILED'::pay_status ELSE c.status END,
           updated_at = now()
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id
    RETURNING c.psp INTO v_psp;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pay_finish: no checkout % for merchant %', p_checkout_id, p_merchant
            USING ERRCODE = 'PY004';
    END IF;

    -- A token another checkout already holds is a unique violation: the PSP
    -- answered inconsistently, and that must not be stored.
    IF p_psp_token IS NOT NULL THEN
        INSERT INTO psp_tokens (psp, psp_token, merchant_id, checkout_id)
        VALUES (v_psp, p_psp_token, p_merchant, p_checkout_id);
    END IF;

    IF p_status = 'FAILED' THEN
        WITH moved AS (
            UPDATE payment_orders o
               SET status = 'FAILED', updated_at = now()
             WHERE o.merchant_id = p_merchant AND o.checkout_id = p_checkout_id
               AND o.status = 'EXECUTING'
            RETURNING o.payment_order_id, o.line_no
        )
        INSERT INTO order_events (merchant_id, checkout_id, payment_order_id,
                                  from_status, to_status, source)
        SELECT p_merchant, p_checkout_id, moved.payment_order_id,
               'EXECUTING', 'FAILED', 'registration'
          FROM moved ORDER BY moved.line_no;
    END IF;

    RETURN QUERY SELECT p_response_status, p_response_body;
END
$$;

-- ---------------------------------------------------------------------------
-- Give the key back after a PSP failure: nothing final is stored, and the
-- lease ends now so that the client's retry resumes at once.
CREATE OR REPLACE FUNCTION pay_release(p_merchant text, p_idem_key text, p_lease bigint)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE idempotency_keys ik
       SET lease_until = now()
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       AND ik.state = 'in_progress' AND ik.lease = p_lease;
END
$$;

-- ---------------------------------------------------------------------------
-- Views for GET.  Amounts are integer minor units ("amount_minor"); the core
-- rewrites them into decimal strings (include/payments/view.h).  Another
-- merchant's order or checkout is simply absent: NULL.
CREATE OR REPLACE FUNCTION pay_get_order(p_merchant text, p_order_id text)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN (
        SELECT json_build_object(
                   'payment_order_id', o.payment_order_id,
                   'checkout_id', o.checkout_id,
                   'status', o.status,
                   'amount_minor', o.amount,
                   'currency', o.currency,
                   'seller_account', o.seller_account,
                   'psp', c.psp,
                   'psp_token', c.psp_token,
                   'created_at', ts_rfc3339(o.created_at),
                   'updated_at', ts_rfc3339(o.updated_at))::text
          FROM payment_orders o
          JOIN checkouts c ON c.merchant_id = o.merchant_id AND c.checkout_id = o.checkout_id
         WHERE o.merchant_id = p_merchant AND o.payment_order_id = p_order_id);
END
$$;

CREATE OR REPLACE FUNCTION pay_get_checkout(p_merchant text, p_checkout_id text)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN (
        SELECT json_build_object(
                   'checkout_id', c.checkout_id,
                   'status', c.status,
                   'psp', c.psp,
                   'psp_token', c.psp_token,
                   'expires_at', ts_rfc3339(c.expires_at),
                   'failure', c.failure,
                   'currency', c.currency,
                   'payment_orders', COALESCE((
                       SELECT json_agg(json_build_object(
                                  'payment_order_id', o.payment_order_id,
                                  'seller_account', o.seller_account,
                                  'amount_minor', o.amount,
                                  'currency', o.currency,
                                  'status', o.status) ORDER BY o.line_no)
                         FROM payment_orders o
                        WHERE o.merchant_id = c.merchant_id AND o.checkout_id = c.checkout_id),
                       '[]'::json),
                   'events', COALESCE((
                       SELECT json_agg(json_build_object(
                                  'at', ts_rfc3339(e.at),
                                  'payment_order_id', e.payment_order_id,
                                  'from', e.from_status,
                                  'to', e.to_status,
                                  'source', e.source) ORDER BY e.event_id)
                         FROM order_events e
                        WHERE e.merchant_id = c.merchant_id AND e.checkout_id = c.checkout_id),
                       '[]'::json))::text
          FROM checkouts c
         WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id);
END
$$;

-- Where the pay link sends the browser, and whether it still may.
CREATE OR REPLACE FUNCTION pay_pay_target(p_merchant text, p_checkout_id text)
RETURNS TABLE(psp text, psp_url text, status text, expires_at bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT c.psp, c.psp_url, c.status::text, ts_epoch(c.expires_at)
      FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id;
END
$$;

-- Delete done keys past their TTL, oldest first, at most p_limit per call so
-- a purge never holds many locks.  SKIP LOCKED: a key a claim is reusing right
-- now is that claim's business.  In-progress keys are never purged: they are
-- registrations that a retry may still resume.
CREATE OR REPLACE FUNCTION pay_purge(p_limit int)
RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    n int;
BEGIN
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
    RETURN n;
END
$$;

-- ---------------------------------------------------------------------------
-- Privileges.  Functions are executable by PUBLIC by default: take that away
-- from every function here, then give the gateway exactly the pay_* set.
REVOKE ALL ON FUNCTION
    ts_rfc3339(timestamptz),
    ts_epoch(timestamptz),
    pay_auth(text),
    pay_claim(text, text, text, int, int, text, text, text, bigint, text, text,
              text, bigint, text, jsonb, text),
    pay_finish(text, text, bigint, text, text, text, text, bigint, text, int, text),
    pay_release(text, text, bigint),
    pay_get_order(text, text),
    pay_get_checkout(text, text),
    pay_pay_target(text, text),
    pay_purge(int)
    FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    pay_auth(text),
    pay_claim(text, text, text, int, int, text, text, text, bigint, text, text,
              text, bigint, text, jsonb, text),
    pay_finish(text, text, bigint, text, text, text, text, bigint, text, int, text),
    pay_release(text, text, bigint),
    pay_get_order(text, text),
    pay_get_checkout(text, text),
    pay_pay_target(text, text),
    pay_purge(int)
    TO payments_gateway;
