-- GET /v1/payment_methods?customer=…: one customer's saved methods,
-- newest first, a page of p_limit (1 to 100) after p_after (a method id
-- of the merchant's for that customer; PY014 otherwise), as the other
-- lists answer: {"object": "list", "data": [...], "has_more"}.  One scan
-- of payment_methods_customer_page from the cursor.
CREATE OR REPLACE FUNCTION pay_list_methods(p_merchant text, p_customer text, p_after text, p_limit integer)
 RETURNS text
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_at     timestamptz;
    v_id     text;
    v_limit  int := greatest(1, least(p_limit, 100));
    v_items  jsonb;
    v_n      bigint;
BEGIN
    IF p_after IS NOT NULL THEN
        SELECT p.created_at, p.method_id INTO v_at, v_id
          FROM payment_methods p
         WHERE p.merchant_id = p_merchant AND p.method_id = p_after
           AND p.customer = p_customer;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no such payment method' USING ERRCODE = 'PY014';
        END IF;
    END IF;

    SELECT coalesce(jsonb_agg(payment_method_json(x.pm)
                              ORDER BY (x.pm).created_at DESC,
                                       (x.pm).method_id DESC)
                        FILTER (WHERE x.n <= v_limit), '[]'::jsonb),
           count(*)
      INTO v_items, v_n
      FROM (SELECT q.p AS pm,
                   row_number() OVER (ORDER BY (q.p).created_at DESC,
                                               (q.p).method_id DESC) AS n
              FROM (SELECT p FROM payment_methods p
                     WHERE p.merchant_id = p_merchant AND p.customer = p_customer
                       AND (v_at IS NULL OR (p.created_at, p.method_id) < (v_at, v_id))
                     ORDER BY p.created_at DESC, p.method_id DESC
                     LIMIT v_limit + 1) q) x;

    RETURN jsonb_build_object('object', 'list', 'data', v_items,
                              'has_more', v_n > v_limit)::text;
END
$function$;
REVOKE ALL ON FUNCTION pay_list_methods(p_merchant text, p_customer text, p_after text, p_limit integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_list_methods(p_merchant text, p_customer text, p_after text, p_limit integer) TO payments_gateway;
