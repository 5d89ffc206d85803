-- The lease owner's paid checkouts (SUCCESS, or a manual capture's hold
-- AUTHORIZED) that asked to save the shopper's method and have none
-- recorded (method_saved_at NULL: the PSP's event that it was stored lost,
-- the payment's own come), at least p_after seconds old, not asked in the
-- last p_every seconds, at the PSPs of p_psps (those whose session look-up
-- names a paid session's stored method); at most p_limit, never asked
-- first; each counted as asked (method_asked_at).  Found through
-- checkouts_method_unalerted and checkouts_method_alerted (those alerted
-- are asked too: a method found late is still recorded): a round reads
-- only the checkouts still without their method.  setup: a save without a
-- charge (amount 0).
-- Sequential and bitmap scans are off for the call: left to the costs,
-- where index fetches look dear (rows scattered over pages not
-- all-visible), the planner chose a scan of the whole table, 20,050 rows
-- read for 5,000 unsaved in the e2e suite with random_page_cost 40 and
-- cursor_tuple_fraction 1 (the transaction of test
-- solo_sweeper::a_methods_round_reads_about_the_unsaved, at those costs).
-- Not a guarantee against every plan: on a scratch cluster whose 20,000
-- checkouts were all one merchant's, with the same costs, it walked that
-- merchant's list index (checkouts_list) whole instead of the unsaved
-- methods' indexes, so no test holds it to those costs.
CREATE OR REPLACE FUNCTION pay_sweeper_methods_due(p_owner text, p_psps text[], p_after integer, p_every integer, p_limit integer)
 RETURNS TABLE(merchant_id text, checkout_id text, psp text, psp_token text, nonce text, age_seconds bigint, session_result text, setup boolean)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET jit TO 'off'
 SET enable_seqscan TO 'off'
 SET enable_bitmapscan TO 'off'
AS $function$
#variable_conflict use_column
BEGIN
    PERFORM 1 FROM sweeper_lease l
      WHERE l.id = 1 AND l.owner = p_owner AND l.until > now();
    IF NOT FOUND THEN
        RETURN;
    END IF;

    RETURN QUERY
    WITH unsaved AS (
        -- the not alerted and the alerted, each through its own index
        SELECT c.merchant_id, c.checkout_id, c.psp, c.psp_token, c.nonce,
               c.amount_total, c.created_at
          FROM checkouts c
         WHERE c.save_method IS NOT NULL
           AND c.method_saved_at IS NULL
           AND c.method_alerted_at IS NULL
           AND c.status IN ('SUCCESS', 'AUTHORIZED')
           AND c.created_at < now() - make_interval(secs => p_after)
           AND c.psp = ANY (coalesce(p_psps, '{}'))
           AND c.psp_token IS NOT NULL
        UNION ALL
        SELECT c.merchant_id, c.checkout_id, c.psp, c.psp_token, c.nonce,
               c.amount_total, c.created_at
          FROM checkouts c
         WHERE c.save_method IS NOT NULL
           AND c.method_saved_at IS NULL
           AND c.method_alerted_at IS NOT NULL
           AND c.status IN ('SUCCESS', 'AUTHORIZED')
           AND c.created_at < now() - make_interval(secs => p_after)
           AND c.psp = ANY (coalesce(p_psps, '{}'))
           AND c.psp_token IS NOT NULL
    ), due AS (
        SELECT c.merchant_id, c.checkout_id, c.psp, c.psp_token, c.nonce,
               floor(extract(epoch FROM now() - c.created_at))::bigint AS age_seconds,
               s.session_result, (c.amount_total = 0) AS setup, c.created_at
          FROM unsaved c
          LEFT JOIN checkout_sweeps s
            ON s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
         WHERE (s.method_asked_at IS NULL
                OR s.method_asked_at < now() - make_interval(secs => p_every))
         -- never asked first, then the one asked longest ago
         ORDER BY s.method_asked_at NULLS FIRST, c.created_at
         LIMIT p_limit
    ), asked AS (
        INSERT INTO checkout_sweeps AS s (merchant_id, checkout_id, method_asked_at)
        SELECT d.merchant_id, d.checkout_id, now() FROM due d
        ON CONFLICT (merchant_id, checkout_id) DO UPDATE
            SET method_asked_at = now()
    )
    SELECT d.merchant_id, d.checkout_id, d.psp, d.psp_token, d.nonce,
           d.age_seconds, d.session_result, d.setup
      FROM due d
     ORDER BY d.created_at;
END
$function$;
REVOKE ALL ON FUNCTION pay_sweeper_methods_due(p_owner text, p_psps text[], p_after integer, p_every integer, p_limit integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_sweeper_methods_due(p_owner text, p_psps text[], p_after integer, p_every integer, p_limit integer) TO payments_gateway;
