-- The sweeper asks about the checkouts it asked about least recently
-- (review of the sweeper, issue 14's stop).
--
-- 008's pay_sweeper_due took the oldest due checkouts first.  Abandoned
-- carts stay EXECUTING until their session expires (an hour by default)
-- and are due again every retry=, so with more of them than a round's
-- batch the same oldest ones were asked about round after round, and a
-- newer checkout, paid but with its webhook lost, waited behind them: 10
-- abandoned carts a minute kept one waiting 40 minutes instead of 15, 60 a
-- minute for good.  Now a checkout never asked about comes first, then the
-- one asked about longest ago, the oldest first among equals: every due
-- checkout is asked about within (due checkouts / batch) rounds.

CREATE OR REPLACE FUNCTION pay_sweeper_due(p_owner text, p_psps text[],
                                           p_after int, p_every int, p_limit int)
RETURNS TABLE(merchant_id text, checkout_id text, psp text, psp_token text,
              nonce text, expires_epoch bigint, age_seconds bigint,
              session_result text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
BEGIN
    PERFORM 1 FROM sweeper_lease l
      WHERE l.id = 1 AND l.owner = p_owner AND l.until > now();
    IF NOT FOUND THEN
        RETURN;
    END IF;

    RETURN QUERY
    WITH due AS (
        SELECT c.merchant_id, c.checkout_id, c.psp, c.psp_token, c.nonce,
               ts_epoch(c.expires_at) AS expires_epoch,
               floor(extract(epoch FROM now() - c.created_at))::bigint AS age_seconds,
               s.session_result, c.created_at
          FROM checkouts c
          LEFT JOIN checkout_sweeps s
            ON s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
         WHERE c.status = 'EXECUTING'
           AND c.created_at < now() - make_interval(secs => p_after)
           AND c.psp = ANY (p_psps)
           AND c.psp_token IS NOT NULL
           AND (s.last_at IS NULL OR s.last_at < now() - make_interval(secs => p_every))
         -- never asked first, then the one asked longest ago
         ORDER BY s.last_at NULLS FIRST, c.created_at
         LIMIT p_limit
    ), asked AS (
        INSERT INTO checkout_sweeps AS s (merchant_id, checkout_id, attempts, last_at)
        SELECT d.merchant_id, d.checkout_id, 1, now() FROM due d
        ON CONFLICT (merchant_id, checkout_id) DO UPDATE
            SET attempts = s.attempts + 1, last_at = now()
    )
    SELECT d.merchant_id, d.checkout_id, d.psp, d.psp_token, d.nonce,
           d.expires_epoch, d.age_seconds, d.session_result
      FROM due d
     ORDER BY d.created_at;
END
$$;
