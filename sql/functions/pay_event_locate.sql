-- Whether this shard owns a verified PSP event that names no merchant (a
-- Stripe dispute, a refund made at the PSP's dashboard, an Adyen item
-- without merchantReference, a generic event with a token only): asked of
-- every shard at once, before the event is kept on the one that answers.
-- Looked up as pay_event_apply would find its object, each by its key:
-- the session token (p_tokens, its blind indexes under each key of the
-- ring, in order, then p_token as sent), the PSP's payment id
-- (psp_payments), then the PSP's id of a refund, dispute, pay-out or
-- capture.  One row, the first found, with what found it (token, payment,
-- refund, dispute, payout or capture); none when nothing here is the
-- event's.  Reads only.
-- Every read is a look-up by key, planned with the sequential and bitmap
-- scans off: pay_inbox_homeless calls it inside its walk, which turns
-- them off, and a connection keeps the plans of whichever call came
-- first; with them off here too, a gateway's own call (a shard's look-up)
-- runs the same plans whoever came first (ci/sql-check.sh, check 14).
CREATE OR REPLACE FUNCTION pay_event_locate(p_psp text, p_token text, p_tokens text[], p_payment_ref text, p_object_ref text)
 RETURNS TABLE(merchant_id text, checkout_id text, found_by text)
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET jit TO 'off'
 SET enable_seqscan TO 'off'
 SET enable_bitmapscan TO 'off'
AS $function$
#variable_conflict use_column
DECLARE
    v_tok  text;
    v_m    text;
    v_co   text;
BEGIN
    FOREACH v_tok IN ARRAY coalesce(p_tokens, '{}') || p_token LOOP
        CONTINUE WHEN coalesce(v_tok, '') = '';
        SELECT t.merchant_id, t.checkout_id INTO v_m, v_co
          FROM psp_tokens t
         WHERE t.psp = p_psp AND t.psp_token = v_tok;
        IF FOUND THEN
            RETURN QUERY SELECT v_m, v_co, 'token'::text;
            RETURN;
        END IF;
    END LOOP;

    IF coalesce(p_payment_ref, '') <> '' THEN
        SELECT pp.merchant_id, pp.checkout_id INTO v_m, v_co
          FROM psp_payments pp
         WHERE pp.psp = p_psp AND pp.payment_ref = p_payment_ref;
        IF FOUND THEN
            RETURN QUERY SELECT v_m, v_co, 'payment'::text;
            RETURN;
        END IF;
    END IF;

    IF coalesce(p_object_ref, '') = '' THEN
        RETURN;
    END IF;
    SELECT rf.merchant_id, rf.checkout_id INTO v_m, v_co
      FROM refunds rf WHERE rf.psp = p_psp AND rf.psp_refund_id = p_object_ref;
    IF FOUND THEN
        RETURN QUERY SELECT v_m, v_co, 'refund'::text;
        RETURN;
    END IF;
    SELECT d.merchant_id, d.checkout_id INTO v_m, v_co
      FROM disputes d WHERE d.psp = p_psp AND d.psp_dispute_ref = p_object_ref;
    IF FOUND THEN
        RETURN QUERY SELECT v_m, v_co, 'dispute'::text;
        RETURN;
    END IF;
    SELECT po.merchant_id INTO v_m
      FROM payouts po WHERE po.psp = p_psp AND po.psp_payout_id = p_object_ref;
    IF FOUND THEN
        RETURN QUERY SELECT v_m, NULL::text, 'payout'::text;
        RETURN;
    END IF;
    SELECT cp.merchant_id, cp.checkout_id INTO v_m, v_co
      FROM captures cp WHERE cp.psp = p_psp AND cp.psp_ref = p_object_ref
     LIMIT 1;
    IF FOUND THEN
        RETURN QUERY SELECT v_m, v_co, 'capture'::text;
    END IF;
END
$function$;
REVOKE ALL ON FUNCTION pay_event_locate(p_psp text, p_token text, p_tokens text[], p_payment_ref text, p_object_ref text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_event_locate(p_psp text, p_token text, p_tokens text[], p_payment_ref text, p_object_ref text) TO payments_gateway;
