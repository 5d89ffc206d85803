-- 006: review fixes to registration and the way back (issue 15).
--
-- Functions of 001-003 again, changed, and new ones; an applied migration
-- is history, so the changes come here:
--   * order_events' append-only guard lets pay_abandon delete exactly the
--     registration events of the claim it undoes;
--   * pay_claim and pay_finish write their status moves (claimed, and a
--     PSP-refused FAILED) to the merchant's audit chain (004);
--   * pay_abandon undoes a claim the PSP refused our credentials for
--     (nothing stored, as the contract says); pay_refresh stores a rebuilt
--     request when a resumed claim's expires_at would now be refused;
--   * pay_return_target(merchant, checkout, psp) says whether {psp} in
--     /v1/return/{psp}/... is the checkout's PSP.

-- The event log is evidence: nobody, the owner included, edits or deletes it.
-- One exception: pay_abandon undoes a claim the PSP never saw and
-- deletes that checkout's NOT_STARTED -> EXECUTING registration events,
-- naming the checkout in a transaction-local setting first.
CREATE OR REPLACE FUNCTION order_events_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.source = 'registration'
       AND OLD.from_status = 'NOT_STARTED' AND OLD.to_status = 'EXECUTING'
       AND current_setting('payments.abandon_checkout', true)
           = OLD.merchant_id || ':' || OLD.checkout_id THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'order_events is append-only (% refused)', TG_OP
        USING ERRCODE = 'PY002';
END
$$;

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

    -- The move NOT_STARTED -> EXECUTING reaches the merchant's audit chain
    -- (sql/004_audit.sql) in the transaction that made it.
    PERFORM audit_append(p_merchant, p_checkout_id, 'registration:claimed',
        jsonb_build_object('from', 'NOT_STARTED', 'to', 'EXECUTING',
                           'psp', p_psp, 'currency', p_currency,
                           'amount_total', p_amount_total,
                           'expires_at', p_expires_at,
                           'payment_orders', (SELECT jsonb_agg(e.value -> 'payment_order_id')
                                                FROM jsonb_array_elements(p_orders) e)));

    RETURN QUERY SELECT 'claimed'::text, v_lease, NULL::int, NULL::int, NULL::text,
                        p_psp_request, p_expires_at;
END
$$;

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
    v_moved  jsonb;
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
        ), ev AS (
            INSERT INTO order_events (merchant_id, checkout_id, payment_order_id,
                                      from_status, to_status, source)
            SELECT p_merchant, p_checkout_id, moved.payment_order_id,
                   'EXECUTING', 'FAILED', 'registration'
              FROM moved ORDER BY moved.line_no
        )
        SELECT jsonb_agg(moved.payment_order_id ORDER BY moved.line_no)
          INTO v_moved FROM moved;

        -- the PSP's refusal, as the moves it made, on the audit chain
        IF v_moved IS NOT NULL THEN
            PERFORM audit_append(p_merchant, p_checkout_id, 'registration:failed',
                jsonb_build_object('from', 'EXECUTING', 'to', 'FAILED',
                                   'psp', v_psp, 'failure', p_failure,
                                   'payment_orders', v_moved));
        END IF;
    END IF;

    RETURN QUERY SELECT p_response_status, p_response_body;
END
$$;

-- ---------------------------------------------------------------------------
-- Undo a claim after the PSP refused the gateway's credentials (API.md: 502,
-- nothing stored): the checkout, its orders, their registration events, any
-- (psp, token) row and the key go, in one transaction, so that the same key
-- or a new one can register the same ids.  Only a claim as pay_claim left it
-- qualifies: in progress under p_lease, checkout and orders EXECUTING, no
-- PSP token.  The audit chain keeps the claim and records its undoing.
-- Returns false (and changes nothing) for any other state.
CREATE OR REPLACE FUNCTION pay_abandon(p_merchant text, p_idem_key text, p_lease bigint)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    k         idempotency_keys%ROWTYPE;
    v_orders  jsonb;
