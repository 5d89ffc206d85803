-- Merchants are disabled, never deleted or renamed: their payments, ledger and
-- audit rows outlive them, and the hot tables rely on it (see above).
CREATE OR REPLACE FUNCTION merchants_keep()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    RAISE EXCEPTION 'merchants are never deleted (% refused); disable the merchant instead', TG_OP
        USING ERRCODE = 'PY002';
END
$function$;
REVOKE ALL ON FUNCTION merchants_keep() FROM PUBLIC;
