-- POST /v1/checkouts/{id}/cancel, the PSP's answer (one transaction, the
-- claim's lease still held).  p_result:
--   closed   the PSP says the session ended without a payment (expired by
--            this cancel, or before it)
--   gateway  the PSP cannot end a session (adyen), or the checkout has no
--            session yet: the gateway cancels it alone
--   paid     the PSP says the session was paid, or a payment in it is
--            under way: the payment stands, its webhook books it
-- An EXECUTING checkout closed or canceled here fails, with its orders, as
-- `canceled` (notified as checkout.canceled, audited); so does one held
-- for review (p_result gateway: no PSP has seen it), whose review the
-- cancel decides (reviewed canceled: out of the queue, never approved
-- after it); one decided since
-- the claim (its webhook came first) is answered as it is.  Either way the
-- cancel is decided: cancel_requested_at goes back to NULL, and the
-- cancel is audited (cancel:canceled) by the finish that decides it.  The
-- answer is stored under the key: 200 {"checkout_id","status"} (the
-- caller answers with the checkout's view), or 409 p_paid_problem /
-- p_not_cancelable_problem.
CREATE OR REPLACE FUNCTION pay_cancel_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout text, p_result text, p_paid_problem text, p_not_cancelable_problem text)
 RETURNS TABLE(response_status integer, response_body text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    c         checkouts%ROWTYPE;
    o         record;
    v_status  int;
    v_body    text;
    v_source  text;
BEGIN
    IF p_result NOT IN ('closed', 'gateway', 'paid') THEN
        RAISE EXCEPTION 'pay_cancel_finish: unknown result %', p_result
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- the cancel's key (stored as done at the end), the checkout, then its
    -- orders in id order: the order every money function takes them in
    -- (doc/MONEY.md, "Lock order"), so a retry of this cancel resuming
    -- its claim (key, then checkout) never waits on it in a cycle
    PERFORM 1 FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       FOR UPDATE;
    SELECT * INTO c FROM checkouts ck
     WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pay_cancel_finish: no checkout %', p_checkout
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM 1 FROM payment_orders po
     WHERE po.merchant_id = p_merchant AND po.checkout_id = p_checkout
     ORDER BY po.payment_order_id
       FOR UPDATE;

    IF p_result = 'paid' THEN
        -- the PSP took the payment before the cancel: a later failure of
        -- it (an asynchronous method declined) is no cancel
        UPDATE checkouts ck SET cancel_requested_at = NULL
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout;
        PERFORM audit_append(p_merchant, p_checkout, 'cancel:refused_paid',
            jsonb_build_object('psp', c.psp, 'status', c.status));
        v_status := 409;
        v_body := p_paid_problem;

    ELSIF c.status = 'EXECUTING'
          OR c.status = 'REVIEW' AND p_result = 'gateway' THEN
        v_source := CASE WHEN c.status = 'REVIEW' THEN 'cancel:review'
                         ELSE 'cancel:' || c.psp || ':' || p_result END;

        -- a review is decided by the cancel (the risk row after the
        -- checkout: the order pay_review_approve and _reject lock them in)
        IF c.status = 'REVIEW' THEN
            UPDATE checkout_risk r
               SET reviewed = 'canceled', reviewed_at = now()
             WHERE r.merchant_id = p_merchant AND r.checkout_id = p_checkout
               AND r.verdict = 'review' AND r.reviewed IS NULL;
        END IF;

        UPDATE checkouts ck
           SET status = 'FAILED', failure_code = 'canceled',
               cancel_requested_at = NULL, updated_at = now()
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout;

        FOR o IN
            SELECT po.payment_order_id, po.status
              FROM payment_orders po
             WHERE po.merchant_id = p_merchant AND po.checkout_id = p_checkout
             ORDER BY po.seller_account, po.line_no
               FOR UPDATE
        LOOP
            UPDATE payment_orders po
               SET status = 'FAILED', ledger_updated = false,
                   wallet_updated = false, updated_at = now()
             WHERE po.merchant_id = p_merchant
               AND po.payment_order_id = o.payment_order_id;

            INSERT INTO order_events (merchant_id, checkout_id, payment_order_id,
                                      from_status, to_status, source)
            VALUES (p_merchant, p_checkout, o.payment_order_id, o.status,
                    'FAILED', v_source);
        END LOOP;

        PERFORM audit_append(p_merchant, p_checkout, 'cancel:canceled',
            jsonb_strip_nulls(jsonb_build_object('psp', c.psp,
                'result', p_result,
                'from', CASE WHEN c.status = 'REVIEW' THEN 'REVIEW' END)));
        v_status := 200;

    ELSIF c.status = 'FAILED' AND c.failure_code = 'canceled' THEN
        -- the PSP's expiry webhook of this cancel failed it first: the
        -- cancel is decided now, and audited once (a cancel under another
        -- key that finished first found it undecided and did both)
        IF c.cancel_requested_at IS NOT NULL THEN
            UPDATE checkouts ck SET cancel_requested_at = NULL
             WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout;
            PERFORM audit_append(p_merchant, p_checkout, 'cancel:canceled',
                jsonb_build_object('psp', c.psp, 'result', p_result,
                                   'failed_by', 'webhook'));
        END IF;
        v_status := 200;

    ELSIF c.status = 'SUCCESS' THEN
        v_status := 409;
        v_body := p_paid_problem;

    ELSE
        v_status := 409;
        v_body := p_not_cancelable_problem;
    END IF;

    -- refused (paid, held, in review): decided too, so that no later
    -- registration or approval of the checkout counts it as under way
    IF v_status = 409 AND p_result <> 'paid' AND c.cancel_requested_at IS NOT NULL THEN
        UPDATE checkouts ck SET cancel_requested_at = NULL
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout;
    END IF;

    IF v_status = 200 THEN
        v_body := jsonb_build_object('checkout_id', p_checkout,
                                     'status', 'FAILED')::text;
    END IF;

    PERFORM op_key_done(p_merchant, p_idem_key, p_lease, v_status, v_body);

    RETURN QUERY SELECT v_status, v_body;
END
$function$;
REVOKE ALL ON FUNCTION pay_cancel_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout text, p_result text, p_paid_problem text, p_not_cancelable_problem text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_cancel_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout text, p_result text, p_paid_problem text, p_not_cancelable_problem text) TO payments_gateway;
