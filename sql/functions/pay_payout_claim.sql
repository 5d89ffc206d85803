-- A pay-out's claim: the key, the seller's available balance and the row,
-- in one transaction.  p_psp_conf: the PSP settings its request carries
-- (pay_psp_conf_record), recorded with the row and returned when the claim
-- is resumed, so that the request is sent again only under the same
-- settings (psp_conf NULL: not recorded).
CREATE OR REPLACE FUNCTION pay_payout_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_payout_id text, p_seller text, p_amount bigint, p_currency text, p_psp text, p_metadata jsonb, p_psp_conf jsonb)
 RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, payout_id text, psp text, destination text, amount bigint, currency text, available bigint, op_status text, psp_ref text, failure text, claim_age bigint, psp_conf jsonb)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    k        record;
    p        payouts%ROWTYPE;
    s        sellers%ROWTYPE;
    b        record;
    v_err    text;
    v_av     bigint;
    v_prior  text;
BEGIN
    SELECT * INTO k FROM op_key_take(p_merchant, p_idem_key, p_fingerprint,
                                     p_lease_seconds, p_ttl_seconds, p_payout_id);
    IF k.outcome IN ('replay', 'in_use', 'reused') THEN
        RETURN QUERY SELECT k.outcome, NULL::bigint, k.retry_after, k.response_status,
                            k.response_body, NULL::text, NULL::text, NULL::text,
                            NULL::bigint, NULL::text, NULL::bigint,
                            NULL::text, NULL::text, NULL::text, NULL::bigint,
                            NULL::jsonb;
        RETURN;
    END IF;

    -- the same request (key and body) after its key expired, or was
    -- purged: the pay-out it made, resumed, never made a second time
    IF k.outcome = 'new' THEN
        v_prior := op_key_prior(p_merchant, p_idem_key, p_fingerprint, 'payout', k.lease);
        IF v_prior IS NOT NULL THEN
            k.outcome := 'resumed';
            k.op_id := v_prior;
        END IF;
    END IF;

    IF k.outcome = 'resumed' THEN
        -- one to send again: this attempt may reach the PSP ('trying'), and
        -- an earlier one that never said it sent nothing ('trying' still: it
        -- died, or its lease ran out) may have ('maybe'); a 'maybe' stays
        -- as it is (no write).  The pay-out by its key, its state told by
        -- the row: "status = 'PENDING'" in the WHERE is payouts_seller's
        -- predicate, and a plan made on empty tables walked the merchant's
        -- pending pay-outs through it (pay_refund_claim)
        SELECT * INTO p FROM payouts po
         WHERE po.merchant_id = p_merchant AND po.payout_id = k.op_id
           FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pay_payout_claim: in-progress key % has no pay-out', p_idem_key
                USING ERRCODE = 'PY004';
        END IF;
        IF p.status = 'PENDING' AND p.psp_payout_id IS NULL AND p.psp_contact <> 'maybe' THEN
            UPDATE payouts po
               SET psp_contact = CASE po.psp_contact WHEN 'none' THEN 'trying' ELSE 'maybe' END
             WHERE po.merchant_id = p_merchant AND po.payout_id = k.op_id
            RETURNING * INTO p;
        END IF;
        -- settled (its webhook came) or known to the PSP (its answer was
        -- stored): answered from the row, the PSP is not asked again
        RETURN QUERY SELECT CASE WHEN p.status <> 'PENDING' OR p.psp_payout_id IS NOT NULL
                                 THEN 'settled' ELSE 'resumed' END,
                            k.lease, NULL::int, NULL::int, NULL::text,
                            p.payout_id, p.psp, p.destination, p.amount, p.currency,
                            NULL::bigint, p.status, p.psp_payout_id, p.failure,
                            floor(date_part('epoch', clock_timestamp() - p.created_at))::bigint,
                            p.psp_conf;
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
                            NULL::bigint, NULL::jsonb;
        RETURN;
    END IF;

    INSERT INTO operation_keys (merchant_id, idem_key, fingerprint, kind, op_id)
    VALUES (p_merchant, p_idem_key, p_fingerprint, 'payout', p_payout_id);

    INSERT INTO payouts (merchant_id, payout_id, seller_account, psp, destination, nonce,
                         amount, currency, status, metadata, psp_contact, psp_conf)
    VALUES (p_merchant, p_payout_id, p_seller, p_psp, s.destination,
            p_merchant || ':' || p_payout_id, p_amount, p_currency, 'PENDING',
            COALESCE(p_metadata, '{}'), 'trying', p_psp_conf);

    PERFORM audit_append(p_merchant, NULL, 'payout:requested',
        jsonb_build_object('payout_id', p_payout_id, 'seller_account', p_seller,
                           'amount', p_amount, 'currency', p_currency, 'psp', p_psp));

    RETURN QUERY SELECT 'new'::text, k.lease, NULL::int, NULL::int, NULL::text,
                        p_payout_id, p_psp, s.destination, p_amount, p_currency,
                        NULL::bigint, 'PENDING'::text, NULL::text, NULL::text, 0::bigint,
                        p_psp_conf;
END
$function$;
REVOKE ALL ON FUNCTION pay_payout_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_payout_id text, p_seller text, p_amount bigint, p_currency text, p_psp text, p_metadata jsonb, p_psp_conf jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_payout_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_payout_id text, p_seller text, p_amount bigint, p_currency text, p_psp text, p_metadata jsonb, p_psp_conf jsonb) TO payments_gateway;

-- The signature without the PSP's settings, which the previous release's
-- module calls during an upgrade: none recorded.
CREATE OR REPLACE FUNCTION pay_payout_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_payout_id text, p_seller text, p_amount bigint, p_currency text, p_psp text, p_metadata jsonb)
 RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, payout_id text, psp text, destination text, amount bigint, currency text, available bigint, op_status text, psp_ref text, failure text, claim_age bigint)
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT outcome, lease, retry_after, response_status, response_body, payout_id, psp, destination, amount, currency, available, op_status, psp_ref, failure, claim_age FROM pay_payout_claim(p_merchant, p_idem_key, p_fingerprint, p_lease_seconds, p_ttl_seconds, p_payout_id, p_seller, p_amount, p_currency, p_psp, p_metadata, NULL::jsonb);
$function$;
REVOKE ALL ON FUNCTION pay_payout_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_payout_id text, p_seller text, p_amount bigint, p_currency text, p_psp text, p_metadata jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_payout_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_payout_id text, p_seller text, p_amount bigint, p_currency text, p_psp text, p_metadata jsonb) TO payments_gateway;

-- The signature without metadata, which the previous release's module
-- calls during an upgrade: no metadata.
CREATE OR REPLACE FUNCTION pay_payout_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_payout_id text, p_seller text, p_amount bigint, p_currency text, p_psp text)
 RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, payout_id text, psp text, destination text, amount bigint, currency text, available bigint, op_status text, psp_ref text, failure text, claim_age bigint)
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT outcome, lease, retry_after, response_status, response_body, payout_id, psp, destination, amount, currency, available, op_status, psp_ref, failure, claim_age FROM pay_payout_claim(p_merchant, p_idem_key, p_fingerprint, p_lease_seconds, p_ttl_seconds, p_payout_id, p_seller, p_amount, p_currency, p_psp, '{}'::jsonb, NULL::jsonb);
$function$;
REVOKE ALL ON FUNCTION pay_payout_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_payout_id text, p_seller text, p_amount bigint, p_currency text, p_psp text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_payout_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_payout_id text, p_seller text, p_amount bigint, p_currency text, p_psp text) TO payments_gateway;
