-- A checkout FAILED here with a hosted session URL and an expiry is one the
-- sweeper asks about until that session's expiry and grace= (a cancel
-- cannot expire an Adyen session): listed in failed_open_sessions, with the
-- expiry it has, and no longer once it is out of that state (a payment
-- that came after all).  The list, not an index of checkouts on psp_url
-- and expires_at, so that a registration's answer, which writes both, is
-- updated in place (migration 096).  The trigger's condition is short:
-- PostgreSQL reads it back at every statement that writes one of its
-- columns, a registration's answer included; the function sorts the rest.
CREATE OR REPLACE FUNCTION checkouts_failed_open()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    -- a hold that was authorized here and then released (its void, its
    -- window passed) is not listed: its session was paid once and is
    -- spent, a look-up would only say so again (pay_webhook_apply_core
    -- answers it 'already')
    IF NEW.status = 'FAILED' AND NEW.psp_url IS NOT NULL AND NEW.expires_at IS NOT NULL
       AND NEW.authorized_at IS NULL THEN
        INSERT INTO failed_open_sessions AS f (merchant_id, checkout_id, expires_at)
        VALUES (NEW.merchant_id, NEW.checkout_id, NEW.expires_at)
        ON CONFLICT (merchant_id, checkout_id) DO UPDATE
            SET expires_at = EXCLUDED.expires_at
          WHERE f.expires_at IS DISTINCT FROM EXCLUDED.expires_at;
    ELSE
        DELETE FROM failed_open_sessions f
         WHERE f.merchant_id = NEW.merchant_id AND f.checkout_id = NEW.checkout_id;
    END IF;
    RETURN NULL;
END
$function$;
REVOKE ALL ON FUNCTION checkouts_failed_open() FROM PUBLIC;

-- Made, or made anew, only when missing or other than written here
-- (trigger_ensure.sql).
SELECT trigger_ensure(
    'CREATE TRIGGER checkouts_failed_open AFTER UPDATE OF status, psp_url, expires_at ON public.checkouts FOR EACH ROW WHEN (((old.status = ''FAILED''::public.pay_status) OR (new.status = ''FAILED''::public.pay_status))) EXECUTE FUNCTION public.checkouts_failed_open()');
