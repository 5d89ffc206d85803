-- The lease owner's checkouts due for a PSP look-up: EXECUTING, at least
-- p_after seconds old, not asked in the last p_every seconds; at most
-- p_limit, never asked first (but for a busy round's share, below); each
-- counted as asked.  Two kinds: a hosted session's token (payment false),
-- and an off-session charge (payment true: psp_token its payment's id,
-- or NULL when every answer to the charge was lost, to be asked about by
-- its nonce), the latter only at the PSPs of p_payment_psps, whose
-- dialect can look a payment up.  setup: a save without a charge (amount
-- 0), done only when its method is saved.
-- failed: a checkout FAILED here whose session the PSP may still take a
-- payment in (a cancel or a decline at the PSPs of p_open_psps, whose
-- sessions a cancel cannot expire: Adyen's), asked about until its
-- session's expiry and p_grace seconds more: a payment the PSP took after
-- it is booked as a late webhook's would be (paid_after_failed, alerted).
-- A round that finds a batch never asked about (a busy shard) gives a
-- quarter of its batch (at least one, of a batch of two or more) to the
-- sessions asked about p_every ago or more, in turn, so that however busy
-- the shard a session still open is asked about again.
-- Its walks are the index's whatever the costs say: with sequential and
-- bitmap scans off for the call, the planner has no plan that reads every
-- open session.  Left to the costs, where index fetches look dear (rows
-- scattered over pages not all-visible) it chose a scan and a sort of the
-- whole table for each walk, cursors or not, and kept them for the
-- connection: with random_page_cost 40 a round of 50 read every row of
-- checkouts on a scratch cluster, both walks' (100,494 rows of 50,222; test
-- solo_sweeper::a_round_reads_about_its_batch_whatever_the_costs).  A
-- walk reads checkout_sweeps by its key row by row (LATERAL): planned for
-- all its rows (cursor_tuple_fraction 1), a join with it read every open
-- session and sorted them again, scans off or not.  Its other statements
-- read by keys (sweeper_lease, checkout_sweeps, checkouts_pkey) or a
-- partial index (failed_open_sessions); sweeper_late, a few rows, is
-- scanned as before (no index serves its order); a round that walks to
-- the end reads every candidate through checkouts_executing_since, not
-- the whole table.
CREATE OR REPLACE FUNCTION pay_sweeper_due(p_owner text, p_psps text[], p_payment_psps text[], p_open_psps text[], p_after integer, p_every integer, p_grace integer, p_limit integer)
 RETURNS TABLE(merchant_id text, checkout_id text, psp text, psp_token text, nonce text, expires_epoch bigint, age_seconds bigint, session_result text, payment boolean, setup boolean, failed boolean)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET jit TO 'off'
 SET enable_seqscan TO 'off'
 SET enable_bitmapscan TO 'off'
AS $function$
#variable_conflict use_column
DECLARE
    -- The EXECUTING ones past p_after, oldest first, from p_from on,
    -- through checkouts_executing_since in its order, each with whether it
    -- is due as never asked, or as asked about p_every ago or more.  A
    -- cursor is planned for its first rows: on 20,000 open sessions
    -- (analyzed) it walks the index, where the same query with a LIMIT was
    -- planned as a hash join of every one and a sort.
    walk CURSOR (p_from timestamptz, p_until timestamptz) FOR
        SELECT c.merchant_id, c.checkout_id, c.created_at,
               (c.psp_token IS NULL AND c.psp = ANY (p_psps)) AS tokenless,
               (s.last_at IS NULL AND k.askable) AS never,
               (s.last_at < now() - make_interval(secs => p_every)
                AND k.askable) AS again
          FROM checkouts c
          -- by its key, row by row (LATERAL, LIMIT: never a join that
          -- reads every open session and sorts them again)
          LEFT JOIN LATERAL (
               SELECT s.last_at FROM checkout_sweeps s
                WHERE s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
                LIMIT 1) s ON true
          -- one this sweeper asks about: of its PSPs, with a session's
          -- token, or an off-session charge where the PSP can look a
          -- payment up (by its payment id, or without one, its every
          -- answer lost, by its nonce)
         CROSS JOIN LATERAL (
               SELECT c.psp = ANY (p_psps)
                      AND CASE WHEN c.payment_method_id IS NOT NULL AND c.psp_url IS NULL
                               THEN c.psp = ANY (coalesce(p_payment_psps, '{}'))
                               ELSE c.psp_token IS NOT NULL END AS askable) k
         WHERE c.status = 'EXECUTING'
           AND c.created_at >= p_from
           AND c.created_at < p_until
         ORDER BY c.created_at;
    -- at most this many open sessions walked a round (asked ones passed
    -- over included): the next round goes on from where this one stopped
    c_walk       constant integer := 10000;
    v_until      timestamptz := now() - make_interval(secs => p_after);
    v_from       timestamptz;
    v_next       timestamptz;
    v_walked     integer := 0;
    -- the share of a busy round's batch kept for those asked about before
    v_reserve    integer := CASE WHEN p_limit >= 2 THEN greatest(1, p_limit / 4)
                                 ELSE 0 END;
    v_reask_from timestamptz;
    v_reask_next timestamptz;
    v_rewalked   boolean := false;
    v_reasked    integer := 0;
    -- the FAILED sessions still payable (below), and how many of them a
    -- busy round asks about: the never asked, and the due again within the
    -- share above; the walks fill the rest of the batch (v_cap)
    v_fm         text[];
    v_fc         text[];
    v_fnever     integer;
    v_fagain     integer;
    v_cap        integer;
    v_merchants  text[] := '{}';
    v_checkouts  text[] := '{}';
    v_fast       boolean := false;
    -- an open session without a token created since (a registration's PSP
    -- call under way) is not walked past: checkouts_sweep_late records
    -- only a token stored later than 30 s after the claim
    v_young      timestamptz := now() - interval '60 seconds';
    v_hold       timestamptz;
    v_psps       text[];
    v_pay_psps   text[];
    v_reset      boolean;
    v_done       boolean := false;
    lr           record;
    v_c          record;
BEGIN
    SELECT l.walk_from, l.walk_psps, l.walk_payment_psps, l.reask_from
      INTO v_from, v_psps, v_pay_psps, v_reask_from
      FROM sweeper_lease l
     WHERE l.id = 1 AND l.owner = p_owner AND l.until > now();
    IF NOT FOUND THEN
        RETURN;
    END IF;

    -- A PSP the rounds that set the mark did not ask about (added to the
    -- sweeper, or one more whose payments it looks up): its sessions
    -- behind the mark were passed over, so the walk starts again from the
    -- oldest (10,000 a round).  Gateways sharing a database configure the
    -- same PSPs (doc/ngx_http_payments_module.md).
    v_reset := v_psps IS NOT NULL
               AND NOT (p_psps <@ v_psps
                        AND coalesce(p_payment_psps, '{}') <@ coalesce(v_pay_psps, '{}'));
    IF v_reset THEN
        v_from := NULL;
    END IF;

    -- The FAILED sessions still payable: a cancel or a decline at a PSP of
    -- p_open_psps (whose sessions a cancel cannot expire), a hosted session
    -- with an amount, until its expiry and p_grace more; found by their
    -- expiry in failed_open_sessions (checkouts_failed_open), and few.  A
    -- busy round asks about those never asked and, within the share of
    -- those asked before, those asked longest ago (fast_due below), and
    -- keeps their room before it walks: a session the walk passes is never
    -- left out of its batch (the walk's mark is past it).
    SELECT coalesce(array_agg(c.merchant_id), '{}'), coalesce(array_agg(c.checkout_id), '{}'),
           count(*) FILTER (WHERE c.psp = ANY (p_psps) AND c.psp_token IS NOT NULL
                              AND s.last_at IS NULL),
           count(*) FILTER (WHERE c.psp = ANY (p_psps) AND c.psp_token IS NOT NULL
                              AND s.last_at < now() - make_interval(secs => p_every))
      INTO v_fm, v_fc, v_fnever, v_fagain
      FROM failed_open_sessions f
      -- each by its key, row by row (LATERAL, LIMIT), its conditions tested
      -- after (in the look-up, they could make another index look as
      -- good: checkouts_list, by merchant and age): planned while the
      -- statistics said checkouts held no row, a join walked every
      -- checkout (checkouts_pkey, or checkouts_list) for the FAILED ones
      -- and matched each with the few sessions here (4,300 rows read for
      -- a round of 50 of 4,000 checkouts,
      -- plans_background::the_sweepers_rounds_over_open_sessions_read_about_what_they_take)
     CROSS JOIN LATERAL (
           SELECT c.merchant_id, c.checkout_id, c.psp, c.psp_token, c.status,
                  c.psp_url, c.expires_at, c.amount_total, c.created_at
             FROM checkouts c
            WHERE c.merchant_id = f.merchant_id AND c.checkout_id = f.checkout_id
            LIMIT 1) c
      LEFT JOIN LATERAL (
           SELECT s.last_at FROM checkout_sweeps s
            WHERE s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
            LIMIT 1) s ON true
     WHERE f.expires_at > now() - make_interval(secs => coalesce(p_grace, 0))
       AND c.status = 'FAILED'
       AND c.psp_url IS NOT NULL
       AND c.expires_at IS NOT NULL
       AND c.expires_at > now() - make_interval(secs => coalesce(p_grace, 0))
       AND c.psp = ANY (coalesce(p_open_psps, '{}'))
       AND c.amount_total > 0
       AND c.created_at < now() - make_interval(secs => p_after);
    v_fnever := least(v_fnever, greatest(p_limit, 0));
    v_fagain := least(v_fagain, v_reserve, greatest(p_limit, 0) - v_fnever);
    v_cap := greatest(p_limit, 0) - v_fnever - v_fagain;

    -- Those that became ones to ask about after a walk passed them
    -- (sweeper_late.ask, checkouts_sweep_late) come first: done with once
    -- asked, no longer open or not this sweeper's; kept while their token
    -- is not stored yet or they are younger than p_after.
    -- One by one, each by its key: they are few, and a join with the
    -- checkouts may be planned as a read of all of them.
    FOR lr IN SELECT lt.merchant_id, lt.checkout_id FROM sweeper_late lt
              WHERE lt.ask ORDER BY lt.since LOOP
        SELECT c.status, c.psp, c.psp_token, c.psp_url, c.payment_method_id,
               c.created_at, s.last_at
          INTO v_c
          FROM checkouts c
          LEFT JOIN checkout_sweeps s
            ON s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
         WHERE c.merchant_id = lr.merchant_id AND c.checkout_id = lr.checkout_id;
        IF v_c.status <> 'EXECUTING' OR v_c.last_at IS NOT NULL
           OR NOT v_c.psp = ANY (p_psps)
           OR (v_c.payment_method_id IS NOT NULL AND v_c.psp_url IS NULL
               AND NOT v_c.psp = ANY (coalesce(p_payment_psps, '{}'))) THEN
            UPDATE sweeper_late lt SET ask = false
             WHERE lt.merchant_id = lr.merchant_id AND lt.checkout_id = lr.checkout_id;
            v_done := true;
        ELSIF v_c.psp_token IS NOT NULL AND v_c.created_at < v_until
              AND cardinality(v_checkouts) < v_cap THEN
            v_merchants := v_merchants || lr.merchant_id;
            v_checkouts := v_checkouts || lr.checkout_id;
        END IF;
    END LOOP;
    IF v_done THEN
        DELETE FROM sweeper_late lt WHERE NOT lt.ask AND NOT lt.alert;
    END IF;

    -- Then those asked about p_every ago or more, up to the batch's share
    -- kept for them: walked among the open sessions created before the
    -- walk's mark below (each asked about once, or not one to ask about),
    -- in creation order from where the last busy round left this walk
    -- (sweeper_lease.reask_from), round again from the oldest once it
    -- reaches the mark.  It walks at most twenty times its share (five
    -- batches), so that a round still reads about its batch when the
    -- sessions it passes were asked about lately.  A round that walks to
    -- the end of the never asked reads every candidate instead (slow_due,
    -- never asked first, then the one asked longest ago), and this walk's
    -- picks and mark are dropped.
    IF v_reserve > v_fagain AND v_from IS NOT NULL AND NOT v_reset
       AND cardinality(v_checkouts) < v_cap THEN
        v_rewalked := true;
        FOR r IN walk(coalesce(v_reask_from, '-infinity'), least(v_from, v_until)) LOOP
            v_walked := v_walked + 1;
            IF r.again THEN
                v_merchants := v_merchants || r.merchant_id;
                v_checkouts := v_checkouts || r.checkout_id;
                v_reasked := v_reasked + 1;
            END IF;
            IF v_reasked >= v_reserve - v_fagain OR cardinality(v_checkouts) >= v_cap
               OR v_walked >= least(c_walk, 20 * v_reserve) THEN
                v_reask_next := r.created_at;
                EXIT;
            END IF;
        END LOOP;
        -- (walked to the mark: v_reask_next NULL, the next from the oldest)
        v_walked := 0;
    END IF;
    v_fast := p_limit > 0 AND cardinality(v_checkouts) >= v_cap;

    -- The never asked fill the batch, oldest first.  The walk starts where the
    -- last one stopped (sweeper_lease.walk_from): each open session created
    -- before it was asked about already, or was not one to ask about then.
    -- It stops with the batch full, or c_walk sessions walked, so that a
    -- round reads about its batch however many sessions are open and asked
    -- about (bench/sweeper_due.sh); the next round goes on from there.
    -- Walked to its end with the batch not full, the round reads every
    -- candidate (slow_due below), and they are then few.  A session that
    -- became one to ask about after a walk had passed it is in
    -- sweeper_late (above), or behind a reset mark (a PSP added).
    IF p_limit > 0 AND NOT v_fast THEN
        FOR r IN walk(coalesce(v_from, '-infinity'), v_until) LOOP
            v_walked := v_walked + 1;
            IF r.tokenless AND r.created_at >= v_young THEN
                v_hold := coalesce(v_hold, r.created_at);
            END IF;
            IF r.never THEN
                v_merchants := v_merchants || r.merchant_id;
                v_checkouts := v_checkouts || r.checkout_id;
                -- on a walk to its end, the next starts at the first left
                v_next := coalesce(v_next, r.created_at);
            END IF;
            IF cardinality(v_checkouts) >= v_cap OR v_walked >= c_walk THEN
                v_fast := true;
                v_next := r.created_at;
                EXIT;
            END IF;
        END LOOP;
        IF NOT v_fast THEN
            v_next := coalesce(v_next, v_until);
        END IF;
        v_next := least(v_next, v_hold);
    END IF;
    -- v_next NULL (no walk: the late ones filled the batch): the mark
    -- stays, or after a reset starts at the oldest.  The second walk's
    -- mark moves only with a round that hands out its picks.
    v_rewalked := v_rewalked AND v_fast;
    UPDATE sweeper_lease l
       SET walk_from = CASE WHEN v_reset OR v_next > coalesce(l.walk_from, '-infinity')
                            THEN v_next ELSE l.walk_from END,
           walk_psps = p_psps,
           walk_payment_psps = coalesce(p_payment_psps, '{}'),
           reask_from = CASE WHEN v_rewalked THEN v_reask_next ELSE l.reask_from END
     WHERE l.id = 1
       AND (v_reset OR v_next > coalesce(l.walk_from, '-infinity')
            OR l.walk_psps IS DISTINCT FROM p_psps
            OR l.walk_payment_psps IS DISTINCT FROM coalesce(p_payment_psps, '{}')
            OR (v_rewalked AND l.reask_from IS DISTINCT FROM v_reask_next));

    RETURN QUERY
    -- the FAILED sessions still payable found above, still FAILED
    -- (the rows picked above are read each by its key, row by row:
    -- LATERAL, LIMIT; planned while the statistics said checkouts held no
    -- row, a join walked every checkout and matched each with the ones
    -- picked)
    WITH failed_open AS (
        SELECT c.merchant_id, c.checkout_id, c.psp, c.psp_token, c.nonce,
               c.expires_at, c.created_at, c.payment_method_id, c.psp_url,
               c.amount_total, c.save_method, c.status
          FROM unnest(v_fm, v_fc) AS k(merchant_id, checkout_id)
         CROSS JOIN LATERAL (
               SELECT c.* FROM checkouts c
                WHERE c.merchant_id = k.merchant_id AND c.checkout_id = k.checkout_id
                LIMIT 1) c
         WHERE c.status = 'FAILED'
    ), fast_due AS (
        -- those walked and the FAILED ones kept room for: p_limit at most
        SELECT n.merchant_id, n.checkout_id, n.psp, n.psp_token, n.nonce,
               ts_epoch(n.expires_at) AS expires_epoch,
               floor(extract(epoch FROM now() - n.created_at))::bigint AS age_seconds,
               n.session_result, n.created_at,
               (n.payment_method_id IS NOT NULL AND n.psp_url IS NULL) AS payment,
               (n.amount_total = 0 AND n.save_method IS NOT NULL) AS setup, n.failed
          FROM (SELECT c.merchant_id, c.checkout_id, c.psp, c.psp_token, c.nonce,
                       c.expires_at, c.created_at, c.payment_method_id, c.psp_url,
                       c.amount_total, c.save_method, s.session_result, false AS failed
                  -- a late one may be walked too
                  FROM (SELECT DISTINCT u.merchant_id, u.checkout_id
                          FROM unnest(v_merchants, v_checkouts) AS u(merchant_id, checkout_id)) k
                 CROSS JOIN LATERAL (
                       SELECT c.* FROM checkouts c
                        WHERE c.merchant_id = k.merchant_id AND c.checkout_id = k.checkout_id
                        LIMIT 1) c
                  LEFT JOIN LATERAL (
                       SELECT s.session_result FROM checkout_sweeps s
                        WHERE s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
                        LIMIT 1) s ON true
                 -- (tested here, not in the look-up: there it would say
                 -- checkouts_executing_since's predicate, and the look-up
                 -- could walk that index, every open session, for its one)
                 WHERE c.status = 'EXECUTING'
                UNION ALL
                (SELECT f.merchant_id, f.checkout_id, f.psp, f.psp_token, f.nonce,
                        f.expires_at, f.created_at, f.payment_method_id, f.psp_url,
                        f.amount_total, f.save_method, s.session_result, true
                   FROM failed_open f
                   LEFT JOIN LATERAL (
                        SELECT s.session_result, s.last_at FROM checkout_sweeps s
                         WHERE s.merchant_id = f.merchant_id AND s.checkout_id = f.checkout_id
                         LIMIT 1) s ON true
                  WHERE f.psp = ANY (p_psps)
                    AND f.psp_token IS NOT NULL
                    AND (s.last_at IS NULL
                         OR s.last_at < now() - make_interval(secs => p_every))
                  ORDER BY s.last_at NULLS FIRST, f.created_at
                  LIMIT v_fnever + v_fagain)) n
         WHERE v_fast
         ORDER BY n.created_at
         LIMIT p_limit
    ), cand AS (
        -- every candidate: EXECUTING by age (checkouts_executing_since),
        -- and the FAILED ones above
        SELECT c.merchant_id, c.checkout_id, c.psp, c.psp_token, c.nonce,
               c.expires_at, c.created_at, c.payment_method_id, c.psp_url,
               c.amount_total, c.save_method, c.status
          FROM checkouts c
         WHERE c.status = 'EXECUTING'
           AND c.created_at < now() - make_interval(secs => p_after)
        UNION ALL
        SELECT * FROM failed_open
    ), slow_due AS (
        SELECT c.merchant_id, c.checkout_id, c.psp, c.psp_token, c.nonce,
               ts_epoch(c.expires_at) AS expires_epoch,
               floor(extract(epoch FROM now() - c.created_at))::bigint AS age_seconds,
               s.session_result, c.created_at,
               (c.payment_method_id IS NOT NULL AND c.psp_url IS NULL) AS payment,
               (c.amount_total = 0 AND c.save_method IS NOT NULL) AS setup,
               (c.status = 'FAILED') AS failed
          FROM cand c
          LEFT JOIN checkout_sweeps s
            ON s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
         WHERE c.psp = ANY (p_psps)
           -- an off-session charge the PSP took holds its payment's id, not
           -- a session: no session look-up can tell of it, nor may an
           -- expiry fail it (the payment may have been taken).  Where the
           -- PSP can look a payment up it is asked as one, by its id, or
           -- by its nonce when every answer to the charge was lost (no id
           -- stored); elsewhere its webhook books it, and past alert=
           -- pay_sweeper_overdue lists it.  One that waits for the shopper
           -- holds a hosted session (psp_url), swept as any: with its
           -- token.
           AND CASE WHEN c.payment_method_id IS NOT NULL AND c.psp_url IS NULL
                    THEN c.psp = ANY (coalesce(p_payment_psps, '{}'))
                    ELSE c.psp_token IS NOT NULL END
           AND (s.last_at IS NULL OR s.last_at < now() - make_interval(secs => p_every))
           -- read only when the way above does not do
           AND NOT v_fast
         -- never asked first, then the one asked longest ago
         ORDER BY s.last_at NULLS FIRST, c.created_at
         LIMIT p_limit
    ), due AS (
        SELECT * FROM fast_due
        UNION ALL
        SELECT * FROM slow_due
    ), asked AS (
        INSERT INTO checkout_sweeps AS s (merchant_id, checkout_id, attempts, last_at)
        SELECT d.merchant_id, d.checkout_id, 1, now() FROM due d
        ON CONFLICT (merchant_id, checkout_id) DO UPDATE
            SET attempts = s.attempts + 1, last_at = now()
    )
    SELECT d.merchant_id, d.checkout_id, d.psp, d.psp_token, d.nonce,
           d.expires_epoch, d.age_seconds, d.session_result, d.payment,
           d.setup, d.failed
      FROM due d
     ORDER BY d.created_at;
END
$function$;
REVOKE ALL ON FUNCTION pay_sweeper_due(p_owner text, p_psps text[], p_payment_psps text[], p_open_psps text[], p_after integer, p_every integer, p_grace integer, p_limit integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_sweeper_due(p_owner text, p_psps text[], p_payment_psps text[], p_open_psps text[], p_after integer, p_every integer, p_grace integer, p_limit integer) TO payments_gateway;


-- The previous release's signature: EXECUTING checkouts only (none FAILED
-- asked about).  Kept for that release's workers during an upgrade.
CREATE OR REPLACE FUNCTION pay_sweeper_due(p_owner text, p_psps text[], p_payment_psps text[], p_after integer, p_every integer, p_limit integer)
 RETURNS TABLE(merchant_id text, checkout_id text, psp text, psp_token text, nonce text, expires_epoch bigint, age_seconds bigint, session_result text, payment boolean, setup boolean)
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT d.merchant_id, d.checkout_id, d.psp, d.psp_token, d.nonce,
           d.expires_epoch, d.age_seconds, d.session_result, d.payment,
           d.setup
      FROM pay_sweeper_due(p_owner, p_psps, p_payment_psps, '{}'::text[],
                           p_after, p_every, 0, p_limit) d;
$function$;
REVOKE ALL ON FUNCTION pay_sweeper_due(p_owner text, p_psps text[], p_payment_psps text[], p_after integer, p_every integer, p_limit integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_sweeper_due(p_owner text, p_psps text[], p_payment_psps text[], p_after integer, p_every integer, p_limit integer) TO payments_gateway;

-- An older release's signature: hosted sessions only (no PSP's
-- payments looked up).  Kept for that release's workers during an upgrade.
CREATE OR REPLACE FUNCTION pay_sweeper_due(p_owner text, p_psps text[], p_after integer, p_every integer, p_limit integer)
 RETURNS TABLE(merchant_id text, checkout_id text, psp text, psp_token text, nonce text, expires_epoch bigint, age_seconds bigint, session_result text)
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT d.merchant_id, d.checkout_id, d.psp, d.psp_token, d.nonce,
           d.expires_epoch, d.age_seconds, d.session_result
      FROM pay_sweeper_due(p_owner, p_psps, '{}'::text[], '{}'::text[], p_after, p_every, 0, p_limit) d;
$function$;
REVOKE ALL ON FUNCTION pay_sweeper_due(p_owner text, p_psps text[], p_after integer, p_every integer, p_limit integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_sweeper_due(p_owner text, p_psps text[], p_after integer, p_every integer, p_limit integer) TO payments_gateway;
