-- The sweeper's round over manual-capture authorizations still held at
-- p_psps, each PSP's authorization lasting p_windows[i] seconds (the
-- dialect table's auth_window): one whose end is less than p_warn_before
-- seconds away is named once (action 'warning', hold_warned_at), one past
-- its end is released and never booked (action 'expired': hold_release,
-- failure.code authorization_expired when nothing of it was captured),
-- unless a capture or void of it is still in flight (PENDING): then the
-- PSP's word on it decides first, and the release waits (action
-- 'postponed', each round, left_seconds how long past its end).
-- A capture in flight that its PSP can never be sent (an amount that is
-- not a multiple of the PSP's unit in its currency, stored by an earlier
-- release: its request was never built, no word of it will come) does not
-- hold the release: it is given up first (capture_unsendable_give_up),
-- under the same locks.  p_units: each PSP's units where they are coarser
-- than ISO's ({"adyen": {"IDR": 100, "CVE": 100}}: pay_psp_unit of its
-- dialect; NULL or absent: none given up).
-- Every row carries how many holds end within p_warn_before (for
-- /metrics); a row with a NULL checkout_id only says that.  Only the
-- lease's owner acts.
CREATE OR REPLACE FUNCTION pay_holds_sweep(p_owner text, p_psps text[], p_windows integer[], p_warn_before integer, p_limit integer, p_units jsonb)
 RETURNS TABLE(merchant_id text, checkout_id text, psp text, action text, left_seconds bigint, expiring bigint)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    v_n     bigint;
    v_open  boolean;
    h       record;
    v_cur   text;
    v_edge  timestamptz;
