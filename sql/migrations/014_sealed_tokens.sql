-- PSP session tokens sealed at rest (doc/NOTIFICATIONS.md "Secrets at
-- rest"; include/payments/seal.h).  With payments_encryption_key set, the
-- gateway stores
--
--   checkouts.psp_token   pay_seal(token), associated data the checkout's
--                         nonce "<merchant_id>:<checkout_id>"
--   checkouts.psp_url     pay_seal(url), associated data
--                         "psp_url:<merchant_id>:<checkout_id>" (the PSP's
--                         hosted page names the session)
--   psp_tokens.psp_token  the blind index: 64 lower-case hex digits,
--                         pay_blind_index(keys[0], "psp_token:<psp>", token)
--   idempotency_keys.response_body, of a registration (it names the token
--                         and the pay link): pay_seal(answer), associated
--                         data "response:<merchant_id>:<idem_key>"
--
-- A stored value starting "v1." is sealed; anything else is a legacy
-- plaintext row (written before, or without a key), still read and found.
-- The database never sees a key: it stores and compares what the gateway
-- computed, and hands sealed text back for the gateway to open.
--
-- Look-ups by token take the candidates: the blind index under every key of
-- the ring (rows written before a rotation) and the plaintext (legacy rows).

-- ---------------------------------------------------------------------------
-- Room for sealed text: a 255-byte token seals to at most 398 characters, a
-- 2048-byte URL to at most 2788.  Plaintext keeps its old limits.

ALTER TABLE checkouts DROP CONSTRAINT checkouts_psp_token;
ALTER TABLE checkouts ADD CONSTRAINT checkouts_psp_token
    CHECK (length(psp_token) BETWEEN 1 AND 255
           OR (psp_token LIKE 'v1.%' AND length(psp_token) <= 600));

ALTER TABLE checkouts DROP CONSTRAINT checkouts_psp_url;
ALTER TABLE checkouts ADD CONSTRAINT checkouts_psp_url
    CHECK (length(psp_url) BETWEEN 1 AND 2048
           OR (psp_url LIKE 'v1.%' AND length(psp_url) <= 3000));

COMMENT ON COLUMN checkouts.psp_token IS
    'the PSP session token: "v1." sealed text (associated data: nonce), or legacy plaintext';
COMMENT ON COLUMN checkouts.psp_url IS
    'the PSP hosted page: "v1." sealed text (associated data: ''psp_url:'' || nonce), or legacy plaintext';
COMMENT ON COLUMN psp_tokens.psp_token IS
    'the blind index of the PSP token (64 hex, domain ''psp_token:'' || psp), or a legacy plaintext token';

-- ---------------------------------------------------------------------------
-- The stored look-up key of a token, from its candidates: the first of
-- p_tokens that psp_tokens holds for p_psp.  Without candidates (no key
-- configured), or when none is held, p_token itself: the callers' look-up
-- by p_token then behaves as before (found for a legacy row, not found for
-- an unknown token).

CREATE OR REPLACE FUNCTION psp_token_key(p_psp text, p_token text, p_tokens text[])
RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT CASE
        WHEN coalesce(p_token, '') = '' OR coalesce(cardinality(p_tokens), 0) = 0 THEN p_token
        ELSE coalesce((SELECT t.psp_token FROM psp_tokens t
                        WHERE t.psp = p_psp AND t.psp_token = ANY (p_tokens)
                        ORDER BY array_position(p_tokens, t.psp_token)
                        LIMIT 1),
                      p_token)
    END
$$;

-- ---------------------------------------------------------------------------
-- pay_finish (006's) with the blind index for psp_tokens: p_psp_token is
-- what checkouts keeps (sealed, or plaintext), p_psp_token_index what
-- psp_tokens keeps (NULL: p_psp_token, as before).  006's signature stays
-- (the contract's), for a gateway without a key.

CREATE OR REPLACE FUNCTION pay_finish(
    p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text,
    p_status text, p_psp_token text, p_psp_url text, p_psp_expires_at bigint,
    p_failure text, p_response_status int, p_response_body text,
    p_psp_token_index text)
RETURNS TABLE(response_status int, response_body text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    k        idempotency_keys%ROWTYPE;
    v_psp    text;
    v_moved  jsonb;
    v_valid  boolean := p_status IN ('EXECUTING', 'FAILED')
                        AND (p_status = 'FAILED' OR (p_psp_token IS NOT NULL AND p_psp_url IS NOT NULL))
                        AND p_response_status IS NOT NULL AND p_response_body IS NOT NULL;
BEGIN
    -- The usual case in one statement: our key, still in progress under our
    -- lease, becomes done.  The row lock it takes also makes a concurrent
    -- second pay_finish wait, then fall to the slow path and find it done.
    UPDATE idempotency_keys ik
       SET state = 'done', lease_until = NULL,
           response_status = p_response_status, response_body = p_response_body,
           -- the answer is kept for the whole TTL from when it is stored
           expires_at = now() + (ik.expires_at - ik.created_at)
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       AND ik.state = 'in_progress' AND ik.lease = p_lease
       AND ik.checkout_id = p_checkout_id AND v_valid;
    IF NOT FOUND THEN
        SELECT * INTO k FROM idempotency_keys ik
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pay_finish: no key % for merchant %', p_idem_key, p_merchant
                USING ERRCODE = 'PY004';
        END IF;
        -- A done key answers what it stored, whatever this call carries.
        IF k.state = 'done' THEN
            RETURN QUERY SELECT k.response_status, k.response_body;
            RETURN;
        END IF;
        IF v_valid IS NOT TRUE THEN
            RAISE EXCEPTION 'pay_finish: EXECUTING needs a token and url; status and response are required'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF k.lease IS DISTINCT FROM p_lease THEN
            RAISE EXCEPTION 'pay_finish: lease % of key % was taken over (now %)',
                p_lease, p_idem_key, k.lease USING ERRCODE = 'PY003';
        END IF;
        RAISE EXCEPTION 'pay_finish: key % belongs to checkout %, not %',
            p_idem_key, k.checkout_id, p_checkout_id USING ERRCODE = 'PY004';
    END IF;

    -- The status only moves from EXECUTING: should anything have moved the
    -- checkout already, the PSP's answer is still recorded but not applied.
    UPDATE checkouts c
       SET psp_token = p_psp_token, psp_url = p_psp_url,
           expires_at = COALESCE(to_timestamp(p_psp_expires_at), c.expires_at),
           failure = p_failure,
           status = CASE WHEN p_status = 'FAILED' AND c.status = 'EXECUTING'
                         THEN 'FAILED'::pay_status ELSE c.status END,
           updated_at = now()
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id
    RETURNING c.psp INTO v_psp;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pay_finish: no checkout % for merchant %', p_checkout_id, p_merchant
            USING ERRCODE = 'PY004';
    END IF;

    -- A token another checkout already holds is a unique violation: the PSP
    -- answered inconsistently, and that must not be stored.  The look-up
    -- row holds the blind index when there is one, never the sealed text.
    IF p_psp_token IS NOT NULL THEN
        INSERT INTO psp_tokens (psp, psp_token, merchant_id, checkout_id)
        VALUES (v_psp, coalesce(p_psp_token_index, p_psp_token), p_merchant, p_checkout_id);
    END IF;

    IF p_status = 'FAILED' THEN
        WITH moved AS (
            UPDATE payment_orders o
               SET status = 'FAILED', updated_at = now()
             WHERE o.merchant_id = p_merchant AND o.checkout_id = p_checkout_id
               AND o.status = 'EXECUTING'
            RETURNING o.payment_order_id, o.line_no
        ), ev AS (
            INSERT INTO order_events (merchant_id, checkout_id, payment_order_id,
                                      from_status, to_status, source)
            SELECT p_merchant, p_checkout_id, moved.payment_order_id,
                   'EXECUTING', 'FAILED', 'registration'
              FROM moved ORDER BY moved.line_no
        )
        SELECT jsonb_agg(moved.payment_order_id ORDER BY moved.line_no)
          INTO v_moved FROM moved;

        -- the PSP's refusal, as the moves it made, on the audit chain
        IF v_moved IS NOT NULL THEN
            PERFORM audit_append(p_merchant, p_checkout_id, 'registration:failed',
                jsonb_build_object('from', 'EXECUTING', 'to', 'FAILED',
                                   'psp', v_psp, 'failure', p_failure,
                                   'payment_orders', v_moved));
        END IF;
    END IF;

    RETURN QUERY SELECT p_response_status, p_response_body;
END
$$;

-- ---------------------------------------------------------------------------
-- The verified-event entries (009's) with the token's candidates.  The old
-- signatures stay: they look the token up as given.

CREATE OR REPLACE FUNCTION pay_event_apply(
    p_psp text, p_event_id text, p_kind text, p_type text, p_token text,
    p_reference text, p_amount bigint, p_currency text, p_payment_ref text,
    p_object_ref text, p_tokens text[])
RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY SELECT * FROM pay_event_apply(p_psp, p_event_id, p_kind, p_type,
        psp_token_key(p_psp, p_token, p_tokens), p_reference, p_amount, p_currency,
        p_payment_ref, p_object_ref);
END
$$;

CREATE OR REPLACE FUNCTION pay_sweeper_apply(
    p_psp text, p_event_id text, p_kind text, p_type text, p_token text,
    p_reference text, p_amount bigint, p_currency text, p_payment_ref text,
    p_tokens text[])
RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY SELECT * FROM pay_sweeper_apply(p_psp, p_event_id, p_kind, p_type,
        psp_token_key(p_psp, p_token, p_tokens), p_reference, p_amount, p_currency,
        p_payment_ref);
END
$$;

REVOKE ALL ON FUNCTION
    psp_token_key(text, text, text[]),
    pay_finish(text, text, bigint, text, text, text, text, bigint, text, int, text, text),
    pay_event_apply(text, text, text, text, text, text, bigint, text, text, text, text[]),
    pay_sweeper_apply(text, text, text, text, text, text, bigint, text, text, text[])
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    pay_finish(text, text, bigint, text, text, text, text, bigint, text, int, text, text),
    pay_event_apply(text, text, text, text, text, text, bigint, text, text, text, text[]),
    pay_sweeper_apply(text, text, text, text, text, text, bigint, text, text, text[])
    TO payments_gateway;
