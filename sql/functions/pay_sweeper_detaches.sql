-- The detached methods of p_psps whose PSP has not confirmed the detach,
-- due to be sent it again: detached p_after seconds ago or more, and last
-- tried by the sweeper p_retry seconds ago or more; oldest first, at most
-- p_limit, with what the adapter needs to send it (as
-- pay_method_detach_start's, the account it was saved under included)
-- and the tries so far.  Every row also says
-- how many of p_psps' methods have been tried p_alert times or more and
-- are still unconfirmed (for /metrics); with none due, one row of NULLs
-- says it.  Only the lease's owner gets any method.
CREATE OR REPLACE FUNCTION pay_sweeper_detaches(p_owner text, p_psps text[], p_after integer, p_retry integer, p_limit integer, p_alert integer)
 RETURNS TABLE(merchant_id text, method_id text, psp text, token_sealed text, checkout_id text, customer_ref text, tries integer, stuck bigint, saved_account text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    v_stuck  bigint;
BEGIN
    SELECT count(*) INTO v_stuck
      FROM payment_methods p
     WHERE p.status = 'detached' AND p.psp_detached_at IS NULL
       AND p.psp = ANY (p_psps) AND p.psp_detach_tries >= p_alert;

    PERFORM 1 FROM sweeper_lease l
      WHERE l.id = 1 AND l.owner = p_owner AND l.until > now();

    IF FOUND THEN
        -- the due ones first (payment_methods_psp_detach_due), then each
        -- one's checkout by its key, row by row (LATERAL, LIMIT): planned
        -- while the statistics said payment_methods held no row, a join
        -- read every method through another index to match the checkouts
        -- (4,200 rows read for 20 of 4,000 methods,
        -- plans_background::the_methods_detach_sweep_reads_the_detached)
        RETURN QUERY
            SELECT p.merchant_id, p.method_id, p.psp, p.token_sealed, p.checkout_id,
                   p.customer_ref, p.psp_detach_tries, v_stuck,
                   stored_request_account(c.psp_request)
              FROM (SELECT p.merchant_id, p.method_id, p.psp, p.token_sealed,
                           p.checkout_id, p.customer_ref, p.psp_detach_tries,
                           coalesce(p.psp_detach_tried_at, p.detached_at) AS due_at
                      FROM payment_methods p
                     WHERE p.status = 'detached' AND p.psp_detached_at IS NULL
                       AND p.psp = ANY (p_psps)
                       AND p.detached_at <= now() - make_interval(secs => p_after)
                       AND (p.psp_detach_tried_at IS NULL
                            OR p.psp_detach_tried_at <= now() - make_interval(secs => p_retry))
                     ORDER BY coalesce(p.psp_detach_tried_at, p.detached_at)
                     LIMIT p_limit) p
              LEFT JOIN LATERAL (
                   SELECT c.psp_request FROM checkouts c
                    WHERE c.merchant_id = p.merchant_id AND c.checkout_id = p.checkout_id
                    LIMIT 1) c ON true
             ORDER BY p.due_at;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;

    RETURN QUERY SELECT NULL::text, NULL::text, NULL::text, NULL::text, NULL::text,
                        NULL::text, NULL::integer, v_stuck, NULL::text;
END
$function$;
REVOKE ALL ON FUNCTION pay_sweeper_detaches(p_owner text, p_psps text[], p_after integer, p_retry integer, p_limit integer, p_alert integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_sweeper_detaches(p_owner text, p_psps text[], p_after integer, p_retry integer, p_limit integer, p_alert integer) TO payments_gateway;
