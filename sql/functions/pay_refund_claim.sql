-- A refund's claim: the key, the limits and the row, in one transaction.
-- p_psp_conf: the PSP settings its request carries (pay_psp_conf_record),
-- recorded with the row and returned when the claim is resumed, so that
-- the request is sent again only under the same settings (psp_conf NULL:
-- not recorded).  A new refund of a payment whose registration recorded
-- another merchant account than p_psp_conf's is refused
-- ('merchant_account', with the payment's as psp_conf): nothing stored.
CREATE OR REPLACE FUNCTION pay_refund_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_refund_id text, p_order_id text, p_amount bigint, p_currency text, p_reason text, p_metadata jsonb, p_psp_conf jsonb)
 RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, refund_id text, psp text, payment_ref text, amount bigint, currency text, reason text, refundable bigint, op_status text, psp_ref text, failure text, claim_age bigint, psp_conf jsonb)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    k        record;
    o        payment_orders%ROWTYPE;
    c        checkouts%ROWTYPE;
    r        refunds%ROWTYPE;
    b        record;
    h        record;
    v_sum    bigint;
    v_av     bigint;
    v_err    text;
    v_prior  text;
BEGIN
    SELECT * INTO k FROM op_key_take(p_merchant, p_idem_key, p_fingerprint,
                                     p_lease_seconds, p_ttl_seconds, p_refund_id);
    IF k.outcome IN ('replay', 'in_use', 'reused') THEN
        RETURN QUERY SELECT k.outcome, NULL::bigint, k.retry_after, k.response_status,
                            k.response_body, NULL::text, NULL::text, NULL::text,
                            NULL::bigint, NULL::text, NULL::text, NULL::bigint,
                            NULL::text, NULL::text, NULL::text, NULL::bigint,
                            NULL::jsonb;
        RETURN;
    END IF;

    -- the same request (key and body) after its key expired, or was
    -- purged: the refund it made, resumed, never made a second time
    IF k.outcome = 'new' THEN
        v_prior := op_key_prior(p_merchant, p_idem_key, p_fingerprint, 'refund', k.lease);
        IF v_prior IS NOT NULL THEN
            k.outcome := 'resumed';
            k.op_id := v_prior;
        END IF;
    END IF;

    IF k.outcome = 'resumed' THEN
        -- one to send again: this attempt may reach the PSP ('trying'), and
        -- an earlier one that never said it sent nothing ('trying' still: it
        -- died, or its lease ran out) may have ('maybe'); a 'maybe' stays
        -- as it is (no write).  The refund by its key, its state told by
        -- the row: "status = 'PENDING'" in the WHERE is
        -- refunds_pending_seller's predicate, and a plan made on empty
        -- tables walked the merchant's refunds in flight through it
        -- (plans::each_money_move_reads_its_orders_and_sellers_rows_not_the_merchants)
        SELECT * INTO r FROM refunds rf
         WHERE rf.merchant_id = p_merchant AND rf.refund_id = k.op_id
           FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pay_refund_claim: in-progress key % has no refund', p_idem_key
                USING ERRCODE = 'PY004';
        END IF;
        IF r.status = 'PENDING' AND r.psp_refund_id IS NULL AND r.psp_contact <> 'maybe' THEN
            UPDATE refunds rf
               SET psp_contact = CASE rf.psp_contact WHEN 'none' THEN 'trying' ELSE 'maybe' END
             WHERE rf.merchant_id = p_merchant AND rf.refund_id = k.op_id
            RETURNING * INTO r;
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
                            floor(date_part('epoch', clock_timestamp() - r.created_at))::bigint,
                            r.psp_conf;
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
        ELSIF p_psp_conf ? 'merchant_account'
              AND stored_request_account(c.psp_request)
                  <> p_psp_conf ->> 'merchant_account' THEN
            -- the payment was made under another merchant account than its
            -- PSP's configuration names now: under this one the PSP refuses
            -- it, and under the payment's the PSP's webhooks of it are
            -- refused as another account's (never settled): not sent
            v_err := 'merchant_account';
        ELSIF p_currency <> o.currency THEN
            v_err := 'currency_mismatch';
        ELSIF v_sum + p_amount > coalesce(o.amount_captured, o.amount) THEN
            v_err := 'exceeds_capture';
        ELSE
            -- the seller's share of it must be available: what a pay-out
            -- already took, or a PENDING refund or an OPEN chargeback
            -- holds, is not (what the order's hold grows by with it:
            -- order_seller_hold, with this refund and without: its parts
            -- read once)
            SELECT * INTO b FROM seller_available(p_merchant, o.seller_account, o.currency);
            SELECT * INTO h FROM order_seller_hold_parts(p_merchant, p_order_id);
            IF refund_seller_share(h.captured, h.commission, h.given_back,
                                   h.commission_back, h.held + p_amount)
               - refund_seller_share(h.captured, h.commission, h.given_back,
                                     h.commission_back, h.held)
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
                                 ELSE greatest(coalesce(o.amount_captured, o.amount)
                                               - v_sum, 0) END,
                            NULL::text, NULL::text, NULL::text, NULL::bigint,
                            CASE WHEN v_err = 'merchant_account'
                                 THEN jsonb_build_object('merchant_account',
                                          stored_request_account(c.psp_request)) END;
        RETURN;
    END IF;

    INSERT INTO operation_keys (merchant_id, idem_key, fingerprint, kind, op_id)
    VALUES (p_merchant, p_idem_key, p_fingerprint, 'refund', p_refund_id);

    INSERT INTO refunds (merchant_id, refund_id, checkout_id, payment_order_id, psp, nonce,
                         amount, currency, reason, status, metadata, psp_contact, psp_conf)
    VALUES (p_merchant, p_refund_id, o.checkout_id, p_order_id, c.psp,
            p_merchant || ':' || p_refund_id, p_amount, p_currency, p_reason, 'PENDING',
            COALESCE(p_metadata, '{}'), 'trying', p_psp_conf);

    PERFORM audit_append(p_merchant, o.checkout_id, 'refund:requested',
        jsonb_build_object('refund_id', p_refund_id, 'payment_order_id', p_order_id,
                           'amount', p_amount, 'currency', p_currency));

    RETURN QUERY SELECT 'new'::text, k.lease, NULL::int, NULL::int, NULL::text,
                        p_refund_id, c.psp, c.psp_payment_ref, p_amount, p_currency,
                        p_reason, NULL::bigint, 'PENDING'::text, NULL::text, NULL::text,
                        0::bigint, p_psp_conf;
