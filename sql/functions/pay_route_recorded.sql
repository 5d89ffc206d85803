-- The route a routed checkout's claim recorded (its first checkout_routes
-- row: checkout_route_first) and the PSP it is bound to now: a first
-- approval of a checkout held for review takes that route again from
-- there only while the configuration still chooses the same route for
-- it (doc/RISK.md, "Review").  route NULL when the checkout named its
-- PSP (no route recorded); no row when there is no such checkout; reads
-- only.
-- PL/pgSQL, so that its plan is kept for the connection (a SECURITY
-- DEFINER SQL function is parsed and planned at every call).
CREATE OR REPLACE FUNCTION pay_route_recorded(p_merchant text, p_checkout text)
 RETURNS TABLE(route text, psp text)
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT (SELECT r.route FROM checkout_routes r
             WHERE r.merchant_id = c.merchant_id
               AND r.checkout_id = c.checkout_id
             ORDER BY r.seq LIMIT 1),
           c.psp
      FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout;
END
$function$;
REVOKE ALL ON FUNCTION pay_route_recorded(p_merchant text, p_checkout text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_route_recorded(p_merchant text, p_checkout text) TO payments_gateway;
