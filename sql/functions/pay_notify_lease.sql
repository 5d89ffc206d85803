-- A deliverer's batch, each row leased to p_owner until lease_until: the
-- claim's own lease, which its attempt's record names (pay_notify_record),
-- so that an attempt is recorded for the claim it belongs to and no other
-- (a later claim of the same row, by the same worker too, leases it until
-- later).  This release's workers'; pay_notify_claim is the same batch
-- without lease_until, as the previous release's workers read it (nine
-- columns, no more: a claim of ten is none to them, its rows leased and
-- never sent until their lease ends).
--
-- enable_sort off: an endpoint's oldest due rows are read in the order of
-- notifications_pending_endpoint (merchant, endpoint, next_at), and its
-- leases in notifications_leased's (merchant, endpoint, lease_until),
-- never by another index on the merchant then sorted.  The statistics of
-- a busy outbox (most rows delivered, so the partial indexes' pages many
-- and their rows few; many merchants of a few rows each) made the primary
-- key and a sort look as cheap: every row of each merchant read, its
-- delivered history too, at every claim.  The sorts every plan needs (the
-- heads by age, the batch by age) are in every plan alike.
CREATE OR REPLACE FUNCTION pay_notify_lease(p_owner text, p_limit integer, p_lease_ms integer, p_per_endpoint integer)
 RETURNS TABLE(notification_id text, merchant_id text, endpoint_id text, url text, host text, secret_sealed text, prev_secret_sealed text, attempts integer, payload text, lease_until timestamp with time zone)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET jit TO 'off'
 SET plan_cache_mode TO 'force_custom_plan'
 SET enable_seqscan TO 'off'
 SET enable_bitmapscan TO 'off'
 SET enable_sort TO 'off'
