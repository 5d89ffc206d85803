-- The event inbox's monthly partitions (UTC months), from the current one
-- to p_ahead months ahead, each made when missing: psp_events_yYYYYmMM.
-- Called by every round of the sweeper, and by pay_event_keep when an event
-- finds no partition for its month (a gateway without a sweeper).  A
-- partition is made as a table of its own and then attached, which holds
-- the parent in SHARE UPDATE EXCLUSIVE only: webhooks keep reading and
-- inserting meanwhile.  (CREATE TABLE ... PARTITION OF takes ACCESS
-- EXCLUSIVE on the parent; after a lock that already kept inserts out, a
-- webhook holding the parent for its duplicate check and then inserting
-- deadlocked with it, 40P01.)  Returns how many it made.
CREATE OR REPLACE FUNCTION pay_inbox_partitions(p_ahead integer)
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET "TimeZone" TO 'UTC'
AS $function$
DECLARE
    v_from  timestamptz;
    v_name  text;
    v_made  integer := 0;
BEGIN
    IF p_ahead IS NULL OR p_ahead < 0 OR p_ahead > 24 THEN
        RAISE EXCEPTION 'pay_inbox_partitions: ahead must be 0 to 24 months'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    FOR i IN 0 .. p_ahead LOOP
        v_from := date_trunc('month', now()) + make_interval(months => i);
        v_name := 'psp_events_' || to_char(v_from, '"y"YYYY"m"MM');
        CONTINUE WHEN to_regclass(v_name) IS NOT NULL;

        -- two makers at once (two gateways' first events of a month): one
        -- at a time, the second finding it made.  A lock on the table, not
        -- an advisory one: taking it reads the catalog's changes committed
        -- meanwhile, which to_regclass then sees.  SHARE UPDATE EXCLUSIVE
        -- conflicts with itself (and ATTACH's), never with reads or inserts.
        LOCK TABLE psp_events IN SHARE UPDATE EXCLUSIVE MODE;
        CONTINUE WHEN to_regclass(v_name) IS NOT NULL;

        EXECUTE format('CREATE TABLE %I (LIKE psp_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS '
                       'INCLUDING STORAGE INCLUDING COMPRESSION)', v_name);
        EXECUTE format('ALTER TABLE psp_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       v_name, v_from, v_from + interval '1 month');
        EXECUTE format('REVOKE ALL ON %I FROM PUBLIC', v_name);
        v_made := v_made + 1;
    END LOOP;

    RETURN v_made;
END
$function$;
REVOKE ALL ON FUNCTION pay_inbox_partitions(p_ahead integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_inbox_partitions(p_ahead integer) TO payments_gateway;
