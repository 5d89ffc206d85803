-- RFC 3339 in UTC, whole seconds: "2026-11-22T10:00:00Z".  A plain SQL
-- function (no SET clause) so that the planner inlines it.
CREATE OR REPLACE FUNCTION ts_rfc3339(ts timestamp with time zone)
 RETURNS text
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
    SELECT pg_catalog.to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$function$;
REVOKE ALL ON FUNCTION ts_rfc3339(ts timestamp with time zone) FROM PUBLIC;