AS $function$
BEGIN
    IF p_limit < 1 OR p_limit > 1000 OR p_lease_ms < 1000 OR p_per_endpoint < 1
       OR length(p_owner) NOT BETWEEN 1 AND 300
    THEN
        RAISE EXCEPTION 'pay_notify_lease: limit 1..1000, lease >= 1000 ms, per endpoint >= 1, an owner'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    RETURN QUERY
    WITH RECURSIVE waiting AS (
        -- every endpoint with a PENDING row: a skip scan, one index probe
        -- per endpoint
        (SELECT n.merchant_id, n.endpoint_id FROM notifications n
          WHERE n.status = 'PENDING'
          ORDER BY n.merchant_id, n.endpoint_id
          LIMIT 1)
        UNION ALL
        SELECT x.merchant_id, x.endpoint_id
          FROM waiting w,
               LATERAL (SELECT n.merchant_id, n.endpoint_id FROM notifications n
                         WHERE n.status = 'PENDING'
                           AND (n.merchant_id, n.endpoint_id) > (w.merchant_id, w.endpoint_id)
                         ORDER BY n.merchant_id, n.endpoint_id
                         LIMIT 1) x
    ), room AS (
        -- what per_endpoint leaves each enabled one, with the rows leased
        -- now (by any worker or gateway) counted
        -- (the newest leases first, per_endpoint of them at most, which
        -- tells the room wherever it is above zero, the only room used:
        -- notifications_leased's order, which no other index gives
        -- without a sort)
        SELECT w.merchant_id, w.endpoint_id,
               p_per_endpoint - (SELECT count(*)
                                   FROM (SELECT 1 FROM notifications n
                                          WHERE n.merchant_id = w.merchant_id
                                            AND n.endpoint_id = w.endpoint_id
                                            AND n.status = 'PENDING'
                                            AND n.lease_owner IS NOT NULL
                                            AND n.lease_until >= clock_timestamp()
                                          ORDER BY n.lease_until DESC
                                          LIMIT p_per_endpoint) l) AS room
          FROM waiting w
          JOIN notify_endpoints e ON e.merchant_id = w.merchant_id
                                 AND e.endpoint_id = w.endpoint_id
         WHERE e.disabled_at IS NULL
    ), heads AS (
        -- the p_limit endpoints with room whose oldest due row is oldest:
        -- the claim's rows are theirs alone (each endpoint with room
        -- offers at least its oldest, so an endpoint whose oldest is
        -- younger than p_limit others' has no row among the p_limit
        -- oldest).  One index probe each, nothing locked: a claim locks
        -- the rows of p_limit endpoints at most, not of every endpoint
        -- with a backlog (a thousand shops' endpoints down: eight
        -- thousand row locks a claim, each a WAL record, for 32 rows)
        SELECT r.merchant_id, r.endpoint_id, r.room
          FROM room r,
               LATERAL (SELECT n.next_at FROM notifications n
                         WHERE n.merchant_id = r.merchant_id AND n.endpoint_id = r.endpoint_id
                           AND n.status = 'PENDING' AND n.next_at <= now()
                           AND (n.lease_until IS NULL OR n.lease_until < clock_timestamp())
                         ORDER BY n.next_at
                         LIMIT 1) h
         WHERE r.room > 0
         ORDER BY h.next_at
         LIMIT p_limit
    ), candidates AS (
        -- each of those endpoints' oldest due rows, locked where they are
        -- found (SKIP LOCKED: another claimer's are passed over): one
        -- index range per endpoint, nothing found again afterwards, and
        -- no plan that reads every PENDING row (a disabled endpoint's
        -- backlog with them).  At most p_limit per endpoint: with several
        -- endpoints, rows locked beyond p_limit are let go when the
        -- claim's transaction ends (another claimer meanwhile passes over
        -- them, and takes them at its next claim).
        SELECT c.ctid, c.next_at
          FROM heads r,
               LATERAL (SELECT n.ctid, n.next_at FROM notifications n
                         WHERE n.merchant_id = r.merchant_id AND n.endpoint_id = r.endpoint_id
                           AND n.status = 'PENDING' AND n.next_at <= now()
                           AND (n.lease_until IS NULL OR n.lease_until < clock_timestamp())
                         ORDER BY n.next_at
                         LIMIT least(r.room, p_limit)
                           FOR UPDATE OF n SKIP LOCKED) c
    ), due AS (
        SELECT c.ctid
          FROM candidates c
         ORDER BY c.next_at
         LIMIT p_limit
    ), claimed AS (
        UPDATE notifications n
           SET lease_owner = p_owner,
               lease_until = clock_timestamp() + make_interval(secs => p_lease_ms / 1000.0),
               attempts = n.attempts + 1,
               -- this attempt is the send a replay asked for (one made
               -- while a holder that died had it)
               resend = false,
               updated_at = now()
          FROM due
         -- each row taken by its place in the table, which its lock keeps
         -- (a TID scan a row), not by a join on its key: planned while the
         -- statistics say the table holds no row (an ANALYZE that found
         -- only dead rows), the join read the whole primary key and
         -- compared each entry with each row taken.  A row updated
         -- between the statement's snapshot and its lock is not seen at
         -- its new place: it is not taken now, and the next claim takes it
         WHERE n.ctid = due.ctid
        RETURNING n.notification_id, n.merchant_id, n.endpoint_id, n.attempts, n.payload,
                  n.lease_until
    )
    SELECT c.notification_id, c.merchant_id, c.endpoint_id, e.url, e.host, e.secret_sealed,
           CASE WHEN e.prev_until > now() THEN e.prev_secret_sealed END,
           c.attempts, c.payload, c.lease_until
      FROM claimed c
      JOIN notify_endpoints e ON e.merchant_id = c.merchant_id AND e.endpoint_id = c.endpoint_id;
END
$function$;
REVOKE ALL ON FUNCTION pay_notify_lease(p_owner text, p_limit integer, p_lease_ms integer, p_per_endpoint integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_notify_lease(p_owner text, p_limit integer, p_lease_ms integer, p_per_endpoint integer) TO payments_gateway;

