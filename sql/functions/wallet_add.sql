CREATE OR REPLACE FUNCTION wallet_add(p_merchant text, p_seller text, p_currency text, p_amount bigint)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    PERFORM 1 FROM wallets_folded f
     WHERE f.merchant_id = p_merchant AND f.seller_account = p_seller
       AND f.currency = p_currency;
    IF NOT FOUND THEN
        INSERT INTO wallets_folded (merchant_id, seller_account, currency, balance)
        VALUES (p_merchant, p_seller, p_currency, 0)
        ON CONFLICT ON CONSTRAINT wallets_folded_pkey DO NOTHING;
    END IF;
    IF p_amount <> 0 THEN
        INSERT INTO wallet_credits (merchant_id, seller_account, currency, amount)
        VALUES (p_merchant, p_seller, p_currency, p_amount);
    END IF;
END
$function$;
REVOKE ALL ON FUNCTION wallet_add(p_merchant text, p_seller text, p_currency text, p_amount bigint) FROM PUBLIC;
