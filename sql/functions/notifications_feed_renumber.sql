-- After a restore into another PostgreSQL cluster (pg_dump, pg_restore):
-- the events feed made listable again, in its order, its cursors valid.
-- bin/payments-migrate calls it at every run, after the migrations and the
-- functions, outside any transaction block (doc/OPERATIONS.md, "Restoring
-- a backup").
--
-- The feed orders a merchant's events by feed_xact, the id of the
-- transaction that stored each, and lists those below the reader's
-- snapshot's xmin.  A restored row keeps the id the old cluster gave it;
-- the new cluster's ids start again near 700, so a row of the old one is
-- never listed (the last 30 days vanish from GET /v1/events) and every
-- new event sorts before the cursors the shops hold.  Each merchant with
-- such a row has its rows renumbered to the places
-- notifications_feed_places gives them (1, 2, ...: the order the feed
-- listed, then what this cluster stored since, in its order); a cursor
-- names a row, so it names the same place after.  A row of feed_xact 0
-- (stored before the feed kept ids) stays before them all, and every
-- transaction that can still store an event has an id above the places:
-- the places are written only while the oldest transaction in flight is
-- past the last of them, so nothing stored later sorts among them.
--
-- When the places outnumber the ids this cluster has used (a merchant
-- with many events whose transactions overlapped), ids are used up first,
-- one transaction each, without waiting for the disk (synchronous_commit
-- off for them alone; 90,000 a second on a 2-core test machine), and a
-- transaction left open since before is waited for, a minute at most
-- (then the error names it).
--
-- p_events, p_merchants: how many rows were renumbered, of how many
-- merchants (0, 0: none needed it).  Runs again with nothing to do.  A
-- procedure (it commits the ids it uses up), not SECURITY DEFINER: run by
-- the tables' owner.
CREATE OR REPLACE PROCEDURE notifications_feed_renumber(INOUT p_events bigint DEFAULT NULL, INOUT p_merchants bigint DEFAULT NULL)
 LANGUAGE plpgsql
AS $procedure$
DECLARE
    v_rows    bigint;
    v_last    bigint;
    v_next    bigint;
    v_xmin    bigint;
    v_done    bigint;
    v_of      bigint;
    v_rounds  int := 0;
    v_sync    text := current_setting('synchronous_commit');
    v_waited  int := 0;
    v_pid     int;
    v_since   timestamptz;
BEGIN
    p_events := 0;
    p_merchants := 0;

    LOOP
        SELECT count(*), max(p.place) INTO v_rows, v_last
          FROM public.notifications_feed_places() p;
        IF v_rows = 0 THEN
            EXIT;
        END IF;
        v_rounds := v_rounds + 1;
        IF v_rounds > 1000 THEN
            RAISE EXCEPTION 'the events feed: % rows still to renumber after 1000 rounds', v_rows;
        END IF;

        SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint,
               pg_snapshot_xmax(pg_current_snapshot())::text::bigint
          INTO v_xmin, v_next;

        IF v_last < v_xmin THEN
            -- one statement, one snapshot: the places and the check that
            -- every transaction in flight is past them
            WITH p AS MATERIALIZED (SELECT * FROM public.notifications_feed_places()),
                 u AS (UPDATE public.notifications n
                          SET feed_xact = p.place::text::xid8
                         FROM p
                        WHERE n.merchant_id = p.merchant_id
                          AND n.notification_id = p.notification_id
                          AND (SELECT max(q.place) FROM p q)::text::xid8
                              < pg_snapshot_xmin(pg_current_snapshot())
                    RETURNING n.merchant_id)
            SELECT count(*), count(DISTINCT u.merchant_id) INTO v_done, v_of FROM u;
            COMMIT;
            p_events := p_events + v_done;
            p_merchants := p_merchants + v_of;
            -- then again: nothing left, or what came in meanwhile

        ELSIF v_last >= v_next THEN
            -- more places than ids used: use ids up to past the last place
            PERFORM set_config('synchronous_commit', 'off', false);
            FOR i IN 0 .. v_last - v_next LOOP
                PERFORM pg_current_xact_id();
                COMMIT;
            END LOOP;
            PERFORM set_config('synchronous_commit', v_sync, false);

        ELSE
            -- a transaction older than the last place is still open
            IF v_waited >= 60 THEN
                SELECT a.pid, a.xact_start INTO v_pid, v_since
                  FROM pg_stat_activity a
                 WHERE a.backend_xid IS NOT NULL
                 ORDER BY age(a.backend_xid) DESC
                 LIMIT 1;
                RAISE EXCEPTION 'the events feed cannot be renumbered while a transaction older than % ids is open (pid %, open since %): end it and run payments-migrate again',
                                v_last, v_pid, v_since
                      USING ERRCODE = 'lock_not_available';
            END IF;
            PERFORM pg_sleep(1);
            v_waited := v_waited + 1;
            COMMIT;
        END IF;
    END LOOP;
END
$procedure$;
REVOKE ALL ON PROCEDURE notifications_feed_renumber(INOUT p_events bigint, INOUT p_merchants bigint) FROM PUBLIC;
