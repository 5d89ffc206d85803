-- The PSP's own customers (Stripe's cus_…) the merchant's customer's
-- earlier saves were made under, one per PSP, the first one recorded: a
-- new save at that PSP names it (Stripe Checkout's customer), so that all
-- of one shopper's methods live under one customer there.  Detached
-- methods count too: the PSP's customer outlives them.  No row: the
-- customer saved nothing yet at a PSP that has customers of its own (the
-- session then makes one).
-- PL/pgSQL, so that its plan is kept for the connection (a SECURITY
-- DEFINER SQL function is parsed and planned at every call).
CREATE OR REPLACE FUNCTION pay_method_psp_customers(p_merchant text, p_customer text)
 RETURNS TABLE(psp text, psp_customer text)
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT DISTINCT ON (p.psp) p.psp, p.psp_customer
      FROM payment_methods p
     WHERE p.customer = p_customer AND p.merchant_id = p_merchant
       AND p.psp_customer IS NOT NULL
     ORDER BY p.psp, p.created_at, p.method_id;
END
$function$;
REVOKE ALL ON FUNCTION pay_method_psp_customers(p_merchant text, p_customer text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_method_psp_customers(p_merchant text, p_customer text) TO payments_gateway;
