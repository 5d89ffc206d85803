CREATE OR REPLACE FUNCTION payout_event_apply(p_psp text, p_event_id text, p_kind text, p_reference text, p_amount bigint, p_currency text, p_object_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    n  record;
    p  payouts%ROWTYPE;
BEGIN
    SELECT * INTO n FROM nonce_split(p_reference);
    SELECT * INTO p FROM payouts po
     WHERE po.merchant_id = n.merchant_id AND po.payout_id = n.object_id AND po.psp = p_psp;
    IF NOT FOUND AND coalesce(p_object_ref, '') <> '' THEN
        SELECT * INTO p FROM payouts po WHERE po.psp = p_psp AND po.psp_payout_id = p_object_ref;
    END IF;
    IF p.payout_id IS NULL THEN
        outcome := 'unknown_payout';
        RETURN;
    END IF;
    merchant_id := p.merchant_id;

    -- the seller's wallet first, as every pay-out of it does
    PERFORM 1 FROM wallets w
     WHERE w.merchant_id = p.merchant_id AND w.seller_account = p.seller_account
       AND w.currency = p.currency FOR UPDATE;
    SELECT * INTO p FROM payouts po
     WHERE po.merchant_id = p.merchant_id AND po.payout_id = p.payout_id FOR UPDATE;

    -- PAYOUT_REVERSED's amount is what the PSP took back so far, in all:
    -- some of the pay-out, never more
    IF (CASE WHEN p_kind = 'PAYOUT_REVERSED'
             THEN p_amount IS NULL OR p_amount <= 0 OR p_amount > p.amount
             ELSE p_amount IS DISTINCT FROM p.amount END)
       OR upper(coalesce(p_currency, '')) <> p.currency THEN
        outcome := 'amount_mismatch';
        RETURN;
    END IF;
    -- the PSP's id of another transfer than the one stored: a second
    -- transfer under our nonce (a key the PSP forgot), never "already"
    IF coalesce(p_object_ref, '') <> '' AND p.psp_payout_id IS NOT NULL
       AND p.psp_payout_id <> p_object_ref THEN
        outcome := 'mismatch';
        RETURN;
    END IF;
    IF p_kind = 'PAYOUT_REVERSED' THEN
        -- part of a paid pay-out taken back (Stripe's transfer.reversed
        -- with reversed false): back in the wallet by what the PSP's
        -- cumulative amount grew, so a delivery again, or one older than
        -- what was booked, books nothing; the whole reversal later books
        -- the rest
        IF p.status = 'PENDING' THEN
            -- its payment not seen yet: kept pending, applied once it is
            outcome := 'unknown_payout';
            RETURN;
        END IF;
        IF p.status = 'FAILED' OR p_amount <= p.amount_reversed THEN
            outcome := 'already';
            RETURN;
        END IF;
        UPDATE payouts po SET amount_reversed = p_amount,
                              psp_payout_id = coalesce(po.psp_payout_id, nullif(p_object_ref, ''))
         WHERE po.merchant_id = p.merchant_id AND po.payout_id = p.payout_id;
        PERFORM ledger_book(p.merchant_id, NULL, NULL, 'payout', p.payout_id,
            'webhook:' || p_psp || ':' || p_event_id, p.currency,
            ARRAY['seller_payable:' || p.seller_account, 'psp_clearing:' || p_psp],
            ARRAY[-(p_amount - p.amount_reversed), p_amount - p.amount_reversed]);
        PERFORM wallet_add(p.merchant_id, p.seller_account, p.currency,
                           p_amount - p.amount_reversed);
        outcome := 'applied';
        RETURN;
    END IF;
    IF (p_kind = 'PAYOUT_PAID' AND p.status = 'PAID')
       OR (p_kind = 'PAYOUT_FAILED' AND p.status = 'FAILED') THEN
        outcome := 'already';
        RETURN;
    END IF;
    IF p.status = 'PAID' AND p_kind = 'PAYOUT_FAILED' THEN
        -- reversed or returned after it was paid (Stripe's transfer.reversed
        -- after transfer.created, Adyen's "returned" after "booked"): the
        -- money is back on the platform's balance, so back in the wallet
        -- (what a partial reversal booked back already, less)
        UPDATE payouts po SET status = 'FAILED',
                              failure = 'reversed at the PSP after it was paid',
                              amount_reversed = po.amount,
                              psp_payout_id = coalesce(po.psp_payout_id, nullif(p_object_ref, ''))
         WHERE po.merchant_id = p.merchant_id AND po.payout_id = p.payout_id;
        IF p.amount > p.amount_reversed THEN
            PERFORM ledger_book(p.merchant_id, NULL, NULL, 'payout', p.payout_id,
                'webhook:' || p_psp || ':' || p_event_id, p.currency,
                ARRAY['seller_payable:' || p.seller_account, 'psp_clearing:' || p_psp],
                ARRAY[-(p.amount - p.amount_reversed), p.amount - p.amount_reversed]);
            PERFORM wallet_add(p.merchant_id, p.seller_account, p.currency,
                               p.amount - p.amount_reversed);
        END IF;
        outcome := 'applied';
        RETURN;
    END IF;
    IF p.status <> 'PENDING' THEN
        outcome := 'late_contrary';
        RETURN;
    END IF;

    IF p_kind = 'PAYOUT_FAILED' THEN
        -- nothing was booked: the money was only held back, it is available again
        UPDATE payouts po SET status = 'FAILED', failure = 'failed at the PSP',
                              psp_payout_id = coalesce(po.psp_payout_id, nullif(p_object_ref, ''))
         WHERE po.merchant_id = p.merchant_id AND po.payout_id = p.payout_id;
    ELSE
        UPDATE payouts po SET status = 'PAID',
                              psp_payout_id = coalesce(po.psp_payout_id, nullif(p_object_ref, ''))
         WHERE po.merchant_id = p.merchant_id AND po.payout_id = p.payout_id;
        PERFORM ledger_book(p.merchant_id, NULL, NULL, 'payout', p.payout_id,
            'webhook:' || p_psp || ':' || p_event_id, p.currency,
            ARRAY['seller_payable:' || p.seller_account, 'psp_clearing:' || p_psp],
            ARRAY[p.amount, -p.amount]);
        PERFORM wallet_add(p.merchant_id, p.seller_account, p.currency, -p.amount);
    END IF;
    outcome := 'applied';
END
$function$;
REVOKE ALL ON FUNCTION payout_event_apply(p_psp text, p_event_id text, p_kind text, p_reference text, p_amount bigint, p_currency text, p_object_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text) FROM PUBLIC;
