-- The event inbox's retention: the monthly partitions wholly older than
-- p_keep_months whole months before the current one (UTC) dropped, never
-- an event's row deleted one by one.  13 months keeps a year of disputes'
-- evidence and the month they began.  Called by the sweeper's round
-- (payments_sweeper inbox_months=).  A month's event ids (psp_event_ids)
-- go with it, in the same transaction: an event of a dropped month
-- delivered again is kept anew.  Returns the names of the partitions
-- dropped.
CREATE OR REPLACE FUNCTION pay_inbox_drop_old(p_keep_months integer)
 RETURNS SETOF text
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET "TimeZone" TO 'UTC'
AS $function$
DECLARE
    v_cut   timestamptz;
    v_part  record;
BEGIN
    IF p_keep_months IS NULL OR p_keep_months < 1 OR p_keep_months > 1200 THEN
        RAISE EXCEPTION 'pay_inbox_drop_old: keep 1 to 1200 months'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    v_cut := date_trunc('month', now()) - make_interval(months => p_keep_months);

    FOR v_part IN
        SELECT c.relname
          FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'psp_events'::regclass
           AND c.relname ~ '^psp_events_y[0-9]{4}m[0-9]{2}$'
           AND to_timestamp(substr(c.relname, 13, 4) || substr(c.relname, 18, 2),
                            'YYYYMM') + interval '1 month' <= v_cut
         ORDER BY c.relname
    LOOP
        -- its events' ids first (psp_event_ids, which no DROP reaches)
        EXECUTE format('DELETE FROM psp_event_ids i USING %I p WHERE i.psp = p.psp'
                       ' AND i.event_id = p.event_id AND i.received_at = p.received_at',
                       v_part.relname);
        EXECUTE format('DROP TABLE %I', v_part.relname);
        RETURN NEXT v_part.relname;
    END LOOP;
END
$function$;
REVOKE ALL ON FUNCTION pay_inbox_drop_old(p_keep_months integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_inbox_drop_old(p_keep_months integer) TO payments_gateway;
