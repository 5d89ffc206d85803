-- What of a report is still open for a person (the tool's exit status).
CREATE OR REPLACE FUNCTION recon_open(p_report bigint)
 RETURNS bigint
 LANGUAGE sql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT count(*) FROM recon_mismatches m
     WHERE m.report_id = p_report AND m.class <> 'auto_fixed' AND m.resolved_at IS NULL;
$function$;
REVOKE ALL ON FUNCTION recon_open(p_report bigint) FROM PUBLIC;
