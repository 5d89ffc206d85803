-- A paid checkout keeps the PSP's id of its payment (the first one told).
CREATE OR REPLACE FUNCTION payment_ref_note(p_psp text, p_merchant text, p_checkout text, p_payment_ref text)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    IF coalesce(p_payment_ref, '') = '' OR length(p_payment_ref) > 128 THEN
        RETURN;
    END IF;
    UPDATE checkouts ck SET psp_payment_ref = p_payment_ref
     WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout
       AND ck.psp = p_psp AND ck.status = 'SUCCESS' AND ck.psp_payment_ref IS NULL;
    IF FOUND THEN
        INSERT INTO psp_payments (psp, payment_ref, merchant_id, checkout_id)
        VALUES (p_psp, p_payment_ref, p_merchant, p_checkout)
        ON CONFLICT DO NOTHING;
    END IF;
END
$function$;
REVOKE ALL ON FUNCTION payment_ref_note(p_psp text, p_merchant text, p_checkout text, p_payment_ref text) FROM PUBLIC;