BEGIN
    IF coalesce(array_length(p_psps, 1), 0) <> coalesce(array_length(p_windows, 1), 0) THEN
        RAISE EXCEPTION 'pay_holds_sweep: one window per PSP'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Both reads walk the open holds (checkouts_holds_open) from the
    -- oldest to the edge of the shortest window's warning, never past it:
    -- the test of each PSP's own window alone (authorized_at plus its
    -- window) bounds no index scan, and every open hold was read at each
    -- round, 3,800 for a step of 20
    -- (plans_background::the_holds_sweep_reads_the_holds_near_their_end).
    v_edge := now() - make_interval(secs => (SELECT min(x) FROM unnest(p_windows) x)
                                            - p_warn_before);

    SELECT count(*) INTO v_n
      FROM checkouts c
      JOIN unnest(p_psps, p_windows) AS w(psp, secs) ON w.psp = c.psp
     WHERE c.authorized_at IS NOT NULL AND c.hold_closed_at IS NULL
       AND c.authorized_at < v_edge
       AND c.authorized_at + make_interval(secs => w.secs - p_warn_before) < now();

    PERFORM 1 FROM sweeper_lease l
      WHERE l.id = 1 AND l.owner = p_owner AND l.until > now();
    IF NOT FOUND OR v_n = 0 THEN
        RETURN QUERY SELECT NULL::text, NULL::text, NULL::text, NULL::text,
                            NULL::bigint, v_n;
        RETURN;
    END IF;

    -- The round's p_limit places go to the holds it acts on: past their end
    -- (released, or postponed) or not warned yet; one warned and not at its
    -- end yet takes none.  The most overdue come first, and those waiting
    -- for their PSP's word (postponed) after the rest: neither kind can
    -- fill every place round after round while other holds pass their end
    -- (sql::the_holds_sweep_takes_what_it_must_do_before_what_it_only_waits_for).
    -- Except a tenth of the places (one at least, none of a single place),
    -- kept for the most overdue of those waiting: each is named, and at an
    -- hour past its end alerted, in every round, also while more holds
    -- than places pass their end round after round
    -- (sql::a_hold_waiting_for_its_psp_is_named_in_a_round_full_of_others).
    FOR h IN
        SELECT t.* FROM (
            SELECT u.*, row_number() OVER (PARTITION BY u.waits ORDER BY u.left_s) AS rn
              FROM (
                SELECT s.*,
                       s.left_s <= 0
                       AND EXISTS (SELECT 1 FROM captures x
                                    WHERE x.merchant_id = s.m AND x.checkout_id = s.co
                                      AND x.status = 'PENDING') AS waits
                  FROM (
                    SELECT c.merchant_id AS m, c.checkout_id AS co, c.psp AS p,
                           floor(extract(epoch FROM c.authorized_at
                                                    + make_interval(secs => w.secs) - now()))::bigint
                               AS left_s,
                           c.hold_warned_at AS warned
                      FROM checkouts c
                      JOIN unnest(p_psps, p_windows) AS w(psp, secs) ON w.psp = c.psp
                     WHERE c.authorized_at IS NOT NULL AND c.hold_closed_at IS NULL
                       AND c.authorized_at < v_edge
                       AND c.authorized_at + make_interval(secs => w.secs - p_warn_before) < now()
                  ) s
                 WHERE s.left_s <= 0 OR s.warned IS NULL
              ) u
        ) t
         ORDER BY NOT (t.waits AND t.rn <= CASE WHEN p_limit > 1
                                                THEN greatest(1, p_limit / 10)
                                                ELSE 0 END),
                  t.waits, t.left_s
         LIMIT p_limit
    LOOP
        IF h.left_s <= 0 THEN
            -- the checkout, then its orders in id order, as every money
            -- function locks them (doc/MONEY.md, "Lock order")
            PERFORM 1 FROM checkouts ck
             WHERE ck.merchant_id = h.m AND ck.checkout_id = h.co
               AND ck.hold_closed_at IS NULL
               FOR UPDATE;
            v_open := FOUND;
            PERFORM 1 FROM payment_orders po
             WHERE v_open AND po.merchant_id = h.m AND po.checkout_id = h.co
             ORDER BY po.payment_order_id
               FOR UPDATE;
            -- a capture its PSP can never be sent will never settle: given
            -- up, so that it does not hold the release for ever
            IF v_open AND p_units ? h.p
               AND EXISTS (SELECT 1 FROM captures x
                            WHERE x.merchant_id = h.m AND x.checkout_id = h.co
                              AND x.status = 'PENDING' AND x.kind = 'capture') THEN
                FOR v_cur IN SELECT DISTINCT po.currency FROM payment_orders po
                              WHERE po.merchant_id = h.m AND po.checkout_id = h.co
                                AND p_units -> h.p ? po.currency
                LOOP
                    PERFORM capture_unsendable_give_up(h.m, h.co, NULL, v_cur,
                                                       (p_units -> h.p ->> v_cur)::bigint);
                END LOOP;
            END IF;
            IF v_open AND EXISTS (SELECT 1 FROM captures x
                                  WHERE x.merchant_id = h.m AND x.checkout_id = h.co
                                    AND x.status = 'PENDING') THEN
                -- released under a capture the PSP then confirms, the
                -- money would be booked after a failure: wait for it
                RETURN QUERY SELECT h.m, h.co, h.p, 'postponed'::text, h.left_s, v_n;
            ELSIF v_open THEN
                PERFORM hold_release(h.m, h.co, 'authorization_expired',
                                     'sweeper:authorization_expired');
                RETURN QUERY SELECT h.m, h.co, h.p, 'expired'::text, h.left_s, v_n;
            END IF;
        ELSIF h.warned IS NULL THEN
            UPDATE checkouts ck SET hold_warned_at = now()
             WHERE ck.merchant_id = h.m AND ck.checkout_id = h.co;
            RETURN QUERY SELECT h.m, h.co, h.p, 'warning'::text, h.left_s, v_n;
        END IF;
    END LOOP;

    RETURN QUERY SELECT NULL::text, NULL::text, NULL::text, NULL::text, NULL::bigint, v_n;
END
$function$;
REVOKE ALL ON FUNCTION pay_holds_sweep(p_owner text, p_psps text[], p_windows integer[], p_warn_before integer, p_limit integer, p_units jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_holds_sweep(p_owner text, p_psps text[], p_windows integer[], p_warn_before integer, p_limit integer, p_units jsonb) TO payments_gateway;

-- The previous release's signature, without the PSPs' units, which its
-- workers call during an upgrade: no capture given up.
CREATE OR REPLACE FUNCTION pay_holds_sweep(p_owner text, p_psps text[], p_windows integer[], p_warn_before integer, p_limit integer)
 RETURNS TABLE(merchant_id text, checkout_id text, psp text, action text, left_seconds bigint, expiring bigint)
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT merchant_id, checkout_id, psp, action, left_seconds, expiring FROM pay_holds_sweep(p_owner, p_psps, p_windows, p_warn_before, p_limit, NULL::jsonb);
$function$;
REVOKE ALL ON FUNCTION pay_holds_sweep(p_owner text, p_psps text[], p_windows integer[], p_warn_before integer, p_limit integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_holds_sweep(p_owner text, p_psps text[], p_windows integer[], p_warn_before integer, p_limit integer) TO payments_gateway;
