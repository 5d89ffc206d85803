-- PL/pgSQL, so that its plan is kept for the connection (a SECURITY
-- DEFINER SQL function is parsed and planned at every call).
CREATE OR REPLACE FUNCTION pay_get_payout(p_merchant text, p_payout_id text)
 RETURNS text
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    -- the primary key: one row at most
    RETURN (SELECT json_build_object(
                       'payout_id', p.payout_id,
                       'seller_account', p.seller_account,
                       'psp', p.psp,
                       'status', p.status,
                       'amount_minor', p.amount,
                       'amount_reversed_minor', p.amount_reversed,
                       'currency', p.currency,
                       'psp_payout_id', p.psp_payout_id,
                       'failure', p.failure,
                       'metadata', p.metadata,
                       'created_at', ts_rfc3339(p.created_at),
                       'updated_at', ts_rfc3339(p.updated_at))::text
              FROM payouts p
             WHERE p.merchant_id = p_merchant AND p.payout_id = p_payout_id);
END
$function$;
REVOKE ALL ON FUNCTION pay_get_payout(p_merchant text, p_payout_id text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_get_payout(p_merchant text, p_payout_id text) TO payments_gateway;
