CREATE OR REPLACE FUNCTION ts_epoch(ts timestamp with time zone)
 RETURNS bigint
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
    SELECT pg_catalog.floor(pg_catalog.date_part('epoch', ts))::bigint
$function$;
REVOKE ALL ON FUNCTION ts_epoch(ts timestamp with time zone) FROM PUBLIC;
