-- The sweeper's round: the paid checkouts the risk check asked about
-- before their PSP and not yet after their payment (payments_risk
-- after_payment=on, doc/RISK.md), at most p_limit, the oldest first, of
-- the first checks of the last p_horizon_seconds (a gateway that turns
-- after_payment on does not ask about its past).  What the request needs,
-- the orders as a JSON array, and how long ago the checkout was paid.
--
-- Read from the due list (checkout_risk_after_due: written at the
-- payment's commit, deleted with the verdict after it), not from the
-- week's first checks, most of them unpaid or asked already (migration
-- 137); a listed checkout no longer SUCCESS (refunded since) is passed
-- over, as before.  The list is walked in its order and each checkout
-- looked up by its key, one at a time: a join of the two, planned while
-- the statistics said the tables held no live row, read every checkout
-- (a merge join over the checkouts' primary key: 4,080 rows to take 50 of
-- 80 due) or worse (237,484 analysed with dead rows), with the
-- sequential and bitmap scans off as well
-- (plans_background::the_risk_after_round_reads_what_is_due).  The walk
-- keeps those off, as pay_inbox_homeless does: an index's order, never a
-- sort of the whole list.
CREATE OR REPLACE FUNCTION pay_risk_after_due(p_limit integer, p_horizon_seconds integer)
 RETURNS TABLE(merchant_id text, checkout_id text, psp text, currency text, amount_total bigint, buyer_email text, psp_payment_ref text, orders text, paid_seconds bigint)
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET jit TO 'off'
 SET enable_seqscan TO 'off'
 SET enable_bitmapscan TO 'off'
AS $function$
#variable_conflict use_column
DECLARE
    d        record;
    v_taken  integer := 0;
    v_limit  integer := greatest(1, least(coalesce(p_limit, 50), 1000));
BEGIN
    IF coalesce(p_horizon_seconds, 0) < 1 THEN
        RAISE EXCEPTION 'pay_risk_after_due: a horizon of 1 s at least'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    FOR d IN SELECT x.merchant_id AS m, x.checkout_id AS co
               FROM checkout_risk_after_due x
              WHERE x.decided_at > now() - p_horizon_seconds * interval '1 second'
              ORDER BY x.decided_at
    LOOP
        RETURN QUERY
        SELECT c.merchant_id, c.checkout_id, c.psp, c.currency, c.amount_total,
               c.buyer_email, c.psp_payment_ref,
               (SELECT json_agg(json_build_object(
                           'payment_order_id', o.payment_order_id,
                           'seller_account', o.seller_account,
                           'amount_minor', o.amount) ORDER BY o.line_no)
                  FROM payment_orders o
                 WHERE o.merchant_id = c.merchant_id
                   AND o.checkout_id = c.checkout_id)::text,
               greatest(0, floor(date_part('epoch', now() - coalesce(
                   (SELECT min(e.at) FROM order_events e
                     WHERE e.merchant_id = c.merchant_id
                       AND e.checkout_id = c.checkout_id
                       AND e.to_status = 'SUCCESS'),
                   c.updated_at))))::bigint
          FROM checkouts c
         WHERE c.merchant_id = d.m
           AND c.checkout_id = d.co
           AND c.status = 'SUCCESS'
           -- a setup listed by migration 137's backfill: no money taken
           AND c.amount_total > 0
           AND NOT EXISTS (SELECT 1 FROM checkout_risk_after a
                            WHERE a.merchant_id = d.m
                              AND a.checkout_id = d.co);
        IF FOUND THEN
            v_taken := v_taken + 1;
            EXIT WHEN v_taken >= v_limit;
        END IF;
    END LOOP;
END
$function$;
REVOKE ALL ON FUNCTION pay_risk_after_due(p_limit integer, p_horizon_seconds integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_risk_after_due(p_limit integer, p_horizon_seconds integer) TO payments_gateway;
