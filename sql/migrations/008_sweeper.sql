-- 008: the stuck-checkout sweeper (issue 9), and pay_abandon's reason
-- (the PSP circuit breaker undoes claims it did not send).
--
-- A checkout whose PSP never sends the webhook would stay EXECUTING for
-- good.  One worker of one gateway at a time (the lease below) asks the PSP
-- about checkouts EXECUTING past a threshold, through the dialect's session
-- look-up, and applies the answer exactly as a verified webhook would: the
-- same decision (pay_webhook_apply_core), the same ledger, the same audit
-- chain, with the source recorded as the sweeper.
--
-- Where an event came from is a transaction-local setting,
-- payments.event_source: unset (webhooks) it is 'webhook'; pay_sweeper_apply
-- sets 'sweeper' for its own transaction only.  It reaches the event row
-- (webhook_events.source) and the order events and ledger transactions
-- (source 'sweeper:<psp>:<event id>' instead of 'webhook:…').

-- ---------------------------------------------------------------------------
-- Tables

ALTER TABLE webhook_events
    ADD COLUMN IF NOT EXISTS source text NOT NULL
        DEFAULT coalesce(nullif(current_setting('payments.event_source', true), ''),
                         'webhook');

DO $$
BEGIN
    ALTER TABLE webhook_events ADD CONSTRAINT webhook_events_source
        CHECK (source IN ('webhook', 'sweeper'));
EXCEPTION WHEN duplicate_object THEN NULL;
END
$$;

-- One row: who sweeps, until when.  A gateway takes it when it is free or
-- expired and keeps it by renewing it each round; another gateway's worker
-- finds it held and does nothing.
CREATE TABLE IF NOT EXISTS sweeper_lease (
    id      int         PRIMARY KEY CONSTRAINT sweeper_lease_one CHECK (id = 1),
    owner   text        NOT NULL CONSTRAINT sweeper_lease_owner
                        CHECK (length(owner) BETWEEN 1 AND 200),
    taken   timestamptz NOT NULL DEFAULT now(),
    until   timestamptz NOT NULL
);

