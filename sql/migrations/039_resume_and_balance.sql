-- Claims that outlive the PSP's memory of their key, and pay-outs ahead of
-- pending refunds.
--
-- 1. Resumes.  A refund, pay-out or registration whose PSP call got no
--    answer keeps its Idempotency-Key in_progress, and the client's retry
--    with the key resumes it: the same nonce, the same bytes.  That is safe
--    only while the PSP remembers the key (Stripe: 24 hours; Adyen: at
--    least 7 days; include/payments/dialect.h).  Now:
--    - a resume of a refund or pay-out that is no longer PENDING (its
--      webhook came) or whose PSP id is known answers from its row
--      (outcome settled) and asks the PSP nothing;
--    - a resume of a registration whose checkout is no longer EXECUTING
--      answers "decided", and nothing is sent: a new hosted session would
--      be a second way to pay;
--    - every resume hands back the claim's age; the gateway never sends a
--      claim older than its PSP's key window again, and alerts;
--    - a resume no longer extends the key's expires_at.
--    pay_purge still deletes only done keys: a key in progress is the
--    one thing that stops a retry from making a second operation.
-- 2. A pay-out event naming another PSP object than the stored one is
--    'mismatch' (alerted by the gateway), not 'already'.
-- 3. The same request after its Idempotency-Key expired: pay_claim answers
--    'expired' (the checkout stays as it is) instead of storing a
--    duplicate_order under the key.
-- 4. seller_available holds back the seller's share of PENDING refunds;
--    pay_refund_claim takes the seller's wallet lock after the order's, as
--    pay_payout_claim does, so a refund and a pay-out of one seller are
--    decided one after the other (doc/MONEY.md, "Available balance").

SET client_min_messages = warning;

CREATE OR REPLACE FUNCTION op_key_take(p_merchant text, p_idem_key text,
    p_fingerprint text, p_lease_seconds int, p_ttl_seconds int, p_op_id text,
    OUT outcome text, OUT lease bigint, OUT retry_after int,
    OUT response_status int, OUT response_body text, OUT op_id text)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    k            idempotency_keys%ROWTYPE;
    v_now        timestamptz;
    v_lease_for  interval := p_lease_seconds * interval '1 second';
    v_ttl        interval := p_ttl_seconds * interval '1 second';
BEGIN
    IF p_lease_seconds IS NULL OR p_lease_seconds < 1
       OR p_ttl_seconds IS NULL OR p_ttl_seconds < 1 THEN
        RAISE EXCEPTION 'op_key_take: lease and ttl must be at least 1 second'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM 1 FROM merchants m WHERE m.merchant_id = p_merchant;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'op_key_take: no merchant %', p_merchant
            USING ERRCODE = 'foreign_key_violation';
    END IF;

    FOR attempt IN 1..3 LOOP
        INSERT INTO idempotency_keys AS ik
               (merchant_id, idem_key, fingerprint, state, lease, lease_until,
                checkout_id, created_at, expires_at)
        VALUES (p_merchant, p_idem_key, p_fingerprint, 'in_progress', 1,
                clock_timestamp() + v_lease_for, p_op_id, now(), now() + v_ttl)
        ON CONFLICT (merchant_id, idem_key) DO NOTHING
        RETURNING ik.lease INTO lease;
        IF lease IS NOT NULL THEN
            outcome := 'new';
            op_id := p_op_id;
            RETURN;
        END IF;

        SELECT * INTO k FROM idempotency_keys ik
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
           FOR UPDATE;
        CONTINUE WHEN NOT FOUND;
        v_now := clock_timestamp();

        IF k.state = 'done' AND k.expires_at <= v_now THEN
            UPDATE idempotency_keys ik
               SET fingerprint = p_fingerprint, state = 'in_progress',
                   lease = ik.lease + 1, lease_until = v_now + v_lease_for,
                   checkout_id = p_op_id, response_status = NULL,
                   response_body = NULL, created_at = now(), expires_at = now() + v_ttl
             WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
            RETURNING ik.lease INTO lease;
            outcome := 'new';
            op_id := p_op_id;
            RETURN;
        END IF;

        IF k.fingerprint <> p_fingerprint THEN
            outcome := 'reused';
            RETURN;
        END IF;
        IF k.state = 'done' THEN
            outcome := 'replay';
            response_status := k.response_status;
            response_body := k.response_body;
            RETURN;
        END IF;
        IF k.lease_until > v_now THEN
            outcome := 'in_use';
            retry_after := GREATEST(1, ceil(date_part('epoch', k.lease_until - v_now)))::int;
            RETURN;
        END IF;

        -- the holder died: a new lease, the same expiry (a resume never
        -- makes a claim look younger than it is)
        UPDATE idempotency_keys ik
           SET lease = ik.lease + 1, lease_until = v_now + v_lease_for
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
        RETURNING ik.lease INTO lease;
        outcome := 'resumed';
        op_id := k.checkout_id;
        RETURN;
    END LOOP;

    RAISE EXCEPTION 'op_key_take: key % kept changing under us', p_idem_key
        USING ERRCODE = 'serialization_failure';
