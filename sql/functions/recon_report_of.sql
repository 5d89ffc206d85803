-- The report an earlier run of these bytes wrote, for the tool's message.
CREATE OR REPLACE FUNCTION recon_report_of(p_sha256 text)
 RETURNS bigint
 LANGUAGE sql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT r.report_id FROM recon_reports r WHERE r.sha256 = p_sha256;
$function$;
REVOKE ALL ON FUNCTION recon_report_of(p_sha256 text) FROM PUBLIC;
