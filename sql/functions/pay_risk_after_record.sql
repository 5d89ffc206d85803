-- The risk check's verdict after the payment (doc/RISK.md), or
-- 'unchecked' when the provider had no usable answer in the bounded time:
-- one row per checkout, in one transaction with its audit entry
-- (risk:after_allow, risk:after_deny, risk:after_review,
-- risk:after_unchecked) and, for a deny or a review, the merchant's
-- checkout.risk_flagged notification.  The checkout, its orders and the
-- ledger are never touched: a refund is the merchant's choice.
--   recorded   stored now
--   known      a verdict was stored before (another round's): nothing written
--   not_paid   the checkout is not SUCCESS, or was not asked before its PSP
CREATE OR REPLACE FUNCTION pay_risk_after_record(p_merchant text, p_checkout_id text, p_verdict text, p_score integer, p_reason text, p_source text)
 RETURNS text
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    c  checkouts%ROWTYPE;
BEGIN
    IF p_verdict IS NULL
       OR p_verdict NOT IN ('allow', 'deny', 'review', 'unchecked')
       OR (p_verdict = 'unchecked') <> (p_source IS NOT DISTINCT FROM 'on_error') THEN
        RAISE EXCEPTION 'pay_risk_after_record: a verdict of allow, deny or review from the provider, or unchecked on_error'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- off the round's due list, whatever the outcome: recorded, known
    -- or no longer paid, it is not asked again (a payment made again
    -- lists it again, checkouts_notify)
    DELETE FROM checkout_risk_after_due d
     WHERE d.merchant_id = p_merchant AND d.checkout_id = p_checkout_id;

    SELECT * INTO c FROM checkouts ck
     WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout_id;
    IF c.status IS DISTINCT FROM 'SUCCESS'
       OR NOT EXISTS (SELECT 1 FROM checkout_risk rk
                       WHERE rk.merchant_id = p_merchant
                         AND rk.checkout_id = p_checkout_id) THEN
        RETURN 'not_paid';
    END IF;

    INSERT INTO checkout_risk_after (merchant_id, checkout_id, verdict, score,
                                     reason, source)
    VALUES (p_merchant, p_checkout_id, p_verdict, p_score, p_reason, p_source)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN 'known';
    END IF;

    PERFORM audit_append(p_merchant, p_checkout_id, 'risk:after_' || p_verdict,
        jsonb_strip_nulls(jsonb_build_object(
            'phase', 'after_payment', 'verdict', p_verdict, 'score', p_score,
            'reason', p_reason, 'source', p_source)));

    -- the merchant decides: it may refund through the API
    IF p_verdict IN ('deny', 'review') THEN
        PERFORM notify_enqueue(
            p_merchant, 'checkout.risk_flagged', p_checkout_id, p_checkout_id,
            jsonb_build_object(
                'checkout_id', p_checkout_id,
                'status', c.status,
                'amount_total_minor', c.amount_total,
                'amount_total', money_decimal(c.amount_total, c.currency),
                'currency', c.currency,
                'metadata', c.metadata,
                'risk', jsonb_strip_nulls(jsonb_build_object(
                    'phase', 'after_payment', 'verdict', p_verdict,
                    'score', p_score, 'reason', p_reason,
                    'source', p_source)),
                'payment_orders', coalesce((
                    SELECT jsonb_agg(jsonb_build_object(
                               'payment_order_id', o.payment_order_id,
                               'status', o.status,
                               'amount_minor', o.amount,
                               'amount', money_decimal(o.amount, o.currency),
                               'currency', o.currency) ORDER BY o.line_no)
                      FROM payment_orders o
                     WHERE o.merchant_id = p_merchant
                       AND o.checkout_id = p_checkout_id), '[]'::jsonb)));
    END IF;

    RETURN 'recorded';
END
$function$;
REVOKE ALL ON FUNCTION pay_risk_after_record(p_merchant text, p_checkout_id text, p_verdict text, p_score integer, p_reason text, p_source text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_risk_after_record(p_merchant text, p_checkout_id text, p_verdict text, p_score integer, p_reason text, p_source text) TO payments_gateway;
