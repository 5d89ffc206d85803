-- At most two active keys per merchant: one in use and one being rotated in.
-- The merchant row is locked first so that two concurrent inserts for one
-- merchant are counted one after the other (under READ COMMITTED, which the
-- CLI and the functions use, the count then sees the other's committed key).
CREATE OR REPLACE FUNCTION api_keys_limit()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    n int;
BEGIN
    PERFORM 1 FROM merchants m WHERE m.merchant_id = NEW.merchant_id FOR UPDATE;
    SELECT count(*) INTO n FROM api_keys k
     WHERE k.merchant_id = NEW.merchant_id AND k.revoked_at IS NULL
       AND k.key_id <> NEW.key_id;
    IF n >= 2 THEN
        RAISE EXCEPTION 'merchant % already has two active API keys', NEW.merchant_id
            USING ERRCODE = 'PY005', HINT = 'revoke one of them first';
    END IF;
    RETURN NEW;
END
$function$;
REVOKE ALL ON FUNCTION api_keys_limit() FROM PUBLIC;

-- The trigger that runs it, on every key added or taken back into use.
-- Made, or made anew, only when missing or other than written here
-- (trigger_ensure.sql).
SELECT trigger_ensure(
    'CREATE TRIGGER api_keys_limit BEFORE INSERT OR UPDATE OF revoked_at, merchant_id ON public.api_keys FOR EACH ROW WHEN ((new.revoked_at IS NULL)) EXECUTE FUNCTION public.api_keys_limit()');
