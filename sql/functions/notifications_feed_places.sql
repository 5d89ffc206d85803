-- The events feed's places after a restore (notifications_feed_renumber):
-- for each merchant whose feed holds a row no transaction of this
-- PostgreSQL cluster can have stored (its feed_xact at or past this
-- snapshot's next transaction id: the row came from another cluster, by
-- pg_dump and pg_restore), every row of the merchant's but those of
-- feed_xact 0, each with the place (1, 2, ...) that keeps the feed's order
-- when it becomes the row's feed_xact.
--
-- The order kept: the rows of the other cluster by (feed_xact, created_at,
-- notification_id), as they were listed there, then the rows this cluster
-- stored before the renumbering (created after the last of the other
-- cluster's rows past this snapshot) by the same.  Rows a transaction
-- stored, in that order, go into one place while their (created_at,
-- notification_id) keep rising, and into the next place where that order
-- steps back (a transaction that began first and stored last): in place
-- order then (created_at, notification_id) they are in the order kept,
-- every row of one transaction in one place (an event's copies for other
-- endpoints with it, as a cursor naming one needs).  The places are few
-- (one more for each step back) and a merchant's only: a feed orders by
-- merchant first.
--
-- STABLE: read in the snapshot of the statement that calls it (the
-- renumbering's UPDATE checks the places against that snapshot's xmin).
CREATE OR REPLACE FUNCTION notifications_feed_places()
 RETURNS TABLE(merchant_id text, notification_id text, place bigint)
 LANGUAGE sql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
    WITH s AS (
        SELECT pg_snapshot_xmax(pg_current_snapshot()) AS next
    ), m AS MATERIALIZED (
        -- one probe of the feed's index per merchant (not one per row)
        SELECT e.merchant_id
          FROM (SELECT DISTINCT d.merchant_id FROM notify_endpoints d) e, s
         WHERE EXISTS (SELECT 1 FROM notifications f
                        WHERE f.merchant_id = e.merchant_id AND f.in_feed
                          AND f.feed_xact >= s.next)
    ), r AS (
        SELECT n.merchant_id, n.notification_id, n.feed_xact, n.created_at,
               -- stored here: below this cluster's ids, and made after
               -- the last row the other cluster stored past them
               coalesce(n.feed_xact < s.next
                        AND n.created_at > max(n.created_at)
                                               FILTER (WHERE n.feed_xact >= s.next)
                                               OVER (PARTITION BY n.merchant_id),
                        false) AS here
          FROM notifications n
          JOIN m ON m.merchant_id = n.merchant_id
         CROSS JOIN s
         WHERE n.feed_xact <> '0'
    ), d AS (
        SELECT r.merchant_id, r.notification_id, r.here, r.feed_xact, r.created_at,
               coalesce((r.created_at, r.notification_id)
                        < (lag(r.created_at) OVER w, lag(r.notification_id) OVER w),
                        false) AS back
          FROM r
        WINDOW w AS (PARTITION BY r.merchant_id
                     ORDER BY r.here, r.feed_xact, r.created_at, r.notification_id)
    )
    SELECT d.merchant_id, d.notification_id,
           1 + count(*) FILTER (WHERE d.back)
                   OVER (PARTITION BY d.merchant_id
                         ORDER BY d.here, d.feed_xact, d.created_at, d.notification_id
                         ROWS UNBOUNDED PRECEDING)
      FROM d;
$function$;
REVOKE ALL ON FUNCTION notifications_feed_places() FROM PUBLIC;
