-- A credit does not wait for a fold (issue 14).
--
-- wallet_add (016, 018) made sure of the seller's folded row with
-- INSERT ... ON CONFLICT DO NOTHING at every booking.  While a fold is
-- running, it has updated that row and not yet committed; the insert's
-- uniqueness check then waits for the fold's transaction to end, to learn
-- whether the row it conflicts with will stay.  The gateway folds every
-- second, so every webhook paying a seller whose credits were being folded
-- stopped until the fold committed (25-60 ms with a few thousand credits in
-- make bench; in a test, a booking waited for as long as an open fold
-- was held), the one wait 016 set out to remove.
--
-- The row is made once, with the seller's first booking.  A plain read
-- finds it without waiting for anyone; only when it is not there does the
-- insert run (two first bookings of a new seller at once may then wait for
-- each other, once).  The rate gains little (pgbench of the webhook
-- transaction with the gateway folding every second: 3,123-3,209/s before,
-- 3,119-3,259/s after): what goes is a stall of every such webhook for the
-- length of each fold.

CREATE OR REPLACE FUNCTION wallet_add(p_merchant text, p_seller text, p_currency text,
    p_amount bigint)
RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
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
$$;
