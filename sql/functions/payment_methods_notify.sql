-- A saved method's notifications (doc/NOTIFICATIONS.md): payment_method.saved
-- when its row is made (the PSP's verified event said the method was
-- stored), payment_method.detached when the merchant detaches it (the
-- gateway refuses its charges from then on; the PSP's own detach follows,
-- psp_detached_at).  The data is the method as GET /v1/payment_methods/{id}
-- shows it, never its token; each method counts its own sequence.
CREATE OR REPLACE FUNCTION payment_methods_notify()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    PERFORM notify_enqueue(
        NEW.merchant_id,
        CASE WHEN TG_OP = 'INSERT' THEN 'payment_method.saved'
             ELSE 'payment_method.detached' END,
        NEW.checkout_id, NEW.method_id, payment_method_json(NEW));
    RETURN NULL;
END
$function$;
REVOKE ALL ON FUNCTION payment_methods_notify() FROM PUBLIC;

-- The triggers that run it: a method saved, a method detached.  Made, or
-- made anew, only when missing or other than written here
-- (trigger_ensure.sql).
SELECT trigger_ensure(
    'CREATE TRIGGER payment_methods_notify_saved AFTER INSERT ON public.payment_methods FOR EACH ROW EXECUTE FUNCTION public.payment_methods_notify()',
    'CREATE TRIGGER payment_methods_notify_detached AFTER UPDATE OF status ON public.payment_methods FOR EACH ROW WHEN (((old.status IS DISTINCT FROM new.status) AND (new.status = ''detached''::text))) EXECUTE FUNCTION public.payment_methods_notify()');
