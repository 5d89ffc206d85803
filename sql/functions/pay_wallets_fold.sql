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
    -- the credits taken by their places in the table, as one array: a
    -- TID scan of those alone.  A join with the picked ones was planned
    -- as a hash join over a scan of every credit, whatever the statistics
    -- (4,100 rows read to fold 100 of 4,000,
    -- plans_background::the_housekeeping_reads_what_it_folds_and_purges).
    WITH gone AS (
        DELETE FROM wallet_credits c
         WHERE c.ctid = ANY (ARRAY(SELECT p.ctid FROM wallet_credits p
                                    LIMIT GREATEST(COALESCE(p_limit, 0), 0)))
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