BEGIN
    SELECT * INTO k FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       FOR UPDATE;
    IF NOT FOUND OR k.state <> 'in_progress' OR k.lease <> p_lease
       OR k.checkout_id IS NULL THEN
        RETURN false;
    END IF;

    PERFORM 1 FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = k.checkout_id
       AND c.status = 'EXECUTING' AND c.psp_token IS NULL
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;

    -- Locked in id order, as pay_claim inserts them.
    PERFORM 1 FROM payment_orders o
     WHERE o.merchant_id = p_merchant AND o.checkout_id = k.checkout_id
     ORDER BY o.payment_order_id FOR UPDATE;
    IF EXISTS (SELECT 1 FROM payment_orders o
                WHERE o.merchant_id = p_merchant AND o.checkout_id = k.checkout_id
                  AND o.status <> 'EXECUTING')
       OR EXISTS (SELECT 1 FROM order_events e
                   WHERE e.merchant_id = p_merchant AND e.checkout_id = k.checkout_id
                     AND (e.source <> 'registration' OR e.from_status <> 'NOT_STARTED')) THEN
        RETURN false;
    END IF;

    SELECT jsonb_agg(o.payment_order_id ORDER BY o.line_no) INTO v_orders
      FROM payment_orders o
     WHERE o.merchant_id = p_merchant AND o.checkout_id = k.checkout_id;

    -- order_events is append-only; its guard (001) lets this transaction
    -- delete the claim's own registration events of this checkout only.
    PERFORM set_config('payments.abandon_checkout', p_merchant || ':' || k.checkout_id, true);
    DELETE FROM order_events e
     WHERE e.merchant_id = p_merchant AND e.checkout_id = k.checkout_id;
    PERFORM set_config('payments.abandon_checkout', '', true);

    DELETE FROM psp_tokens t
     WHERE t.merchant_id = p_merchant AND t.checkout_id = k.checkout_id;
    DELETE FROM payment_orders o
     WHERE o.merchant_id = p_merchant AND o.checkout_id = k.checkout_id;
    DELETE FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = k.checkout_id;
    DELETE FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key;

    PERFORM audit_append(p_merchant, k.checkout_id, 'registration:abandoned',
        jsonb_build_object('from', 'EXECUTING', 'to', 'NOT_STARTED',
                           'reason', 'psp_refused_credentials',
                           'payment_orders', v_orders));
    RETURN true;
END
$$;

-- ---------------------------------------------------------------------------
-- A resumed claim whose stored expires_at the PSP would now refuse: store
-- the rebuilt request (same nonce, new expires_at and return-link tokens)
-- before it is sent, so every later retry sends those bytes.  Only under
-- the caller's live lease, for a checkout still EXECUTING without a PSP
-- token; otherwise PY003.  Returns the previous expires_at.
CREATE OR REPLACE FUNCTION pay_refresh(p_merchant text, p_idem_key text, p_lease bigint,
    p_expires_at bigint, p_psp_request text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_checkout  text;
    v_old       timestamptz;
BEGIN
    IF p_expires_at IS NULL OR p_psp_request IS NULL THEN
        RAISE EXCEPTION 'pay_refresh: expires_at and psp_request are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT c.checkout_id, c.expires_at INTO v_checkout, v_old
      FROM idempotency_keys ik
      JOIN checkouts c ON c.merchant_id = ik.merchant_id AND c.checkout_id = ik.checkout_id
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       AND ik.state = 'in_progress' AND ik.lease = p_lease
       AND ik.lease_until > clock_timestamp()
       AND c.status = 'EXECUTING' AND c.psp_token IS NULL
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pay_refresh: key % of merchant % is not in progress under lease %',
            p_idem_key, p_merchant, p_lease USING ERRCODE = 'PY003';
    END IF;

    UPDATE checkouts c
       SET psp_request = p_psp_request, expires_at = to_timestamp(p_expires_at),
           updated_at = now()
     WHERE c.merchant_id = p_merchant AND c.checkout_id = v_checkout;

    PERFORM audit_append(p_merchant, v_checkout, 'registration:refreshed',
        jsonb_build_object('expires_at_was', ts_epoch(v_old),
                           'expires_at', p_expires_at));
    RETURN ts_epoch(v_old);
END
$$;

-- ---------------------------------------------------------------------------
-- The same for GET /v1/return/{psp}/{checkout}: psp_matches says whether
-- {psp} is the PSP the checkout was registered with (API.md).
CREATE OR REPLACE FUNCTION pay_return_target(p_merchant text, p_checkout_id text,
                                             p_psp text)
RETURNS TABLE(status text, success_url text, cancel_url text, psp_matches boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT c.status::text, c.success_url, c.cancel_url, c.psp = p_psp
      FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id;
$$;

REVOKE ALL ON FUNCTION
    pay_abandon(text, text, bigint),
    pay_refresh(text, text, bigint, bigint, text),
    pay_return_target(text, text, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    pay_abandon(text, text, bigint),
    pay_refresh(text, text, bigint, bigint, text),
    pay_return_target(text, text, text)
    TO payments_gateway;
