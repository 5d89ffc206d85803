-- A seller's balances, one per currency its wallet, pay-outs or disputes
-- have; NULL for a seller the merchant has neither registered nor paid.
CREATE OR REPLACE FUNCTION pay_get_balance(p_merchant text, p_seller text)
 RETURNS text
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v  json;
BEGIN
    SELECT json_agg(json_build_object(
               'currency', cur.currency,
               'wallet_minor', b.wallet,
               'pending_payouts_minor', b.pending,
               'open_disputes_minor', b.disputed,
               'available_minor', b.available,
               -- held for the seller by manual-capture authorizations: not
               -- in the wallet, never paid out, until captured
               'authorized_minor', coalesce(h.held, 0)) ORDER BY cur.currency)
      INTO v
      FROM (SELECT w.currency FROM wallets w
             WHERE w.merchant_id = p_merchant AND w.seller_account = p_seller
            UNION
            SELECT p.currency FROM payouts p
             WHERE p.merchant_id = p_merchant AND p.seller_account = p_seller
            UNION
            SELECT o.currency FROM payment_orders o
             WHERE o.merchant_id = p_merchant AND o.seller_account = p_seller
               AND o.status = 'AUTHORIZED') cur
           CROSS JOIN LATERAL seller_available(p_merchant, p_seller, cur.currency) b
           CROSS JOIN LATERAL (SELECT sum(o.amount)::bigint AS held FROM payment_orders o
                                WHERE o.merchant_id = p_merchant
                                  AND o.seller_account = p_seller
                                  AND o.currency = cur.currency
                                  AND o.status = 'AUTHORIZED') h;

    IF v IS NULL THEN
        PERFORM 1 FROM sellers s WHERE s.merchant_id = p_merchant AND s.seller_account = p_seller;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
    END IF;

    RETURN json_build_object('seller_account', p_seller,
                             'balances', coalesce(v, '[]'::json))::text;
END
$function$;
REVOKE ALL ON FUNCTION pay_get_balance(p_merchant text, p_seller text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_get_balance(p_merchant text, p_seller text) TO payments_gateway;
