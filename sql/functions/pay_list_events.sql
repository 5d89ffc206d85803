-- GET /v1/events: every event the merchant's notifications carried in the
-- last 30 days, oldest first, one item per event whatever the number of
-- endpoints: its notification's body (type, timestamp, data) with "id",
-- the webhook-id of the event's first endpoint (the only one, for a shop
-- with one endpoint).  p_after is any notification id of the merchant's
-- (any endpoint's copy of an event): the page starts after that event.
-- The feed's order is the order the events' transactions took their ids
-- (then their time and id), and it lists only what no transaction still
-- open can precede (notifications_feed_page): an event of a transaction
-- in flight, and every event after it, is listed once it ends, never
-- before a position already listed.
-- Answers {"object": "list", "data": [...], "has_more"}.  Raises PY013 for
-- a type no notification has and PY014 for a cursor that names no
-- notification of the merchant's.  Raises PY015 while the merchant's feed
-- holds an event no transaction of this PostgreSQL cluster can have
-- stored (its feed_xact at or past the snapshot's next id: a database
-- restored from another cluster, not yet renumbered by payments-migrate,
-- notifications_feed_renumber): the feed would hide those events and put
-- every new one before them, so it answers nothing (one probe of its
-- index).
CREATE OR REPLACE FUNCTION pay_list_events(p_merchant text, p_type text, p_after text, p_limit integer)
 RETURNS text
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
DECLARE
    v_at       timestamptz;
    v_id       text;
    v_xact     xid8;
    -- the oldest transaction in flight, in the snapshot every query of
    -- this (STABLE) function reads
    v_horizon  xid8 := pg_snapshot_xmin(pg_current_snapshot());
    v_limit  int := greatest(1, least(p_limit, 100));
    v_items  jsonb;
    v_n      bigint;
    v_c      notifications%ROWTYPE;
BEGIN
    IF EXISTS (SELECT 1 FROM notifications r
                WHERE r.in_feed
                  AND r.merchant_id = p_merchant
                  AND r.feed_xact >= pg_snapshot_xmax(pg_current_snapshot())) THEN
        RAISE EXCEPTION 'the events feed holds events of another PostgreSQL cluster (a restored backup): run payments-migrate'
              USING ERRCODE = 'PY015';
    END IF;

    IF p_type IS NOT NULL THEN
        BEGIN
            -- the types the table takes, as its own check says them
            PERFORM notifications_row_checks('msg_000000000000000000000000', p_type, 1,
                                             'PENDING', NULL);
        EXCEPTION WHEN check_violation THEN
            RAISE EXCEPTION 'no event has the type %', p_type USING ERRCODE = 'PY013';
        END;
    END IF;

    IF p_after IS NOT NULL THEN
        SELECT * INTO v_c FROM notifications c
         WHERE c.merchant_id = p_merchant AND c.notification_id = p_after;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no such event' USING ERRCODE = 'PY014';
        END IF;

        -- the event's own row: its copies share the transaction's time
        SELECT f.feed_xact, f.created_at, f.notification_id INTO v_xact, v_at, v_id
          FROM notifications f
         WHERE f.in_feed
           AND f.merchant_id = p_merchant
           AND f.feed_xact = v_c.feed_xact
           AND f.created_at = v_c.created_at
           AND f.event_type = v_c.event_type
           AND f.object_id = v_c.object_id
           AND f.sequence = v_c.sequence;
        IF NOT FOUND THEN
            v_xact := v_c.feed_xact;
            v_at := v_c.created_at;
            v_id := v_c.notification_id;
        END IF;
    END IF;

    SELECT coalesce(jsonb_agg(jsonb_build_object('id', x.notification_id) || x.payload::jsonb
                              ORDER BY x.feed_xact, x.created_at, x.notification_id)
                        FILTER (WHERE x.n <= v_limit), '[]'::jsonb),
           count(*)
      INTO v_items, v_n
      FROM (SELECT p.*,
                   row_number() OVER (ORDER BY p.feed_xact, p.created_at,
                                               p.notification_id) AS n
              FROM notifications_feed_page(p_merchant, p_type, v_horizon, v_xact, v_at,
                                           v_id, v_limit + 1) p) x;

    RETURN jsonb_build_object('object', 'list',
                              'data', v_items,
                              'has_more', v_n > v_limit)::text;
END
$function$;
REVOKE ALL ON FUNCTION pay_list_events(p_merchant text, p_type text, p_after text, p_limit integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_list_events(p_merchant text, p_type text, p_after text, p_limit integer) TO payments_gateway;
