CREATE OR REPLACE FUNCTION checkouts_commission_frozen()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    RAISE EXCEPTION 'a checkout''s commission is frozen at registration'
        USING ERRCODE = 'PY002';
END
$function$;
REVOKE ALL ON FUNCTION checkouts_commission_frozen() FROM PUBLIC;
