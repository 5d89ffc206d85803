CREATE OR REPLACE FUNCTION pay_webhook_apply_core(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_tokens text[], OUT outcome text, OUT merchant_id text, OUT checkout_id text)
 RETURNS record
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    c          checkouts%ROWTYPE;
    v_tok      text;
    v_m        text;
    v_co       text;
    v_ref_m    text;
    v_ref_co   text;
    v_outcome  text;
    v_target   pay_status;
    v_source   text;
    v_ref      text;
    v_late     boolean := false;
    v_manual   boolean := false;
    v_unsaved  boolean := false;
    v_kind     text := p_kind;
BEGIN
    -- CAPTURED: a success the PSP says was captured (Stripe's session
    -- "paid"); SUCCEEDED: a success that is a hold when the checkout is a
    -- manual capture (Adyen's AUTHORISATION, the generic success);
    -- DECLINED: one payment attempt the PSP refused (below)
    IF p_kind NOT IN ('SUCCEEDED', 'CAPTURED', 'AUTHORIZED', 'FAILED', 'PENDING', 'IGNORED',
                      'DECLINED') THEN
        RAISE EXCEPTION 'pay_webhook_apply_core: unknown kind %', p_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The event's own lock, held to commit: a second delivery of it waits
    -- here until the first commits, then finds its row (READ COMMITTED: a
    -- statement sees what committed before it began).  The row itself is
    -- written once, at the end, with its outcome.  Taken in an expression:
    -- a PERFORM is a statement of its own, an executor's start
    -- (bench/RESULTS.md).
    IF pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id)) IS NULL THEN
        RAISE EXCEPTION 'pay_webhook_apply_core: no lock';
    END IF;
    SELECT we.merchant_id, we.checkout_id INTO v_m, v_co
      FROM webhook_events we
     WHERE we.psp = p_psp AND we.event_id = p_event_id;
    IF FOUND THEN
        outcome := 'duplicate';
        merchant_id := v_m;
        checkout_id := v_co;
        RETURN;
    END IF;

    -- the checkout by its token: the first candidate psp_tokens holds, each
    -- looked up by the whole primary key (the token's blind indexes under
    -- each key of the ring, in order, then the token as sent: a row from
    -- before a key file)
    IF coalesce(p_token, '') <> '' THEN
        FOREACH v_tok IN ARRAY coalesce(p_tokens, '{}') || p_token LOOP
            SELECT t.merchant_id, t.checkout_id INTO v_m, v_co
              FROM psp_tokens t
             WHERE t.psp = p_psp AND t.psp_token = v_tok;
            EXIT WHEN FOUND;
        END LOOP;
    END IF;

    IF coalesce(p_reference, '') <> '' AND position(':' IN p_reference) > 0 THEN
        v_ref_m := split_part(p_reference, ':', 1);
        v_ref_co := substr(p_reference, length(v_ref_m) + 2);

        -- no token, or one not found here (indexed under a key this
        -- gateway lacks): the signed reference names the checkout
        IF v_m IS NULL THEN
            v_m := v_ref_m;
            v_co := v_ref_co;
        ELSIF v_m <> v_ref_m OR v_co <> v_ref_co THEN
            v_outcome := 'mismatch';
        END IF;
    END IF;

    IF v_outcome IS NULL THEN
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = v_m AND ck.checkout_id = v_co AND ck.psp = p_psp
           FOR UPDATE;

        -- DECLINED: one payment attempt the PSP refused (Adyen's
        -- AUTHORISATION with success false).  An off-session charge with
        -- no hosted page (none made for the shopper's authentication) has
        -- no shopper to try again: its refusal is final, read as FAILED
        -- (declined), as the charge's own answer would have failed it had
        -- it not been lost.  Any other attempt (a hosted session's: the
        -- shopper may pay in it with another card) is read as PENDING:
        -- recorded, nothing moves.  Recorded under its own kind.
        IF p_kind = 'DECLINED' THEN
            v_kind := CASE WHEN FOUND AND c.payment_method_id IS NOT NULL
                                AND c.psp_url IS NULL
                           THEN 'FAILED' ELSE 'PENDING' END;
        END IF;

        -- a save without a charge not saved yet (below): payment_methods
        -- looked up for such a checkout alone (an expression with the
        -- look-up in it is a statement at every event)
        IF FOUND AND c.amount_total = 0 AND c.save_method IS NOT NULL
           AND c.status = 'EXECUTING' AND v_kind IN ('SUCCEEDED', 'CAPTURED', 'AUTHORIZED') THEN
            v_unsaved := NOT EXISTS (SELECT 1 FROM payment_methods pm
                                      WHERE pm.merchant_id = c.merchant_id
                                        AND pm.checkout_id = c.checkout_id);
        END IF;

        IF NOT FOUND THEN
            v_outcome := 'unknown_checkout';
            v_m := NULL;
            v_co := NULL;
            -- a payment's success or failure is not recorded: the PSP
            -- delivers it again, and it applies once the checkout is found
            IF p_kind IN ('SUCCEEDED', 'CAPTURED', 'AUTHORIZED', 'FAILED', 'DECLINED') THEN
                outcome := v_outcome;
                RETURN;
            END IF;
        ELSIF (p_amount <> -1 AND p_amount <> c.amount_total)
              OR (coalesce(p_currency, '') <> '' AND upper(p_currency) <> c.currency)
              OR (v_kind IN ('SUCCEEDED', 'CAPTURED', 'AUTHORIZED')
                  AND (p_amount = -1 OR coalesce(p_currency, '') = '')) THEN
            v_outcome := 'amount_mismatch';
        ELSIF v_kind = 'PENDING' THEN
            v_outcome := 'pending';
        ELSIF v_unsaved THEN
            -- a save without a charge is done when its method is saved
            -- (pay_method_saved_apply moves it to SUCCESS): the PSP's
            -- zero-amount success alone (Adyen's AUTHORISATION, Stripe's
            -- session completed, the generic payment.succeeded) names no
            -- method the shop could charge; recorded, nothing moves
            v_outcome := 'pending';
        ELSIF v_kind = 'IGNORED'
              -- an automatic checkout's authorization: its capture follows
              OR (v_kind = 'AUTHORIZED' AND c.capture_method <> 'manual') THEN
            v_outcome := 'ignored';
        ELSE
            -- a manual-capture checkout's payment is an authorization (a
            -- hold), whatever the PSP calls it (Adyen's AUTHORISATION is
            -- its success in either mode): nothing is booked for it.  But
            -- money the PSP says it captured is paid and booked whatever
            -- the stored mode (a session registered without the manual
            -- capture): held here, the shop could never capture it, and it
            -- would be released while the PSP keeps it; the disagreement
            -- is the outcome captured_for_manual, alerted by the caller.
            v_target := CASE WHEN v_kind = 'FAILED' THEN 'FAILED'::pay_status
                             WHEN v_kind = 'CAPTURED' THEN 'SUCCESS'::pay_status
                             WHEN c.capture_method = 'manual' THEN 'AUTHORIZED'::pay_status
                             ELSE 'SUCCESS'::pay_status END;
            v_manual := (v_kind = 'CAPTURED' AND c.capture_method = 'manual');
            IF c.status = v_target
               OR v_target = 'AUTHORIZED' AND c.status = 'SUCCESS'
                  AND c.authorized_at IS NOT NULL THEN
                -- told before (a hold it tells of may be captured since: a
                -- capture made at the PSP's dashboard may come before the
                -- authorization's own event, and holds the checkout) --
                -- unless it names another payment than the one booked: a
                -- second payment the PSP took (or holds) under our
                -- reference.  Nothing is booked; recorded as mismatch,
                -- alerted, for a person to look both up at the PSP and
                -- refund the extra one (as a pay-out's second transfer).
                -- One test here on the way to a status move, not two.
                IF c.psp_payment_ref IS NOT NULL
                   AND coalesce(p_payment_ref, '') <> ''
                   AND p_payment_ref <> c.psp_payment_ref THEN
                    v_outcome := 'mismatch';
                ELSE
                    v_outcome := 'already';
                END IF;
            ELSIF c.status IN ('SUCCESS', 'AUTHORIZED')
                  OR (c.status = 'FAILED' AND v_target = 'FAILED') THEN
                v_outcome := 'late_contrary';
            ELSIF v_target = 'AUTHORIZED' AND c.status = 'FAILED'
                  AND c.hold_closed_at IS NOT NULL AND c.authorized_at IS NOT NULL THEN
                -- a hold held here and released since, nothing of it
                -- captured (its void, its expiry), its authorization told again
                -- (Adyen's session result stays completed after a cancel;
                -- an authorization delivered late under another id): the
                -- same payment is no new money, and the PSP released it,
                -- so it is never held again -- unless it names another
                -- payment than the one held: mismatch, for a person, as
                -- above.  A checkout that FAILED unpaid held nothing
                -- (authorized_at NULL): paid after all, it is held below
                IF c.psp_payment_ref IS NOT NULL
                   AND coalesce(p_payment_ref, '') <> ''
                   AND p_payment_ref <> c.psp_payment_ref THEN
                    v_outcome := 'mismatch';
                ELSE
                    v_outcome := 'already';
                END IF;
            ELSIF v_target = 'FAILED' AND c.status = 'EXECUTING'
                  AND coalesce(current_setting('payments.event_source', true), '') = 'sweeper'
                  AND checkout_payment_under_way(p_psp, v_m, v_co) THEN
                -- the sweeper's inference against the PSP's word that a
                -- payment is under way: nothing moves, nothing recorded
                outcome := 'pending';
                merchant_id := v_m;
                checkout_id := v_co;
                RETURN;
            ELSE
                -- EXECUTING -> any, or FAILED -> SUCCESS | AUTHORIZED: the
                -- PSP holds the money, so it is booked (or held) whatever
                -- was inferred before
                v_late := (c.status = 'FAILED');
                v_source := coalesce(nullif(current_setting('payments.event_source', true), ''),
                                     'webhook') || ':' || p_psp || ':' || p_event_id;

                -- the PSP's id of the payment, noted with the status (as
                -- payment_ref_note does for a checkout paid before)
                IF v_target IN ('SUCCESS', 'AUTHORIZED') AND c.psp_payment_ref IS NULL
                   AND length(p_payment_ref) BETWEEN 1 AND 128 THEN
                    v_ref := p_payment_ref;
                END IF;

                IF v_late THEN
                    PERFORM set_config('payments.paid_after_failed', 'on', true);
                END IF;

                -- The checkout and every order of it in one statement: the
                -- checkout moved (on SUCCESS with the PSP's id of the
                -- payment and its psp_payments row), the orders locked in
                -- id order (doc/MONEY.md, "Lock order") and moved, each
                -- with its order event and, on SUCCESS, booked (the PSP holds the money: clearing
                -- debited, the seller's net share and the commission
                -- credited, the entries of nought left out, as ledger_book
                -- writes them) and credited to its seller's wallet (as
                -- wallet_add does: the wallet's folded row made first when
                -- there is none).
                WITH paid AS (
                    UPDATE checkouts ck
                       SET status = v_target, updated_at = now(),
                           psp_payment_ref = coalesce(v_ref, ck.psp_payment_ref),
                           authorized_at = CASE WHEN v_target = 'AUTHORIZED' THEN now()
                                                ELSE ck.authorized_at END,
                           -- a session that ends after the merchant asked to
                           -- cancel it (the expiry its expire call causes)
                           -- ends as the merchant's cancel
                           failure_code = CASE WHEN v_target <> 'FAILED'
                                               THEN ck.failure_code
                                               WHEN ck.cancel_requested_at IS NOT NULL
                                               THEN 'canceled'::pay_failure_code
                                               ELSE checkout_failure_code(p_type) END
                     WHERE ck.merchant_id = v_m AND ck.checkout_id = v_co
                ), payment AS (
                    INSERT INTO psp_payments (psp, payment_ref, merchant_id, checkout_id)
                    SELECT p_psp, v_ref, v_m, v_co
                     WHERE v_ref IS NOT NULL
                    ON CONFLICT DO NOTHING
                ), o AS (
                    SELECT po.payment_order_id, po.seller_account, po.amount,
                           po.currency, po.status, po.line_no,
                           CASE WHEN v_target = 'SUCCESS'
                                THEN commission_of(po.amount, coalesce(c.commission_bps, 0),
                                                   coalesce(c.commission_fixed, 0))
                           END AS comm
                      FROM payment_orders po
                     WHERE po.merchant_id = v_m AND po.checkout_id = v_co
                     ORDER BY po.payment_order_id
                       FOR UPDATE
                ), moved AS (
                    UPDATE payment_orders po
                       SET status = v_target,
                           -- a hold: nothing of it captured yet
                           amount_captured = CASE WHEN v_target = 'AUTHORIZED' THEN 0
                                                  ELSE po.amount_captured END,
                           ledger_updated = (v_target = 'SUCCESS'),
                           wallet_updated = (v_target = 'SUCCESS'),
                           commission = o.comm,
                           updated_at = now()
                      FROM o
                     -- the checkout's orders (o's), by its key: matched by
                     -- the order's id alone, a plan made on small tables
                     -- walks the merchant's orders
                     WHERE po.merchant_id = v_m AND po.checkout_id = v_co
                       AND po.payment_order_id = o.payment_order_id
                ), history AS (
                    INSERT INTO order_events (merchant_id, checkout_id, payment_order_id,
                                              from_status, to_status, source)
                    SELECT v_m, v_co, o.payment_order_id, o.status, v_target, v_source
                      FROM o
                     ORDER BY o.seller_account, o.line_no
                ), txn AS (
                    INSERT INTO ledger_transactions (merchant_id, checkout_id,
                                                     payment_order_id, source, kind,
                                                     object_id)
                    SELECT v_m, v_co, o.payment_order_id, v_source, 'payment', NULL
                      FROM o
                     WHERE v_target = 'SUCCESS'
                     ORDER BY o.seller_account, o.line_no
                    RETURNING txn_id, payment_order_id
                ), folded AS (
                    -- in seller order (doc/MONEY.md, "Lock order"): a
                    -- seller's first row is a unique key another payment
                    -- of the same sellers may be inserting too, and waits
                    -- on; in any other order two such payments deadlock
                    INSERT INTO wallets_folded (merchant_id, seller_account, currency, balance)
                    SELECT DISTINCT v_m, o.seller_account, o.currency, 0::bigint
                      FROM o
                     WHERE v_target = 'SUCCESS'
                       AND NOT EXISTS (SELECT 1 FROM wallets_folded f
                                        WHERE f.merchant_id = v_m
                                          AND f.seller_account = o.seller_account
                                          AND f.currency = o.currency)
                     ORDER BY 2, 3
                    ON CONFLICT ON CONSTRAINT wallets_folded_pkey DO NOTHING
                ), credits AS (
                    INSERT INTO wallet_credits (merchant_id, seller_account, currency, amount)
                    SELECT v_m, o.seller_account, o.currency, o.amount - o.comm
                      FROM o
                     WHERE v_target = 'SUCCESS' AND o.amount - o.comm <> 0
                     ORDER BY o.seller_account, o.line_no
                )
                INSERT INTO ledger_entries (merchant_id, txn_id, entry_no, account, amount,
                                            currency)
                SELECT v_m, txn.txn_id,
                       row_number() OVER (PARTITION BY txn.txn_id ORDER BY a.i),
                       a.account, a.amount, o.currency
                  FROM txn
                  JOIN o ON o.payment_order_id = txn.payment_order_id
                 CROSS JOIN LATERAL unnest(
                           ARRAY['psp_clearing:' || p_psp,
                                 'seller_payable:' || o.seller_account,
                                 'platform_commission'],
                           ARRAY[o.amount, -(o.amount - o.comm), -o.comm])
                       WITH ORDINALITY AS a (account, amount, i)
                 WHERE a.amount <> 0;

                IF v_late THEN
                    PERFORM set_config('payments.paid_after_failed', '', true);
                END IF;

                v_outcome := CASE WHEN v_late THEN 'paid_after_failed'
                                  WHEN v_manual THEN 'captured_for_manual'
                                  ELSE 'applied' END;
            END IF;
        END IF;
    END IF;

    -- Another path recording this event id meanwhile (none takes the lock
    -- above) makes this a unique violation: the whole event rolls back, and
    -- the PSP's retry finds it recorded.
    -- The answer is the row as written.
    INSERT INTO webhook_events AS we (psp, event_id, kind, type, outcome, merchant_id,
                                      checkout_id)
    VALUES (p_psp, p_event_id, p_kind, left(coalesce(p_type, ''), 100), v_outcome,
            v_m, v_co)
    RETURNING we.outcome, we.merchant_id, we.checkout_id
         INTO outcome, merchant_id, checkout_id;
END
$function$;
REVOKE ALL ON FUNCTION pay_webhook_apply_core(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_tokens text[], OUT outcome text, OUT merchant_id text, OUT checkout_id text) FROM PUBLIC;

-- The signatures this one replaced, dropped in the transaction that
-- changes its body, so no caller ever finds neither.
DROP FUNCTION IF EXISTS pay_webhook_apply_core(text, text, text, text, text, text, bigint, text);
DROP FUNCTION IF EXISTS pay_webhook_apply_core(text, text, text, text, text, text, bigint, text, text);
