-- 016's pay_wallets_fold without FOR UPDATE SKIP LOCKED on the credits it
-- picks.  The fold runs under its advisory lock (one fold at a time, any
-- gateway), and nothing else deletes or updates a wallet credit: webhooks
-- only insert them, and an uncommitted insert is not in the fold's
-- snapshot.  The row lock was therefore never needed, and each one wrote
-- the credit's tuple and a WAL record before the DELETE wrote them again.
-- Same rows folded, same result.

CREATE OR REPLACE FUNCTION pay_wallets_fold(p_limit int)
RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET jit = off AS $$
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
$$;
