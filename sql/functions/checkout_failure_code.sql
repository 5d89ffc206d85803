-- Why a checkout failed, from the type of the PSP's event or session
-- status that failed it (Stripe's checkout.session.expired, a look-up's
-- "expired", "canceled", "refused", "failed", payment.failed, ...):
-- expired, psp_canceled, else declined.
CREATE OR REPLACE FUNCTION checkout_failure_code(p_type text)
 RETURNS pay_failure_code
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
    SELECT (CASE
                WHEN p_type ILIKE '%expire%' THEN 'expired'
                WHEN p_type ILIKE '%cancel%' THEN 'psp_canceled'
                ELSE 'declined'
            END)::public.pay_failure_code
$function$;
REVOKE ALL ON FUNCTION checkout_failure_code(p_type text) FROM PUBLIC;
