-- One page of the merchant's events feed: the events (one row each,
-- in_feed) of the last 30 days after the cursor (p_at, p_id; NULL: from
-- the oldest), oldest first, as an index scan of notifications_feed.  A
-- plain SQL function (no SET clause, not SECURITY DEFINER) so that the
-- planner inlines it: called with constants, its plan is the scan's (the
-- e2e suite EXPLAINs it).
CREATE OR REPLACE FUNCTION notifications_feed_page(p_merchant text, p_type text, p_at timestamp with time zone, p_id text, p_limit integer)
 RETURNS SETOF notifications
 LANGUAGE sql
 STABLE
AS $function$
    SELECT n.*
      FROM notifications n
     WHERE n.in_feed
       AND n.merchant_id = p_merchant
       AND n.created_at >= now() - interval '30 days'
       AND (p_type IS NULL OR n.event_type = p_type)
       AND (p_at IS NULL OR (n.created_at, n.notification_id) > (p_at, p_id))
     ORDER BY n.merchant_id, n.created_at, n.notification_id
     LIMIT p_limit;
$function$;
REVOKE ALL ON FUNCTION notifications_feed_page(p_merchant text, p_type text, p_at timestamp with time zone, p_id text, p_limit integer) FROM PUBLIC;
