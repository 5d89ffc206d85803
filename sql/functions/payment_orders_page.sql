-- One page of the merchant's payment_orders for its list, as an index scan of
-- payment_orders_list (merchant_id, created_at, payment_order_id): without p_newer the
-- p_limit newest before the cursor (p_at, p_id; NULL: from the newest),
-- newest first; with p_newer the p_limit oldest after it, oldest first.
-- The status and creation-time filters are conditions on the same scan
-- (the status is one the caller checked).  A
-- plain SQL function (no SET clause, not SECURITY DEFINER) so that the
-- planner inlines it: called with constants, its plan is the scan's (the
-- e2e suite EXPLAINs it).
-- payment_orders_list is partial (created_at IS NOT NULL, true of every row) so that
-- a foreign-key check, an equality on the whole key, can never be planned
-- through it; each branch states the predicate so that the page can.
CREATE OR REPLACE FUNCTION payment_orders_page(p_merchant text, p_status text, p_gte timestamp with time zone, p_lt timestamp with time zone, p_at timestamp with time zone, p_id text, p_newer boolean, p_limit integer)
 RETURNS SETOF payment_orders
 LANGUAGE sql
 STABLE
AS $function$
    (SELECT x.*
       FROM payment_orders x
      WHERE NOT p_newer
        AND x.merchant_id = p_merchant
        AND x.created_at IS NOT NULL  -- the list index's predicate
        AND (p_status IS NULL OR x.status = p_status::pay_status)
        AND (p_gte IS NULL OR x.created_at >= p_gte)
        AND (p_lt IS NULL OR x.created_at < p_lt)
        AND (p_at IS NULL OR (x.created_at, x.payment_order_id) < (p_at, p_id))
      ORDER BY x.merchant_id DESC, x.created_at DESC, x.payment_order_id DESC
      LIMIT p_limit)
    UNION ALL
    (SELECT x.*
       FROM payment_orders x
      WHERE p_newer
        AND x.merchant_id = p_merchant
        AND x.created_at IS NOT NULL  -- the list index's predicate
        AND (p_status IS NULL OR x.status = p_status::pay_status)
        AND (p_gte IS NULL OR x.created_at >= p_gte)
        AND (p_lt IS NULL OR x.created_at < p_lt)
        AND (p_at IS NULL OR (x.created_at, x.payment_order_id) > (p_at, p_id))
      ORDER BY x.merchant_id, x.created_at, x.payment_order_id
      LIMIT p_limit);
$function$;
REVOKE ALL ON FUNCTION payment_orders_page(p_merchant text, p_status text, p_gte timestamp with time zone, p_lt timestamp with time zone, p_at timestamp with time zone, p_id text, p_newer boolean, p_limit integer) FROM PUBLIC;
