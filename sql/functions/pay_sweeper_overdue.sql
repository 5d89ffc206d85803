-- Checkouts of p_psps EXECUTING for more than p_alert_after seconds (with
-- or without a PSP token): how many there are, up to 10,000, and how old
-- the oldest is (for /metrics), and the ones not alerted yet, at most
-- p_limit, now marked alerted (for one log line each).  Only the lease's
-- owner marks any.  The count walks checkouts_executing_since from its
-- oldest entry and stops at 10,000: with sessions that live up to a day
-- every open one past alert= counts, and counting a million took
-- 0.7-2.1 s (bench/executing_gauge.sh, the same count), each round.  The
-- ones to alert are walked from where the last round stopped
-- (sweeper_lease.alert_from), not from the oldest: those are alerted
-- already, and the walk passed over every one of them each round.
-- Both walks are the index's whatever the costs say: with sequential and
-- bitmap scans off for the call, the planner has no plan that reads every
-- open session.  Left to the costs, where index fetches look dear (rows
-- scattered over pages not all-visible) it chose a scan and a sort of the
-- whole table, cursors or not, and kept it for the connection: the count
-- read every row of checkouts (50,043) with random_page_cost 40 on a
-- scratch cluster (test
-- solo_sweeper::the_unresolved_count_reads_at_most_ten_thousand_whatever_the_costs).
-- The walk of the ones to alert reads checkout_sweeps by its key row by
-- row, as pay_sweeper_due's.  Its other statements read by keys;
-- sweeper_late, a few rows, is scanned as before.
CREATE OR REPLACE FUNCTION pay_sweeper_overdue(p_owner text, p_psps text[], p_alert_after integer, p_limit integer)
 RETURNS TABLE(merchant_id text, checkout_id text, psp text, age_seconds bigint, last_answer text, unresolved bigint, oldest_seconds bigint)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET jit TO 'off'
 SET enable_seqscan TO 'off'
 SET enable_bitmapscan TO 'off'
