-- Paid checkouts of p_psps that asked to save the shopper's method and
-- have none recorded p_alert_after seconds after they were made (the
-- PSP's event that it was stored lost, and no look-up found it, or the
-- PSP cannot be asked): how many there are and how old the oldest is (for
-- /metrics), and the ones not alerted yet, at most p_limit, now marked
-- alerted (checkouts.method_alerted_at: one log line each).  Only the
-- lease's owner marks any.  Those checkouts are in one of two partial
-- indexes, checkouts_method_alerted or checkouts_method_unalerted, each
-- read alone, in its own order, so that no plan depends on how many the
-- statistics think are alerted: the oldest age is the older of the two
-- first entries, and the count walks the alerted, then the not alerted,
-- and stops at 10,000, as pay_sweeper_overdue's (the paid checkouts whose
-- method's event was lost stay: Adyen's cannot be asked, and they only
-- grow).  The ones to alert are found through checkouts_method_unalerted,
-- the only index whose entries can be: it leaves the alerted out (a
-- checkout paid late enters it behind older ones: a cursor would miss
-- it).
-- Sequential and bitmap scans are off for the call: left to the costs,
-- where index fetches look dear (rows scattered over pages not
-- all-visible), the planner chose a scan and a sort of the whole table
-- and kept it for the connection (the count read every row of checkouts,
-- 20,049, in the e2e suite with random_page_cost 40 and
-- cursor_tuple_fraction 1).  Not a guarantee against every plan: with the
-- same costs a CI run walked another index of every checkout whole
-- (20,014 rows read), so no test holds it to those costs.
CREATE OR REPLACE FUNCTION pay_sweeper_methods_unsaved(p_owner text, p_psps text[], p_alert_after integer, p_limit integer)
 RETURNS TABLE(merchant_id text, checkout_id text, psp text, age_seconds bigint, last_answer text, unsaved bigint, oldest_seconds bigint)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET jit TO 'off'
 SET enable_seqscan TO 'off'
 SET enable_bitmapscan TO 'off'
AS $function$
#variable_conflict use_column
DECLARE
    -- each in its index's order: its first row the oldest of its index,
    -- the count stopped at 10,000 (a cursor is planned for its first rows)
    alerted CURSOR FOR
        SELECT c.created_at
          FROM checkouts c
         WHERE c.save_method IS NOT NULL
           AND c.method_saved_at IS NULL
           AND c.method_alerted_at IS NOT NULL
           AND c.status IN ('SUCCESS', 'AUTHORIZED')
           AND c.created_at < now() - make_interval(secs => p_alert_after)
           AND c.psp = ANY (p_psps)
         ORDER BY c.created_at;
    unalerted CURSOR FOR
        SELECT c.created_at
          FROM checkouts c
         WHERE c.save_method IS NOT NULL
           AND c.method_saved_at IS NULL
           AND c.method_alerted_at IS NULL
           AND c.status IN ('SUCCESS', 'AUTHORIZED')
           AND c.created_at < now() - make_interval(secs => p_alert_after)
           AND c.psp = ANY (p_psps)
         ORDER BY c.created_at;
    v_n       bigint := 0;
    v_first   timestamptz;
    v_oldest  bigint := 0;
BEGIN
    -- the alerted, then the not alerted; the first row of each is read
    -- even past 10,000, for the oldest (rows come oldest first: least
    -- keeps the first's)
    FOR r IN alerted LOOP
        v_first := least(v_first, r.created_at);
        EXIT WHEN v_n >= 10000;
        v_n := v_n + 1;
    END LOOP;
    FOR r IN unalerted LOOP
        v_first := least(v_first, r.created_at);
        EXIT WHEN v_n >= 10000;
        v_n := v_n + 1;
    END LOOP;
    IF v_first IS NOT NULL THEN
        v_oldest := floor(extract(epoch FROM now() - v_first))::bigint;
    END IF;

    PERFORM 1 FROM sweeper_lease l
      WHERE l.id = 1 AND l.owner = p_owner AND l.until > now();
    IF NOT FOUND OR v_n = 0 THEN
        RETURN QUERY SELECT NULL::text, NULL::text, NULL::text, NULL::bigint,
                            NULL::text, v_n, v_oldest;
        RETURN;
    END IF;

    RETURN QUERY
    WITH late AS (
        SELECT c.ctid
          FROM checkouts c
         WHERE c.save_method IS NOT NULL
           AND c.method_saved_at IS NULL
           AND c.method_alerted_at IS NULL
           AND c.status IN ('SUCCESS', 'AUTHORIZED')
           AND c.created_at < now() - make_interval(secs => p_alert_after)
           AND c.psp = ANY (p_psps)
         ORDER BY c.created_at
         LIMIT p_limit
    ), marked AS (
        -- each marked by its place in the table, not by a join on its key:
        -- planned while the statistics said checkouts held no row (an
        -- ANALYZE that found only dead rows), the join was a nested loop
        -- that read the whole primary key and the unalerted ones again for
        -- each entry (84,200 rows read to mark 20 of 4,000 checkouts,
        -- plans_background::the_methods_sweep_planned_on_dead_rows_reads_what_it_takes).
        -- (the conditions again: a checkout whose method was saved since
        -- the look-up, while this waited for its row, is not alerted; one
        -- changed meanwhile is left to the next round)
        UPDATE checkouts c SET method_alerted_at = now()
          FROM late l
         WHERE c.ctid = l.ctid
           AND c.method_saved_at IS NULL AND c.method_alerted_at IS NULL
        RETURNING c.merchant_id, c.checkout_id, c.psp, c.created_at
    )
    SELECT m.merchant_id, m.checkout_id, m.psp,
           floor(extract(epoch FROM now() - m.created_at))::bigint,
           s.last_answer, v_n, v_oldest
      FROM marked m
      LEFT JOIN checkout_sweeps s
        ON s.merchant_id = m.merchant_id AND s.checkout_id = m.checkout_id
    UNION ALL
    SELECT NULL, NULL, NULL, NULL, NULL, v_n, v_oldest
     WHERE NOT EXISTS (SELECT 1 FROM marked);
END
$function$;
REVOKE ALL ON FUNCTION pay_sweeper_methods_unsaved(p_owner text, p_psps text[], p_alert_after integer, p_limit integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_sweeper_methods_unsaved(p_owner text, p_psps text[], p_alert_after integer, p_limit integer) TO payments_gateway;
