-- GET /v1/payouts: the merchant's payouts, newest first, a page of
-- p_limit (1 to 100) after p_after or before p_before (an id of the
-- merchant's; at most one of the two), filtered by status and by creation
-- time (p_gte <= created < p_lt, Unix seconds).  Answers
-- {"object": "list", "data": [...], "has_more"}: has_more says that
-- another page follows in the direction asked (older after p_after or
-- from the start, newer before p_before).  Raises PY013 for a status no
-- pay-out has and PY014 for a cursor that names no pay-out of the
-- merchant's.  Custom plans: the cursor and the filters are constants in
-- the page's scan, which starts at the cursor.
CREATE OR REPLACE FUNCTION pay_list_payouts(p_merchant text, p_status text, p_gte bigint, p_lt bigint, p_after text, p_before text, p_limit integer)
 RETURNS text
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET plan_cache_mode TO 'force_custom_plan'
AS $function$
DECLARE
    v_at     timestamptz;
    v_id     text;
    v_newer  boolean := p_before IS NOT NULL;
    v_limit  int := greatest(1, least(p_limit, 100));
    v_items  jsonb;
    v_n      bigint;
BEGIN
    IF p_status IS NOT NULL AND NOT (p_status IN ('PENDING', 'PAID', 'FAILED')) THEN
        RAISE EXCEPTION 'no pay-out has the status %', p_status USING ERRCODE = 'PY013';
    END IF;

    IF p_after IS NOT NULL OR p_before IS NOT NULL THEN
        SELECT c.created_at, c.payout_id INTO v_at, v_id
          FROM payouts c
         WHERE c.merchant_id = p_merchant AND c.payout_id = coalesce(p_after, p_before);
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no such pay-out' USING ERRCODE = 'PY014';
        END IF;
    END IF;

    -- one more than asked: whether another page follows; n counts from the
    -- cursor in the page's direction
    SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                              'payout_id', x.payout_id,
                              'seller_account', x.seller_account,
                              'psp', x.psp,
                              'status', x.status,
                              'amount', money_decimal(x.amount, x.currency),
                              'amount_reversed', money_decimal(x.amount_reversed, x.currency),
                              'currency', x.currency,
                              'failure', x.failure,
                              'created_at', ts_rfc3339(x.created_at),
                              'updated_at', ts_rfc3339(x.updated_at)))
                          || jsonb_build_object('psp_payout_id', x.psp_payout_id)
                              ORDER BY x.created_at DESC, x.payout_id DESC)
                        FILTER (WHERE x.n <= v_limit), '[]'::jsonb),
           count(*)
      INTO v_items, v_n
      FROM (SELECT p.*,
                   CASE WHEN v_newer
                        THEN row_number() OVER (ORDER BY p.created_at, p.payout_id)
                        ELSE row_number() OVER (ORDER BY p.created_at DESC, p.payout_id DESC)
                   END AS n
              FROM payouts_page(p_merchant, p_status,
                            to_timestamp(p_gte), to_timestamp(p_lt),
                            v_at, v_id, v_newer, v_limit + 1) p) x;

    RETURN jsonb_build_object('object', 'list',
                              'data', v_items,
                              'has_more', v_n > v_limit)::text;
END
$function$;
REVOKE ALL ON FUNCTION pay_list_payouts(p_merchant text, p_status text, p_gte bigint, p_lt bigint, p_after text, p_before text, p_limit integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_list_payouts(p_merchant text, p_status text, p_gte bigint, p_lt bigint, p_after text, p_before text, p_limit integer) TO payments_gateway;