END
$function$;
REVOKE ALL ON FUNCTION pay_refund_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_refund_id text, p_order_id text, p_amount bigint, p_currency text, p_reason text, p_metadata jsonb, p_psp_conf jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_refund_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_refund_id text, p_order_id text, p_amount bigint, p_currency text, p_reason text, p_metadata jsonb, p_psp_conf jsonb) TO payments_gateway;

-- The signature without the PSP's settings, which the previous release's
-- module calls during an upgrade: none recorded.
CREATE OR REPLACE FUNCTION pay_refund_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_refund_id text, p_order_id text, p_amount bigint, p_currency text, p_reason text, p_metadata jsonb)
 RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, refund_id text, psp text, payment_ref text, amount bigint, currency text, reason text, refundable bigint, op_status text, psp_ref text, failure text, claim_age bigint)
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT outcome, lease, retry_after, response_status, response_body, refund_id, psp, payment_ref, amount, currency, reason, refundable, op_status, psp_ref, failure, claim_age FROM pay_refund_claim(p_merchant, p_idem_key, p_fingerprint, p_lease_seconds, p_ttl_seconds, p_refund_id, p_order_id, p_amount, p_currency, p_reason, p_metadata, NULL::jsonb);
$function$;
REVOKE ALL ON FUNCTION pay_refund_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_refund_id text, p_order_id text, p_amount bigint, p_currency text, p_reason text, p_metadata jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_refund_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_refund_id text, p_order_id text, p_amount bigint, p_currency text, p_reason text, p_metadata jsonb) TO payments_gateway;

-- The signature without metadata, which the previous release's module
-- calls during an upgrade: no metadata.
CREATE OR REPLACE FUNCTION pay_refund_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_refund_id text, p_order_id text, p_amount bigint, p_currency text, p_reason text)
 RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, refund_id text, psp text, payment_ref text, amount bigint, currency text, reason text, refundable bigint, op_status text, psp_ref text, failure text, claim_age bigint)
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT outcome, lease, retry_after, response_status, response_body, refund_id, psp, payment_ref, amount, currency, reason, refundable, op_status, psp_ref, failure, claim_age FROM pay_refund_claim(p_merchant, p_idem_key, p_fingerprint, p_lease_seconds, p_ttl_seconds, p_refund_id, p_order_id, p_amount, p_currency, p_reason, '{}'::jsonb, NULL::jsonb);
$function$;
REVOKE ALL ON FUNCTION pay_refund_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_refund_id text, p_order_id text, p_amount bigint, p_currency text, p_reason text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_refund_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_refund_id text, p_order_id text, p_amount bigint, p_currency text, p_reason text) TO payments_gateway;
