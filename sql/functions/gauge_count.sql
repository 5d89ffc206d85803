-- A gauge's count that read at most p_cap rows of a partial index's
-- (pay_executing_stats, pay_notify_stats): p_counted while below p_cap;
-- from there the index's size as PostgreSQL last counted it (VACUUM,
-- ANALYZE), never less than what was counted.
CREATE OR REPLACE FUNCTION gauge_count(p_counted bigint, p_cap integer, p_index regclass)
 RETURNS bigint
 LANGUAGE sql
 STABLE PARALLEL SAFE
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT CASE WHEN p_counted < p_cap THEN p_counted
                ELSE greatest(p_counted, (SELECT i.reltuples::bigint FROM pg_catalog.pg_class i
                                           WHERE i.oid = p_index))
           END
$function$;
REVOKE ALL ON FUNCTION gauge_count(p_counted bigint, p_cap integer, p_index regclass) FROM PUBLIC;
