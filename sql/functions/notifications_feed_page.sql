-- One page of the merchant's events feed: the events (one row each,
-- in_feed) of the last 30 days after the cursor (p_xact, p_at, p_id; NULL:
-- from the oldest), oldest first, as an index scan of notifications_feed.
-- Only the entries of transactions older than p_horizon, the reader's
-- snapshot's xmin (the oldest transaction still in flight), are listed:
-- every transaction that can still commit an entry has a larger id, so
-- none can land before a position already listed.  A plain SQL function
-- (no SET clause, not SECURITY DEFINER) so that the planner inlines it:
-- called with constants, its plan is the scan's (the e2e suite EXPLAINs
-- it).
CREATE OR REPLACE FUNCTION notifications_feed_page(p_merchant text, p_type text, p_horizon xid8, p_xact xid8, p_at timestamp with time zone, p_id text, p_limit integer)
 RETURNS SETOF notifications
 LANGUAGE sql
 STABLE
AS $function$
    SELECT n.*
      FROM notifications n
     WHERE n.in_feed
       AND n.merchant_id = p_merchant
       AND n.feed_xact < p_horizon
       AND n.created_at >= now() - interval '30 days'
       AND (p_type IS NULL OR n.event_type = p_type)
       AND (p_at IS NULL
            OR (n.feed_xact, n.created_at, n.notification_id) > (p_xact, p_at, p_id))
     ORDER BY n.merchant_id, n.feed_xact, n.created_at, n.notification_id
     LIMIT p_limit;
$function$;
REVOKE ALL ON FUNCTION notifications_feed_page(p_merchant text, p_type text, p_horizon xid8, p_xact xid8, p_at timestamp with time zone, p_id text, p_limit integer) FROM PUBLIC;

-- The signature this one replaced (only pay_list_events calls it, in the
-- same transaction's new body).
DROP FUNCTION IF EXISTS notifications_feed_page(text, text, timestamp with time zone, text, integer);
