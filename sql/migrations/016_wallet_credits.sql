-- Wallet credits that lock no row (issue 14).  Until now every booking of a
-- seller updated that seller's one wallet row, so two webhooks paying the
-- same seller waited for each other until commit: a marketplace's busy
-- seller serialised the merchant's webhooks as the single audit chain did
-- before 015.  Now:
--
--   wallets_folded   the balance folded so far: one row per seller and
--                    currency (the former wallets table, renamed), created
--                    with the seller's first booking
--   wallet_credits   one row per booking since (a credit, or a debit:
--                    refunds, disputes, pay-outs), appended without taking
--                    any row lock
--   wallets          a view: the folded balance plus the unfolded rows.
--                    Every reader (the pay-out check, the balance endpoint,
--                    reconciliation, the tests, an operator's psql) reads
--                    it, as it read the table
--
-- pay_wallets_fold moves a batch of credit rows into wallets_folded in one
-- statement (delete and add, so a reader's one snapshot sees either the rows
-- or their sum, never both); the gateway's worker 0 calls it every second.
--
-- Pay-outs still take a seller's folded row FOR UPDATE before reading the
-- balance (in a later statement, so a fold that committed meanwhile is seen
-- whole), and folding updates that row, so no fold moves money under a
-- pay-out's check.  Credits never needed that lock: before, as now, a refund
-- booked while a pay-out was checked is booked after it either way.

ALTER TABLE IF EXISTS wallets RENAME TO wallets_folded;
ALTER TABLE wallets_folded RENAME CONSTRAINT wallets_pkey TO wallets_folded_pkey;
ALTER TABLE wallets_folded RENAME CONSTRAINT wallets_currency TO wallets_folded_currency;

CREATE TABLE wallet_credits (
    merchant_id     text        NOT NULL,
    seller_account  text        NOT NULL,
    currency        text        NOT NULL,
    amount          bigint      NOT NULL CONSTRAINT wallet_credits_amount CHECK (amount <> 0),
    CONSTRAINT wallet_credits_currency CHECK (currency ~ '^[A-Z]{3}$'),
    booked_at       timestamptz NOT NULL DEFAULT now()
);
-- No foreign key to wallets_folded: its check would take KEY SHARE on the
-- seller's row for every credit (a hot seller's row rewritten by every
-- booking again, and blocked by a pay-out's FOR UPDATE).  wallet_add makes
-- the folded row first, and the fold upserts it anyway.
-- the only index: a seller's unfolded rows, summed by every read
CREATE INDEX wallet_credits_seller ON wallet_credits (merchant_id, seller_account, currency);
-- a queue: rows live for a second or two; vacuum it by the number of dead
-- rows, not by a fraction of a table that is nearly empty
ALTER TABLE wallet_credits SET (autovacuum_vacuum_scale_factor = 0,
                                autovacuum_vacuum_threshold = 20000);

CREATE VIEW wallets AS
    SELECT f.merchant_id, f.seller_account, f.currency,
           f.balance + coalesce((SELECT sum(c.amount) FROM wallet_credits c
                                  WHERE c.merchant_id = f.merchant_id
                                    AND c.seller_account = f.seller_account
                                    AND c.currency = f.currency), 0)::bigint AS balance,
           f.updated_at
      FROM wallets_folded f;

REVOKE ALL ON wallets_folded, wallet_credits, wallets FROM PUBLIC;

-- A booking on a seller's wallet: its folded row made if missing (ON
-- CONFLICT DO NOTHING locks nothing when the row exists), then a credit row.
CREATE OR REPLACE FUNCTION wallet_add(p_merchant text, p_seller text, p_currency text,
    p_amount bigint)
RETURNS void
LANGUAGE sql SET search_path = public, pg_temp AS $$
    INSERT INTO wallets_folded (merchant_id, seller_account, currency, balance)
    VALUES (p_merchant, p_seller, p_currency, 0)
    ON CONFLICT ON CONSTRAINT wallets_folded_pkey DO NOTHING;
    INSERT INTO wallet_credits (merchant_id, seller_account, currency, amount)
    SELECT p_merchant, p_seller, p_currency, p_amount WHERE p_amount <> 0;
$$;

-- Fold at most p_limit credit rows into their sellers' folded balances; the
-- number folded.  One fold at a time (a second caller returns 0 at once);
-- rows another transaction holds are skipped.
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
           FOR UPDATE SKIP LOCKED
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

REVOKE ALL ON FUNCTION wallet_add(text, text, text, bigint), pay_wallets_fold(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_wallets_fold(int) TO payments_gateway;

-- The three places that lock a seller's wallet before a pay-out's check
-- locked "wallets" FOR UPDATE: that now locks the view's folded row, which is
-- what they need (the view is a plain select of wallets_folded).
