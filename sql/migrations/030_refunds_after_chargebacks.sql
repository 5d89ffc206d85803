-- A refund never gives back what a chargeback already took (issue 14's
-- review: "disputes and refunds of one order are not capped together").
--
-- 009 capped an order's PENDING and SUCCEEDED refunds at its amount, in
-- pay_refund_claim and again in the refunds_within_capture trigger, and
-- split a dispute over the checkout's orders (dispute_parts) without
-- either seeing the other.  A merchant could so refund an order whose money
-- the PSP had already withdrawn for a chargeback: the shopper was paid back
-- twice, and the seller's wallet went below zero.  (The PSPs refuse such a
-- refund themselves, Stripe with charge_disputed; the gateway now refuses
-- it before asking them, with the amount that is left.)
--
-- What is given back of an order is now its PENDING and SUCCEEDED refunds
-- plus its parts of the disputes that are OPEN or LOST; a WON dispute gave
-- its money back and counts no more.  Both checks run under the order's row
-- lock, and a dispute's part takes a key-share lock on the order: a refund
-- and a chargeback of one order are decided one after the other.
--
-- A dispute itself is never refused for the refunds before it: it is the
-- PSP's fact, booked as it comes (dispute_event_apply, 009).
--
-- pay_refund_claim is 009's with its sum taken from order_given_back, and
-- what is left never below zero (a chargeback after refunds may take more).

CREATE INDEX IF NOT EXISTS dispute_parts_order
    ON dispute_parts (merchant_id, payment_order_id);

-- What of an order is given back or held for a chargeback: its PENDING and
-- SUCCEEDED refunds (but p_except), and its parts of OPEN and LOST disputes.
CREATE OR REPLACE FUNCTION order_given_back(p_merchant text, p_order_id text,
    p_except text)
RETURNS bigint
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT (SELECT coalesce(sum(rf.amount), 0) FROM refunds rf
             WHERE rf.merchant_id = p_merchant AND rf.payment_order_id = p_order_id
               AND rf.status IN ('PENDING', 'SUCCEEDED')
               AND rf.refund_id IS DISTINCT FROM p_except)
         + (SELECT coalesce(sum(dp.amount), 0) FROM dispute_parts dp
              JOIN disputes d ON d.merchant_id = dp.merchant_id
                             AND d.dispute_id = dp.dispute_id
             WHERE dp.merchant_id = p_merchant AND dp.payment_order_id = p_order_id
               AND d.status IN ('OPEN', 'LOST'))::bigint;
$$;

CREATE OR REPLACE FUNCTION refunds_within_capture() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    o      payment_orders%ROWTYPE;
    v_sum  bigint;
BEGIN
    SELECT * INTO o FROM payment_orders po
     WHERE po.merchant_id = NEW.merchant_id AND po.payment_order_id = NEW.payment_order_id
       FOR UPDATE;
    IF o.status <> 'SUCCESS' OR NEW.currency <> o.currency THEN
        RAISE EXCEPTION 'refund %: order % is % in %', NEW.refund_id, o.payment_order_id,
            o.status, o.currency USING ERRCODE = 'PY007';
    END IF;
    v_sum := order_given_back(NEW.merchant_id, NEW.payment_order_id, NEW.refund_id);
    IF v_sum + NEW.amount > o.amount THEN
        RAISE EXCEPTION 'refund %: % + % exceeds the % captured less its chargebacks',
            NEW.refund_id, v_sum, NEW.amount, o.amount USING ERRCODE = 'PY007';
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION pay_refund_claim(p_merchant text, p_idem_key text,
    p_fingerprint text, p_lease_seconds int, p_ttl_seconds int,
    p_refund_id text, p_order_id text, p_amount bigint, p_currency text, p_reason text)
RETURNS TABLE(outcome text, lease bigint, retry_after int, response_status int,
              response_body text, refund_id text, psp text, payment_ref text,
              amount bigint, currency text, reason text, refundable bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    k      record;
    o      payment_orders%ROWTYPE;
    c      checkouts%ROWTYPE;
    r      refunds%ROWTYPE;
    v_sum  bigint;
    v_err  text;
BEGIN
    SELECT * INTO k FROM op_key_take(p_merchant, p_idem_key, p_fingerprint,
                                     p_lease_seconds, p_ttl_seconds, p_refund_id);
    IF k.outcome IN ('replay', 'in_use', 'reused') THEN
        RETURN QUERY SELECT k.outcome, NULL::bigint, k.retry_after, k.response_status,
                            k.response_body, NULL::text, NULL::text, NULL::text,
                            NULL::bigint, NULL::text, NULL::text, NULL::bigint;
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
        RETURN QUERY SELECT 'resumed'::text, k.lease, NULL::int, NULL::int, NULL::text,
                            r.refund_id, r.psp, c.psp_payment_ref, r.amount, r.currency,
                            r.reason, NULL::bigint;
        RETURN;
    END IF;

    -- A new refund: every refund of this order passes here one at a time.
    SELECT * INTO o FROM payment_orders po
     WHERE po.merchant_id = p_merchant AND po.payment_order_id = p_order_id
       FOR UPDATE;
    IF NOT FOUND THEN
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
                            CASE WHEN o.amount IS NULL THEN NULL
                                 ELSE greatest(o.amount - v_sum, 0) END;
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
                        p_reason, NULL::bigint;
END
$$;

REVOKE ALL ON FUNCTION order_given_back(text, text, text) FROM PUBLIC;