AS $function$
#variable_conflict use_column
DECLARE
    -- walked in the index's order: the oldest age from the first row, the
    -- count stopped at 10,000 (a cursor is planned for its first rows)
    late_ones CURSOR FOR
        SELECT c.created_at
          FROM checkouts c
         WHERE c.status = 'EXECUTING'
           AND c.created_at < now() - make_interval(secs => p_alert_after)
           AND c.psp = ANY (p_psps)
         ORDER BY c.created_at;
    -- the ones past alert= from p_from on, in the same order, each with
    -- whether it is still to be alerted
    to_alert CURSOR (p_from timestamptz, p_until timestamptz) FOR
        SELECT c.merchant_id, c.checkout_id, c.created_at,
               (s.alerted_at IS NULL) AS fresh
          FROM checkouts c
          -- by its key, row by row (as pay_sweeper_due's walk)
          LEFT JOIN LATERAL (
               SELECT s.alerted_at FROM checkout_sweeps s
                WHERE s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
                LIMIT 1) s ON true
         WHERE c.status = 'EXECUTING'
           AND c.created_at >= p_from
           AND c.created_at < p_until
           AND c.psp = ANY (p_psps)
         ORDER BY c.created_at;
    -- at most this many walked a round (alerted ones passed over
    -- included), as pay_sweeper_due's walk
    c_walk       constant integer := 10000;
    v_n          bigint := 0;
    v_oldest     bigint := 0;
    v_from       timestamptz;
    v_until      timestamptz := now() - make_interval(secs => p_alert_after);
    v_next       timestamptz := v_until;
    v_walked     integer := 0;
    v_merchants  text[] := '{}';
    v_checkouts  text[] := '{}';
    v_psps       text[];
    v_reset      boolean;
    v_done       boolean := false;
    lr           record;
    v_c          record;
BEGIN
    FOR r IN late_ones LOOP
        IF v_n = 0 THEN
            v_oldest := floor(extract(epoch FROM now() - r.created_at))::bigint;
        END IF;
        v_n := v_n + 1;
        EXIT WHEN v_n >= 10000;
    END LOOP;

    SELECT l.alert_from, l.alert_psps INTO v_from, v_psps FROM sweeper_lease l
     WHERE l.id = 1 AND l.owner = p_owner AND l.until > now();
    IF NOT FOUND OR v_n = 0 THEN
        RETURN QUERY SELECT NULL::text, NULL::text, NULL::text, NULL::bigint,
                            NULL::text, v_n, v_oldest;
        RETURN;
    END IF;

    -- a PSP the rounds that set the mark did not alert for: from the
    -- oldest again, as pay_sweeper_due's walk
    v_reset := v_psps IS NOT NULL AND NOT p_psps <@ v_psps;
    IF v_reset THEN
        v_from := NULL;
    END IF;

    -- Those that became EXECUTING after a walk passed them (an approved
    -- review: sweeper_late.alert, checkouts_sweep_late) come first: done
    -- with once alerted, no longer open or not this sweeper's; kept while
    -- younger than p_alert_after.
    -- One by one, each by its key, as pay_sweeper_due's.
    FOR lr IN SELECT lt.merchant_id, lt.checkout_id FROM sweeper_late lt
              WHERE lt.alert ORDER BY lt.since LOOP
        SELECT c.status, c.psp, c.created_at, s.alerted_at
          INTO v_c
          FROM checkouts c
          LEFT JOIN checkout_sweeps s
            ON s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
         WHERE c.merchant_id = lr.merchant_id AND c.checkout_id = lr.checkout_id;
        IF v_c.status <> 'EXECUTING' OR v_c.alerted_at IS NOT NULL
           OR NOT v_c.psp = ANY (p_psps) THEN
            UPDATE sweeper_late lt SET alert = false
             WHERE lt.merchant_id = lr.merchant_id AND lt.checkout_id = lr.checkout_id;
            v_done := true;
        ELSIF v_c.created_at < v_until AND cardinality(v_checkouts) < p_limit THEN
            v_merchants := v_merchants || lr.merchant_id;
            v_checkouts := v_checkouts || lr.checkout_id;
        END IF;
    END LOOP;
    IF v_done THEN
        DELETE FROM sweeper_late lt WHERE NOT lt.ask AND NOT lt.alert;
    END IF;

    -- The ones not alerted yet, oldest first, from where the last round
    -- stopped: each one created before it was alerted already.  The walk
    -- stops at p_limit of them or at 10,000 walked, and the next round
    -- goes on from there; walked to its end, the next starts at alert='s
    -- edge now.  One that became EXECUTING after a walk passed it (a
    -- review approved) is in sweeper_late (above).
    IF p_limit > 0 AND cardinality(v_checkouts) < p_limit THEN
        FOR r IN to_alert(coalesce(v_from, '-infinity'), v_until) LOOP
            v_walked := v_walked + 1;
            IF r.fresh THEN
                v_merchants := v_merchants || r.merchant_id;
                v_checkouts := v_checkouts || r.checkout_id;
            END IF;
            IF cardinality(v_checkouts) >= p_limit OR v_walked >= c_walk THEN
                v_next := r.created_at;
                EXIT;
            END IF;
        END LOOP;
    ELSE
        v_next := NULL;
    END IF;
    -- v_next NULL (no walk: the late ones filled the batch): the mark
    -- stays, or after a reset starts at the oldest
    UPDATE sweeper_lease l
       SET alert_from = CASE WHEN v_reset OR v_next > coalesce(l.alert_from, '-infinity')
                             THEN v_next ELSE l.alert_from END,
           alert_psps = p_psps
     WHERE l.id = 1
       AND (v_reset OR v_next > coalesce(l.alert_from, '-infinity')
            OR l.alert_psps IS DISTINCT FROM p_psps);

    RETURN QUERY
    WITH late AS (
        SELECT c.merchant_id, c.checkout_id, c.psp,
               floor(extract(epoch FROM now() - c.created_at))::bigint AS age_seconds,
               s.last_answer, c.created_at
          -- a late one may be walked too
          FROM (SELECT DISTINCT u.merchant_id, u.checkout_id
                  FROM unnest(v_merchants, v_checkouts) AS u(merchant_id, checkout_id)) k
          -- each by its key, row by row (LATERAL, LIMIT): planned while
          -- the statistics said checkouts held no row (an ANALYZE that
          -- found only dead rows), a join walked every checkout and
          -- matched each with the ones picked (4,240 rows read to alert 20
          -- of 4,000 checkouts,
          -- plans_background::the_sweepers_rounds_over_open_sessions_read_about_what_they_take)
         CROSS JOIN LATERAL (
               SELECT c.merchant_id, c.checkout_id, c.psp, c.created_at
                 FROM checkouts c
                WHERE c.merchant_id = k.merchant_id AND c.checkout_id = k.checkout_id
                LIMIT 1) c
          LEFT JOIN LATERAL (
               SELECT s.last_answer FROM checkout_sweeps s
                WHERE s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
                LIMIT 1) s ON true
    ), marked AS (
        INSERT INTO checkout_sweeps AS s (merchant_id, checkout_id, alerted_at)
        SELECT l.merchant_id, l.checkout_id, now() FROM late l
        ON CONFLICT (merchant_id, checkout_id) DO UPDATE SET alerted_at = now()
    )
    SELECT l.merchant_id, l.checkout_id, l.psp, l.age_seconds, l.last_answer,
           v_n, v_oldest
      FROM late l
    UNION ALL
    SELECT NULL, NULL, NULL, NULL, NULL, v_n, v_oldest
     WHERE NOT EXISTS (SELECT 1 FROM late);
END
$function$;
REVOKE ALL ON FUNCTION pay_sweeper_overdue(p_owner text, p_psps text[], p_alert_after integer, p_limit integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_sweeper_overdue(p_owner text, p_psps text[], p_alert_after integer, p_limit integer) TO payments_gateway;
