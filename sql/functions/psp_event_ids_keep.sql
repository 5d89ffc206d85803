-- The inbox's event ids (psp_event_ids) kept with its rows, whoever writes
-- psp_events: a row inserted claims its PSP and event id there first (a
-- second row of a kept event fails on psp_event_ids' key, 23505, even when
-- the first is not committed yet: the insert waits for it, then fails); a
-- row deleted gives its id back; TRUNCATE of the inbox empties them.  A
-- row's PSP, event id and received_at never change (refused, 0A000).  A
-- dropped month's ids are deleted by pay_inbox_drop_old, which drops it
-- (DROP TABLE fires no trigger).
CREATE OR REPLACE FUNCTION psp_event_ids_keep()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO psp_event_ids (psp, event_id, received_at)
        VALUES (NEW.psp, NEW.event_id, NEW.received_at);
        RETURN NEW;
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM psp_event_ids i
         WHERE i.psp = OLD.psp AND i.event_id = OLD.event_id
           AND i.received_at = OLD.received_at;
        RETURN OLD;
    ELSIF TG_OP = 'TRUNCATE' THEN
        TRUNCATE psp_event_ids;
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'psp_events: an event''s psp, event_id and received_at do not change'
        USING ERRCODE = 'feature_not_supported';
END
$function$;
REVOKE ALL ON FUNCTION psp_event_ids_keep() FROM PUBLIC;

-- The triggers that run it, on the inbox (cloned onto every partition,
-- those attached later too).  Made, or made anew, only when missing or
-- other than written here (trigger_ensure.sql).
--
-- When the insert's is made, the events kept between migration 091's
-- backfill and it (the previous release's functions, serving webhooks
-- meanwhile) are given their ids too: the trigger's lock keeps inserts out
-- until this transaction commits.  Such an event was received this month
-- or, at a month's turn, the last one; nothing to do when no id is
-- missing.  With the trigger already there, every event has its id.
DO $$
BEGIN
    IF 'psp_events_id_insert' = ANY (trigger_ensure(
            'CREATE TRIGGER psp_events_id_insert BEFORE INSERT ON public.psp_events FOR EACH ROW EXECUTE FUNCTION public.psp_event_ids_keep()',
            'CREATE TRIGGER psp_events_id_delete AFTER DELETE ON public.psp_events FOR EACH ROW EXECUTE FUNCTION public.psp_event_ids_keep()',
            'CREATE TRIGGER psp_events_id_change BEFORE UPDATE OF psp, event_id, received_at ON public.psp_events FOR EACH ROW WHEN (((new.psp IS DISTINCT FROM old.psp) OR (new.event_id IS DISTINCT FROM old.event_id) OR (new.received_at IS DISTINCT FROM old.received_at))) EXECUTE FUNCTION public.psp_event_ids_keep()',
            'CREATE TRIGGER psp_events_id_truncate AFTER TRUNCATE ON public.psp_events FOR EACH STATEMENT EXECUTE FUNCTION public.psp_event_ids_keep()')) THEN
        INSERT INTO psp_event_ids (psp, event_id, received_at)
        SELECT DISTINCT ON (e.psp, e.event_id) e.psp, e.event_id, e.received_at
          FROM psp_events e
         WHERE e.received_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                                - interval '1 month'
           AND NOT EXISTS (SELECT 1 FROM psp_event_ids i
                            WHERE i.psp = e.psp AND i.event_id = e.event_id)
         ORDER BY e.psp, e.event_id, e.received_at
            ON CONFLICT DO NOTHING;
    END IF;
END
$$;