END
$$;

-- The claims return more columns: their old definitions go first.
DROP FUNCTION IF EXISTS pay_claim(text, text, text, int, int, text, text, text, bigint,
                                  text, text, text, bigint, text, jsonb, text);
DROP FUNCTION IF EXISTS pay_refund_claim(text, text, text, int, int, text, text, bigint,
                                         text, text);
DROP FUNCTION IF EXISTS pay_payout_claim(text, text, text, int, int, text, text, bigint,
                                         text, text);

CREATE OR REPLACE FUNCTION pay_claim(
    p_merchant text, p_idem_key text, p_fingerprint text,
    p_lease_seconds int, p_ttl_seconds int,
    p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint,
    p_success_url text, p_cancel_url text, p_buyer_email text,
    p_expires_at bigint, p_psp_request text, p_orders jsonb,
    p_duplicate_body text)
RETURNS TABLE(outcome text, lease bigint, retry_after int,
              response_status int, response_body text,
              psp_request text, expires_at bigint, checkout_status text,
              claim_age bigint)
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
    c             checkouts%ROWTYPE;
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

        IF k.state = 'done' AND k.expires_at <= v_now
           AND k.fingerprint = p_fingerprint AND k.checkout_id = p_checkout_id THEN
            -- The same request after its key expired: the checkout it
            -- registered is kept, and is never registered again.  Nothing
            -- is stored: the caller says what happened.
            RETURN QUERY SELECT 'expired'::text, NULL::bigint, NULL::int, NULL::int,
                                NULL::text, NULL::text, NULL::bigint, NULL::text,
                                NULL::bigint;
            RETURN;
        END IF;

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
                                NULL::int, NULL::text, NULL::text, NULL::bigint,
                                NULL::text, NULL::bigint;
            RETURN;
        END IF;

        IF k.state = 'done' THEN
            RETURN QUERY SELECT 'replay'::text, NULL::bigint, NULL::int,
                                k.response_status, k.response_body, NULL::text, NULL::bigint,
                                NULL::text, NULL::bigint;
            RETURN;
        END IF;

        IF k.lease_until > v_now THEN
            RETURN QUERY SELECT 'in_use'::text, NULL::bigint,
                                GREATEST(1, ceil(date_part('epoch', k.lease_until - v_now)))::int,
                                NULL::int, NULL::text, NULL::text, NULL::bigint,
                                NULL::text, NULL::bigint;
            RETURN;
        END IF;

        -- In progress, lease expired, same request: the holder died.  A
        -- checkout that was decided meanwhile (its webhook came, the
        -- sweeper asked) is never registered again: the PSP may have
        -- forgotten the key, and would open a second session, a second
        -- way to pay.  The key is left as it is.
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = k.checkout_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pay_claim: in-progress key % of merchant % has no checkout',
                p_idem_key, p_merchant USING ERRCODE = 'PY004';
        END IF;
        IF c.status <> 'EXECUTING' THEN
            RETURN QUERY SELECT 'decided'::text, NULL::bigint, NULL::int, NULL::int,
                                NULL::text, NULL::text, NULL::bigint, c.status::text,
                                NULL::bigint;
            RETURN;
        END IF;

        -- Take over with a new lease (the key's expiry stays) and hand back
        -- what was fixed at claim time, so the PSP sees the same nonce and
        -- byte-identical parameters; with the claim's age, which the
        -- caller compares with how long its PSP keeps a key.
        UPDATE idempotency_keys ik
           SET lease = ik.lease + 1, lease_until = v_now + v_lease_for
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
        RETURNING ik.lease INTO v_lease;

        RETURN QUERY SELECT 'resumed'::text, v_lease, NULL::int, NULL::int,
                            NULL::text, c.psp_request, ts_epoch(c.expires_at),
                            c.status::text,
                            floor(date_part('epoch', v_now - c.created_at))::bigint;
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
                            409, p_duplicate_body, NULL::text, NULL::bigint,
                            NULL::text, NULL::bigint;
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
                        p_psp_request, p_expires_at, 'EXECUTING'::text, 0::bigint;
END
$$;

CREATE OR REPLACE FUNCTION pay_refund_claim(p_merchant text, p_idem_key text,
    p_fingerprint text, p_lease_seconds int, p_ttl_seconds int,
    p_refund_id text, p_order_id text, p_amount bigint, p_currency text, p_reason text)
RETURNS TABLE(outcome text, lease bigint, retry_after int, response_status int,
              response_body text, refund_id text, psp text, payment_ref text,
              amount bigint, currency text, reason text, refundable bigint,
              op_status text, psp_ref text, failure text, claim_age bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    k      record;
    o      payment_orders%ROWTYPE;
    c      checkouts%ROWTYPE;
    r      refunds%ROWTYPE;
    b      record;
    v_sum  bigint;
    v_s    bigint;
    v_p    bigint;
    v_av   bigint;
    v_err  text;
BEGIN
    SELECT * INTO k FROM op_key_take(p_merchant, p_idem_key, p_fingerprint,
                                     p_lease_seconds, p_ttl_seconds, p_refund_id);
    IF k.outcome IN ('replay', 'in_use', 'reused') THEN
        RETURN QUERY SELECT k.outcome, NULL::bigint, k.retry_after, k.response_status,
                            k.response_body, NULL::text, NULL::text, NULL::text,
                            NULL::bigint, NULL::text, NULL::text, NULL::bigint,
                            NULL::text, NULL::text, NULL::text, NULL::bigint;
        RETURN;
    END IF;

    IF k.outcome = 'resumed' THEN
        SELECT * INTO r FROM refunds rf
         WHERE rf.merchant_id = p_merchant AND rf.refund_id = k.op_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pay_refund_claim: in-progress key % has no refund', p_idem_key
                USING ERRCODE = 'PY004';
        END IF;
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = r.checkout_id;
        -- settled (its webhook came) or known to the PSP (its answer was
        -- stored): answered from the row, the PSP is not asked again
        RETURN QUERY SELECT CASE WHEN r.status <> 'PENDING' OR r.psp_refund_id IS NOT NULL
                                 THEN 'settled' ELSE 'resumed' END,
                            k.lease, NULL::int, NULL::int, NULL::text,
                            r.refund_id, r.psp, c.psp_payment_ref, r.amount, r.currency,
                            r.reason, NULL::bigint, r.status, r.psp_refund_id, r.failure,
                            floor(date_part('epoch', clock_timestamp() - r.created_at))::bigint;
        RETURN;
    END IF;

    -- A new refund: every refund of this order passes here one at a time,
    -- and then, under the seller's wallet lock, one at a time with the
    -- seller's pay-outs: a pay-out sees this refund held back from the
    -- available balance, or this refund comes after the pay-out.
    SELECT * INTO o FROM payment_orders po
     WHERE po.merchant_id = p_merchant AND po.payment_order_id = p_order_id
       FOR UPDATE;
    IF FOUND THEN
        PERFORM 1 FROM wallets w
         WHERE w.merchant_id = p_merchant AND w.seller_account = o.seller_account
           AND w.currency = o.currency FOR UPDATE;
    END IF;
    IF o.payment_order_id IS NULL THEN
        v_err := 'not_found';
    ELSE
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = o.checkout_id;
        v_sum := order_given_back(p_merchant, p_order_id, NULL);
        IF o.status <> 'SUCCESS' OR c.psp_payment_ref IS NULL THEN
            v_err := 'not_refundable';
        ELSIF p_currency <> o.currency THEN
            v_err := 'currency_mismatch';
        ELSIF v_sum + p_amount > o.amount THEN
            v_err := 'exceeds_capture';
        ELSE
            -- the seller's share of it must be available: what a pay-out
            -- already took, or a PENDING refund holds, is not
            SELECT coalesce(sum(rf.amount) FILTER (WHERE rf.status = 'SUCCEEDED'), 0)::bigint,
                   coalesce(sum(rf.amount) FILTER (WHERE rf.status = 'PENDING'), 0)::bigint
              INTO v_s, v_p
              FROM refunds rf
             WHERE rf.merchant_id = p_merchant AND rf.payment_order_id = p_order_id;
            SELECT * INTO b FROM seller_available(p_merchant, o.seller_account, o.currency);
            IF refund_seller_share(o.amount, coalesce(o.commission, 0), v_s + v_p, p_amount)
               > b.available THEN
                v_err := 'insufficient_balance';
                v_av := b.available;
            END IF;
        END IF;
    END IF;

    IF v_err IS NOT NULL THEN
        -- nothing is kept: not even the key, so a corrected retry may use it
        DELETE FROM idempotency_keys ik
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
           AND ik.lease = k.lease AND ik.state = 'in_progress';
        RETURN QUERY SELECT v_err, NULL::bigint, NULL::int, NULL::int, NULL::text,
                            NULL::text, NULL::text, NULL::text, NULL::bigint,
                            o.currency, NULL::text,
                            CASE WHEN v_err = 'insufficient_balance' THEN v_av
                                 WHEN o.amount IS NULL THEN NULL
                                 ELSE greatest(o.amount - v_sum, 0) END,
                            NULL::text, NULL::text, NULL::text, NULL::bigint;
        RETURN;
    END IF;

    INSERT INTO refunds (merchant_id, refund_id, checkout_id, payment_order_id, psp, nonce,
                         amount, currency, reason, status)
    VALUES (p_merchant, p_refund_id, o.checkout_id, p_order_id, c.psp,
            p_merchant || ':' || p_refund_id, p_amount, p_currency, p_reason, 'PENDING');

    PERFORM audit_append(p_merchant, o.checkout_id, 'refund:requested',
        jsonb_build_object('refund_id', p_refund_id, 'payment_order_id', p_order_id,
                           'amount', p_amount, 'currency', p_currency));

    RETURN QUERY SELECT 'new'::text, k.lease, NULL::int, NULL::int, NULL::text,
                        p_refund_id, c.psp, c.psp_payment_ref, p_amount, p_currency,
                        p_reason, NULL::bigint, 'PENDING'::text, NULL::text, NULL::text,
                        0::bigint;
END
$$;

CREATE OR REPLACE FUNCTION pay_payout_claim(p_merchant text, p_idem_key text,
    p_fingerprint text, p_lease_seconds int, p_ttl_seconds int,
    p_payout_id text, p_seller text, p_amount bigint, p_currency text, p_psp text)
RETURNS TABLE(outcome text, lease bigint, retry_after int, response_status int,
              response_body text, payout_id text, psp text, destination text,
              amount bigint, currency text, available bigint,
              op_status text, psp_ref text, failure text, claim_age bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    k      record;
    p      payouts%ROWTYPE;
    s      sellers%ROWTYPE;
    b      record;
    v_err  text;
    v_av   bigint;
BEGIN
    SELECT * INTO k FROM op_key_take(p_merchant, p_idem_key, p_fingerprint,
                                     p_lease_seconds, p_ttl_seconds, p_payout_id);
    IF k.outcome IN ('replay', 'in_use', 'reused') THEN
        RETURN QUERY SELECT k.outcome, NULL::bigint, k.retry_after, k.response_status,
                            k.response_body, NULL::text, NULL::text, NULL::text,
                            NULL::bigint, NULL::text, NULL::bigint,
                            NULL::text, NULL::text, NULL::text, NULL::bigint;
        RETURN;
    END IF;

    IF k.outcome = 'resumed' THEN
        SELECT * INTO p FROM payouts po
         WHERE po.merchant_id = p_merchant AND po.payout_id = k.op_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pay_payout_claim: in-progress key % has no pay-out', p_idem_key
                USING ERRCODE = 'PY004';
        END IF;
        -- settled (its webhook came) or known to the PSP (its answer was
        -- stored): answered from the row, the PSP is not asked again
        RETURN QUERY SELECT CASE WHEN p.status <> 'PENDING' OR p.psp_payout_id IS NOT NULL
                                 THEN 'settled' ELSE 'resumed' END,
                            k.lease, NULL::int, NULL::int, NULL::text,
                            p.payout_id, p.psp, p.destination, p.amount, p.currency,
                            NULL::bigint, p.status, p.psp_payout_id, p.failure,
                            floor(date_part('epoch', clock_timestamp() - p.created_at))::bigint;
        RETURN;
    END IF;

    SELECT * INTO s FROM sellers sl
     WHERE sl.merchant_id = p_merchant AND sl.seller_account = p_seller AND sl.psp = p_psp;
    IF NOT FOUND THEN
        v_err := 'seller_unknown';
    ELSE
        -- every pay-out of this seller in this currency passes here one at
        -- a time, and one at a time with the refunds of the seller's
        -- orders (pay_refund_claim takes the same lock; the trigger takes
        -- it again)
        PERFORM 1 FROM wallets w
         WHERE w.merchant_id = p_merchant AND w.seller_account = p_seller
           AND w.currency = p_currency FOR UPDATE;
        SELECT * INTO b FROM seller_available(p_merchant, p_seller, p_currency);
        v_av := b.available;
        IF p_amount > v_av THEN
            v_err := 'insufficient_balance';
        END IF;
    END IF;

    IF v_err IS NOT NULL THEN
        DELETE FROM idempotency_keys ik
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
           AND ik.lease = k.lease AND ik.state = 'in_progress';
        RETURN QUERY SELECT v_err, NULL::bigint, NULL::int, NULL::int, NULL::text,
                            NULL::text, NULL::text, NULL::text, NULL::bigint,
                            p_currency, v_av, NULL::text, NULL::text, NULL::text,
                            NULL::bigint;
        RETURN;
    END IF;

    INSERT INTO payouts (merchant_id, payout_id, seller_account, psp, destination, nonce,
                         amount, currency, status)
    VALUES (p_merchant, p_payout_id, p_seller, p_psp, s.destination,
            p_merchant || ':' || p_payout_id, p_amount, p_currency, 'PENDING');

    PERFORM audit_append(p_merchant, NULL, 'payout:requested',
        jsonb_build_object('payout_id', p_payout_id, 'seller_account', p_seller,
                           'amount', p_amount, 'currency', p_currency, 'psp', p_psp));

    RETURN QUERY SELECT 'new'::text, k.lease, NULL::int, NULL::int, NULL::text,
                        p_payout_id, p_psp, s.destination, p_amount, p_currency,
                        NULL::bigint, 'PENDING'::text, NULL::text, NULL::text, 0::bigint;
END
$$;

-- PENDING refunds are found by merchant (few at a time)
CREATE INDEX IF NOT EXISTS refunds_pending ON refunds (merchant_id)
    WHERE status = 'PENDING';

-- The seller's share of refunds of p_refund after p_before refunded of an
-- order of p_amount with commission p_commission: f(before + refund) -
-- f(before), f(x) = x - floor(x * commission / amount).  Exact when the
-- refunds succeed in the order they were asked, and never less otherwise.
CREATE OR REPLACE FUNCTION refund_seller_share(p_amount bigint, p_commission bigint,
    p_before bigint, p_refund bigint)
RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT SET search_path = public, pg_temp AS $$
    SELECT (p_refund
            - (floor((p_before + p_refund)::numeric * p_commission / p_amount)
               - floor(p_before::numeric * p_commission / p_amount)))::bigint;
$$;

CREATE OR REPLACE FUNCTION seller_available(p_merchant text, p_seller text, p_currency text,
    OUT wallet bigint, OUT pending bigint, OUT disputed bigint, OUT available bigint)
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    v_refunding  bigint;
BEGIN
    SELECT coalesce((SELECT w.balance FROM wallets w
                      WHERE w.merchant_id = p_merchant AND w.seller_account = p_seller
                        AND w.currency = p_currency), 0) INTO wallet;
    SELECT coalesce(sum(p.amount), 0) INTO pending FROM payouts p
     WHERE p.merchant_id = p_merchant AND p.seller_account = p_seller
       AND p.currency = p_currency AND p.status = 'PENDING';
    SELECT coalesce(sum(dp.amount), 0) INTO disputed
      FROM dispute_parts dp
      JOIN disputes d ON d.merchant_id = dp.merchant_id AND d.dispute_id = dp.dispute_id
     WHERE dp.merchant_id = p_merchant AND dp.seller_account = p_seller
       AND dp.currency = p_currency AND d.status = 'OPEN';
    -- what the seller's PENDING refunds will take from the wallet, at
    -- most: of an order, refunds of R in all give back R - floor(R * C / A)
    -- of the seller's (the commission rule telescopes), which grows with
    -- R, so its PENDING refunds take at most f(S + P) - f(S), S and P its
    -- SUCCEEDED and PENDING refunds, f(x) = x - floor(x * C / A), whichever
    -- of them succeed and in whatever order
    SELECT coalesce(sum(refund_seller_share(x.a, x.c, x.s, x.p)), 0)
      INTO v_refunding
      FROM (SELECT o.amount AS a, coalesce(o.commission, 0) AS c,
                   sum(rf.amount)::bigint AS p,
                   (SELECT coalesce(sum(sr.amount), 0)::bigint FROM refunds sr
                     WHERE sr.merchant_id = o.merchant_id
                       AND sr.payment_order_id = o.payment_order_id
                       AND sr.status = 'SUCCEEDED') AS s
              FROM refunds rf
              JOIN payment_orders o ON o.merchant_id = rf.merchant_id
                                   AND o.payment_order_id = rf.payment_order_id
             WHERE rf.merchant_id = p_merchant AND rf.status = 'PENDING'
               AND o.seller_account = p_seller AND o.currency = p_currency
             GROUP BY o.merchant_id, o.payment_order_id, o.amount, o.commission) x;
    available := wallet - pending - disputed - v_refunding;
END
$$;

CREATE OR REPLACE FUNCTION payout_event_apply(p_psp text, p_event_id text, p_kind text,
    p_reference text, p_amount bigint, p_currency text, p_object_ref text,
    OUT outcome text, OUT merchant_id text, OUT checkout_id text)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    n  record;
    p  payouts%ROWTYPE;
BEGIN
    SELECT * INTO n FROM nonce_split(p_reference);
    SELECT * INTO p FROM payouts po
     WHERE po.merchant_id = n.merchant_id AND po.payout_id = n.object_id AND po.psp = p_psp;
    IF NOT FOUND AND coalesce(p_object_ref, '') <> '' THEN
        SELECT * INTO p FROM payouts po WHERE po.psp = p_psp AND po.psp_payout_id = p_object_ref;
    END IF;
    IF p.payout_id IS NULL THEN
        outcome := 'unknown_payout';
        RETURN;
    END IF;
    merchant_id := p.merchant_id;

    -- the seller's wallet first, as every pay-out of it does
    PERFORM 1 FROM wallets w
     WHERE w.merchant_id = p.merchant_id AND w.seller_account = p.seller_account
       AND w.currency = p.currency FOR UPDATE;
    SELECT * INTO p FROM payouts po
     WHERE po.merchant_id = p.merchant_id AND po.payout_id = p.payout_id FOR UPDATE;

    IF p_amount IS DISTINCT FROM p.amount OR upper(coalesce(p_currency, '')) <> p.currency THEN
        outcome := 'amount_mismatch';
        RETURN;
    END IF;
    -- the PSP's id of another transfer than the one stored: a second
    -- transfer under our nonce (a key the PSP forgot), never "already"
    IF coalesce(p_object_ref, '') <> '' AND p.psp_payout_id IS NOT NULL
       AND p.psp_payout_id <> p_object_ref THEN
        outcome := 'mismatch';
        RETURN;
    END IF;
    IF (p_kind = 'PAYOUT_PAID' AND p.status = 'PAID')
       OR (p_kind = 'PAYOUT_FAILED' AND p.status = 'FAILED') THEN
        outcome := 'already';
        RETURN;
    END IF;
    IF p.status = 'PAID' AND p_kind = 'PAYOUT_FAILED' THEN
        -- reversed or returned after it was paid (Stripe's transfer.reversed
        -- after transfer.created, Adyen's "returned" after "booked"): the
        -- money is back on the platform's balance, so back in the wallet
        UPDATE payouts po SET status = 'FAILED',
                              failure = 'reversed at the PSP after it was paid',
                              psp_payout_id = coalesce(po.psp_payout_id, nullif(p_object_ref, ''))
         WHERE po.merchant_id = p.merchant_id AND po.payout_id = p.payout_id;
        PERFORM ledger_book(p.merchant_id, NULL, NULL, 'payout', p.payout_id,
            'webhook:' || p_psp || ':' || p_event_id, p.currency,
            ARRAY['seller_payable:' || p.seller_account, 'psp_clearing:' || p_psp],
            ARRAY[-p.amount, p.amount]);
        PERFORM wallet_add(p.merchant_id, p.seller_account, p.currency, p.amount);
        outcome := 'applied';
        RETURN;
    END IF;
    IF p.status <> 'PENDING' THEN
        outcome := 'late_contrary';
        RETURN;
    END IF;

    IF p_kind = 'PAYOUT_FAILED' THEN
        -- nothing was booked: the money was only held back, it is available again
        UPDATE payouts po SET status = 'FAILED', failure = 'failed at the PSP',
                              psp_payout_id = coalesce(po.psp_payout_id, nullif(p_object_ref, ''))
         WHERE po.merchant_id = p.merchant_id AND po.payout_id = p.payout_id;
    ELSE
        UPDATE payouts po SET status = 'PAID',
                              psp_payout_id = coalesce(po.psp_payout_id, nullif(p_object_ref, ''))
         WHERE po.merchant_id = p.merchant_id AND po.payout_id = p.payout_id;
        PERFORM ledger_book(p.merchant_id, NULL, NULL, 'payout', p.payout_id,
            'webhook:' || p_psp || ':' || p_event_id, p.currency,
            ARRAY['seller_payable:' || p.seller_account, 'psp_clearing:' || p_psp],
            ARRAY[p.amount, -p.amount]);
        PERFORM wallet_add(p.merchant_id, p.seller_account, p.currency, -p.amount);
    END IF;
    outcome := 'applied';
END
$$;

REVOKE ALL ON FUNCTION
    pay_claim(text, text, text, int, int, text, text, text, bigint, text, text,
              text, bigint, text, jsonb, text),
    pay_refund_claim(text, text, text, int, int, text, text, bigint, text, text),
    pay_payout_claim(text, text, text, int, int, text, text, bigint, text, text),
    op_key_take(text, text, text, int, int, text),
    seller_available(text, text, text),
    refund_seller_share(bigint, bigint, bigint, bigint),
    payout_event_apply(text, text, text, text, bigint, text, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    pay_claim(text, text, text, int, int, text, text, text, bigint, text, text,
              text, bigint, text, jsonb, text),
    pay_refund_claim(text, text, text, int, int, text, text, bigint, text, text),
    pay_payout_claim(text, text, text, int, int, text, text, bigint, text, text)
    TO payments_gateway;
