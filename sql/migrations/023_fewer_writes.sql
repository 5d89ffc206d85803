-- Two writes fewer per paid webhook, one statement fewer per audit row
-- (issue 14).
--
-- 1. A verified payment event's row in webhook_events was written twice: as
--    'received' first (its primary key entry was what held a concurrent
--    second delivery back), then with its outcome.  pay_webhook_apply_core
--    (021's body otherwise) now holds a second delivery back with a
--    transaction-level advisory lock on the event, taken at the same point
--    as that INSERT was (first, before any other lock), so the order in
--    which locks are taken is unchanged; it then looks the event up, and
--    writes its row once, with the outcome, at the end.  Outcomes, rows and
--    audit rows are the same as before.  The lock is the two-key form
--    (class 1436), apart from the one-key locks of 011, 016 and 017.
--
-- 2. audit_append_to took its chain's head with SELECT ... FOR UPDATE and
--    then updated it: two statements and two writes of the head row (the
--    lock, then the new version).  One UPDATE now moves the head and
--    returns what the new audit_log row needs; the head keeps the previous
--    row's hash (prev_hash) for that, since an UPDATE's RETURNING sees only
--    the new row.  A concurrent append to the same chain waits on the
--    UPDATE and then computes from the head it finds, as before.  Hashes,
--    rows and pay_audit_verify are unchanged.

ALTER TABLE audit_heads ADD COLUMN IF NOT EXISTS prev_hash bytea;

CREATE OR REPLACE FUNCTION audit_append_to(p_merchant text, p_chain smallint,
    p_checkout text, p_action text, p_detail jsonb)
RETURNS boolean
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_seq   bigint;
    v_prev  bytea;
    v_hash  bytea;
    v_at    timestamptz := clock_timestamp();
BEGIN
    FOR attempt IN 1..2 LOOP
        -- the chain's head row is the chain's only lock; a HOT update (no
        -- indexed column changes)
        UPDATE audit_heads h
           SET seq = h.seq + 1, prev_hash = h.hash,
               hash = audit_row_hash(h.hash, p_merchant, p_chain, h.seq + 1, v_at,
                                     p_checkout, p_action, p_detail)
         WHERE h.merchant_id = p_merchant AND h.chain = p_chain
        RETURNING h.seq, h.prev_hash, h.hash INTO v_seq, v_prev, v_hash;
        EXIT WHEN FOUND;
        IF p_chain <> 0 OR attempt = 2 THEN
            RETURN false;
        END IF;
        -- chain 0 is created on first use
        INSERT INTO audit_heads AS h (merchant_id, chain, seq, hash)
        VALUES (p_merchant, 0, 0, '\x'::bytea)
        ON CONFLICT (merchant_id, chain) DO NOTHING;
    END LOOP;

    INSERT INTO audit_log (merchant_id, chain, seq, at, checkout_id, action, detail,
                           prev_hash, hash)
    VALUES (p_merchant, p_chain, v_seq, v_at, p_checkout, p_action, p_detail, v_prev,
            v_hash);
    RETURN true;
END
$$;

-- 021's, the event's row written once
CREATE OR REPLACE FUNCTION pay_webhook_apply_core(
    p_psp text, p_event_id text, p_kind text, p_type text, p_token text,
    p_reference text, p_amount bigint, p_currency text, p_payment_ref text)
RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    c          checkouts%ROWTYPE;
    o          record;
    v_m        text;
    v_co       text;
    v_ref_m    text;
    v_ref_co   text;
    v_outcome  text;
    v_target   pay_status;
    v_source   text;
    v_comm     bigint;
    v_sellers  text[] := '{}';
    v_wcur     text[] := '{}';
    v_wamount  bigint[] := '{}';
    v_ref      text;
BEGIN
    IF p_kind NOT IN ('SUCCEEDED', 'FAILED', 'PENDING', 'IGNORED') THEN
        RAISE EXCEPTION 'pay_webhook_apply: unknown kind %', p_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The event's own lock, held to commit: a second delivery of it waits
    -- here until the first commits, then finds its row (READ COMMITTED: a
    -- statement sees what committed before it began).  The row itself is
    -- written once, at the end, with its outcome.
    PERFORM pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id));
    SELECT we.merchant_id, we.checkout_id INTO v_m, v_co
      FROM webhook_events we
     WHERE we.psp = p_psp AND we.event_id = p_event_id;
    IF FOUND THEN
        RETURN QUERY SELECT 'duplicate'::text, v_m, v_co;
        RETURN;
    END IF;

    IF coalesce(p_token, '') <> '' THEN
        SELECT t.merchant_id, t.checkout_id INTO v_m, v_co
          FROM psp_tokens t
         WHERE t.psp = p_psp AND t.psp_token = p_token;
    END IF;

    IF coalesce(p_reference, '') <> '' AND position(':' IN p_reference) > 0 THEN
        v_ref_m := split_part(p_reference, ':', 1);
        v_ref_co := substr(p_reference, length(v_ref_m) + 2);

        IF coalesce(p_token, '') = '' THEN
            v_m := v_ref_m;
            v_co := v_ref_co;
        ELSIF v_m IS NOT NULL AND (v_m <> v_ref_m OR v_co <> v_ref_co) THEN
            v_outcome := 'mismatch';
        END IF;
    END IF;

    IF v_outcome IS NULL THEN
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = v_m AND ck.checkout_id = v_co AND ck.psp = p_psp
           FOR UPDATE;

        IF NOT FOUND THEN
            v_outcome := 'unknown_checkout';
            v_m := NULL;
            v_co := NULL;
        ELSIF (p_amount <> -1 AND p_amount <> c.amount_total)
              OR (coalesce(p_currency, '') <> '' AND upper(p_currency) <> c.currency)
              OR (p_kind = 'SUCCEEDED'
                  AND (p_amount = -1 OR coalesce(p_currency, '') = '')) THEN
            v_outcome := 'amount_mismatch';
        ELSIF p_kind = 'PENDING' THEN
            v_outcome := 'pending';
        ELSIF p_kind = 'IGNORED' THEN
            v_outcome := 'ignored';
        ELSE
            v_target := CASE p_kind WHEN 'SUCCEEDED' THEN 'SUCCESS'::pay_status
                                    ELSE 'FAILED'::pay_status END;
            IF c.status = v_target THEN
                v_outcome := 'already';
            ELSIF c.status IN ('SUCCESS', 'FAILED') THEN
                v_outcome := 'late_contrary';
            ELSE
                v_source := coalesce(nullif(current_setting('payments.event_source', true), ''),
                                     'webhook') || ':' || p_psp || ':' || p_event_id;

                -- the PSP's id of the payment, noted with the status (as
                -- payment_ref_note does for a checkout paid before)
                IF v_target = 'SUCCESS' AND c.psp_payment_ref IS NULL
                   AND length(p_payment_ref) BETWEEN 1 AND 128 THEN
                    v_ref := p_payment_ref;
                END IF;

                UPDATE checkouts ck
                   SET status = v_target, updated_at = now(),
                       psp_payment_ref = coalesce(v_ref, ck.psp_payment_ref)
                 WHERE ck.merchant_id = v_m AND ck.checkout_id = v_co;

                IF v_ref IS NOT NULL THEN
                    INSERT INTO psp_payments (psp, payment_ref, merchant_id, checkout_id)
                    VALUES (p_psp, v_ref, v_m, v_co)
                    ON CONFLICT DO NOTHING;
                END IF;

                FOR o IN
                    SELECT po.payment_order_id, po.seller_account, po.amount,
                           po.currency, po.status
                      FROM payment_orders po
                     WHERE po.merchant_id = v_m AND po.checkout_id = v_co
                     ORDER BY po.seller_account, po.line_no
                       FOR UPDATE
                LOOP
                    v_comm := CASE WHEN v_target = 'SUCCESS'
                                   THEN commission_of(o.amount, coalesce(c.commission_bps, 0),
                                                       coalesce(c.commission_fixed, 0))
                              END;

                    UPDATE payment_orders po
                       SET status = v_target,
                           ledger_updated = (v_target = 'SUCCESS'),
                           wallet_updated = (v_target = 'SUCCESS'),
                           commission = v_comm,
                           updated_at = now()
                     WHERE po.merchant_id = v_m AND po.payment_order_id = o.payment_order_id;

                    INSERT INTO order_events (merchant_id, checkout_id, payment_order_id,
                                              from_status, to_status, source)
                    VALUES (v_m, v_co, o.payment_order_id, o.status, v_target, v_source);

                    IF v_target = 'SUCCESS' THEN
                        -- the PSP holds the money: clearing debited, the
                        -- seller's net share and the commission credited
                        PERFORM ledger_book(v_m, v_co, o.payment_order_id, 'payment', NULL,
                            v_source, o.currency,
                            ARRAY['psp_clearing:' || p_psp,
                                  'seller_payable:' || o.seller_account,
                                  'platform_commission'],
                            ARRAY[o.amount, -(o.amount - v_comm), -v_comm]);
                        v_sellers := v_sellers || o.seller_account;
                        v_wcur := v_wcur || o.currency::text;
                        v_wamount := v_wamount || (o.amount - v_comm);
                    END IF;
                END LOOP;

                -- the wallets last, in the loop's (seller) order: a seller's
                -- wallet row is the one row every payment of that seller
                -- locks, so it is held for the least time
                FOR i IN 1 .. coalesce(array_length(v_sellers, 1), 0) LOOP
                    PERFORM wallet_add(v_m, v_sellers[i], v_wcur[i], v_wamount[i]);
                END LOOP;

                v_outcome := 'applied';
            END IF;
        END IF;
    END IF;

    -- Another path recording this event id meanwhile (none takes the lock
    -- above) makes this a unique violation: the whole event rolls back, and
    -- the PSP's retry finds it recorded.
    INSERT INTO webhook_events (psp, event_id, kind, type, outcome, merchant_id,
                                checkout_id)
    VALUES (p_psp, p_event_id, p_kind, left(coalesce(p_type, ''), 100), v_outcome,
            v_m, v_co);

    RETURN QUERY SELECT v_outcome, v_m, v_co;
END
$$;

-- 015's guard, and the previous hash the head now keeps must be the one it
-- held: a head moves only forward, one row at a time, within its chain.
CREATE OR REPLACE FUNCTION audit_heads_forward() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR NEW.merchant_id <> OLD.merchant_id
       OR NEW.chain <> OLD.chain
       OR NEW.seq <> OLD.seq + 1
       OR NEW.prev_hash IS DISTINCT FROM OLD.hash THEN
        RAISE EXCEPTION 'audit_heads only moves forward (% refused)', TG_OP
            USING ERRCODE = 'PY002';
    END IF;
    RETURN NEW;
END
$$;
