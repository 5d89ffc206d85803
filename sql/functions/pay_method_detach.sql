-- DELETE /v1/payment_methods/{id}: the saved method can no longer be
-- charged (pay_claim refuses a detached method under the row's lock, so a
-- charge claimed before this commits goes on, and none after).  Audited
-- on the chain of the checkout it was saved in.  Detaching again answers
-- the same; none of the merchant's: NULL.
CREATE OR REPLACE FUNCTION pay_method_detach(p_merchant text, p_method text)
 RETURNS text
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    p  payment_methods%ROWTYPE;
BEGIN
    SELECT * INTO p FROM payment_methods x
     WHERE x.merchant_id = p_merchant AND x.method_id = p_method
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    IF p.status = 'active' THEN
        UPDATE payment_methods x
           SET status = 'detached', detached_at = now(), updated_at = now()
         WHERE x.merchant_id = p_merchant AND x.method_id = p_method
        RETURNING * INTO p;

        PERFORM audit_append(p_merchant, p.checkout_id, 'payment_method:detached',
                             jsonb_build_object('payment_method', p.method_id,
                                                'psp', p.psp));
    END IF;

    RETURN payment_method_json(p)::text;
END
$function$;
REVOKE ALL ON FUNCTION pay_method_detach(p_merchant text, p_method text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_method_detach(p_merchant text, p_method text) TO payments_gateway;
