-- Checkouts of p_psps EXECUTING for more than p_alert_after seconds (with
-- or without a PSP token): how many there are, up to 10,000, and how old
-- the oldest is (for /metrics), and the ones not alerted yet, at most
-- p_limit, now marked alerted (for one log line each).  Only the lease's
-- owner marks any.  The count reads the first 10,000 entries of
-- checkouts_executing_since at most: with sessions that live up to a day
-- every open one past alert= counts, and counting a million took
-- 0.7-2.1 s (bench/executing_gauge.sh, the same count), each round.
CREATE OR REPLACE FUNCTION pay_sweeper_overdue(p_owner text, p_psps text[], p_alert_after integer, p_limit integer)
 RETURNS TABLE(merchant_id text, checkout_id text, psp text, age_seconds bigint, last_answer text, unresolved bigint, oldest_seconds bigint)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    v_n       bigint;
    v_oldest  bigint;
BEGIN
    SELECT count(*) INTO v_n
      FROM (SELECT FROM checkouts c
             WHERE c.status = 'EXECUTING'
               AND c.created_at < now() - make_interval(secs => p_alert_after)
               AND c.psp = ANY (p_psps)
             ORDER BY c.created_at
             LIMIT 10000) AS first;
    SELECT coalesce(floor(extract(epoch FROM now() - min(c.created_at)))::bigint, 0)
      INTO v_oldest
      FROM checkouts c
     WHERE c.status = 'EXECUTING'
       AND c.created_at < now() - make_interval(secs => p_alert_after)
       AND c.psp = ANY (p_psps);

    PERFORM 1 FROM sweeper_lease l
      WHERE l.id = 1 AND l.owner = p_owner AND l.until > now();
    IF NOT FOUND OR v_n = 0 THEN
        RETURN QUERY SELECT NULL::text, NULL::text, NULL::text, NULL::bigint,
                            NULL::text, v_n, v_oldest;
        RETURN;
    END IF;

    RETURN QUERY
    WITH late AS (
        SELECT c.merchant_id, c.checkout_id, c.psp,
               floor(extract(epoch FROM now() - c.created_at))::bigint AS age_seconds,
               s.last_answer, c.created_at
          FROM checkouts c
          LEFT JOIN checkout_sweeps s
            ON s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
         WHERE c.status = 'EXECUTING'
           AND c.created_at < now() - make_interval(secs => p_alert_after)
           AND c.psp = ANY (p_psps)
           AND s.alerted_at IS NULL
         ORDER BY c.created_at
         LIMIT p_limit
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
