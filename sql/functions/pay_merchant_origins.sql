-- A merchant's return origins as they are now, space-separated (as
-- pay_auth gives them): a review's approval sends a held checkout only
-- while its success_url and cancel_url are on them, as its registration
-- was (the merchant may have removed one since: payments-merchant).
-- '' for a merchant with none.
CREATE OR REPLACE FUNCTION pay_merchant_origins(p_merchant text)
 RETURNS text
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    RETURN (SELECT coalesce(string_agg(o.origin, ' ' ORDER BY o.origin), '')
              FROM merchant_return_origins o
             WHERE o.merchant_id = p_merchant);
END
$function$;
REVOKE ALL ON FUNCTION pay_merchant_origins(p_merchant text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_merchant_origins(p_merchant text) TO payments_gateway;