-- What the sweeper did with each checkout it asked about: when it last
-- asked, how often, and whether the "still unresolved" alert was raised.
CREATE TABLE IF NOT EXISTS checkout_sweeps (
    merchant_id  text        NOT NULL,
    checkout_id  text        NOT NULL,
    attempts     int         NOT NULL DEFAULT 0,
    last_at      timestamptz,
    last_answer  text        CONSTRAINT checkout_sweeps_answer
                             CHECK (length(last_answer) <= 100),
    alerted_at   timestamptz,
    -- what the PSP gave the shopper's way back for its session look-up
    -- (Adyen's sessionResult); NULL when no shopper came back with one
    session_result text      CONSTRAINT checkout_sweeps_session_result
                             CHECK (length(session_result) BETWEEN 1 AND 4096
                                    AND session_result ~ '^[\x21-\x7e]+$'),
    PRIMARY KEY (merchant_id, checkout_id),
    FOREIGN KEY (merchant_id, checkout_id) REFERENCES checkouts (merchant_id, checkout_id)
);

-- ---------------------------------------------------------------------------
-- pay_webhook_apply_core again (005's), with the source of the moves taken
-- from payments.event_source.

CREATE OR REPLACE FUNCTION pay_webhook_apply_core(
    p_psp text, p_event_id text, p_kind text, p_type text, p_token text,
    p_reference text, p_amount bigint, p_currency text)
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
    v_txn      bigint;
BEGIN
    IF p_kind NOT IN ('SUCCEEDED', 'FAILED', 'PENDING', 'IGNORED') THEN
        RAISE EXCEPTION 'pay_webhook_apply: unknown kind %', p_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The event row first: a second delivery of the same event waits here
    -- for the first transaction, then finds the row and changes nothing.
    INSERT INTO webhook_events AS we (psp, event_id, kind, type, outcome)
    VALUES (p_psp, p_event_id, p_kind, left(coalesce(p_type, ''), 100), 'received')
    ON CONFLICT (psp, event_id) DO NOTHING;

    IF NOT FOUND THEN
        SELECT we.merchant_id, we.checkout_id INTO v_m, v_co
          FROM webhook_events we
         WHERE we.psp = p_psp AND we.event_id = p_event_id;
        RETURN QUERY SELECT 'duplicate'::text, v_m, v_co;
        RETURN;
    END IF;

    -- The checkout: by the PSP's token when the event has one, else by our
    -- nonce; when both are there they must name the same checkout.
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
                -- terminal: a late contrary event is recorded, never applied
                v_outcome := 'late_contrary';
            ELSE
                v_source := coalesce(nullif(current_setting('payments.event_source', true), ''),
                                     'webhook') || ':' || p_psp || ':' || p_event_id;

                UPDATE checkouts ck SET status = v_target, updated_at = now()
                 WHERE ck.merchant_id = v_m AND ck.checkout_id = v_co;

                -- Wallet rows are locked in seller order, so two checkouts
                -- paying the same sellers never deadlock.
                FOR o IN
                    SELECT po.payment_order_id, po.seller_account, po.amount,
                           po.currency, po.status
                      FROM payment_orders po
                     WHERE po.merchant_id = v_m AND po.checkout_id = v_co
                     ORDER BY po.seller_account, po.line_no
                       FOR UPDATE
                LOOP
                    -- a SUCCESS is booked below, in this transaction
                    UPDATE payment_orders po
                       SET status = v_target,
                           ledger_updated = (v_target = 'SUCCESS'),
                           wallet_updated = (v_target = 'SUCCESS'),
                           updated_at = now()
                     WHERE po.merchant_id = v_m AND po.payment_order_id = o.payment_order_id;

                    INSERT INTO order_events (merchant_id, checkout_id, payment_order_id,
                                              from_status, to_status, source)
                    VALUES (v_m, v_co, o.payment_order_id, o.status, v_target, v_source);

                    IF v_target = 'SUCCESS' THEN
                        -- the PSP holds the money for the seller: clearing
                        -- debited, the seller's payable credited
                        INSERT INTO ledger_transactions (merchant_id, checkout_id,
                                                         payment_order_id, source)
                        VALUES (v_m, v_co, o.payment_order_id, v_source)
                        RETURNING txn_id INTO v_txn;

                        INSERT INTO ledger_entries (merchant_id, txn_id, entry_no,
                                                    account, amount, currency)
                        VALUES (v_m, v_txn, 1, 'psp_clearing:' || p_psp, o.amount, o.currency),
                               (v_m, v_txn, 2, 'seller_payable:' || o.seller_account,
                                -o.amount, o.currency);

                        INSERT INTO wallets AS w (merchant_id, seller_account, currency, balance)
                        VALUES (v_m, o.seller_account, o.currency, o.amount)
                        ON CONFLICT ON CONSTRAINT wallets_pkey
                        DO UPDATE SET balance = w.balance + EXCLUDED.balance,
                                      updated_at = now();
                    END IF;
                END LOOP;

                v_outcome := 'applied';
            END IF;
        END IF;
    END IF;

    UPDATE webhook_events we
       SET outcome = v_outcome, merchant_id = v_m, checkout_id = v_co
     WHERE we.psp = p_psp AND we.event_id = p_event_id;

    RETURN QUERY SELECT v_outcome, v_m, v_co;
END
$$;

-- ---------------------------------------------------------------------------
-- The lease: true when p_owner holds it now (taken or renewed until
-- now() + p_seconds), false when another owner's lease is still running.
CREATE OR REPLACE FUNCTION pay_sweeper_lease(p_owner text, p_seconds int)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF p_seconds < 1 THEN
        RAISE EXCEPTION 'pay_sweeper_lease: % seconds', p_seconds
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO sweeper_lease AS l (id, owner, until)
    VALUES (1, p_owner, now() + make_interval(secs => p_seconds))
    ON CONFLICT (id) DO UPDATE
        SET owner = EXCLUDED.owner,
            until = EXCLUDED.until,
            taken = CASE WHEN l.owner = EXCLUDED.owner THEN l.taken ELSE now() END
        WHERE l.owner = EXCLUDED.owner OR l.until <= now();

    RETURN FOUND;
END
$$;

-- The checkouts to ask about, oldest first: EXECUTING for more than
-- p_after seconds, registered with one of p_psps (the PSPs the sweeping
-- gateway can ask), with a PSP token, not asked about in the last p_every
-- seconds.  Only the lease's owner gets any; each one returned counts as
-- asked.  A checkout without a token never reached the PSP's answer: the
-- client's retry resumes it (API.md); pay_sweeper_overdue reports it if
-- nobody does.
CREATE OR REPLACE FUNCTION pay_sweeper_due(p_owner text, p_psps text[],
                                           p_after int, p_every int, p_limit int)
RETURNS TABLE(merchant_id text, checkout_id text, psp text, psp_token text,
              nonce text, expires_epoch bigint, age_seconds bigint,
              session_result text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
BEGIN
    PERFORM 1 FROM sweeper_lease l
      WHERE l.id = 1 AND l.owner = p_owner AND l.until > now();
    IF NOT FOUND THEN
        RETURN;
    END IF;

    RETURN QUERY
    WITH due AS (
        SELECT c.merchant_id, c.checkout_id, c.psp, c.psp_token, c.nonce,
               ts_epoch(c.expires_at) AS expires_epoch,
               floor(extract(epoch FROM now() - c.created_at))::bigint AS age_seconds,
               s.session_result, c.created_at
          FROM checkouts c
          LEFT JOIN checkout_sweeps s
            ON s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
         WHERE c.status = 'EXECUTING'
           AND c.created_at < now() - make_interval(secs => p_after)
           AND c.psp = ANY (p_psps)
           AND c.psp_token IS NOT NULL
           AND (s.last_at IS NULL OR s.last_at < now() - make_interval(secs => p_every))
         ORDER BY c.created_at
         LIMIT p_limit
    ), asked AS (
        INSERT INTO checkout_sweeps AS s (merchant_id, checkout_id, attempts, last_at)
        SELECT d.merchant_id, d.checkout_id, 1, now() FROM due d
        ON CONFLICT (merchant_id, checkout_id) DO UPDATE
            SET attempts = s.attempts + 1, last_at = now()
    )
    SELECT d.merchant_id, d.checkout_id, d.psp, d.psp_token, d.nonce,
           d.expires_epoch, d.age_seconds, d.session_result
      FROM due d
     ORDER BY d.created_at;
END
$$;

-- What the PSP said when nothing was applied (the session is open, no
-- answer, ...), for the operator's view of a stuck checkout.
CREATE OR REPLACE FUNCTION pay_sweeper_note(p_merchant text, p_checkout_id text,
                                            p_answer text)
RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE checkout_sweeps s SET last_answer = left(p_answer, 100)
     WHERE s.merchant_id = p_merchant AND s.checkout_id = p_checkout_id;
$$;

-- The PSP's answer about a session, applied as a verified webhook would be
-- (same arguments as pay_webhook_apply), in one transaction, with the
-- sweeper as its source.  A look-up answer is the PSP's own word, over TLS,
-- about the session we registered with the checkout's amount; Adyen's
-- session result carries no amount, so a success without one is checked
-- against the checkout's own amount and currency (the PSP cannot change
-- them in a session).  An amount that is there is compared as always.
CREATE OR REPLACE FUNCTION pay_sweeper_apply(
    p_psp text, p_event_id text, p_kind text, p_type text, p_token text,
    p_reference text, p_amount bigint, p_currency text)
RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v         record;
    v_amount  bigint := p_amount;
    v_cur     text := p_currency;
BEGIN
    IF p_kind = 'SUCCEEDED' AND p_amount = -1 AND coalesce(p_currency, '') = ''
       AND coalesce(p_token, '') <> '' THEN
        SELECT c.amount_total, c.currency INTO v_amount, v_cur
          FROM psp_tokens t
          JOIN checkouts c
            ON c.merchant_id = t.merchant_id AND c.checkout_id = t.checkout_id
         WHERE t.psp = p_psp AND t.psp_token = p_token;
        v_amount := coalesce(v_amount, -1);
        v_cur := coalesce(v_cur, '');
    END IF;

    PERFORM set_config('payments.event_source', 'sweeper', true);

    SELECT * INTO v FROM pay_webhook_apply_core(p_psp, p_event_id, p_kind,
        p_type, p_token, p_reference, v_amount, v_cur) x;

    PERFORM set_config('payments.event_source', '', true);

    IF v.merchant_id IS NOT NULL AND v.outcome <> 'duplicate' THEN
        PERFORM audit_append(v.merchant_id, v.checkout_id, 'sweeper:' || v.outcome,
            jsonb_build_object('psp', p_psp, 'event_id', p_event_id,
                               'kind', p_kind, 'type', p_type));

        UPDATE checkout_sweeps s SET last_answer = left(p_type || ': ' || v.outcome, 100)
         WHERE s.merchant_id = v.merchant_id AND s.checkout_id = v.checkout_id;
    END IF;

    RETURN QUERY SELECT v.outcome, v.merchant_id, v.checkout_id;
END
$$;

-- Checkouts of p_psps EXECUTING for more than p_alert_after seconds (with
-- or without a PSP token): how many there
-- are and how old the oldest is (for /metrics), and the ones not alerted
-- yet, at most p_limit, now marked alerted (for one log line each).  Only
-- the lease's owner marks any.
CREATE OR REPLACE FUNCTION pay_sweeper_overdue(p_owner text, p_psps text[],
                                               p_alert_after int, p_limit int)
RETURNS TABLE(merchant_id text, checkout_id text, psp text, age_seconds bigint,
              last_answer text, unresolved bigint, oldest_seconds bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_n       bigint;
    v_oldest  bigint;
BEGIN
    SELECT count(*),
           coalesce(floor(extract(epoch FROM now() - min(c.created_at)))::bigint, 0)
      INTO v_n, v_oldest
      FROM checkouts c
     WHERE c.status = 'EXECUTING'
       AND c.created_at < now() - make_interval(secs => p_alert_after)
       AND c.psp = ANY (p_psps);

    PERFORM 1 FROM sweeper_lease l
      WHERE l.id = 1 AND l.owner = p_owner AND l.until > now();
    IF NOT FOUND OR v_n = 0 THEN
        RETURN QUERY SELECT NULL::text, NULL::text, NULL::text, NULL::bigint,
                            NULL::text, v_n, v_oldest;
        RETURN;
    END IF;

    RETURN QUERY
    WITH late AS (
        SELECT c.merchant_id, c.checkout_id, c.psp,
               floor(extract(epoch FROM now() - c.created_at))::bigint AS age_seconds,
               s.last_answer, c.created_at
          FROM checkouts c
          LEFT JOIN checkout_sweeps s
            ON s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
         WHERE c.status = 'EXECUTING'
           AND c.created_at < now() - make_interval(secs => p_alert_after)
           AND c.psp = ANY (p_psps)
           AND s.alerted_at IS NULL
         ORDER BY c.created_at
         LIMIT p_limit
    ), marked AS (
        INSERT INTO checkout_sweeps AS s (merchant_id, checkout_id, alerted_at)
        SELECT l.merchant_id, l.checkout_id, now() FROM late l
        ON CONFLICT (merchant_id, checkout_id) DO UPDATE SET alerted_at = now()
    )
    SELECT l.merchant_id, l.checkout_id, l.psp, l.age_seconds, l.last_answer,
           v_n, v_oldest
      FROM late l
    UNION ALL
    SELECT NULL, NULL, NULL, NULL, NULL, v_n, v_oldest
     WHERE NOT EXISTS (SELECT 1 FROM late);
END
$$;

-- The shopper's way back (GET /v1/return/{psp}/{checkout}) as before
-- (006), and what the PSP added to it for the session look-up, kept while
-- the checkout is EXECUTING with that PSP.  The last one given counts: a
-- shopper who tried twice comes back with the later result.
CREATE OR REPLACE FUNCTION pay_return_target(p_merchant text, p_checkout_id text,
                                             p_psp text, p_session_result text)
RETURNS TABLE(status text, success_url text, cancel_url text, psp_matches boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
BEGIN
    IF coalesce(p_session_result, '') <> '' THEN
        INSERT INTO checkout_sweeps AS s (merchant_id, checkout_id, session_result)
        SELECT c.merchant_id, c.checkout_id, p_session_result
          FROM checkouts c
         WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id
           AND c.psp = p_psp AND c.status = 'EXECUTING'
        ON CONFLICT (merchant_id, checkout_id) DO UPDATE
            SET session_result = EXCLUDED.session_result;
    END IF;

    RETURN QUERY SELECT * FROM pay_return_target(p_merchant, p_checkout_id, p_psp);
END
$$;

REVOKE ALL ON sweeper_lease, checkout_sweeps FROM PUBLIC;
REVOKE ALL ON FUNCTION
    pay_webhook_apply_core(text, text, text, text, text, text, bigint, text)
    FROM PUBLIC, payments_gateway;
REVOKE ALL ON FUNCTION
    pay_sweeper_lease(text, int),
    pay_sweeper_due(text, text[], int, int, int),
    pay_sweeper_note(text, text, text),
    pay_sweeper_apply(text, text, text, text, text, text, bigint, text),
    pay_sweeper_overdue(text, text[], int, int),
    pay_return_target(text, text, text, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    pay_sweeper_lease(text, int),
    pay_sweeper_due(text, text[], int, int, int),
    pay_sweeper_note(text, text, text),
    pay_sweeper_apply(text, text, text, text, text, text, bigint, text),
    pay_sweeper_overdue(text, text[], int, int),
    pay_return_target(text, text, text, text)
    TO payments_gateway;

-- ---------------------------------------------------------------------------
-- pay_abandon (006) with the reason the audit row gives: the PSP refused our
-- credentials, or its circuit breaker is open (the gateway did not call it).
-- The three-argument form stays, for the first reason.
CREATE OR REPLACE FUNCTION pay_abandon(p_merchant text, p_idem_key text, p_lease bigint,
                                       p_reason text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    k         idempotency_keys%ROWTYPE;
    v_orders  jsonb;
BEGIN
    IF p_reason NOT IN ('psp_refused_credentials', 'psp_circuit_open') THEN
        RAISE EXCEPTION 'pay_abandon: unknown reason %', p_reason
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT * INTO k FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       FOR UPDATE;
    IF NOT FOUND OR k.state <> 'in_progress' OR k.lease <> p_lease
       OR k.checkout_id IS NULL THEN
        RETURN false;
    END IF;

    PERFORM 1 FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = k.checkout_id
       AND c.status = 'EXECUTING' AND c.psp_token IS NULL
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;

    -- Locked in id order, as pay_claim inserts them.
    PERFORM 1 FROM payment_orders o
     WHERE o.merchant_id = p_merchant AND o.checkout_id = k.checkout_id
     ORDER BY o.payment_order_id FOR UPDATE;
    IF EXISTS (SELECT 1 FROM payment_orders o
                WHERE o.merchant_id = p_merchant AND o.checkout_id = k.checkout_id
                  AND o.status <> 'EXECUTING')
       OR EXISTS (SELECT 1 FROM order_events e
                   WHERE e.merchant_id = p_merchant AND e.checkout_id = k.checkout_id
                     AND (e.source <> 'registration' OR e.from_status <> 'NOT_STARTED')) THEN
        RETURN false;
    END IF;

    SELECT jsonb_agg(o.payment_order_id ORDER BY o.line_no) INTO v_orders
      FROM payment_orders o
     WHERE o.merchant_id = p_merchant AND o.checkout_id = k.checkout_id;

    -- order_events is append-only; its guard (001) lets this transaction
    -- delete the claim's own registration events of this checkout only.
    PERFORM set_config('payments.abandon_checkout', p_merchant || ':' || k.checkout_id, true);
    DELETE FROM order_events e
     WHERE e.merchant_id = p_merchant AND e.checkout_id = k.checkout_id;
    PERFORM set_config('payments.abandon_checkout', '', true);

    DELETE FROM psp_tokens t
     WHERE t.merchant_id = p_merchant AND t.checkout_id = k.checkout_id;
    DELETE FROM payment_orders o
     WHERE o.merchant_id = p_merchant AND o.checkout_id = k.checkout_id;
    DELETE FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = k.checkout_id;
    DELETE FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key;

    PERFORM audit_append(p_merchant, k.checkout_id, 'registration:abandoned',
        jsonb_build_object('from', 'EXECUTING', 'to', 'NOT_STARTED',
                           'reason', p_reason,
                           'payment_orders', v_orders));
    RETURN true;
END
$$;

CREATE OR REPLACE FUNCTION pay_abandon(p_merchant text, p_idem_key text, p_lease bigint)
RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT pay_abandon(p_merchant, p_idem_key, p_lease, 'psp_refused_credentials');
$$;

REVOKE ALL ON FUNCTION pay_abandon(text, text, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_abandon(text, text, bigint, text) TO payments_gateway;
