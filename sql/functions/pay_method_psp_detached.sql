-- The PSP confirmed a detached method detached on its side (p_how 'done'),
-- or said it no longer had it ('gone'): recorded once, audited on the
-- chain of the checkout it was saved in.  Returns the method as the API
-- shows it (payment_method_json); NULL when it is none of the merchant's.
-- A method still active is refused (PY004): the gateway detaches first.
CREATE OR REPLACE FUNCTION pay_method_psp_detached(p_merchant text, p_method text, p_how text)
 RETURNS text
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    p  payment_methods%ROWTYPE;
BEGIN
    IF p_how IS NULL OR p_how NOT IN ('done', 'gone') THEN
        RAISE EXCEPTION 'pay_method_psp_detached: p_how is done or gone'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT * INTO p FROM payment_methods x
     WHERE x.merchant_id = p_merchant AND x.method_id = p_method
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    IF p.status <> 'detached' THEN
        RAISE EXCEPTION 'pay_method_psp_detached: method % is still active', p_method
            USING ERRCODE = 'PY004';
    END IF;

    IF p.psp_detached_at IS NULL THEN
        UPDATE payment_methods x
           SET psp_detached_at = now(), updated_at = now()
         WHERE x.merchant_id = p_merchant AND x.method_id = p_method
        RETURNING * INTO p;

        PERFORM audit_append(p_merchant, p.checkout_id, 'payment_method:psp_detached',
                             jsonb_build_object('payment_method', p.method_id,
                                                'psp', p.psp, 'psp_answer', p_how));
    END IF;

    RETURN payment_method_json(p)::text;
END
$function$;
REVOKE ALL ON FUNCTION pay_method_psp_detached(p_merchant text, p_method text, p_how text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_method_psp_detached(p_merchant text, p_method text, p_how text) TO payments_gateway;
