CREATE OR REPLACE FUNCTION recon_row_json(r recon_rows)
 RETURNS jsonb
 LANGUAGE sql
 IMMUTABLE
AS $function$
    SELECT to_jsonb(r) - 'report_id' - 'outcome';
$function$;
REVOKE ALL ON FUNCTION recon_row_json(r recon_rows) FROM PUBLIC;
