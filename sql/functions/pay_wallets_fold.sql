CREATE OR REPLACE FUNCTION pay_wallets_fold(p_limit integer)
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET jit TO 'off'
AS $function$
DECLARE
    n  int;
BEGIN
    IF NOT pg_try_advisory_xact_lock(7420118016) THEN
        RETURN 0;
    END IF;
    WITH picked AS (
        SELECT c.ctid AS id FROM wallet_credits c
         LIMIT GREATEST(COALESCE(p_limit, 0), 0)
    ), gone AS (
        DELETE FROM wallet_credits c USING picked p
         WHERE c.ctid = p.id
        RETURNING c.merchant_id, c.seller_account, c.currency, c.amount
    ), sums AS (
        SELECT g.merchant_id, g.seller_account, g.currency, sum(g.amount) AS amount,
               count(*) AS n
          FROM gone g GROUP BY 1, 2, 3
    ), folded AS (
        INSERT INTO wallets_folded AS f (merchant_id, seller_account, currency, balance)
        SELECT s.merchant_id, s.seller_account, s.currency, s.amount FROM sums s
        ON CONFLICT ON CONSTRAINT wallets_folded_pkey
        DO UPDATE SET balance = f.balance + EXCLUDED.balance, updated_at = now()
    )
    SELECT coalesce(sum(s.n), 0) INTO n FROM sums s;
    RETURN n;
END
$function$;
REVOKE ALL ON FUNCTION pay_wallets_fold(p_limit integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_wallets_fold(p_limit integer) TO payments_gateway;
