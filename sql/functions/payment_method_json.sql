-- A saved payment method as the API shows it (doc/API.md, "Saved payment
-- methods"): never its token, sealed or not.
CREATE OR REPLACE FUNCTION payment_method_json(p payment_methods)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT jsonb_build_object(
               'id', p.method_id,
               'object', 'payment_method',
               'customer', p.customer,
               'psp', p.psp,
               'usage', p.usage,
               'recurring', p.recurring,
               'status', p.status,
               'checkout_id', p.checkout_id,
               'card', CASE WHEN p.brand IS NULL AND p.last4 IS NULL
                                 AND p.exp_month IS NULL THEN NULL
                            ELSE jsonb_build_object('brand', p.brand, 'last4', p.last4,
                                                    'exp_month', p.exp_month,
                                                    'exp_year', p.exp_year) END,
               'created_at', ts_rfc3339(p.created_at),
               'detached_at', ts_rfc3339(p.detached_at));
$function$;
REVOKE ALL ON FUNCTION payment_method_json(p payment_methods) FROM PUBLIC;
