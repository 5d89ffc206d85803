--
-- PostgreSQL database dump
--



SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: pay_failure_code; Type: TYPE; Schema: public; Owner: -
--

CREATE TYPE public.pay_failure_code AS ENUM (
    'declined',
    'expired',
    'psp_canceled',
    'registration_refused',
    'canceled',
    'voided',
    'authorization_expired',
    'risk_declined',
    'risk_rejected',
    'authentication_required'
);


--
-- Name: pay_status; Type: TYPE; Schema: public; Owner: -
--

CREATE TYPE public.pay_status AS ENUM (
    'NOT_STARTED',
    'EXECUTING',
    'AUTHORIZED',
    'SUCCESS',
    'FAILED',
    'REVIEW'
);


--
-- Name: api_keys_limit(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.api_keys_limit() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    n int;
BEGIN
    PERFORM 1 FROM merchants m WHERE m.merchant_id = NEW.merchant_id FOR UPDATE;
    SELECT count(*) INTO n FROM api_keys k
     WHERE k.merchant_id = NEW.merchant_id AND k.revoked_at IS NULL
       AND k.key_id <> NEW.key_id;
    IF n >= 2 THEN
        RAISE EXCEPTION 'merchant % already has two active API keys', NEW.merchant_id
            USING ERRCODE = 'PY005', HINT = 'revoke one of them first';
    END IF;
    RETURN NEW;
END
$$;


--
-- Name: audit_append(text, text, text, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.audit_append(p_merchant text, p_checkout text, p_action text, p_detail jsonb) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO public.audit_log (merchant_id, chain, at, checkout_id, action, detail)
    VALUES (p_merchant, public.audit_chain_of(p_checkout), pg_catalog.clock_timestamp(),
            p_checkout, p_action, p_detail);
END
$$;


--
-- Name: audit_append_to(text, smallint, text, text, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.audit_append_to(p_merchant text, p_chain smallint, p_checkout text, p_action text, p_detail jsonb) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    IF p_chain IS DISTINCT FROM audit_chain_of(p_checkout) THEN
        RAISE EXCEPTION 'audit_append_to: chain % is not the chain of checkout %', p_chain, p_checkout
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM audit_append(p_merchant, p_checkout, p_action, p_detail);
    RETURN true;
END
$$;


--
-- Name: audit_chain_hash(bytea, text, smallint, bigint, timestamp with time zone, text, text, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.audit_chain_hash(p_prev bytea, p_merchant text, p_chain smallint, p_seq bigint, p_at timestamp with time zone, p_checkout text, p_action text, p_detail jsonb) RETURNS bytea
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT pg_catalog.sha256(p_prev || pg_catalog.convert_to(
        p_merchant || '|' || p_chain::text || '/' || p_seq::text || '|'
        || (extract(epoch FROM p_at) * 1000000)::bigint::text || '|'
        || coalesce(p_checkout, '') || '|' || p_action || '|' || p_detail::text,
        'UTF8'))
$$;


--
-- Name: audit_chain_of(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.audit_chain_of(p_checkout text) RETURNS smallint
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT (CASE WHEN p_checkout IS NULL THEN 0
                 ELSE 1 + pg_catalog.get_byte(pg_catalog.sha256(
                              pg_catalog.convert_to(p_checkout, 'UTF8')), 0) % 64
            END)::smallint
$$;


--
-- Name: audit_heads_forward(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.audit_heads_forward() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR NEW.merchant_id <> OLD.merchant_id
       OR NEW.chain <> OLD.chain
       OR NEW.seq <= OLD.seq
       OR NOT EXISTS (SELECT 1 FROM audit_log a
                       WHERE a.merchant_id = NEW.merchant_id AND a.chain = NEW.chain
                         AND a.seq = NEW.seq AND a.hash = NEW.hash
                         AND a.prev_hash = NEW.prev_hash) THEN
        RAISE EXCEPTION 'audit_heads only moves forward, to a row of its chain (% refused)', TG_OP
            USING ERRCODE = 'PY002';
    END IF;
    RETURN NULL;
END
$$;


--
-- Name: audit_log_link(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.audit_log_link() RETURNS trigger
    LANGUAGE plpgsql
    SET jit TO 'off'
    SET enable_seqscan TO 'off'
    AS $$
DECLARE
    v_seq   bigint;
    v_prev  bytea;
    v_prev2 bytea;
BEGIN
    IF NEW.seq IS NOT NULL OR NEW.prev_hash IS NOT NULL OR NEW.hash IS NOT NULL THEN
        RAISE EXCEPTION 'audit_log: a row''s number and hashes are the database''s to give'
            USING ERRCODE = 'PY002';
    END IF;
    -- the chain's lock, taken in an expression: a PERFORM would be a
    -- query of its own (13,000 instructions an append, bench/RESULTS.md)
    IF pg_catalog.pg_advisory_xact_lock(1437, pg_catalog.hashtext(NEW.merchant_id || ' '
                                                                   || NEW.chain)) IS NULL THEN
        RAISE EXCEPTION 'audit_log_link: no lock';
    END IF;
    -- from the chain's anchor on: a scan of the key backwards checks every
    -- entry of its chain on the index page before it returns the first
    -- (PostgreSQL 15 reads a leaf page whole), about a hundred of them on
    -- a long chain; the anchor is at most eight rows back and bounds it
    SELECT a.seq, a.hash, a.prev_hash INTO v_seq, v_prev, v_prev2
      FROM public.audit_log a
     WHERE a.merchant_id = NEW.merchant_id AND a.chain = NEW.chain
       AND a.seq >= COALESCE((SELECT h.seq FROM public.audit_heads h
                               WHERE h.merchant_id = NEW.merchant_id
                                 AND h.chain = NEW.chain), 0)
     ORDER BY a.seq DESC
     LIMIT 1;
    IF NOT FOUND THEN
        v_seq := 0;
        v_prev := '\x'::bytea;
        IF NEW.chain = 0 THEN
            INSERT INTO public.audit_heads AS h (merchant_id, chain, seq, hash)
            VALUES (NEW.merchant_id, 0, 0, '\x'::bytea)
            ON CONFLICT (merchant_id, chain) DO NOTHING;
        ELSIF NEW.chain BETWEEN 1 AND 64
              AND NOT EXISTS (SELECT 1 FROM public.audit_heads h
                               WHERE h.merchant_id = NEW.merchant_id AND h.chain = NEW.chain) THEN
            PERFORM public.audit_open_chains(NEW.merchant_id);
        END IF;
    END IF;
    -- the anchor to the last row when it is an eighth (not back to where
    -- an older release left it: those heads named their chain's last row)
    IF v_seq % 8 = 0 AND v_seq > 0 THEN
        UPDATE public.audit_heads h
           SET seq = v_seq, prev_hash = v_prev2, hash = v_prev
         WHERE h.merchant_id = NEW.merchant_id AND h.chain = NEW.chain AND h.seq < v_seq;
    END IF;
    NEW.seq := v_seq + 1;
    NEW.prev_hash := v_prev;
    IF NEW.chain = 0 THEN
        NEW.hash := public.audit_row_hash(v_prev, NEW.merchant_id, NEW.seq, NEW.at,
                                          NEW.checkout_id, NEW.action, NEW.detail);
    ELSE
        NEW.hash := public.audit_chain_hash(v_prev, NEW.merchant_id, NEW.chain, NEW.seq,
                                            NEW.at, NEW.checkout_id, NEW.action,
                                            NEW.detail);
    END IF;
    RETURN NEW;
END
$$;


--
-- Name: audit_log_row_checks(text, smallint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.audit_log_row_checks(action text, chain smallint) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE
    AS $$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    -- (a value between two bounds is tested as a member of a range: this
    -- CASE is prepared anew in every transaction, one step per operator,
    -- and the range is one operator where the two bounds were three)
    v_broken := CASE
        WHEN NOT (length(action) <@ int4range(1, 100, '[]')) THEN 'audit_log_action'
        WHEN NOT ((chain >= 0) AND (chain <= 64)) THEN 'audit_log_chain'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "audit_log" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'audit_log', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$$;


--
-- Name: audit_open_chains(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.audit_open_chains(p_merchant text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    -- chain 0's lock: the key audit_log_link takes for a row of chain 0
    PERFORM pg_advisory_xact_lock(1437, hashtext(p_merchant || ' 0'));
    PERFORM 1 FROM audit_heads h WHERE h.merchant_id = p_merchant AND h.chain = 1;
    IF FOUND THEN
        RETURN;   -- another transaction opened them while we waited
    END IF;
    INSERT INTO audit_heads (merchant_id, chain, seq, hash)
    SELECT p_merchant, g::smallint, 0, '\x'::bytea FROM generate_series(1, 64) g;
    PERFORM audit_append(p_merchant, NULL, 'audit:chains_opened',
                         jsonb_build_object('chains', 64));
END
$$;


--
-- Name: audit_row_hash(bytea, text, bigint, timestamp with time zone, text, text, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.audit_row_hash(p_prev bytea, p_merchant text, p_seq bigint, p_at timestamp with time zone, p_checkout text, p_action text, p_detail jsonb) RETURNS bytea
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT pg_catalog.sha256(p_prev || pg_catalog.convert_to(
        p_merchant || '|' || p_seq::text || '|'
        || (extract(epoch FROM p_at) * 1000000)::bigint::text || '|'
        || coalesce(p_checkout, '') || '|' || p_action || '|' || p_detail::text,
        'UTF8'))
$$;


--
-- Name: audit_row_hash(bytea, text, smallint, bigint, timestamp with time zone, text, text, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.audit_row_hash(p_prev bytea, p_merchant text, p_chain smallint, p_seq bigint, p_at timestamp with time zone, p_checkout text, p_action text, p_detail jsonb) RETURNS bytea
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT CASE WHEN p_chain = 0
                THEN public.audit_row_hash(p_prev, p_merchant, p_seq, p_at, p_checkout,
                                           p_action, p_detail)
                ELSE public.audit_chain_hash(p_prev, p_merchant, p_chain, p_seq, p_at,
                                             p_checkout, p_action, p_detail)
           END
$$;


--
-- Name: capture_event_apply(text, text, text, text, bigint, text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.capture_event_apply(p_psp text, p_event_id text, p_kind text, p_reference text, p_amount bigint, p_currency text, p_object_ref text, p_payment_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    n        record;
    cp       captures%ROWTYPE;
    c        checkouts%ROWTYPE;
    o        payment_orders%ROWTYPE;
    x        record;
    w        record;
    v_src    text := 'webhook:' || p_psp || ':' || p_event_id;
    v_m      text;
    v_co     text;
    v_new    bigint;
    v_comm   bigint;
    v_part   bigint;
    v_room   bigint;
    v_free   bigint;
    v_left   bigint;
    v_unit   bigint;
    v_units  bigint;
    v_id     text;
    v_ids    text[] := '{}';
    v_final  boolean := false;
    v_late   boolean := false;
    v_out    text;
    v_byref  boolean := false;
    v_held   bigint;
    v_seller bigint;
    v_kept   bigint;
    v_owed   bigint;
    v_open   bigint;
    v_take   bigint;
    v_sp     bigint;
    v_cp     bigint;
    v_short  bigint := 0;
    v_parts  jsonb := '[]';
BEGIN
    IF p_kind NOT IN ('CAPTURE_SUCCEEDED', 'CAPTURE_FAILED', 'VOID_SUCCEEDED', 'VOID_FAILED') THEN
        RAISE EXCEPTION 'capture_event_apply: unknown kind %', p_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT * INTO n FROM nonce_split(p_reference);
    SELECT * INTO cp FROM captures x
     WHERE x.merchant_id = n.merchant_id AND x.capture_id = n.object_id AND x.psp = p_psp;
    IF NOT FOUND AND coalesce(p_object_ref, '') <> '' THEN
        -- the PSP's id of the capture: ours, or one made from an earlier
        -- event (captured_outside), the one that stands first
        SELECT * INTO cp FROM captures x
         WHERE x.psp = p_psp AND x.psp_ref = p_object_ref
           AND (x.kind = 'capture') = (p_kind LIKE 'CAPTURE_%')
         ORDER BY x.status = 'FAILED', x.created_at
         LIMIT 1;
        v_byref := FOUND;
    END IF;

    IF cp.capture_id IS NULL THEN
        -- a release the PSP names by the checkout, or a capture naming no
        -- capture of ours: the checkout, by its nonce or by the payment
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = n.merchant_id AND ck.checkout_id = n.object_id
           AND ck.psp = p_psp;
        IF NOT FOUND AND coalesce(p_payment_ref, '') <> '' THEN
            SELECT ck.* INTO c FROM psp_payments pp
              JOIN checkouts ck ON ck.merchant_id = pp.merchant_id
                               AND ck.checkout_id = pp.checkout_id
             WHERE pp.psp = p_psp AND pp.payment_ref = p_payment_ref;
        END IF;
        IF c.checkout_id IS NOT NULL AND p_kind LIKE 'VOID_%' THEN
            SELECT * INTO cp FROM captures x
             WHERE x.merchant_id = c.merchant_id AND x.checkout_id = c.checkout_id
               AND x.kind = 'void' AND x.status = 'PENDING'
             ORDER BY x.created_at DESC
             LIMIT 1;
        END IF;
    END IF;

    IF cp.capture_id IS NULL AND c.checkout_id IS NULL THEN
        outcome := 'unknown_capture';
        RETURN;
    END IF;

    v_m := coalesce(cp.merchant_id, c.merchant_id);
    v_co := coalesce(cp.checkout_id, c.checkout_id);
    merchant_id := v_m;
    checkout_id := v_co;

    -- the locks in the order every money function takes them (doc/MONEY.md,
    -- "Lock order"): the checkout, its orders in id order, the capture
    SELECT * INTO c FROM checkouts ck
     WHERE ck.merchant_id = v_m AND ck.checkout_id = v_co FOR UPDATE;
    PERFORM 1 FROM payment_orders po
     WHERE po.merchant_id = v_m AND po.checkout_id = v_co
     ORDER BY po.payment_order_id
       FOR UPDATE;
    IF cp.capture_id IS NOT NULL THEN
        SELECT * INTO cp FROM captures x
         WHERE x.merchant_id = cp.merchant_id AND x.capture_id = cp.capture_id FOR UPDATE;
    ELSIF p_kind LIKE 'CAPTURE_%' AND coalesce(p_object_ref, '') <> '' THEN
        -- by the PSP's id again, under the checkout's lock: the same
        -- capture delivered at once under another event id, looked for
        -- above before either held the lock, was booked meanwhile (a
        -- capture made from an event, captured_outside): found now, it is
        -- that capture's ('already'), never booked a second time
        SELECT * INTO cp FROM captures x
         WHERE x.merchant_id = v_m AND x.checkout_id = v_co
           AND x.psp = p_psp AND x.psp_ref = p_object_ref AND x.kind = 'capture'
         ORDER BY x.status = 'FAILED', x.created_at
         LIMIT 1
           FOR UPDATE;
        v_byref := FOUND;
    END IF;

    IF cp.capture_id IS NOT NULL
       AND (cp.kind = 'capture') <> (p_kind LIKE 'CAPTURE_%') THEN
        outcome := 'object_mismatch';
        RETURN;
    END IF;
    IF coalesce(p_object_ref, '') <> '' AND cp.psp_ref IS NOT NULL
       AND cp.psp_ref <> p_object_ref AND p_kind LIKE 'CAPTURE_%' THEN
        outcome := 'object_mismatch';
        RETURN;
    END IF;

    IF p_kind LIKE 'CAPTURE_%' AND cp.capture_id IS NULL THEN
        -- a capture of the checkout that no capture of ours asked for
        IF p_kind = 'CAPTURE_FAILED' THEN
            IF c.capture_method = 'manual' AND coalesce(p_object_ref, '') <> '' THEN
                -- the reversal of a capture made at the PSP whose own
                -- event is not here yet (delivered later, or kept pending
                -- before this checkout's authorization): not recorded, so
                -- that it is kept and applied once that capture is booked
                -- (recorded now, the capture that follows would stay
                -- booked though the PSP took it back)
                outcome := 'unknown_capture';
                merchant_id := NULL;
                checkout_id := NULL;
                RETURN;
            END IF;
            -- nothing of ours was booked for it: authentic, recorded
            outcome := 'ignored';
            RETURN;
        END IF;
        IF c.capture_method <> 'manual' THEN
            -- an automatic checkout's capture is its payment, booked by
            -- the session's own event
            outcome := 'ignored';
            RETURN;
        END IF;
        IF coalesce(p_payment_ref, '') <> '' AND c.psp_payment_ref IS NOT NULL
           AND c.psp_payment_ref <> p_payment_ref
           AND NOT EXISTS (SELECT 1 FROM psp_payments pp
                            WHERE pp.psp = p_psp AND pp.payment_ref = p_payment_ref
                              AND pp.merchant_id = c.merchant_id
                              AND pp.checkout_id = c.checkout_id) THEN
            -- a capture of another payment than the one the checkout
            -- holds, under its nonce (a second payment, or an intent of
            -- someone else's naming it): booked nowhere, for a person
            outcome := 'object_mismatch';
            RETURN;
        END IF;
        IF c.authorized_at IS NULL AND c.status <> 'EXECUTING' THEN
            -- before its authorization: delivered again until it is here
            outcome := 'unknown_capture';
            merchant_id := NULL;
            checkout_id := NULL;
            RETURN;
        END IF;
        IF coalesce(p_object_ref, '') = '' THEN
            -- no PSP id of its own: nothing tells another capture from
            -- this one delivered again under another event id, so it is
            -- booked nowhere (it could be booked twice), for a person
            outcome := 'object_mismatch';
            RETURN;
        END IF;
        IF upper(coalesce(p_currency, '')) <> c.currency OR coalesce(p_amount, 0) <= 0 THEN
            outcome := 'amount_mismatch';
            RETURN;
        END IF;
        -- the unit of the parts: the database does not know the PSP's
        -- dialect, but the PSP counts this currency in units of at most
        -- psp_unit_coarsest, and what it captured is a multiple of its
        -- own: the largest power of ten within both (a capture of 10000
        -- IDR at a PSP that counts whole rupiah is split in whole rupiah,
        -- so that each order's rest can be captured there; an amount of
        -- 10000.50 IDR, from a PSP that counts sen, in sen)
        v_unit := psp_unit_coarsest(c.currency);
        WHILE v_unit > 1 AND p_amount % v_unit <> 0 LOOP
            v_unit := v_unit / 10;
        END LOOP;
        -- what the orders have not captured, and of it what our captures
        -- in flight (PENDING: asked of the PSP, its word not here yet)
        -- leave: their room is theirs, so that each books when its word
        -- comes, as pay_capture_claim counts them; and of that, how many
        -- whole units
        SELECT coalesce(sum(po.amount - coalesce(po.amount_captured, 0)), 0)::bigint,
               coalesce(sum(greatest(po.amount - coalesce(po.amount_captured, 0)
                                     - coalesce(h.held, 0), 0)), 0)::bigint,
               coalesce(sum(greatest(po.amount - coalesce(po.amount_captured, 0)
                                     - coalesce(h.held, 0), 0)::bigint / v_unit), 0)::bigint
          INTO v_room, v_free, v_units
          FROM payment_orders po
          LEFT JOIN (SELECT x.payment_order_id, sum(x.amount) AS held
                       FROM captures x
                      WHERE x.merchant_id = v_m AND x.checkout_id = v_co
                        AND x.kind = 'capture' AND x.status = 'PENDING'
                      GROUP BY x.payment_order_id) h
                 ON h.payment_order_id = po.payment_order_id
         WHERE po.merchant_id = v_m AND po.checkout_id = v_co;
        IF p_amount > v_room THEN
            outcome := 'amount_mismatch';
            RETURN;
        END IF;
        IF p_amount > v_free THEN
            -- it fits only if a capture of ours in flight never stands
            -- (the PSP refuses one of the two): not recorded, so that the
            -- inbox keeps it and applies it once ours is settled (booked
            -- whole if ours failed, amount_mismatch if it stood)
            outcome := 'unknown_capture';
            merchant_id := NULL;
            checkout_id := NULL;
            RETURN;
        END IF;

        IF c.status = 'EXECUTING' THEN
            -- still EXECUTING here, its authorization never told (Adyen's
            -- AUTHORISATION lost, and its session look-up says
            -- paymentPending for good): the PSP captured the payment, so
            -- it authorized it.  The checkout and its orders are held
            -- first, as that authorization would have held them, then the
            -- capture is booked; left waiting for an authorization that
            -- may never come, the capture (and a reversal of it) would be
            -- booked late or never
            v_id := CASE WHEN length(p_payment_ref) BETWEEN 1 AND 128
                         THEN p_payment_ref END;
            UPDATE checkouts ck
               SET status = 'AUTHORIZED', authorized_at = now(), updated_at = now(),
                   psp_payment_ref = coalesce(ck.psp_payment_ref, v_id)
             WHERE ck.merchant_id = v_m AND ck.checkout_id = v_co;
            IF v_id IS NOT NULL THEN
                INSERT INTO psp_payments (psp, payment_ref, merchant_id, checkout_id)
                VALUES (p_psp, v_id, v_m, v_co)
                ON CONFLICT DO NOTHING;
            END IF;
            INSERT INTO order_events (merchant_id, checkout_id, payment_order_id,
                                      from_status, to_status, source)
            SELECT v_m, v_co, po.payment_order_id, po.status, 'AUTHORIZED', v_src
              FROM payment_orders po
             WHERE po.merchant_id = v_m AND po.checkout_id = v_co
               AND po.status = 'EXECUTING'
             ORDER BY po.seller_account, po.line_no;
            UPDATE payment_orders po
               SET status = 'AUTHORIZED', amount_captured = 0, ledger_updated = false,
                   wallet_updated = false, commission = NULL, updated_at = now()
             WHERE po.merchant_id = v_m AND po.checkout_id = v_co
               AND po.status = 'EXECUTING';
            PERFORM audit_append(v_m, v_co, 'capture:authorized',
                jsonb_build_object('psp', p_psp, 'event_id', p_event_id,
                                   'object', p_object_ref, 'payment', v_id));
            SELECT * INTO c FROM checkouts ck
             WHERE ck.merchant_id = v_m AND ck.checkout_id = v_co;
            v_id := NULL;
        END IF;

        IF p_amount / v_unit > v_units THEN
            -- the orders' rests are not all whole units (an earlier split
            -- in ISO's units): it does not fit in them, so in ISO's units
            v_unit := 1;
            v_units := v_free;
        END IF;

        -- the amount over the orders as each holds what is not captured
        -- nor held by a capture of ours in flight (floor), the units left
        -- one each in line order, all counted in the unit; a capture row
        -- each, as the PSP confirmed it
        FOR x IN
            SELECT r.payment_order_id, r.currency, r.room / v_unit AS room,
                   floor((p_amount / v_unit)::numeric * (r.room / v_unit)
                         / v_units)::bigint AS share,
                   p_amount / v_unit
                   - sum(floor((p_amount / v_unit)::numeric * (r.room / v_unit)
                               / v_units)::bigint) OVER () AS left_over
              FROM (SELECT po.payment_order_id, po.currency, po.line_no,
                           greatest(po.amount - coalesce(po.amount_captured, 0)
                                    - coalesce((SELECT sum(y.amount) FROM captures y
                                                 WHERE y.merchant_id = po.merchant_id
                                                   AND y.payment_order_id = po.payment_order_id
                                                   AND y.kind = 'capture'
                                                   AND y.status = 'PENDING'), 0),
                                    0)::bigint AS room
                      FROM payment_orders po
                     WHERE po.merchant_id = v_m AND po.checkout_id = v_co) r
             ORDER BY r.line_no
        LOOP
            v_left := coalesce(v_left, x.left_over);     -- once, at the first
            v_part := x.share;
            IF v_left > 0 AND x.room > v_part THEN
                v_part := v_part + 1;
                v_left := v_left - 1;
            END IF;
            CONTINUE WHEN v_part = 0;
            v_part := v_part * v_unit;
            v_id := 'cp_' || encode(gen_random_bytes_compat(12), 'hex');
            INSERT INTO captures (merchant_id, capture_id, kind, checkout_id,
                                  payment_order_id, psp, nonce, amount, currency, final,
                                  status, psp_ref)
            VALUES (v_m, v_id, 'capture', v_co, x.payment_order_id, p_psp,
                    v_m || ':' || v_id, v_part, x.currency, false, 'PENDING',
                    nullif(left(coalesce(p_object_ref, ''), 128), ''));
            v_ids := v_ids || v_id;
        END LOOP;
        PERFORM audit_append(v_m, v_co, 'capture:outside',
            jsonb_build_object('psp', p_psp, 'object', p_object_ref, 'amount', p_amount,
                               'captures', to_jsonb(v_ids)));
        -- the PSP's object is the payment itself: it captured the payment
        -- once, and released the rest with it
        v_final := coalesce(p_object_ref, '') <> '' AND p_object_ref = p_payment_ref;
        v_out := 'captured_outside';

    ELSIF p_kind LIKE 'CAPTURE_%' THEN
        IF v_byref AND cp.kind = 'capture' THEN
            -- by the PSP's id: every part it was booked in (a capture made
            -- from an event is one row per order)
            SELECT coalesce(sum(x.amount), 0)::bigint, array_agg(x.capture_id ORDER BY x.capture_id)
              INTO v_room, v_ids
              FROM captures x
             WHERE x.merchant_id = cp.merchant_id AND x.checkout_id = cp.checkout_id
               AND x.psp = p_psp AND x.psp_ref = p_object_ref AND x.kind = 'capture'
               AND x.status = cp.status;
        ELSE
            v_room := cp.amount;
            v_ids := ARRAY[cp.capture_id];
        END IF;
        IF p_amount IS DISTINCT FROM v_room
           OR upper(coalesce(p_currency, '')) <> cp.currency THEN
            outcome := 'amount_mismatch';
            RETURN;
        END IF;
        IF (p_kind = 'CAPTURE_SUCCEEDED' AND cp.status = 'SUCCEEDED')
           OR (p_kind = 'CAPTURE_FAILED' AND cp.status = 'FAILED') THEN
            outcome := 'already';
            RETURN;
        END IF;

        IF p_kind = 'CAPTURE_FAILED' AND cp.status = 'SUCCEEDED' THEN
            -- taken back after the PSP confirmed it: each part's booking
            -- undone, the amount capturable again while the hold lasts.
            -- (Here and below each capture of v_ids, and its order, is
            -- looked up by its key in a subquery of its own, OFFSET 0
            -- keeping it one: as a join or "= ANY (v_ids)", a plan made on
            -- small tables walks the merchant's captures and orders
            -- instead; test plans::each_money_move_reads_...)
            FOR x IN
                SELECT y.* FROM unnest(v_ids) i(id),
                       LATERAL (SELECT * FROM captures c
                                 WHERE c.merchant_id = cp.merchant_id
                                   AND c.capture_id = i.id OFFSET 0) y
                 ORDER BY y.payment_order_id
                   FOR UPDATE OF y
            LOOP
                SELECT * INTO o FROM payment_orders po
                 WHERE po.merchant_id = x.merchant_id
                   AND po.payment_order_id = x.payment_order_id;

                -- what the order holds at the clearing, what its seller
                -- and the commission were credited for it, net (its
                -- captures less its refunds and chargebacks, as booked)
                SELECT coalesce(sum(e.amount) FILTER (
                           WHERE e.account = 'psp_clearing:' || p_psp), 0),
                       coalesce(-sum(e.amount) FILTER (
                           WHERE e.account = 'seller_payable:' || o.seller_account), 0),
                       coalesce(-sum(e.amount) FILTER (
                           WHERE e.account = 'platform_commission'), 0)
                  INTO v_held, v_seller, v_kept
                  FROM ledger_transactions t
                  JOIN ledger_entries e ON e.merchant_id = t.merchant_id
                                       AND e.txn_id = t.txn_id
                 WHERE t.merchant_id = o.merchant_id AND t.checkout_id = o.checkout_id
                   AND t.payment_order_id = o.payment_order_id;
                -- what will be taken of it yet: its PENDING refunds (the
                -- PSP has them), and its OPEN chargebacks from the seller
                SELECT coalesce(sum(r.amount), 0) INTO v_owed FROM refunds r
                 WHERE r.merchant_id = o.merchant_id AND r.seller_account = o.seller_account
                   AND r.currency = o.currency
                   AND r.payment_order_id = o.payment_order_id AND r.status = 'PENDING';
                v_held := v_held - v_owed;
                SELECT coalesce(sum(dp.amount), 0) INTO v_open
                  FROM dispute_parts dp
                 WHERE dp.merchant_id = o.merchant_id
                   AND dp.payment_order_id = o.payment_order_id
                   AND (SELECT d.status FROM disputes d
                         WHERE d.merchant_id = dp.merchant_id
                           AND d.dispute_id = dp.dispute_id) = 'OPEN';

                -- the commission's share of it: the order's commission
                -- less the rule's on what stays captured (a fixed fee
                -- stays with the first unit, rounding with the total),
                -- within what it takes back
                v_comm := least(greatest(coalesce(o.commission, 0)
                                         - commission_of(o.amount_captured - x.amount,
                                                         coalesce(c.commission_bps, 0),
                                                         coalesce(c.commission_fixed, 0)),
                                         0), x.amount);
                -- the order gives back what it holds, its seller at most
                -- its share and what it holds, the commission the rest
                -- (within what it holds: the order holds the two together).
                -- Its OPEN chargebacks are kept back from the seller only
                -- when the order no longer holds the whole capture (the
                -- refunded case): while it does, their parts left the
                -- clearing when they opened and, lost, charge the seller
                -- the part less the commission's share then; kept back
                -- there too, they made the commission give back the
                -- seller's share of the reversal, for good once the
                -- chargeback is won (money-check seed 140198)
                v_take := least(x.amount, greatest(v_held, 0));
                IF v_take < x.amount THEN
                    v_owed := v_owed + v_open;
                END IF;
                v_sp := least(x.amount - v_comm,
                              greatest(v_seller - v_owed, 0), v_take);
                v_cp := v_take - v_sp;
                IF v_cp > greatest(v_kept, 0) THEN
                    v_cp := greatest(v_kept, 0);
                    v_sp := v_take - v_cp;
                END IF;
                IF v_take < x.amount THEN
                    v_short := v_short + (x.amount - v_take);
                    v_parts := v_parts || jsonb_build_object(
                        'payment_order_id', o.payment_order_id, 'capture_id', x.capture_id,
                        'reversed', x.amount, 'taken_back', v_take,
                        'shortfall', x.amount - v_take);
                END IF;

                UPDATE captures y SET status = 'FAILED', commission_part = NULL,
                                      failure = 'reversed by the PSP after it had been captured',
                                      psp_ref = coalesce(y.psp_ref, nullif(p_object_ref, ''))
                 WHERE y.merchant_id = x.merchant_id AND y.capture_id = x.capture_id;
                UPDATE payment_orders po
                   SET amount_captured = po.amount_captured - x.amount,
                       commission = greatest(coalesce(po.commission, 0) - v_cp, 0),
                       updated_at = now()
                 WHERE po.merchant_id = o.merchant_id
                   AND po.payment_order_id = o.payment_order_id;
                PERFORM ledger_book(o.merchant_id, o.checkout_id, o.payment_order_id, 'payment',
                    x.capture_id, v_src, o.currency,
                    ARRAY['psp_clearing:' || p_psp, 'seller_payable:' || o.seller_account,
                          'platform_commission', 'psp_shortfall:' || p_psp],
                    ARRAY[-x.amount, v_sp, v_cp, x.amount - v_take]);
                PERFORM wallet_add(o.merchant_id, o.seller_account, o.currency, -v_sp);
            END LOOP;
            IF v_short > 0 THEN
                PERFORM audit_append(v_m, v_co, 'capture:shortfall',
                    jsonb_build_object('psp', p_psp, 'object', p_object_ref,
                                       'shortfall', v_short, 'orders', v_parts));
                outcome := 'capture_reversed_refunded';
            ELSE
                outcome := 'capture_reversed';
            END IF;
            RETURN;
        END IF;
        IF cp.status <> 'PENDING' THEN
            outcome := 'late_contrary';
            RETURN;
        END IF;
        IF p_kind = 'CAPTURE_FAILED' THEN
            UPDATE captures x SET status = 'FAILED', failure = 'refused by the PSP',
                                  psp_ref = coalesce(x.psp_ref, nullif(p_object_ref, ''))
             WHERE x.merchant_id = cp.merchant_id AND x.capture_id = cp.capture_id;
            outcome := 'applied';
            RETURN;
        END IF;
        IF EXISTS (SELECT 1 FROM unnest(v_ids) i(id),
                          LATERAL (SELECT c.payment_order_id, c.amount
                                     FROM captures c
                                    WHERE c.merchant_id = cp.merchant_id
                                      AND c.capture_id = i.id OFFSET 0) y,
                          LATERAL (SELECT po.amount, po.amount_captured
                                     FROM payment_orders po
                                    WHERE po.merchant_id = cp.merchant_id
                                      AND po.payment_order_id = y.payment_order_id
                                   OFFSET 0) o
                    GROUP BY y.payment_order_id, o.amount, o.amount_captured
                   HAVING coalesce(o.amount_captured, 0) + sum(y.amount) > o.amount) THEN
            -- more than its order has left to capture (no claim makes
            -- such a capture: a bug's, a lying PSP's, or room taken before
            -- captures made at the PSP left ours theirs): nothing booked,
            -- the capture left PENDING (the hold kept for it), recorded
            -- and alerted for a person, never an error that loses the
            -- event
            outcome := 'amount_mismatch';
            RETURN;
        END IF;
        v_final := cp.final;
        v_out := 'applied';
    END IF;

    IF p_kind = 'CAPTURE_SUCCEEDED' THEN
        -- the sellers' wallet rows first, in seller order (doc/MONEY.md,
        -- "Lock order"): a seller's first booking inserts its folded row,
        -- which another transaction booking the same sellers waits on; the
        -- captures below go in order id order
        FOR w IN
            SELECT DISTINCT o.seller_account, o.currency
              FROM unnest(v_ids) i(id),
                   LATERAL (SELECT c.payment_order_id FROM captures c
                             WHERE c.merchant_id = v_m AND c.capture_id = i.id
                            OFFSET 0) y,
                   LATERAL (SELECT po.seller_account, po.currency
                              FROM payment_orders po
                             WHERE po.merchant_id = v_m
                               AND po.payment_order_id = y.payment_order_id
                            OFFSET 0) o
             ORDER BY 1, 2
        LOOP
            PERFORM wallet_add(v_m, w.seller_account, w.currency, 0);
        END LOOP;

        -- each capture of v_ids booked, PENDING -> SUCCEEDED
        FOR x IN
            SELECT y.* FROM unnest(v_ids) i(id),
                   LATERAL (SELECT * FROM captures c
                             WHERE c.merchant_id = v_m AND c.capture_id = i.id
                            OFFSET 0) y
             ORDER BY y.payment_order_id
        LOOP
            SELECT * INTO o FROM payment_orders po
             WHERE po.merchant_id = x.merchant_id AND po.payment_order_id = x.payment_order_id;
            v_new := coalesce(o.amount_captured, 0) + x.amount;
            -- never beyond the authorized amount (the claims count what is
            -- pending, so this is a bug's or a lying PSP's): nothing moves
            IF v_new > o.amount THEN
                RAISE EXCEPTION 'capture %: % captured of order % exceeds its authorized %',
                    x.capture_id, v_new, o.payment_order_id, o.amount
                    USING ERRCODE = 'PY007';
            END IF;
            v_comm := commission_of(v_new, coalesce(c.commission_bps, 0),
                                    coalesce(c.commission_fixed, 0));
            v_part := least(greatest(v_comm - coalesce(o.commission, 0), 0), x.amount);

            UPDATE captures y SET status = 'SUCCEEDED', commission_part = v_part,
                                  psp_ref = coalesce(y.psp_ref, nullif(p_object_ref, ''))
             WHERE y.merchant_id = x.merchant_id AND y.capture_id = x.capture_id;

            -- released here before the PSP's word came (a hold the sweeper
            -- released, the PSP's own release notice crossing the capture):
            -- the PSP holds the money, so it is booked, FAILED -> SUCCESS
            IF o.status = 'FAILED' OR c.status = 'FAILED' THEN
                PERFORM set_config('payments.paid_after_failed', 'on', true);
                v_late := true;
            END IF;
            UPDATE payment_orders po
               SET status = 'SUCCESS', amount_captured = v_new,
                   commission = coalesce(o.commission, 0) + v_part,
                   ledger_updated = true, wallet_updated = true, updated_at = now()
             WHERE po.merchant_id = o.merchant_id AND po.payment_order_id = o.payment_order_id;
            IF o.status IN ('AUTHORIZED', 'FAILED') THEN
                INSERT INTO order_events (merchant_id, checkout_id, payment_order_id,
                                          from_status, to_status, source)
                VALUES (o.merchant_id, o.checkout_id, o.payment_order_id, o.status,
                        'SUCCESS', v_src);
            END IF;

            PERFORM ledger_book(o.merchant_id, o.checkout_id, o.payment_order_id, 'payment',
                x.capture_id, v_src, o.currency,
                ARRAY['psp_clearing:' || p_psp, 'seller_payable:' || o.seller_account,
                      'platform_commission'],
                ARRAY[x.amount, -(x.amount - v_part), -v_part]);
            PERFORM wallet_add(o.merchant_id, o.seller_account, o.currency, x.amount - v_part);
        END LOOP;

        IF c.status IN ('AUTHORIZED', 'FAILED') THEN
            UPDATE checkouts ck SET status = 'SUCCESS', updated_at = now()
             WHERE ck.merchant_id = c.merchant_id AND ck.checkout_id = c.checkout_id;
        END IF;
        IF v_final AND c.hold_closed_at IS NULL THEN
            PERFORM hold_release(c.merchant_id, c.checkout_id, 'voided', v_src);
        END IF;

        outcome := CASE WHEN v_out = 'applied' AND v_late THEN 'captured_after_release'
                        ELSE v_out END;
        RETURN;
    END IF;

    -- a void
    IF p_kind = 'VOID_FAILED' THEN
        IF cp.capture_id IS NOT NULL AND cp.status = 'PENDING' THEN
            UPDATE captures x SET status = 'FAILED', failure = 'refused by the PSP'
             WHERE x.merchant_id = cp.merchant_id AND x.capture_id = cp.capture_id;
            outcome := 'applied';
        ELSE
            outcome := 'already';
        END IF;
        RETURN;
    END IF;

    IF cp.capture_id IS NOT NULL AND cp.status = 'PENDING' THEN
        UPDATE captures x SET status = 'SUCCEEDED',
                              psp_ref = coalesce(x.psp_ref, nullif(p_object_ref, ''))
         WHERE x.merchant_id = cp.merchant_id AND x.capture_id = cp.capture_id;
    ELSIF c.hold_closed_at IS NOT NULL THEN
        outcome := 'already';
        RETURN;
    END IF;

    -- released by our void, or by the PSP itself (what it names no void of
    -- ours for: its own expiry, a cancel at its dashboard)
    PERFORM hold_release(c.merchant_id, c.checkout_id,
                         CASE WHEN cp.capture_id IS NULL THEN 'authorization_expired'
                              ELSE 'voided' END::pay_failure_code, v_src);
    outcome := 'applied';
END
$$;


--
-- Name: capture_unsendable_give_up(text, text, text, text, bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.capture_unsendable_give_up(p_merchant text, p_checkout text, p_capture text, p_currency text, p_unit bigint) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    x  record;
    n  integer := 0;
BEGIN
    IF coalesce(p_unit, 1) <= 1 THEN
        RETURN 0;
    END IF;

    FOR x IN
        UPDATE captures cp
           SET status = 'FAILED', psp_contact = 'none',
               failure = left('never sent: ' || money_decimal(cp.amount, cp.currency)
                              || ' ' || cp.currency || ' is not an amount its PSP takes'
                              || ' (a multiple of ' || money_decimal(p_unit, cp.currency)
                              || ' ' || cp.currency || '), so no request of this capture'
                              || ' was ever made, and nothing moved; capture again with a'
                              || ' new Idempotency-Key, or void the rest', 1000)
         WHERE cp.merchant_id = p_merchant AND cp.checkout_id = p_checkout
           AND (p_capture IS NULL OR cp.capture_id = p_capture)
           AND cp.kind = 'capture' AND cp.status = 'PENDING' AND cp.psp_ref IS NULL
           AND cp.currency = p_currency AND cp.amount % p_unit <> 0
           AND cp.psp = (SELECT ck.psp FROM checkouts ck
                          WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout)
        RETURNING cp.capture_id
    LOOP
        PERFORM audit_append(p_merchant, p_checkout, 'capture:abandoned',
            jsonb_build_object('capture_id', x.capture_id, 'reason', 'not_expressible'));
        n := n + 1;
    END LOOP;

    RETURN n;
END
$$;


--
-- Name: captures_notify(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.captures_notify() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v  captures%ROWTYPE;
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- at commit, the row as it is now: one the same transaction made
        -- and booked (SUCCEEDED) is a capture made from the PSP's event;
        -- one of ours is made PENDING by its claim and committed so,
        -- before the PSP is asked
        SELECT * INTO v FROM captures x
         WHERE x.merchant_id = NEW.merchant_id AND x.capture_id = NEW.capture_id;
        IF v.status IS DISTINCT FROM 'SUCCEEDED' THEN
            RETURN NULL;
        END IF;
        PERFORM notify_enqueue(
            v.merchant_id, 'capture.succeeded', v.checkout_id, v.capture_id,
            jsonb_strip_nulls(jsonb_build_object(
                'capture_id', v.capture_id,
                'checkout_id', v.checkout_id,
                'payment_order_id', v.payment_order_id,
                'status', v.status,
                'amount_minor', v.amount,
                'amount', money_decimal(v.amount, v.currency),
                'currency', v.currency,
                'metadata', v.metadata,
                'psp_ref', v.psp_ref)));
        RETURN NULL;
    END IF;
    IF OLD.status IS NOT DISTINCT FROM NEW.status THEN
        RETURN NULL;
    END IF;
    PERFORM notify_enqueue(
        NEW.merchant_id, 'capture.failed', NEW.checkout_id, NEW.capture_id,
        jsonb_strip_nulls(jsonb_build_object(
            'capture_id', NEW.capture_id,
            'checkout_id', NEW.checkout_id,
            'payment_order_id', NEW.payment_order_id,
            'status', NEW.status,
            'amount_minor', NEW.amount,
            'amount', money_decimal(NEW.amount, NEW.currency),
            'currency', NEW.currency,
            'metadata', NEW.metadata,
            'failure', NEW.failure))
        || jsonb_build_object('reversed', OLD.status = 'SUCCEEDED'));
    RETURN NULL;
END
$$;


--
-- Name: checkout_failure(public.pay_failure_code, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.checkout_failure(p_code public.pay_failure_code, p_failure text) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT CASE WHEN p_code IS NOT NULL THEN
           jsonb_build_object(
               'code', p_code::text,
               'message', CASE p_code
                   -- an off-session charge's decline names the PSP's code
                   WHEN 'declined' THEN 'the PSP declined the payment'
                                        || coalesce(' (' || nullif(p_failure, '') || ')', '')
                   WHEN 'authentication_required' THEN
                       'the card''s issuer asked for the shopper to authenticate the '
                       || 'off-session charge'
                   WHEN 'expired' THEN 'the payment session expired before the shopper paid'
                   WHEN 'psp_canceled' THEN 'the PSP canceled the payment session'
                   WHEN 'canceled' THEN 'the merchant canceled the checkout before it was paid'
                   WHEN 'risk_declined' THEN 'the risk check declined the checkout ('
                                             || coalesce(nullif(p_failure, ''), 'declined') || ')'
                   WHEN 'risk_rejected' THEN 'the checkout was rejected in review ('
                                             || coalesce(nullif(p_failure, ''), 'rejected') || ')'
                   WHEN 'voided' THEN 'the authorization was released before anything was captured'
                   WHEN 'authorization_expired' THEN 'the authorization expired before anything was captured'
                   ELSE coalesce(nullif(p_failure, ''), 'the PSP refused the checkout')
               END)
           END
$$;


--
-- Name: checkout_failure_code(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.checkout_failure_code(p_type text) RETURNS public.pay_failure_code
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT (CASE
                WHEN p_type ILIKE '%expire%' THEN 'expired'
                WHEN p_type ILIKE '%cancel%' THEN 'psp_canceled'
                ELSE 'declined'
            END)::public.pay_failure_code
$$;


--
-- Name: checkout_key_finish(text, text, text, bigint, text, boolean, text, integer, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.checkout_key_finish(p_fn text, p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_valid boolean, p_invalid text, p_response_status integer, p_response_body text, OUT replay boolean, OUT stored_status integer, OUT stored_body text) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    k  idempotency_keys%ROWTYPE;
BEGIN
    UPDATE idempotency_keys ik
       SET state = 'done', lease_until = NULL,
           response_status = p_response_status, response_body = p_response_body,
           -- the answer is kept for the whole TTL from when it is stored:
           -- pay_claim gave the key its TTL and 1/1440 of it more, so an
           -- answer stored within that 1/1440 of the claim keeps the
           -- claim's expiry (the row then changes no indexed column, and
           -- PostgreSQL updates it in place, no index entry added); a later
           -- one counts its TTL, and that 1/1440, from now
           expires_at = CASE WHEN now() - ik.created_at
                                  <= (ik.expires_at - ik.created_at) / 1441
                             THEN ik.expires_at
                             ELSE now() + (ik.expires_at - ik.created_at) END
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       AND ik.state = 'in_progress' AND ik.lease = p_lease
       AND ik.checkout_id = p_checkout_id AND p_valid;
    IF FOUND THEN
        RETURN;
    END IF;

    SELECT * INTO k FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key;
    IF NOT FOUND THEN
        RAISE EXCEPTION '%: no key % for merchant %', p_fn, p_idem_key, p_merchant
            USING ERRCODE = 'PY004';
    END IF;
    IF k.state = 'done' THEN
        replay := true;
        stored_status := k.response_status;
        stored_body := k.response_body;
        RETURN;
    END IF;
    IF p_valid IS NOT TRUE THEN
        RAISE EXCEPTION '%: %', p_fn, p_invalid USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF k.lease IS DISTINCT FROM p_lease THEN
        RAISE EXCEPTION '%: lease % of key % was taken over (now %)',
            p_fn, p_lease, p_idem_key, k.lease USING ERRCODE = 'PY003';
    END IF;
    RAISE EXCEPTION '%: key % belongs to checkout %, not %',
        p_fn, p_idem_key, k.checkout_id, p_checkout_id USING ERRCODE = 'PY004';
END
$$;


--
-- Name: checkout_orders_fail(text, text, text, text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.checkout_orders_fail(p_merchant text, p_checkout_id text, p_psp text, p_failure text, p_source text, p_audit text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_moved  jsonb;
BEGIN
    v_moved := checkout_orders_failed(p_merchant, p_checkout_id, p_source);

    -- the PSP's refusal, as the moves it made, on the audit chain
    IF v_moved IS NOT NULL THEN
        PERFORM audit_append(p_merchant, p_checkout_id, p_audit,
            jsonb_build_object('from', 'EXECUTING', 'to', 'FAILED',
                               'psp', p_psp, 'failure', p_failure,
                               'payment_orders', v_moved));
    END IF;
END
$$;


--
-- Name: checkout_orders_failed(text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.checkout_orders_failed(p_merchant text, p_checkout_id text, p_source text) RETURNS jsonb
    LANGUAGE sql
    SET search_path TO 'public', 'pg_temp'
    AS $$
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
               'EXECUTING', 'FAILED', p_source
          FROM moved ORDER BY moved.line_no
    )
    SELECT jsonb_agg(moved.payment_order_id ORDER BY moved.line_no) FROM moved;
$$;


--
-- Name: checkout_payment_under_way(text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.checkout_payment_under_way(p_psp text, p_merchant text, p_checkout text) RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM webhook_events we
         WHERE we.merchant_id = p_merchant AND we.checkout_id = p_checkout
           AND we.kind = 'PENDING' AND we.psp = p_psp
           AND we.type IN ('PENDING', 'checkout.session.completed'));
END
$$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: checkout_risk; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.checkout_risk (
    merchant_id text NOT NULL,
    checkout_id text NOT NULL,
    verdict text NOT NULL,
    score integer,
    reason text,
    source text NOT NULL,
    decided_at timestamp with time zone DEFAULT now() NOT NULL,
    review_until timestamp with time zone,
    reviewed text,
    reviewed_at timestamp with time zone,
    review_key text
);


--
-- Name: TABLE checkout_risk; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.checkout_risk IS 'the risk check''s verdict on a checkout before any PSP call (doc/RISK.md)';


--
-- Name: COLUMN checkout_risk.verdict; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.checkout_risk.verdict IS 'allow, deny or review: the provider''s, or the on_error= policy''s when source is on_error';


--
-- Name: COLUMN checkout_risk.score; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.checkout_risk.score IS 'the provider''s score, 0..1000 (NULL: none given)';


--
-- Name: COLUMN checkout_risk.reason; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.checkout_risk.reason IS 'the provider''s reason code, or what failed (timeout, unavailable, malformed, signature) when source is on_error';


--
-- Name: COLUMN checkout_risk.review_until; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.checkout_risk.review_until IS 'a review''s deadline: undecided then, the checkout fails (risk_rejected)';


--
-- Name: COLUMN checkout_risk.reviewed; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.checkout_risk.reviewed IS 'a review''s outcome: approved, rejected or expired by a person or its deadline, or canceled by the shop (NULL: undecided, or not a review)';


--
-- Name: COLUMN checkout_risk.review_key; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.checkout_risk.review_key IS 'A review''s: the Idempotency-Key that registered the checkout (the verdict is written under its lease), which an approval or a rejection takes first; NULL for other verdicts, and for reviews decided before migration 141.';


--
-- Name: checkout_risk_row_checks(public.checkout_risk); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.checkout_risk_row_checks(r public.checkout_risk) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE
    AS $_$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    -- (a value between two bounds is tested as a member of a range: this
    -- CASE is prepared anew in every transaction, one step per operator,
    -- and the range is one operator where the two bounds were three)
    v_broken := CASE
        WHEN NOT (r.reason ~ '^[a-z0-9_.-]{1,64}$'::text) THEN 'checkout_risk_reason'
        WHEN NOT (((r.verdict = 'review'::text) = (r.review_until IS NOT NULL)) AND ((r.reviewed IS NULL) OR (r.verdict = 'review'::text))) THEN 'checkout_risk_review'
        WHEN NOT (((r.reviewed = ANY (ARRAY['approved'::text, 'rejected'::text, 'expired'::text, 'canceled'::text])) AND (r.reviewed_at IS NOT NULL)) OR ((r.reviewed IS NULL) AND (r.reviewed_at IS NULL))) THEN 'checkout_risk_reviewed'
        WHEN NOT (r.score <@ int4range(0, 1000, '[]')) THEN 'checkout_risk_score'
        WHEN NOT (r.source = ANY (ARRAY['provider'::text, 'on_error'::text])) THEN 'checkout_risk_source'
        WHEN NOT (r.verdict = ANY (ARRAY['allow'::text, 'deny'::text, 'review'::text])) THEN 'checkout_risk_verdict'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "checkout_risk" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'checkout_risk', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$_$;


--
-- Name: checkout_route_first(text, text, text, text, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.checkout_route_first(p_merchant text, p_checkout text, p_route text, p_to text, p_passed jsonb) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_seq  int := 0;
    v_psp  text;
    v_why  text;
    p      jsonb;
BEGIN
    IF p_route IS NULL OR p_to IS NULL
       OR (p_passed IS NOT NULL AND jsonb_typeof(p_passed) <> 'array') THEN
        RAISE EXCEPTION 'checkout_route_first: a route, its PSP and an array of those passed over'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF EXISTS (SELECT 1 FROM checkout_routes r
                WHERE r.merchant_id = p_merchant AND r.checkout_id = p_checkout) THEN
        RETURN false;
    END IF;

    FOR p IN SELECT e.value FROM jsonb_array_elements(coalesce(p_passed, '[]')) e LOOP
        v_psp := p ->> 'psp';
        v_why := p ->> 'why';
        IF v_psp IS NULL OR v_why IS NULL
           OR v_why NOT IN ('psp_not_allowed', 'circuit_open') THEN
            RAISE EXCEPTION 'checkout_route_first: a PSP passed over names itself and why (psp_not_allowed or circuit_open)'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        CONTINUE WHEN v_psp = p_to;
        -- the caller's word checked where the database can: a PSP passed
        -- over as not allowed is one the merchant still may not use
        CONTINUE WHEN v_why = 'psp_not_allowed' AND NOT EXISTS (
            SELECT 1 FROM merchants m
             WHERE m.merchant_id = p_merchant AND m.psps IS NOT NULL
               AND NOT v_psp = ANY (m.psps));
        v_seq := v_seq + 1;
        INSERT INTO checkout_routes (merchant_id, checkout_id, seq, route, psp, moved_on)
        VALUES (p_merchant, p_checkout, v_seq, p_route, v_psp, v_why);
        PERFORM audit_append(p_merchant, p_checkout, 'registration:routed',
            jsonb_build_object('route', p_route, 'skipped', v_psp,
                               'skipped_why', v_why));
    END LOOP;

    INSERT INTO checkout_routes (merchant_id, checkout_id, seq, route, psp)
    VALUES (p_merchant, p_checkout, v_seq + 1, p_route, p_to);
    PERFORM audit_append(p_merchant, p_checkout, 'registration:routed',
        jsonb_build_object('route', p_route, 'psp', p_to));
    RETURN true;
END
$$;


--
-- Name: checkout_shown_token(text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.checkout_shown_token(p_token text, p_method text, p_ref text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT coalesce(p_token,
                    CASE WHEN p_method IS NOT NULL AND p_ref NOT LIKE 'v1.%'
                         THEN p_ref END)
$$;


--
-- Name: checkouts_commission_frozen(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.checkouts_commission_frozen() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    RAISE EXCEPTION 'a checkout''s commission is frozen at registration'
        USING ERRCODE = 'PY002';
END
$$;


--
-- Name: checkouts_failed_open(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.checkouts_failed_open() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    -- a hold that was authorized here and then released (its void, its
    -- window passed) is not listed: its session was paid once and is
    -- spent, a look-up would only say so again (pay_webhook_apply_core
    -- answers it 'already')
    IF NEW.status = 'FAILED' AND NEW.psp_url IS NOT NULL AND NEW.expires_at IS NOT NULL
       AND NEW.authorized_at IS NULL THEN
        INSERT INTO failed_open_sessions AS f (merchant_id, checkout_id, expires_at)
        VALUES (NEW.merchant_id, NEW.checkout_id, NEW.expires_at)
        ON CONFLICT (merchant_id, checkout_id) DO UPDATE
            SET expires_at = EXCLUDED.expires_at
          WHERE f.expires_at IS DISTINCT FROM EXCLUDED.expires_at;
    ELSE
        DELETE FROM failed_open_sessions f
         WHERE f.merchant_id = NEW.merchant_id AND f.checkout_id = NEW.checkout_id;
    END IF;
    RETURN NULL;
END
$$;


--
-- Name: checkouts_merchant_terms(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.checkouts_merchant_terms() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_psps   text[];
    v_bps    integer;
    v_fixed  bigint;
BEGIN
    SELECT m.psps, m.commission_bps, f.amount INTO v_psps, v_bps, v_fixed
      FROM merchants m
      LEFT JOIN merchant_commission_fixed f
             ON f.merchant_id = m.merchant_id AND f.currency = NEW.currency
     WHERE m.merchant_id = NEW.merchant_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'checkouts: no merchant %', NEW.merchant_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF NOT NEW.psp = ANY (v_psps) THEN
        RAISE EXCEPTION 'psp % is not one of this merchant''s PSPs', NEW.psp
            USING ERRCODE = 'PY035';
    END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.commission_bps := coalesce(v_bps, 0);
        NEW.commission_fixed := coalesce(v_fixed, 0);
    END IF;
    RETURN NEW;
END
$$;


--
-- Name: checkouts_notify(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.checkouts_notify() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    -- money the PSP took after the checkout had failed here (its signed
    -- success after an expiry, a decline or the sweeper's inference) has a
    -- type of its own: the shop was told it failed
    v_type  text := CASE WHEN NEW.status = 'SUCCESS' AND OLD.status = 'FAILED'
                         THEN 'checkout.paid_after_failure'
                         WHEN NEW.status = 'SUCCESS' THEN 'checkout.succeeded'
                         -- a hold: the money is not the merchant's yet,
                         -- held all the same after a cancel (the PSP's
                         -- authorization came after it) for the shop to
                         -- capture or release
                         WHEN NEW.status = 'AUTHORIZED' THEN 'checkout.authorized'
                         -- the merchant's own cancel (POST .../cancel)
                         WHEN NEW.failure_code::text = 'canceled'
                         THEN 'checkout.canceled'
                         ELSE 'checkout.failed' END;
    -- checkout.authorized tells the hold as its authorization made it:
    -- every order of the checkout AUTHORIZED, nothing captured (both
    -- paths that hold a checkout hold all its orders, pay_webhook_apply_core
    -- and capture_event_apply).  Its orders are not read as they stand at
    -- commit: a capture made at the PSP's dashboard whose event comes
    -- before the authorization's holds the checkout and captures it in
    -- one transaction, and this notification would carry the orders
    -- SUCCESS and captured; the capture is told by the checkout.succeeded
    -- that follows it (the next sequence), as when the events come in order
    v_hold  boolean := NEW.status = 'AUTHORIZED';
BEGIN
    -- a status that became final or AUTHORIZED: the trigger has no WHEN,
    -- which PostgreSQL would read back and prepare at every statement
    -- that names the status (bench/RESULTS.md); every status move but one
    -- to REVIEW and back is such a one
    IF NOT (NEW.status IN ('SUCCESS', 'FAILED', 'AUTHORIZED') AND OLD.status <> NEW.status) THEN
        RETURN NULL;
    END IF;
    -- paid: on the due list of the risk check after the payment
    -- (pay_risk_after_due) when the check asked about it before its PSP
    -- and not yet after; here rather than in a trigger of its own, whose
    -- WHEN would be prepared at every statement that names the status.
    -- The INSERT only for a checkout the check asked about: one that
    -- inserts nothing still opens the table and its indexes
    -- A setup (amount 0, a method saved, no money) is not listed: the
    -- check after the payment is about money taken
    IF NEW.status = 'SUCCESS' AND NEW.amount_total > 0
       AND EXISTS (SELECT 1 FROM checkout_risk rk
                    WHERE rk.merchant_id = NEW.merchant_id
                      AND rk.checkout_id = NEW.checkout_id) THEN
        INSERT INTO checkout_risk_after_due (merchant_id, checkout_id, decided_at)
        SELECT rk.merchant_id, rk.checkout_id, rk.decided_at
          FROM checkout_risk rk
         WHERE rk.merchant_id = NEW.merchant_id
           AND rk.checkout_id = NEW.checkout_id
           AND NOT EXISTS (SELECT 1 FROM checkout_risk_after a
                            WHERE a.merchant_id = NEW.merchant_id
                              AND a.checkout_id = NEW.checkout_id)
        ON CONFLICT DO NOTHING;
    END IF;
    -- notify_enqueue's own test of the endpoints, before the payload is made
    PERFORM 1 FROM notify_endpoints e
     WHERE e.merchant_id = NEW.merchant_id
       AND (e.event_types = '{}' OR v_type = ANY (e.event_types))
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    PERFORM notify_enqueue(
        NEW.merchant_id, v_type, NEW.checkout_id, NEW.checkout_id,
        jsonb_build_object(
            'checkout_id', NEW.checkout_id,
            'status', NEW.status,
            'amount_total_minor', NEW.amount_total,
            'amount_total', money_decimal(NEW.amount_total, NEW.currency),
            'currency', NEW.currency,
            'metadata', NEW.metadata,
            'capture', NEW.capture_method,
            'payment_orders', coalesce((
                SELECT jsonb_agg(jsonb_build_object(
                           'payment_order_id', o.payment_order_id,
                           'status', CASE WHEN v_hold THEN 'AUTHORIZED'::pay_status
                                          ELSE o.status END,
                           'amount_minor', o.amount,
                           'amount', money_decimal(o.amount, o.currency),
                           'currency', o.currency)
                       || CASE WHEN NEW.capture_method = 'manual'
                               THEN jsonb_build_object(
                                        'amount_captured_minor', o.captured,
                                        'amount_captured',
                                        money_decimal(o.captured, o.currency))
                               ELSE '{}'::jsonb END
                       ORDER BY o.line_no)
                  FROM (SELECT po.*,
                               -- what is captured of the order: a manual
                               -- capture's part so far (a final capture of
                               -- part of it: that part, the rest released);
                               -- none recorded, all of a paid order (the
                               -- PSP captured it with the payment,
                               -- captured_for_manual), nothing of another;
                               -- nothing of a hold as it was made
                               CASE WHEN v_hold THEN 0
                                    ELSE coalesce(po.amount_captured,
                                                  CASE WHEN po.status = 'SUCCESS' THEN po.amount
                                                       ELSE 0 END)
                               END AS captured
                          FROM payment_orders po
                         WHERE po.merchant_id = NEW.merchant_id
                           AND po.checkout_id = NEW.checkout_id) o), '[]'::jsonb))
        -- a manual capture's checkout: what its orders captured, in all
        || CASE WHEN NEW.capture_method = 'manual' THEN (
               SELECT jsonb_build_object('amount_captured_minor', x.captured,
                                         'amount_captured',
                                         money_decimal(x.captured, NEW.currency))
                 FROM (SELECT CASE WHEN v_hold THEN 0
                                   ELSE coalesce(sum(coalesce(po.amount_captured,
                                                              CASE WHEN po.status = 'SUCCESS'
                                                                   THEN po.amount ELSE 0 END)), 0)
                              END::bigint AS captured
                         FROM payment_orders po
                        WHERE po.merchant_id = NEW.merchant_id
                          AND po.checkout_id = NEW.checkout_id) x)
                ELSE '{}'::jsonb END
        -- why it failed, on checkout.failed and checkout.canceled; the
        -- failure it came after, on checkout.paid_after_failure
        || CASE WHEN NEW.failure_code IS NULL THEN '{}'::jsonb
                WHEN NEW.status = 'FAILED'
                THEN jsonb_build_object('failure',
                         checkout_failure(NEW.failure_code, NEW.failure))
                WHEN OLD.status = 'FAILED'
                THEN jsonb_build_object('after_failure',
                         checkout_failure(NEW.failure_code, NEW.failure))
                ELSE '{}'::jsonb END);
    RETURN NULL;
END
$$;


--
-- Name: checkouts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.checkouts (
    merchant_id text NOT NULL,
    checkout_id text NOT NULL,
    psp text NOT NULL,
    nonce text NOT NULL,
    currency text NOT NULL,
    amount_total bigint NOT NULL,
    success_url text NOT NULL,
    cancel_url text NOT NULL,
    buyer_email text,
    status public.pay_status NOT NULL,
    psp_request text NOT NULL,
    psp_token text,
    psp_url text,
    expires_at timestamp with time zone NOT NULL,
    failure text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    commission_bps integer,
    commission_fixed bigint,
    psp_payment_ref text,
    failure_code public.pay_failure_code,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    cancel_requested_at timestamp with time zone,
    capture_method text DEFAULT 'automatic'::text NOT NULL,
    hold_closed_at timestamp with time zone,
    authorized_at timestamp with time zone,
    hold_warned_at timestamp with time zone,
    save_method jsonb,
    payment_method_id text,
    method_saved_at timestamp with time zone,
    method_alerted_at timestamp with time zone,
    psp_contact text DEFAULT 'maybe'::text NOT NULL,
    psp_contact_since timestamp with time zone,
    idem_key text
)
WITH (fillfactor='80');


--
-- Name: TABLE checkouts; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.checkouts IS 'One checkout = one PSP session.  psp_request is the exact request body sent to the PSP, fixed at claim time, so a resumed registration is byte-identical.';


--
-- Name: COLUMN checkouts.psp_token; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.checkouts.psp_token IS 'the PSP session token: "v1." sealed text (associated data: nonce), or legacy plaintext';


--
-- Name: COLUMN checkouts.psp_url; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.checkouts.psp_url IS 'the PSP hosted page: "v1." sealed text (associated data: ''psp_url:'' || nonce), or legacy plaintext';


--
-- Name: COLUMN checkouts.failure_code; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.checkouts.failure_code IS 'why the checkout failed: declined, expired, psp_canceled (the PSP canceled the session), canceled (the merchant did, POST /v1/checkouts/{id}/cancel), registration_refused, risk_declined, risk_rejected, voided, authorization_expired (NULL: it never failed)';


--
-- Name: COLUMN checkouts.metadata; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.checkouts.metadata IS 'the merchant''s metadata: a JSON object of strings, {} when none';


--
-- Name: COLUMN checkouts.cancel_requested_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.checkouts.cancel_requested_at IS 'when the merchant asked to cancel it (POST /v1/checkouts/{id}/cancel), while that cancel is undecided; NULL: none, or decided (canceled, or the PSP answered that it was paid)';


--
-- Name: COLUMN checkouts.capture_method; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.checkouts.capture_method IS 'automatic: the PSP captures with the payment; manual: the payment is an authorization (a hold), captured or released later';


--
-- Name: COLUMN checkouts.hold_closed_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.checkouts.hold_closed_at IS 'manual capture: when the rest of the authorization was released (void, the PSP''s final capture, expiry); NULL while it may still be captured';


--
-- Name: COLUMN checkouts.authorized_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.checkouts.authorized_at IS 'manual capture: when the PSP''s authorization came (NULL: none)';


--
-- Name: COLUMN checkouts.hold_warned_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.checkouts.hold_warned_at IS 'manual capture: when the sweeper warned that the authorization expires soon';


--
-- Name: COLUMN checkouts.save_method; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.checkouts.save_method IS 'the shop asked to save the shopper''s method in this checkout: {customer, customer_ref, usage, recurring}; NULL otherwise';


--
-- Name: COLUMN checkouts.payment_method_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.checkouts.payment_method_id IS 'an off-session charge of this saved method (no hosted page); NULL for a checkout the shopper pays';


--
-- Name: COLUMN checkouts.method_saved_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.checkouts.method_saved_at IS 'when the method this checkout saved (save_method) was recorded, by the PSP''s event or the sweeper''s look-up; NULL while none is';


--
-- Name: COLUMN checkouts.method_alerted_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.checkouts.method_alerted_at IS 'when the "paid, its saved method never recorded" alert was raised (pay_sweeper_methods_unsaved), once';


--
-- Name: COLUMN checkouts.psp_contact; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.checkouts.psp_contact IS 'of the registration at the PSP the checkout is bound to: none: no attempt can have reached it; trying: an attempt holds the key''s lease, none before it can have; maybe: one may have (a byte sent, or a holder that never said)';


--
-- Name: COLUMN checkouts.psp_contact_since; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.checkouts.psp_contact_since IS 'when the earliest attempt that may have reached the PSP was claimed (a claim that found psp_contact none); NULL: when the checkout was made';


--
-- Name: COLUMN checkouts.idem_key; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.checkouts.idem_key IS 'The Idempotency-Key that registered the checkout (pay_claim, in the transaction that stored the row), whose lease a cancel asks about while the checkout has no session; NULL on checkouts that had their session, or were decided, before migration 142.';


--
-- Name: checkouts_page(text, text, timestamp with time zone, timestamp with time zone, timestamp with time zone, text, boolean, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.checkouts_page(p_merchant text, p_status text, p_gte timestamp with time zone, p_lt timestamp with time zone, p_at timestamp with time zone, p_id text, p_newer boolean, p_limit integer) RETURNS SETOF public.checkouts
    LANGUAGE sql STABLE
    AS $$
    (SELECT x.*
       FROM checkouts x
      WHERE NOT p_newer
        AND x.merchant_id = p_merchant
        AND x.created_at IS NOT NULL  -- the list index's predicate
        AND (p_status IS NULL OR x.status = p_status::pay_status)
        AND (p_gte IS NULL OR x.created_at >= p_gte)
        AND (p_lt IS NULL OR x.created_at < p_lt)
        AND (p_at IS NULL OR (x.created_at, x.checkout_id) < (p_at, p_id))
      ORDER BY x.merchant_id DESC, x.created_at DESC, x.checkout_id DESC
      LIMIT p_limit)
    UNION ALL
    (SELECT x.*
       FROM checkouts x
      WHERE p_newer
        AND x.merchant_id = p_merchant
        AND x.created_at IS NOT NULL  -- the list index's predicate
        AND (p_status IS NULL OR x.status = p_status::pay_status)
        AND (p_gte IS NULL OR x.created_at >= p_gte)
        AND (p_lt IS NULL OR x.created_at < p_lt)
        AND (p_at IS NULL OR (x.created_at, x.checkout_id) > (p_at, p_id))
      ORDER BY x.merchant_id, x.created_at, x.checkout_id
      LIMIT p_limit);
$$;


--
-- Name: checkouts_row_checks(public.checkouts); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.checkouts_row_checks(r public.checkouts) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE
    AS $_$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    -- (a value between two bounds is tested as a member of a range: this
    -- CASE is prepared anew in every transaction, one step per operator,
    -- and the range is one operator where the two bounds were three)
    -- (an amount of 0 is a save without a charge: pay_claim, its one
    -- writer, stores it only with a save and no orders)
    v_broken := CASE
        WHEN NOT (r.amount_total >= 0) THEN 'checkouts_amount'
        WHEN NOT (length(r.cancel_url) <@ int4range(9, 2048, '[]')) THEN 'checkouts_cancel_url'
        WHEN NOT (r.currency ~ '^[A-Z]{3}$'::text) THEN 'checkouts_currency'
        WHEN NOT (length(r.buyer_email) <= 254) THEN 'checkouts_email'
        WHEN NOT (length(r.failure) <= 1000) THEN 'checkouts_failure'
        WHEN NOT ((length(r.checkout_id) <@ int4range(1, 40, '[]')) AND (r.checkout_id ~ '^[A-Za-z0-9_-]*$'::text)) THEN 'checkouts_id_format'
        WHEN NOT ((r.nonce = ((r.merchant_id || ':'::text) || r.checkout_id)) AND (length(r.nonce) <= 64)) THEN 'checkouts_nonce'
        WHEN NOT (r.psp_contact = ANY (ARRAY['none'::text, 'trying'::text, 'maybe'::text])) THEN 'checkouts_psp_contact'
        WHEN NOT ((length(r.psp) <@ int4range(1, 32, '[]')) AND (r.psp ~ '^[A-Za-z0-9_.-]*$'::text)) THEN 'checkouts_psp_format'
        WHEN NOT (length(r.psp_payment_ref) <@ int4range(1, 128, '[]')) THEN 'checkouts_psp_payment_ref'
        WHEN NOT ((length(r.psp_token) <@ int4range(1, 255, '[]')) OR ((r.psp_token ~~ 'v1.%'::text) AND (length(r.psp_token) <= 600))) THEN 'checkouts_psp_token'
        WHEN NOT ((length(r.psp_url) <@ int4range(1, 2048, '[]')) OR ((r.psp_url ~~ 'v1.%'::text) AND (length(r.psp_url) <= 3000))) THEN 'checkouts_psp_url'
        WHEN NOT (length(r.success_url) <@ int4range(9, 2048, '[]')) THEN 'checkouts_success_url'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "checkouts" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'checkouts', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$_$;


--
-- Name: checkouts_sweep_late(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.checkouts_sweep_late() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    IF OLD.status IS DISTINCT FROM NEW.status
       OR (OLD.psp_token IS NULL AND NEW.psp_token IS NOT NULL
           AND NEW.created_at < clock_timestamp() - interval '30 seconds') THEN
        INSERT INTO sweeper_late AS l (merchant_id, checkout_id, ask, alert)
        VALUES (NEW.merchant_id, NEW.checkout_id, NEW.psp_token IS NOT NULL,
                OLD.status IS DISTINCT FROM NEW.status)
        ON CONFLICT (merchant_id, checkout_id) DO UPDATE
            SET ask = l.ask OR EXCLUDED.ask, alert = l.alert OR EXCLUDED.alert;
    END IF;
    RETURN NULL;
END
$$;


--
-- Name: commission_of(bigint, integer, bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.commission_of(p_amount bigint, p_bps integer, p_fixed bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT CASE WHEN p_amount IS NOT NULL AND p_bps IS NOT NULL AND p_fixed IS NOT NULL
                THEN LEAST(p_amount::numeric,
                           floor(p_amount::numeric * p_bps / 10000) + p_fixed)::bigint
           END
$$;


--
-- Name: commission_refund_part(bigint, bigint, bigint, bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.commission_refund_part(p_amount bigint, p_commission bigint, p_refunded_before bigint, p_refund bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT ((CASE WHEN p_refunded_before + p_refund <= 0 THEN 0::numeric
                  WHEN p_refunded_before + p_refund >= p_amount THEN p_commission::numeric
                  ELSE floor((p_refunded_before + p_refund)::numeric * p_commission
                             / p_amount) END)
            - (CASE WHEN p_refunded_before <= 0 THEN 0::numeric
                    WHEN p_refunded_before >= p_amount THEN p_commission::numeric
                    ELSE floor(p_refunded_before::numeric * p_commission / p_amount) END)
           )::bigint;
$$;


--
-- Name: commission_refund_share(bigint, bigint, bigint, bigint, bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.commission_refund_share(p_amount bigint, p_commission bigint, p_refunded_before bigint, p_booked_before bigint, p_refund bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT least(p_refund::numeric,
                 greatest(0::numeric,
                          CASE WHEN p_refunded_before + p_refund <= 0 THEN 0::numeric
                               WHEN p_refunded_before + p_refund >= p_amount
                               THEN p_commission::numeric
                               ELSE floor((p_refunded_before + p_refund)::numeric
                                          * p_commission / p_amount) END
                          - p_booked_before))::bigint;
$$;


--
-- Name: dispute_event_apply(text, text, text, text, bigint, text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispute_event_apply(p_psp text, p_event_id text, p_kind text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_object_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    n         record;
    c         checkouts%ROWTYPE;
    d         disputes%ROWTYPE;
    o         record;
    v_source  text := 'webhook:' || p_psp || ':' || p_event_id;
    v_second  boolean := false;
    v_excess  boolean := false;
    v_capt    bigint;
    v_held    bigint;
    v_room    bigint;
    v_short   bigint := 0;
    v_comm    bigint;
    v_target  text := CASE p_kind WHEN 'DISPUTE_WON' THEN 'WON'
                                  WHEN 'DISPUTE_LOST' THEN 'LOST' END;
BEGIN
    IF coalesce(p_object_ref, '') = '' THEN
        outcome := 'unknown_dispute';
        RETURN;
    END IF;

    -- the checkout: by the PSP's payment id, else by our nonce
    IF coalesce(p_payment_ref, '') <> '' THEN
        SELECT ck.* INTO c FROM psp_payments pp
          JOIN checkouts ck ON ck.merchant_id = pp.merchant_id AND ck.checkout_id = pp.checkout_id
         WHERE pp.psp = p_psp AND pp.payment_ref = p_payment_ref;
    END IF;
    IF c.checkout_id IS NULL THEN
        SELECT * INTO n FROM nonce_split(p_reference);
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = n.merchant_id AND ck.checkout_id = n.object_id AND ck.psp = p_psp;
    END IF;
    IF c.checkout_id IS NULL OR c.status <> 'SUCCESS' THEN
        outcome := 'unknown_dispute';
        RETURN;
    END IF;
    merchant_id := c.merchant_id;
    checkout_id := c.checkout_id;

    -- never more than the checkout was authorized for; what was captured
    -- of it bounds a new dispute below, under the orders' locks
    IF p_amount IS NULL OR p_amount <= 0 OR p_amount > c.amount_total
       OR upper(coalesce(p_currency, '')) <> c.currency THEN
        outcome := 'amount_mismatch';
        RETURN;
    END IF;

    -- The locks in the order every money function takes them (doc/MONEY.md,
    -- "Lock order"): the checkout (its row lock serialises its events: one
    -- dispute per PSP reference), its orders in id order, the dispute.  The
    -- orders are locked before what they have left is read: a refund of
    -- one of them deciding at this moment (under the same lock) either
    -- commits first and is seen by the split, or waits and sees the
    -- dispute's part.
    PERFORM 1 FROM checkouts ck WHERE ck.merchant_id = c.merchant_id
                                  AND ck.checkout_id = c.checkout_id FOR UPDATE;
    PERFORM 1 FROM payment_orders po
     WHERE po.merchant_id = c.merchant_id AND po.checkout_id = c.checkout_id
     ORDER BY po.payment_order_id
       FOR UPDATE;
    SELECT * INTO d FROM disputes dd WHERE dd.psp = p_psp AND dd.psp_dispute_ref = p_object_ref
       FOR UPDATE;

    IF d.dispute_id IS NULL THEN
        -- what the PSP captured (a released or never captured order holds
        -- nothing), and what the captured orders still hold of it
        SELECT coalesce(sum(coalesce(po.amount_captured, po.amount)), 0),
               coalesce(sum(greatest(coalesce(po.amount_captured, po.amount)
                                     - order_given_back(po.merchant_id,
                                                        po.payment_order_id, NULL),
                                     0)), 0)
          INTO v_capt, v_held
          FROM payment_orders po
         WHERE po.merchant_id = c.merchant_id AND po.checkout_id = c.checkout_id
           AND po.status = 'SUCCESS';
        IF p_amount > v_capt THEN
            outcome := 'amount_mismatch';
            RETURN;
        END IF;
        v_excess := p_amount > v_held;

        -- opened (or closed before we saw it open: opened first, then closed)
        INSERT INTO disputes (merchant_id, dispute_id, psp, psp_dispute_ref, checkout_id,
                              amount, currency, status)
        VALUES (c.merchant_id, 'dp_' || encode(gen_random_bytes_compat(12), 'hex'), p_psp,
                p_object_ref, c.checkout_id, p_amount, c.currency, 'OPEN')
        RETURNING * INTO d;

        -- split over the captured orders within what each still holds
        -- (dispute_split)
        FOR o IN SELECT * FROM dispute_split(c.merchant_id, c.checkout_id, p_amount) x
        LOOP
            -- what the order still holds: its seller's part at most (a
            -- part beyond it is the split's excess, which fills every
            -- order's room first)
            SELECT greatest(coalesce(po.amount_captured, po.amount)
                            - order_given_back(po.merchant_id, po.payment_order_id, NULL), 0)
              INTO v_room
              FROM payment_orders po
             WHERE po.merchant_id = c.merchant_id
               AND po.payment_order_id = o.payment_order_id;
            INSERT INTO dispute_parts (merchant_id, dispute_id, checkout_id, payment_order_id,
                                       seller_account, amount, excess, currency)
            VALUES (c.merchant_id, d.dispute_id, c.checkout_id, o.payment_order_id,
                    o.seller_account, least(o.part, v_room), o.part - least(o.part, v_room),
                    c.currency);
            IF o.part > 0 THEN
                -- the PSP withdrew it: clearing to the disputes account
                PERFORM ledger_book(c.merchant_id, c.checkout_id, o.payment_order_id, 'dispute',
                    d.dispute_id, v_source, c.currency,
                    ARRAY['disputes:' || p_psp, 'psp_clearing:' || p_psp],
                    ARRAY[o.part, -o.part]);
            END IF;
        END LOOP;
        -- more than the orders still hold: booked whole as the PSP says,
        -- the excess spread by what each captured, and alerted
        outcome := CASE WHEN v_excess THEN 'dispute_excess' ELSE 'applied' END;
        IF v_target IS NULL THEN
            RETURN;
        END IF;
    ELSIF v_target IS NULL THEN
        outcome := 'already';       -- opened again (adyen: notice, then chargeback)
        RETURN;
    ELSIF d.status = v_target THEN
        outcome := 'already';
        RETURN;
    ELSIF d.status = 'WON' AND v_target = 'LOST' THEN
        -- a second chargeback after the first was reversed (Adyen's
        -- SECOND_CHARGEBACK, PREARBITRATION_LOST after CHARGEBACK_REVERSED):
        -- the money the win gave back is withdrawn again, for good
        v_second := true;
    ELSIF d.status <> 'OPEN' THEN
        outcome := 'late_contrary';
        RETURN;
    END IF;
    IF d.amount IS DISTINCT FROM p_amount THEN
        outcome := 'amount_mismatch';
        RETURN;
    END IF;

    -- the sellers' wallets in seller order (doc/MONEY.md, "Lock order");
    -- room: what each order still holds without this dispute (read while
    -- it is WON, so order_given_back leaves it out), for a loss after a win
    -- captured, commission, given back and commission back: what the
    -- commission's share of the part a loss takes is reckoned against
    FOR o IN SELECT dp.payment_order_id, dp.seller_account, dp.amount, dp.excess,
                    greatest(coalesce(po.amount_captured, po.amount)
                             - order_given_back(po.merchant_id, po.payment_order_id, NULL),
                             0) AS room,
                    coalesce(po.amount_captured, po.amount) AS captured,
                    coalesce(po.commission, 0) AS commission,
                    g.given_back, g.commission_back
               FROM dispute_parts dp
              -- each part's order by its key, in a subquery of its own
              -- (OFFSET 0): as a join, a plan made on small tables walks
              -- the merchant's orders (test plans::each_money_move_reads_...)
              CROSS JOIN LATERAL (SELECT * FROM payment_orders x
                                   WHERE x.merchant_id = dp.merchant_id
                                     AND x.payment_order_id = dp.payment_order_id
                                  OFFSET 0) po
              CROSS JOIN LATERAL order_given_back_for_good(po.merchant_id,
                                                           po.payment_order_id) g
              WHERE dp.merchant_id = d.merchant_id AND dp.dispute_id = d.dispute_id
                AND dp.amount + dp.excess > 0
              ORDER BY dp.seller_account, dp.payment_order_id
    LOOP
        IF v_target = 'WON' AND NOT v_second THEN
            -- the money comes back to the PSP balance
            PERFORM ledger_book(d.merchant_id, d.checkout_id, o.payment_order_id, 'dispute',
                d.dispute_id, v_source, d.currency,
                ARRAY['psp_clearing:' || p_psp, 'disputes:' || p_psp],
                ARRAY[o.amount + o.excess, -(o.amount + o.excess)]);
        ELSE
            -- lost: the order bears its part as a refund of it would (the
            -- commission its share, the seller the rest), the excess is
            -- the platform's.  Lost after won, from the PSP balance: the
            -- win gave the part back to the order, which may have been
            -- refunded since (its claim saw no open dispute), so the order
            -- bears it only within what it still holds; the rest is the
            -- platform's too, alerted as an excess
            v_room := CASE WHEN v_second THEN least(o.amount, o.room) ELSE o.amount END;
            IF v_room < o.amount THEN
                v_excess := true;
            END IF;
            v_comm := commission_refund_share(o.captured, o.commission, o.given_back,
                                              o.commission_back, v_room);
            PERFORM ledger_book(d.merchant_id, d.checkout_id, o.payment_order_id, 'dispute',
                d.dispute_id, v_source, d.currency,
                ARRAY['seller_payable:' || o.seller_account, 'platform_commission',
                      'psp_shortfall:' || p_psp,
                      CASE WHEN v_second THEN 'psp_clearing:' ELSE 'disputes:' END || p_psp],
                ARRAY[v_room - v_comm, v_comm, o.amount - v_room + o.excess,
                      -(o.amount + o.excess)]);
            PERFORM wallet_add(d.merchant_id, o.seller_account, d.currency,
                               -(v_room - v_comm));
            UPDATE dispute_parts dp SET borne = v_room, commission_part = v_comm
             WHERE dp.merchant_id = d.merchant_id AND dp.dispute_id = d.dispute_id
               AND dp.payment_order_id = o.payment_order_id;
            v_short := v_short + o.amount - v_room + o.excess;
        END IF;
    END LOOP;
    UPDATE disputes dd SET status = v_target
     WHERE dd.merchant_id = d.merchant_id AND dd.dispute_id = d.dispute_id;
    IF v_short > 0 THEN
        PERFORM audit_append(d.merchant_id, d.checkout_id, 'dispute:shortfall',
            jsonb_build_object('psp', p_psp, 'dispute', d.dispute_id,
                               'psp_dispute', p_object_ref, 'shortfall', v_short));
    END IF;
    outcome := CASE WHEN v_excess THEN 'dispute_excess' ELSE 'applied' END;
END
$$;


--
-- Name: dispute_inquiry_closed(text, text, text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispute_inquiry_closed(p_psp text, p_event_id text, p_reference text, p_payment_ref text, p_object_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    n     record;
    d     disputes%ROWTYPE;
    v     record;
    v_m   text;
    v_co  text;
BEGIN
    -- the checkout: the dispute's, else by the PSP's payment id, else by
    -- our nonce
    IF coalesce(p_object_ref, '') <> '' THEN
        SELECT dd.merchant_id, dd.checkout_id INTO v_m, v_co
          FROM disputes dd WHERE dd.psp = p_psp AND dd.psp_dispute_ref = p_object_ref;
    END IF;
    IF v_co IS NULL AND coalesce(p_payment_ref, '') <> '' THEN
        SELECT pp.merchant_id, pp.checkout_id INTO v_m, v_co
          FROM psp_payments pp WHERE pp.psp = p_psp AND pp.payment_ref = p_payment_ref;
    END IF;
    IF v_co IS NULL THEN
        SELECT * INTO n FROM nonce_split(p_reference);
        SELECT ck.merchant_id, ck.checkout_id INTO v_m, v_co
          FROM checkouts ck
         WHERE ck.merchant_id = n.merchant_id AND ck.checkout_id = n.object_id
           AND ck.psp = p_psp;
    END IF;
    IF v_co IS NULL THEN
        outcome := 'unknown_dispute';
        RETURN;
    END IF;
    merchant_id := v_m;
    checkout_id := v_co;
    outcome := 'ignored';

    -- this release's inquiry (nothing booked): nothing to lock
    IF NOT EXISTS (SELECT 1 FROM disputes dd
                    WHERE dd.merchant_id = v_m AND dd.checkout_id = v_co
                      AND dd.psp = p_psp AND dd.status = 'OPEN'
                      AND (dd.psp_dispute_ref = p_object_ref
                           OR coalesce(p_object_ref, '') = '')) THEN
        RETURN;
    END IF;

    PERFORM 1 FROM checkouts ck WHERE ck.merchant_id = v_m AND ck.checkout_id = v_co
       FOR UPDATE;
    PERFORM 1 FROM payment_orders po
     WHERE po.merchant_id = v_m AND po.checkout_id = v_co
     ORDER BY po.payment_order_id
       FOR UPDATE;

    FOR d IN SELECT * FROM disputes dd
              WHERE dd.merchant_id = v_m AND dd.checkout_id = v_co AND dd.psp = p_psp
                AND (dd.psp_dispute_ref = p_object_ref OR coalesce(p_object_ref, '') = '')
              ORDER BY dd.dispute_id
                FOR UPDATE
    LOOP
        CONTINUE WHEN NOT dispute_inquiry_held(d.merchant_id, d.dispute_id);

        -- as won: found by the checkout's nonce, so that it is this one
        SELECT * INTO v FROM dispute_event_apply(p_psp, p_event_id, 'DISPUTE_WON',
                                                 d.merchant_id || ':' || d.checkout_id,
                                                 d.amount, d.currency, NULL,
                                                 d.psp_dispute_ref) x;
        IF v.outcome IS DISTINCT FROM 'applied' THEN
            -- an OPEN dispute, locked, of its own amount: never
            RAISE EXCEPTION 'dispute_inquiry_closed: releasing dispute % of % was %',
                d.dispute_id, d.merchant_id, v.outcome;
        END IF;
        PERFORM audit_append(d.merchant_id, d.checkout_id, 'dispute:inquiry_released',
            jsonb_build_object('psp', p_psp, 'dispute', d.dispute_id,
                               'psp_dispute', d.psp_dispute_ref, 'amount', d.amount,
                               'currency', d.currency, 'event_id', p_event_id));
        outcome := 'applied';
    END LOOP;
END
$$;


--
-- Name: dispute_inquiry_held(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispute_inquiry_held(p_merchant text, p_dispute_id text) RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $_$
DECLARE
    d            disputes%ROWTYPE;
    o            record;
    v_status     text;
    v_withdrawn  boolean;
BEGIN
    SELECT * INTO d FROM disputes dd
     WHERE dd.merchant_id = p_merchant AND dd.dispute_id = p_dispute_id;
    IF d.dispute_id IS NULL OR d.status <> 'OPEN' THEN
        RETURN false;
    END IF;

    -- the event that opened it, by the checkout's index
    SELECT pe.type, pe.body, pe.received_at INTO o
      FROM psp_events pe
     WHERE pe.checkout_id = d.checkout_id AND pe.merchant_id = d.merchant_id
       AND pe.psp = d.psp AND pe.object_ref = d.psp_dispute_ref
       AND pe.kind = 'DISPUTE_OPENED' AND pe.outcome IN ('applied', 'dispute_excess')
     ORDER BY pe.received_at
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN false;
    END IF;

    IF o.type = 'charge.dispute.created' THEN
        -- the bytes were verified and read as JSON when kept; bytes jsonb
        -- refuses (a \u0000) say nothing of an inquiry
        BEGIN
            v_status := convert_from(o.body, 'UTF8')::jsonb #>> '{data,object,status}';
        EXCEPTION WHEN OTHERS THEN
            v_status := NULL;
        END;
        IF v_status IS NULL OR v_status NOT LIKE 'warning\_%' THEN
            RETURN false;
        END IF;
    ELSIF o.type <> 'NOTIFICATION_OF_CHARGEBACK' THEN
        RETURN false;
    END IF;

    -- its withdrawal, kept with or without the checkout (the months from
    -- the opening on: planned with the bound, so no older month is read)
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM psp_events pe'
            ' WHERE pe.received_at >= $1 AND pe.psp = $2 AND pe.object_ref = $3'
            ' AND pe.type IN (''charge.dispute.funds_withdrawn'', ''CHARGEBACK''))'
       INTO v_withdrawn USING o.received_at - interval '31 days', d.psp, d.psp_dispute_ref;
    RETURN NOT v_withdrawn;
END
$_$;


--
-- Name: dispute_split(text, text, bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.dispute_split(p_merchant text, p_checkout text, p_amount bigint) RETURNS TABLE(payment_order_id text, seller_account text, part bigint)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_id        text[];
    v_seller    text[];
    v_captured  bigint[];
    v_room      bigint[];
    v_part      bigint[];
    v_rooms     bigint;
    v_total     bigint;
    v_fit       bigint;
    v_left      bigint;
    v_excess    bigint;
    v_add       bigint;
    v_n         int;
BEGIN
    SELECT array_agg(x.payment_order_id ORDER BY x.line_no),
           array_agg(x.seller_account ORDER BY x.line_no),
           array_agg(x.captured ORDER BY x.line_no),
           array_agg(greatest(x.captured - order_given_back(p_merchant,
                                                            x.payment_order_id, NULL), 0)
                     ORDER BY x.line_no)
      INTO v_id, v_seller, v_captured, v_room
      FROM (SELECT po.payment_order_id, po.seller_account, po.line_no,
                   coalesce(po.amount_captured, po.amount) AS captured
              FROM payment_orders po
             WHERE po.merchant_id = p_merchant AND po.checkout_id = p_checkout
               AND po.status = 'SUCCESS') x
     WHERE x.captured > 0;
    v_n := coalesce(array_length(v_id, 1), 0);
    IF v_n = 0 THEN
        RETURN;
    END IF;

    SELECT sum(x) INTO v_rooms FROM unnest(v_room) x;
    SELECT sum(x) INTO v_total FROM unnest(v_captured) x;
    v_fit := least(p_amount, v_rooms);

    -- within each order's room, in proportion to it (floor)
    FOR i IN 1 .. v_n LOOP
        v_part[i] := CASE WHEN v_rooms = 0 THEN 0
                          ELSE floor(v_fit::numeric * v_room[i] / v_rooms)::bigint END;
    END LOOP;
    -- the floors' remainder (fewer units than orders), a unit each in line
    -- order to the orders with room left
    v_left := v_fit - (SELECT sum(x) FROM unnest(v_part) x);
    FOR i IN 1 .. v_n LOOP
        EXIT WHEN v_left = 0;
        IF v_part[i] < v_room[i] THEN
            v_part[i] := v_part[i] + 1;
            v_left := v_left - 1;
        END IF;
    END LOOP;

    -- more than every order still holds: the rest by what each captured
    -- (floor), the floors' remainder a unit each in line order
    v_excess := p_amount - v_fit;
    IF v_excess > 0 THEN
        v_left := v_excess;
        FOR i IN 1 .. v_n LOOP
            v_add := floor(v_excess::numeric * v_captured[i] / v_total)::bigint;
            v_part[i] := v_part[i] + v_add;
            v_left := v_left - v_add;
        END LOOP;
        FOR i IN 1 .. v_n LOOP
            EXIT WHEN v_left = 0;
            v_part[i] := v_part[i] + 1;
            v_left := v_left - 1;
        END LOOP;
    END IF;

    RETURN QUERY SELECT v_id[i], v_seller[i], v_part[i] FROM generate_series(1, v_n) i;
END
$$;


--
-- Name: disputes_notify(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.disputes_notify() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status IS NOT DISTINCT FROM NEW.status THEN
        RETURN NULL;
    END IF;
    PERFORM notify_enqueue(
        NEW.merchant_id,
        CASE NEW.status WHEN 'OPEN' THEN 'dispute.opened'
                        WHEN 'WON' THEN 'dispute.won' ELSE 'dispute.lost' END,
        NEW.checkout_id, NEW.dispute_id,
        jsonb_build_object(
            'dispute_id', NEW.dispute_id,
            'checkout_id', NEW.checkout_id,
            'status', NEW.status,
            'amount_minor', NEW.amount,
            'amount', money_decimal(NEW.amount, NEW.currency),
            'currency', NEW.currency));
    RETURN NULL;
END
$$;


--
-- Name: evidence_append_only(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.evidence_append_only() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'webhook_events' THEN
        IF OLD.outcome = 'received' AND NEW.outcome <> 'received'
           AND NEW.psp = OLD.psp AND NEW.event_id = OLD.event_id
           AND NEW.kind = OLD.kind AND NEW.type = OLD.type
           AND NEW.received_at = OLD.received_at THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'PY002';
END
$$;


--
-- Name: gauge_count(bigint, integer, regclass); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.gauge_count(p_counted bigint, p_cap integer, p_index regclass) RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT CASE WHEN p_counted < p_cap THEN p_counted
                ELSE greatest(p_counted, (SELECT i.reltuples::bigint FROM pg_catalog.pg_class i
                                           WHERE i.oid = p_index))
           END
$$;


--
-- Name: gen_random_bytes_compat(integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.gen_random_bytes_compat(p_n integer) RETURNS bytea
    LANGUAGE sql
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT substr(decode(replace(gen_random_uuid()::text, '-', '')
                         || replace(gen_random_uuid()::text, '-', ''), 'hex'), 1, p_n);
$$;


--
-- Name: hold_release(text, text, public.pay_failure_code, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.hold_release(p_merchant text, p_checkout text, p_code public.pay_failure_code, p_source text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    o  record;
BEGIN
    FOR o IN
        SELECT po.payment_order_id, po.status
          FROM payment_orders po
         WHERE po.merchant_id = p_merchant AND po.checkout_id = p_checkout
           AND po.status = 'AUTHORIZED'
         ORDER BY po.line_no
    LOOP
        UPDATE payment_orders po SET status = 'FAILED', updated_at = now()
         WHERE po.merchant_id = p_merchant AND po.payment_order_id = o.payment_order_id;
        INSERT INTO order_events (merchant_id, checkout_id, payment_order_id,
                                  from_status, to_status, source)
        VALUES (p_merchant, p_checkout, o.payment_order_id, 'AUTHORIZED', 'FAILED', p_source);
    END LOOP;

    UPDATE checkouts ck
       SET hold_closed_at = coalesce(ck.hold_closed_at, now()),
           status = CASE WHEN ck.status = 'AUTHORIZED' THEN 'FAILED'::pay_status
                         ELSE ck.status END,
           failure_code = CASE WHEN ck.status = 'AUTHORIZED' THEN p_code
                               ELSE ck.failure_code END,
           updated_at = now()
     WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout;

    PERFORM audit_append(p_merchant, p_checkout, 'hold:released',
        jsonb_build_object('code', p_code, 'source', p_source));
END
$$;


--
-- Name: idempotency_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.idempotency_keys (
    merchant_id text NOT NULL,
    idem_key text NOT NULL,
    fingerprint text NOT NULL,
    state text NOT NULL,
    lease bigint NOT NULL,
    lease_until timestamp with time zone,
    checkout_id text,
    response_status integer,
    response_body text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL
)
WITH (fillfactor='80');


--
-- Name: TABLE idempotency_keys; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.idempotency_keys IS 'Idempotency keys.  lease is a fencing counter per key (1 on the first claim, +1 on every take-over): a holder whose lease was taken over cannot finish. fillfactor leaves room on the page so that pay_finish''s update of the row (no indexed column changes) stays a HOT update. checkout_id has no foreign key on purpose: the key row is inserted first (it is what concurrent requests serialise on) and the checkout after it, and a ''duplicate'' key points at no checkout of its own. merchant_id has no foreign key either, here and in checkouts: a foreign key check takes a KEY SHARE lock on the merchant''s one row, and concurrent registrations of a merchant would turn it into MultiXacts (about five per registration with 8 clients: SLRU traffic on the hot path, wraparound vacuums within a day at payment volumes). pay_claim checks that the merchant exists with a plain read, and merchants are never deleted (merchants_keep), which together give the same guarantee.';


--
-- Name: idempotency_keys_row_checks(public.idempotency_keys); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.idempotency_keys_row_checks(r public.idempotency_keys) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE
    AS $_$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    -- (a value between two bounds is tested as a member of a range: this
    -- CASE is prepared anew in every transaction, one step per operator,
    -- and the range is one operator where the two bounds were three)
    v_broken := CASE
        WHEN NOT ((length(r.fingerprint) = 64) AND (r.fingerprint ~ '^[0-9a-f]*$'::text)) THEN 'idempotency_keys_fingerprint_format'
        WHEN NOT ((length(r.idem_key) <@ int4range(1, 255, '[]')) AND (r.idem_key ~ '^[ -~]*$'::text)) THEN 'idempotency_keys_key_format'
        WHEN NOT (r.lease > 0) THEN 'idempotency_keys_lease'
        WHEN NOT (r.state = ANY (ARRAY['in_progress'::text, 'done'::text])) THEN 'idempotency_keys_state'
        WHEN NOT (((r.state = 'in_progress'::text) AND (r.lease_until IS NOT NULL) AND (r.response_status IS NULL) AND (r.response_body IS NULL)) OR ((r.state = 'done'::text) AND (r.lease_until IS NULL) AND (r.response_status IS NOT NULL) AND (r.response_body IS NOT NULL))) THEN 'idempotency_keys_state_fields'
        WHEN NOT (r.response_status <@ int4range(100, 599, '[]')) THEN 'idempotency_keys_status'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "idempotency_keys" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'idempotency_keys', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$_$;


--
-- Name: inquiry_ends_applied_again(bigint, bigint); Type: PROCEDURE; Schema: public; Owner: -
--

CREATE PROCEDURE public.inquiry_ends_applied_again(INOUT p_events bigint DEFAULT NULL::bigint, INOUT p_partitions bigint DEFAULT NULL::bigint)
    LANGUAGE plpgsql
    AS $_$
DECLARE
    v_part  text;
    v_rows  bigint;
BEGIN
    p_events := 0;
    p_partitions := 0;

    LOOP
        SELECT u.partition INTO v_part FROM public.inquiry_ends_unread u
         ORDER BY u.partition LIMIT 1;
        EXIT WHEN v_part IS NULL;

        IF to_regclass(format('public.%I', v_part)) IS NOT NULL THEN
            -- no JIT: compiling it took 2.7 s of the 3 s a month of 83,000
            -- events took to read (0.3 s without)
            PERFORM set_config('jit', 'off', true);
            EXECUTE format($sql$
                UPDATE public.%I pe
                   SET state = 'pending', applied_at = NULL
                 WHERE pe.state = 'applied' AND pe.kind = 'IGNORED'
                   AND pe.type IN ('charge.dispute.closed', 'ISSUER_RESPONSE_TIMEFRAME_EXPIRED')
                   AND (EXISTS (SELECT 1 FROM public.disputes d
                                 WHERE d.psp = pe.psp AND d.psp_dispute_ref = pe.object_ref
                                   AND d.status = 'OPEN')
                        OR (pe.psp, pe.reference) IN
                           (SELECT d.psp, d.merchant_id || ':' || d.checkout_id
                              FROM public.disputes d WHERE d.status = 'OPEN'))$sql$, v_part);
            GET DIAGNOSTICS v_rows = ROW_COUNT;
            p_events := p_events + v_rows;

            -- an end kept here, with several shards on the home one, for a
            -- dispute on another (migration 126): nothing here its own;
            -- pending and noted waiting, so that the home sweeper forwards
            -- it however old to the shard that owns its payment
            -- (pay_inbox_homeless); not one whose dispute's withdrawal is
            -- kept here too, which the owner would not see; the disputes
            -- and the withdrawals hashed as above
            EXECUTE format($sql$
                UPDATE public.%I pe
                   SET state = 'pending', applied_at = NULL,
                       forward_tried_at = NULL, forward_waiting_at = now()
                 WHERE pe.state = 'applied' AND pe.kind = 'IGNORED'
                   AND pe.type IN ('charge.dispute.closed', 'ISSUER_RESPONSE_TIMEFRAME_EXPIRED')
                   AND pe.merchant_id IS NULL
                   AND ((pe.type = 'charge.dispute.closed'
                         AND (coalesce(pe.payment_ref, '') <> '' OR coalesce(pe.object_ref, '') <> ''))
                        OR coalesce(pe.reference, '') ~ '^[A-Za-z0-9_-]{1,64}:[A-Za-z0-9_-]{1,64}$')
                   AND NOT EXISTS (SELECT 1 FROM public.disputes d
                                    WHERE d.psp = pe.psp AND d.psp_dispute_ref = pe.object_ref)
                   AND (pe.psp, coalesce(pe.reference, '')) NOT IN
                       (SELECT d.psp, d.merchant_id || ':' || d.checkout_id FROM public.disputes d)
                   AND NOT EXISTS (SELECT 1 FROM public.psp_payments pp
                                    WHERE pp.psp = pe.psp AND pp.payment_ref = pe.payment_ref)
                   AND NOT EXISTS (SELECT 1 FROM public.merchants m
                                    WHERE m.merchant_id = split_part(pe.reference, ':', 1))
                   AND (coalesce(pe.object_ref, '') = ''
                        OR (pe.psp, pe.object_ref) NOT IN
                           (SELECT w.psp, w.object_ref FROM public.psp_events w
                             WHERE w.type IN ('charge.dispute.funds_withdrawn', 'CHARGEBACK')
                               AND w.object_ref IS NOT NULL))$sql$, v_part);
            GET DIAGNOSTICS v_rows = ROW_COUNT;
            p_events := p_events + v_rows;
        END IF;
        DELETE FROM public.inquiry_ends_unread WHERE partition = v_part;
        p_partitions := p_partitions + 1;
        COMMIT;
    END LOOP;
END
$_$;


--
-- Name: ledger_balance_check(text, bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_balance_check(p_merchant text, p_txn bigint) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'public', 'pg_temp'
    SET jit TO 'off'
    SET enable_seqscan TO 'off'
    AS $$
DECLARE
    v_entries  bigint;
    v_bad      text;
BEGIN
    SELECT coalesce(sum(c.n), 0), min(c.currency) FILTER (WHERE c.s <> 0)
      INTO v_entries, v_bad
      FROM (SELECT e.currency, count(*) AS n, sum(e.amount) AS s
              FROM ledger_entries e
             WHERE e.merchant_id = p_merchant AND e.txn_id = p_txn
             GROUP BY e.currency) c;
    IF v_entries < 2 OR v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'ledger transaction %/% is not balanced (% entries, % off)',
            p_merchant, p_txn, v_entries, coalesce(v_bad, '-')
            USING ERRCODE = 'PY006';
    END IF;
END
$$;


--
-- Name: ledger_balanced(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_balanced() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_entries  bigint;
    v_min      text;
    v_max      text;
    v_sum      numeric;
BEGIN
    -- one aggregate; the verdict (ledger_balance_check) only for what it flags
    SELECT count(*), min(e.currency), max(e.currency), sum(e.amount)
      INTO v_entries, v_min, v_max, v_sum
      FROM ledger_entries e
     WHERE e.merchant_id = NEW.merchant_id AND e.txn_id = NEW.txn_id;
    IF v_entries < 2 OR v_min <> v_max OR v_sum <> 0 THEN
        PERFORM ledger_balance_check(NEW.merchant_id, NEW.txn_id);
    END IF;
    RETURN NULL;
END
$$;


--
-- Name: ledger_book(text, text, text, text, text, text, text, text[], bigint[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_book(p_merchant text, p_checkout text, p_order text, p_kind text, p_object text, p_source text, p_currency text, p_accounts text[], p_amounts bigint[]) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_txn  bigint;
BEGIN
    INSERT INTO ledger_transactions (merchant_id, checkout_id, payment_order_id, source,
                                     kind, object_id)
    VALUES (p_merchant, p_checkout, p_order, p_source, p_kind, p_object)
    RETURNING txn_id INTO v_txn;
    INSERT INTO ledger_entries (merchant_id, txn_id, entry_no, account, amount, currency)
    SELECT p_merchant, v_txn, row_number() OVER (ORDER BY a.i), a.account, a.amount,
           p_currency
      FROM unnest(p_accounts, p_amounts) WITH ORDINALITY AS a (account, amount, i)
     WHERE a.amount <> 0;
    RETURN v_txn;
END
$$;


--
-- Name: ledger_entries_balanced(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_entries_balanced() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET jit TO 'off'
    SET enable_seqscan TO 'off'
    AS $$
DECLARE
    r  record;
BEGIN
    -- each transaction written: its row and one aggregate; the verdict
    -- (ledger_balance_check) only for what it flags
    FOR r IN SELECT t.merchant_id, t.txn_id, lt.txn_id IS NULL AS missing
               FROM (SELECT DISTINCT n.merchant_id, n.txn_id FROM new_entries n) t
               LEFT JOIN LATERAL (
                    SELECT l.txn_id FROM ledger_transactions l
                     WHERE l.merchant_id = t.merchant_id AND l.txn_id = t.txn_id
                    OFFSET 0) lt ON true
              CROSS JOIN LATERAL (
                    SELECT count(*) AS n, min(e.currency) AS lo, max(e.currency) AS hi,
                           sum(e.amount) AS s
                      FROM ledger_entries e
                     WHERE e.merchant_id = t.merchant_id AND e.txn_id = t.txn_id) x
              WHERE lt.txn_id IS NULL OR x.n < 2 OR x.lo <> x.hi OR x.s <> 0
    LOOP
        IF r.missing THEN
            RAISE EXCEPTION 'ledger entries of no transaction: %/% is not in ledger_transactions',
                r.merchant_id, r.txn_id
                USING ERRCODE = 'foreign_key_violation', TABLE = 'ledger_entries',
                      CONSTRAINT = 'ledger_entries_txn';
        END IF;
        PERFORM ledger_balance_check(r.merchant_id, r.txn_id);
    END LOOP;
    RETURN NULL;
END
$$;


--
-- Name: ledger_entries_row_checks(text, bigint, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_entries_row_checks(account text, amount bigint, currency text) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE
    AS $_$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    -- (a value between two bounds is tested as a member of a range: this
    -- CASE is prepared anew in every transaction, one step per operator,
    -- and the range is one operator where the two bounds were three)
    v_broken := CASE
        WHEN NOT (length(account) <@ int4range(1, 200, '[]')) THEN 'ledger_entries_account'
        WHEN NOT (amount <> 0) THEN 'ledger_entries_amount'
        WHEN NOT (currency ~ '^[A-Z]{3}$'::text) THEN 'ledger_entries_currency'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "ledger_entries" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'ledger_entries', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$_$;


--
-- Name: ledger_transactions_row_checks(text, text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ledger_transactions_row_checks(checkout_id text, payment_order_id text, kind text, object_id text) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE
    AS $$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    v_broken := CASE
        WHEN NOT (kind = ANY (ARRAY['payment'::text, 'refund'::text, 'dispute'::text, 'payout'::text, 'fee'::text])) THEN 'ledger_transactions_kind'
        WHEN NOT ((((kind = 'payout'::text) = (payment_order_id IS NULL)) OR (kind = 'fee'::text)) AND ((payment_order_id IS NULL) = (checkout_id IS NULL)) AND ((kind = 'payment'::text) OR (object_id IS NOT NULL))) THEN 'ledger_transactions_owner'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "ledger_transactions" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'ledger_transactions', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$$;


--
-- Name: merchants_keep(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.merchants_keep() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    RAISE EXCEPTION 'merchants are never deleted (% refused); disable the merchant instead', TG_OP
        USING ERRCODE = 'PY002';
END
$$;


--
-- Name: money_decimal(bigint, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.money_decimal(p_minor bigint, p_currency text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT round(p_minor::numeric / (10::numeric ^ e), e)::text
      FROM (SELECT CASE
                       WHEN p_currency IN ('BIF', 'CLP', 'DJF', 'GNF', 'ISK', 'JPY', 'KMF',
                                           'KRW', 'PYG', 'RWF', 'UGX', 'UYI', 'VND', 'VUV',
                                           'XAF', 'XOF', 'XPF') THEN 0
                       WHEN p_currency IN ('BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND') THEN 3
                       WHEN p_currency IN ('CLF', 'UYW') THEN 4
                       ELSE 2
                   END AS e) x
$$;


--
-- Name: money_status_forward(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.money_status_forward() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_from  text := CASE TG_TABLE_NAME WHEN 'disputes' THEN 'OPEN' ELSE 'PENDING' END;
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION '% rows are never deleted', TG_TABLE_NAME USING ERRCODE = 'PY002';
    END IF;
    IF NEW.amount <> OLD.amount OR NEW.currency <> OLD.currency
       OR NEW.merchant_id <> OLD.merchant_id THEN
        RAISE EXCEPTION '%: amount, currency and merchant never change', TG_TABLE_NAME
            USING ERRCODE = 'PY002';
    END IF;
    IF OLD.status IS DISTINCT FROM NEW.status AND OLD.status <> v_from
       AND NOT (TG_TABLE_NAME = 'refunds' AND OLD.status = 'SUCCEEDED' AND NEW.status = 'FAILED')
       -- a capture the PSP took back after confirming it (capture_event_apply)
       AND NOT (TG_TABLE_NAME = 'captures' AND OLD.status = 'SUCCEEDED' AND NEW.status = 'FAILED')
       AND NOT (TG_TABLE_NAME = 'payouts' AND OLD.status = 'PAID' AND NEW.status = 'FAILED')
       AND NOT (TG_TABLE_NAME = 'disputes' AND OLD.status = 'WON' AND NEW.status = 'LOST')
    THEN
        RAISE EXCEPTION '%: status may not move from % to %', TG_TABLE_NAME, OLD.status, NEW.status
            USING ERRCODE = 'PY009';
    END IF;
    -- what the claims and releases note of the PSP calls (psp_contact) is
    -- not a change of the refund, capture or pay-out: its updated_at stays
    IF (to_jsonb(NEW) -> 'psp_contact') IS DISTINCT FROM (to_jsonb(OLD) -> 'psp_contact')
       AND to_jsonb(NEW) - 'psp_contact' = to_jsonb(OLD) - 'psp_contact' THEN
        RETURN NEW;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;


--
-- Name: nonce_split(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.nonce_split(p_reference text, OUT merchant_id text, OUT object_id text) RETURNS record
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT CASE WHEN position(':' IN coalesce(p_reference, '')) > 0
                THEN split_part(p_reference, ':', 1) END,
           CASE WHEN position(':' IN coalesce(p_reference, '')) > 0
                THEN substr(p_reference, length(split_part(p_reference, ':', 1)) + 2) END;
$$;


--
-- Name: notifications_row_checks(text, text, integer, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.notifications_row_checks(notification_id text, event_type text, sequence integer, status text, last_error text) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE
    AS $_$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    v_broken := CASE
        WHEN NOT (length(last_error) <= 200) THEN 'notifications_error'
        WHEN NOT ((length(notification_id) = 28) AND (notification_id ~ '^msg_[0-9a-f]*$'::text)) THEN 'notifications_id_format'
        WHEN NOT (sequence > 0) THEN 'notifications_sequence'
        WHEN NOT (status = ANY (ARRAY['PENDING'::text, 'DELIVERED'::text, 'FAILED'::text])) THEN 'notifications_status'
        WHEN NOT (event_type = ANY (ARRAY['checkout.succeeded'::text, 'checkout.failed'::text, 'checkout.paid_after_failure'::text, 'checkout.canceled'::text, 'checkout.approved'::text, 'checkout.authorized'::text, 'checkout.risk_flagged'::text, 'refund.succeeded'::text, 'refund.failed'::text, 'dispute.opened'::text, 'dispute.won'::text, 'dispute.lost'::text, 'payout.paid'::text, 'payout.failed'::text, 'payout.reversed'::text, 'capture.succeeded'::text, 'capture.failed'::text, 'payment_method.saved'::text, 'payment_method.detached'::text])) THEN 'notifications_type'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "notifications" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'notifications', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$_$;


--
-- Name: notifications; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.notifications (
    merchant_id text NOT NULL,
    notification_id text NOT NULL,
    endpoint_id text NOT NULL,
    event_type text NOT NULL,
    checkout_id text,
    object_id text NOT NULL,
    sequence integer NOT NULL,
    payload text NOT NULL,
    status text DEFAULT 'PENDING'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    next_at timestamp with time zone DEFAULT now() NOT NULL,
    lease_owner text,
    lease_until timestamp with time zone,
    last_status integer,
    last_error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    delivered_at timestamp with time zone,
    in_feed boolean DEFAULT false NOT NULL,
    feed_xact xid8 DEFAULT pg_current_xact_id() NOT NULL,
    resend boolean DEFAULT false NOT NULL,
    CONSTRAINT notifications_row_checks CHECK (public.notifications_row_checks(notification_id, event_type, sequence, status, last_error))
);


--
-- Name: TABLE notifications; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.notifications IS 'One row per notification and endpoint.';


--
-- Name: COLUMN notifications.in_feed; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.notifications.in_feed IS 'the event''s row in GET /v1/events: one per event (the first endpoint''s), whatever the number of endpoints';


--
-- Name: COLUMN notifications.feed_xact; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.notifications.feed_xact IS 'the id of the transaction that inserted the row (0: before it was kept): the events feed''s order, listed once every older transaction has ended';


--
-- Name: COLUMN notifications.resend; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.notifications.resend IS 'replayed while an attempt was in flight: sent again from the start of the schedule once that attempt is recorded';


--
-- Name: notifications_feed_page(text, text, xid8, xid8, timestamp with time zone, text, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.notifications_feed_page(p_merchant text, p_type text, p_horizon xid8, p_xact xid8, p_at timestamp with time zone, p_id text, p_limit integer) RETURNS SETOF public.notifications
    LANGUAGE sql STABLE
    AS $$
    SELECT n.*
      FROM notifications n
     WHERE n.in_feed
       AND n.merchant_id = p_merchant
       AND n.feed_xact < p_horizon
       AND n.created_at >= now() - interval '30 days'
       AND (p_type IS NULL OR n.event_type = p_type)
       AND (p_at IS NULL
            OR (n.feed_xact, n.created_at, n.notification_id) > (p_xact, p_at, p_id))
     ORDER BY n.merchant_id, n.feed_xact, n.created_at, n.notification_id
     LIMIT p_limit;
$$;


--
-- Name: notifications_feed_places(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.notifications_feed_places() RETURNS TABLE(merchant_id text, notification_id text, place bigint)
    LANGUAGE sql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
    WITH s AS (
        SELECT pg_snapshot_xmax(pg_current_snapshot()) AS next
    ), m AS MATERIALIZED (
        -- one probe of the feed's index per merchant (not one per row)
        SELECT e.merchant_id
          FROM (SELECT DISTINCT d.merchant_id FROM notify_endpoints d) e, s
         WHERE EXISTS (SELECT 1 FROM notifications f
                        WHERE f.merchant_id = e.merchant_id AND f.in_feed
                          AND f.feed_xact >= s.next)
    ), r AS (
        SELECT n.merchant_id, n.notification_id, n.feed_xact, n.created_at,
               -- stored here: below this cluster's ids, and made after
               -- the last row the other cluster stored past them
               coalesce(n.feed_xact < s.next
                        AND n.created_at > max(n.created_at)
                                               FILTER (WHERE n.feed_xact >= s.next)
                                               OVER (PARTITION BY n.merchant_id),
                        false) AS here
          FROM notifications n
          JOIN m ON m.merchant_id = n.merchant_id
         CROSS JOIN s
         WHERE n.feed_xact <> '0'
    ), d AS (
        SELECT r.merchant_id, r.notification_id, r.here, r.feed_xact, r.created_at,
               coalesce((r.created_at, r.notification_id)
                        < (lag(r.created_at) OVER w, lag(r.notification_id) OVER w),
                        false) AS back
          FROM r
        WINDOW w AS (PARTITION BY r.merchant_id
                     ORDER BY r.here, r.feed_xact, r.created_at, r.notification_id)
    )
    SELECT d.merchant_id, d.notification_id,
           1 + count(*) FILTER (WHERE d.back)
                   OVER (PARTITION BY d.merchant_id
                         ORDER BY d.here, d.feed_xact, d.created_at, d.notification_id
                         ROWS UNBOUNDED PRECEDING)
      FROM d;
$$;


--
-- Name: notifications_feed_renumber(bigint, bigint); Type: PROCEDURE; Schema: public; Owner: -
--

CREATE PROCEDURE public.notifications_feed_renumber(INOUT p_events bigint DEFAULT NULL::bigint, INOUT p_merchants bigint DEFAULT NULL::bigint)
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_rows    bigint;
    v_last    bigint;
    v_next    bigint;
    v_xmin    bigint;
    v_done    bigint;
    v_of      bigint;
    v_rounds  int := 0;
    v_sync    text := current_setting('synchronous_commit');
    v_waited  int := 0;
    v_pid     int;
    v_since   timestamptz;
BEGIN
    p_events := 0;
    p_merchants := 0;

    LOOP
        SELECT count(*), max(p.place) INTO v_rows, v_last
          FROM public.notifications_feed_places() p;
        IF v_rows = 0 THEN
            EXIT;
        END IF;
        v_rounds := v_rounds + 1;
        IF v_rounds > 1000 THEN
            RAISE EXCEPTION 'the events feed: % rows still to renumber after 1000 rounds', v_rows;
        END IF;

        SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint,
               pg_snapshot_xmax(pg_current_snapshot())::text::bigint
          INTO v_xmin, v_next;

        IF v_last < v_xmin THEN
            -- one statement, one snapshot: the places and the check that
            -- every transaction in flight is past them
            WITH p AS MATERIALIZED (SELECT * FROM public.notifications_feed_places()),
                 u AS (UPDATE public.notifications n
                          SET feed_xact = p.place::text::xid8
                         FROM p
                        WHERE n.merchant_id = p.merchant_id
                          AND n.notification_id = p.notification_id
                          AND (SELECT max(q.place) FROM p q)::text::xid8
                              < pg_snapshot_xmin(pg_current_snapshot())
                    RETURNING n.merchant_id)
            SELECT count(*), count(DISTINCT u.merchant_id) INTO v_done, v_of FROM u;
            COMMIT;
            p_events := p_events + v_done;
            p_merchants := p_merchants + v_of;
            -- then again: nothing left, or what came in meanwhile

        ELSIF v_last >= v_next THEN
            -- more places than ids used: use ids up to past the last place
            PERFORM set_config('synchronous_commit', 'off', false);
            FOR i IN 0 .. v_last - v_next LOOP
                PERFORM pg_current_xact_id();
                COMMIT;
            END LOOP;
            PERFORM set_config('synchronous_commit', v_sync, false);

        ELSE
            -- a transaction older than the last place is still open
            IF v_waited >= 60 THEN
                SELECT a.pid, a.xact_start INTO v_pid, v_since
                  FROM pg_stat_activity a
                 WHERE a.backend_xid IS NOT NULL
                 ORDER BY age(a.backend_xid) DESC
                 LIMIT 1;
                RAISE EXCEPTION 'the events feed cannot be renumbered while a transaction older than % ids is open (pid %, open since %): end it and run payments-migrate again',
                                v_last, v_pid, v_since
                      USING ERRCODE = 'lock_not_available';
            END IF;
            PERFORM pg_sleep(1);
            v_waited := v_waited + 1;
            COMMIT;
        END IF;
    END LOOP;
END
$$;


--
-- Name: notify_endpoints; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.notify_endpoints (
    merchant_id text NOT NULL,
    endpoint_id text NOT NULL,
    url text NOT NULL,
    host text NOT NULL,
    event_types text[] DEFAULT '{}'::text[] NOT NULL,
    secret_sealed text NOT NULL,
    prev_secret_sealed text,
    prev_until timestamp with time zone,
    disabled_at timestamp with time zone,
    disabled_reason text,
    failures integer DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    failing_since timestamp with time zone,
    created_idem_key text,
    rotated_idem_key text,
    CONSTRAINT notify_endpoints_host CHECK (((host = lower(host)) AND ((length(host) >= 1) AND (length(host) <= 253)))),
    CONSTRAINT notify_endpoints_id_format CHECK (((length(endpoint_id) = 27) AND (endpoint_id ~ '^ep_[0-9a-f]*$'::text))),
    CONSTRAINT notify_endpoints_prev CHECK (((prev_secret_sealed IS NULL) = (prev_until IS NULL))),
    CONSTRAINT notify_endpoints_prev_secret CHECK ((prev_secret_sealed ~~ 'v1.%'::text)),
    CONSTRAINT notify_endpoints_reason CHECK ((length(disabled_reason) <= 200)),
    CONSTRAINT notify_endpoints_secret CHECK ((secret_sealed ~~ 'v1.%'::text)),
    CONSTRAINT notify_endpoints_url CHECK (((url ~ '^https://'::text) AND (length(url) <= 2048)))
);


--
-- Name: TABLE notify_endpoints; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.notify_endpoints IS 'The merchants'' endpoints, written by the operator (payments-merchant).';


--
-- Name: COLUMN notify_endpoints.failing_since; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.notify_endpoints.failing_since IS 'the first failed delivery since the last one that succeeded (NULL: none)';


--
-- Name: COLUMN notify_endpoints.created_idem_key; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.notify_endpoints.created_idem_key IS 'the Idempotency-Key of POST /v1/webhook_endpoints that created it (NULL: payments-merchant add-endpoint)';


--
-- Name: COLUMN notify_endpoints.rotated_idem_key; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.notify_endpoints.rotated_idem_key IS 'the Idempotency-Key of its last POST /v1/webhook_endpoints/{id}/rotate_secret (NULL: none, or payments-merchant rotate-secret)';


--
-- Name: notify_endpoint_item(public.notify_endpoints); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.notify_endpoint_item(e public.notify_endpoints) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT jsonb_build_object(
               'id', e.endpoint_id,
               'url', e.url,
               'events', CASE WHEN e.event_types = '{}' THEN to_jsonb(ARRAY['*'])
                              ELSE to_jsonb(e.event_types) END,
               'status', CASE WHEN e.disabled_at IS NULL THEN 'enabled' ELSE 'disabled' END,
               'disabled_at', ts_rfc3339(e.disabled_at),
               'disabled_reason', e.disabled_reason,
               'failing_since', ts_rfc3339(e.failing_since),
               'previous_secret_until', ts_rfc3339(e.prev_until),
               'created_at', ts_rfc3339(e.created_at))
$$;


--
-- Name: notify_enqueue(text, text, text, text, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.notify_enqueue(p_merchant text, p_type text, p_checkout text, p_object text, p_data jsonb) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_seq      int;
    v_payload  text;
BEGIN
    PERFORM 1 FROM notify_endpoints e
     WHERE e.merchant_id = p_merchant
       AND (e.event_types = '{}' OR p_type = ANY (e.event_types))
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;

    INSERT INTO notify_sequences AS s (merchant_id, subject, last)
    VALUES (p_merchant, split_part(p_type, '.', 1) || ':' || p_object, 1)
    ON CONFLICT (merchant_id, subject) DO UPDATE SET last = s.last + 1
    RETURNING s.last INTO v_seq;

    v_payload := jsonb_build_object(
                     'type', p_type,
                     'timestamp', ts_rfc3339(now()),
                     'data', p_data || jsonb_build_object('merchant_id', p_merchant,
                                                          'sequence', v_seq))::text;

    INSERT INTO notifications (merchant_id, notification_id, endpoint_id, event_type,
                               checkout_id, object_id, sequence, payload, in_feed)
    SELECT p_merchant, 'msg_' || encode(gen_random_bytes_compat(12), 'hex'), e.endpoint_id,
           p_type, p_checkout, p_object, v_seq, v_payload,
           row_number() OVER (ORDER BY e.created_at, e.endpoint_id) = 1
      FROM notify_endpoints e
     WHERE e.merchant_id = p_merchant
       AND (e.event_types = '{}' OR p_type = ANY (e.event_types));
END
$$;


--
-- Name: notify_item(public.notifications); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.notify_item(n public.notifications) RETURNS json
    LANGUAGE sql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT json_build_object(
               'id', n.notification_id,
               'type', n.event_type,
               'endpoint_id', n.endpoint_id,
               'status', n.status,
               'attempts', n.attempts,
               'last_status', n.last_status,
               'last_error', n.last_error,
               'created_at', ts_rfc3339(n.created_at),
               'next_attempt_at', CASE WHEN n.status = 'PENDING' THEN ts_rfc3339(n.next_at) END,
               'delivered_at', ts_rfc3339(n.delivered_at),
               'checkout_id', n.checkout_id,
               'object_id', n.object_id,
               'sequence', n.sequence);
$$;


--
-- Name: op_key_done(text, text, bigint, integer, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.op_key_done(p_merchant text, p_idem_key text, p_lease bigint, p_status integer, p_body text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    UPDATE idempotency_keys ik
       SET state = 'done', lease_until = NULL, response_status = p_status,
           response_body = p_body
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       AND ik.state = 'in_progress' AND ik.lease = p_lease;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'op_key_done: the lease of key % was taken over', p_idem_key
            USING ERRCODE = 'PY003';
    END IF;
END
$$;


--
-- Name: op_key_prior(text, text, text, text, bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.op_key_prior(p_merchant text, p_idem_key text, p_fingerprint text, p_kind text, p_lease bigint) RETURNS text
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_prior  text;
BEGIN
    SELECT ok.op_id INTO v_prior FROM operation_keys ok
     WHERE ok.merchant_id = p_merchant AND ok.idem_key = p_idem_key
       AND ok.fingerprint = p_fingerprint AND ok.kind = p_kind;
    IF FOUND THEN
        UPDATE idempotency_keys ik SET checkout_id = v_prior
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
           AND ik.lease = p_lease;
    END IF;
    RETURN v_prior;
END
$$;


--
-- Name: op_key_take(text, text, text, integer, integer, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.op_key_take(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_op_id text, OUT outcome text, OUT lease bigint, OUT retry_after integer, OUT response_status integer, OUT response_body text, OUT op_id text) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    k            idempotency_keys%ROWTYPE;
    v_now        timestamptz;
    v_lease_for  interval := p_lease_seconds * interval '1 second';
    v_ttl        interval := p_ttl_seconds * interval '1 second';
BEGIN
    IF p_lease_seconds IS NULL OR p_lease_seconds < 1
       OR p_ttl_seconds IS NULL OR p_ttl_seconds < 1 THEN
        RAISE EXCEPTION 'op_key_take: lease and ttl must be at least 1 second'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM 1 FROM merchants m WHERE m.merchant_id = p_merchant;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'op_key_take: no merchant %', p_merchant
            USING ERRCODE = 'foreign_key_violation';
    END IF;

    FOR attempt IN 1..3 LOOP
        INSERT INTO idempotency_keys AS ik
               (merchant_id, idem_key, fingerprint, state, lease, lease_until,
                checkout_id, created_at, expires_at)
        VALUES (p_merchant, p_idem_key, p_fingerprint, 'in_progress', 1,
                clock_timestamp() + v_lease_for, p_op_id, now(), now() + v_ttl)
        ON CONFLICT (merchant_id, idem_key) DO NOTHING
        RETURNING ik.lease INTO lease;
        IF lease IS NOT NULL THEN
            outcome := 'new';
            op_id := p_op_id;
            RETURN;
        END IF;

        SELECT * INTO k FROM idempotency_keys ik
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
           FOR UPDATE;
        CONTINUE WHEN NOT FOUND;
        v_now := clock_timestamp();

        IF k.state = 'done' AND k.expires_at <= v_now THEN
            UPDATE idempotency_keys ik
               SET fingerprint = p_fingerprint, state = 'in_progress',
                   lease = ik.lease + 1, lease_until = v_now + v_lease_for,
                   checkout_id = p_op_id, response_status = NULL,
                   response_body = NULL, created_at = now(), expires_at = now() + v_ttl
             WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
            RETURNING ik.lease INTO lease;
            outcome := 'new';
            op_id := p_op_id;
            RETURN;
        END IF;

        IF k.fingerprint <> p_fingerprint THEN
            outcome := 'reused';
            RETURN;
        END IF;
        IF k.state = 'done' THEN
            outcome := 'replay';
            response_status := k.response_status;
            response_body := k.response_body;
            RETURN;
        END IF;
        IF k.lease_until > v_now THEN
            outcome := 'in_use';
            retry_after := GREATEST(1, ceil(date_part('epoch', k.lease_until - v_now)))::int;
            RETURN;
        END IF;

        -- the holder died: a new lease, the same expiry (a resume never
        -- makes a claim look younger than it is)
        UPDATE idempotency_keys ik
           SET lease = ik.lease + 1, lease_until = v_now + v_lease_for
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
        RETURNING ik.lease INTO lease;
        outcome := 'resumed';
        op_id := k.checkout_id;
        RETURN;
    END LOOP;

    RAISE EXCEPTION 'op_key_take: key % kept changing under us', p_idem_key
        USING ERRCODE = 'serialization_failure';
END
$$;


--
-- Name: order_events_append_only(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.order_events_append_only() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.source = 'registration'
       AND OLD.from_status = 'NOT_STARTED' AND OLD.to_status = 'EXECUTING'
       AND current_setting('payments.abandon_checkout', true)
           = OLD.merchant_id || ':' || OLD.checkout_id THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'order_events is append-only (% refused)', TG_OP
        USING ERRCODE = 'PY002';
END
$$;


--
-- Name: order_given_back(text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.order_given_back(p_merchant text, p_order_id text, p_except text) RETURNS bigint
    LANGUAGE sql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT (SELECT coalesce(sum(rf.amount), 0) FROM refunds rf
             WHERE rf.merchant_id = p_merchant AND rf.payment_order_id = p_order_id
               AND rf.status IN ('PENDING', 'SUCCEEDED')
               AND rf.refund_id IS DISTINCT FROM p_except)
         + (SELECT coalesce(sum(dp.amount + dp.excess), 0) FROM dispute_parts dp
             WHERE dp.merchant_id = p_merchant AND dp.payment_order_id = p_order_id
               AND (SELECT d.status FROM disputes d
                     WHERE d.merchant_id = dp.merchant_id
                       AND d.dispute_id = dp.dispute_id) IN ('OPEN', 'LOST'))::bigint;
$$;


--
-- Name: order_given_back_for_good(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.order_given_back_for_good(p_merchant text, p_order_id text, OUT given_back bigint, OUT commission_back bigint) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    SELECT (r.amount + d.amount)::bigint, (r.commission + d.commission)::bigint
      INTO given_back, commission_back
      FROM (SELECT coalesce(sum(rf.amount), 0) AS amount,
                   coalesce(sum(rf.commission_part), 0) AS commission
              FROM refunds rf
             WHERE rf.merchant_id = p_merchant AND rf.payment_order_id = p_order_id
               AND rf.status = 'SUCCEEDED') r,
           (SELECT coalesce(sum(coalesce(dp.borne, dp.amount)), 0) AS amount,
                   coalesce(sum(dp.commission_part), 0) AS commission
              FROM dispute_parts dp
             WHERE dp.merchant_id = p_merchant AND dp.payment_order_id = p_order_id
               AND (SELECT ds.status FROM disputes ds
                     WHERE ds.merchant_id = dp.merchant_id
                       AND ds.dispute_id = dp.dispute_id) = 'LOST') d;
END;
$$;


--
-- Name: order_seller_hold(text, text, bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.order_seller_hold(p_merchant text, p_order_id text, p_extra bigint) RETURNS bigint
    LANGUAGE plpgsql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    h  record;
BEGIN
    SELECT * INTO h FROM order_seller_hold_parts(p_merchant, p_order_id);
    RETURN refund_seller_share(h.captured, h.commission, h.given_back,
                               h.commission_back, h.held + p_extra);
END;
$$;


--
-- Name: order_seller_hold_parts(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.order_seller_hold_parts(p_merchant text, p_order_id text, OUT captured bigint, OUT commission bigint, OUT given_back bigint, OUT commission_back bigint, OUT held bigint) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    g         record;
    v_seller  text;
    v_cur     text;
BEGIN
    SELECT coalesce(po.amount_captured, po.amount), coalesce(po.commission, 0),
           po.seller_account, po.currency
      INTO captured, commission, v_seller, v_cur
      FROM payment_orders po
     WHERE po.merchant_id = p_merchant AND po.payment_order_id = p_order_id;
    SELECT * INTO g FROM order_given_back_for_good(p_merchant, p_order_id);
    given_back := g.given_back;
    commission_back := g.commission_back;
    SELECT (SELECT coalesce(sum(rf.amount), 0)
              FROM refunds rf
             WHERE rf.merchant_id = p_merchant AND rf.seller_account = v_seller
               AND rf.currency = v_cur AND rf.payment_order_id = p_order_id
               AND rf.status = 'PENDING')
           + (SELECT coalesce(sum(dp.amount), 0)
                FROM dispute_parts dp
               WHERE dp.merchant_id = p_merchant AND dp.payment_order_id = p_order_id
                 AND (SELECT d.status FROM disputes d
                       WHERE d.merchant_id = dp.merchant_id
                         AND d.dispute_id = dp.dispute_id) = 'OPEN')
      INTO held;
END;
$$;


--
-- Name: pay_abandon(text, text, bigint, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_abandon(p_merchant text, p_idem_key text, p_lease bigint, p_reason text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    k         idempotency_keys%ROWTYPE;
    v_orders  jsonb;
    v_status  pay_status;
    v_token   text;
BEGIN
    IF p_reason NOT IN ('psp_refused_credentials', 'psp_circuit_open', 'limit_reached',
                        'expires_too_soon', 'return_url_forbidden') THEN
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

    -- by its key, its status told by the row (a WHERE naming the status
    -- is checkouts_executing_since's predicate: pay_refresh)
    SELECT c.status, c.psp_token INTO v_status, v_token FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = k.checkout_id
       FOR UPDATE;
    IF v_status IS DISTINCT FROM 'EXECUTING' OR v_token IS NOT NULL THEN
        RETURN false;
    END IF;

    -- A checkout a person approved is never undone: the review is decided
    -- and checkout.approved was told; its claim stays to be resumed.
    PERFORM 1 FROM checkout_risk r
     WHERE r.merchant_id = p_merchant AND r.checkout_id = k.checkout_id
       AND r.reviewed IS NOT NULL;
    IF FOUND THEN
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

    -- order_events is append-only; its guard (order_events_append_only) lets this transaction
    -- delete the claim's own registration events of this checkout only.
    PERFORM set_config('payments.abandon_checkout', p_merchant || ':' || k.checkout_id, true);
    DELETE FROM order_events e
     WHERE e.merchant_id = p_merchant AND e.checkout_id = k.checkout_id;
    PERFORM set_config('payments.abandon_checkout', '', true);

    DELETE FROM psp_tokens t
     WHERE t.merchant_id = p_merchant AND t.checkout_id = k.checkout_id;
    -- the sweeper's notes: a resumed claim may have been alerted about
    -- (past alert=, with or without a token), an approved review noted late
    DELETE FROM checkout_sweeps s
     WHERE s.merchant_id = p_merchant AND s.checkout_id = k.checkout_id;
    DELETE FROM sweeper_late l
     WHERE l.merchant_id = p_merchant AND l.checkout_id = k.checkout_id;
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


--
-- Name: pay_audit_verify(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_audit_verify(p_merchant text) RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    r        audit_log%ROWTYPE;
    v_chain  smallint;
    v_prev   bytea;
    v_seq    bigint;
    v_chains smallint[] := '{}';
    v_opened int := 0;      -- chains named by chain 0's audit:chains_opened
BEGIN
    FOR r IN SELECT * FROM audit_log a WHERE a.merchant_id = p_merchant
              ORDER BY a.chain, a.seq
    LOOP
        IF v_chain IS DISTINCT FROM r.chain THEN
            v_chain := r.chain;
            v_chains := v_chains || r.chain;
            v_prev := '\x'::bytea;
            v_seq := 0;
        END IF;
        IF r.seq <> v_seq + 1 OR r.prev_hash <> v_prev
           OR r.hash <> audit_row_hash(r.prev_hash, r.merchant_id, r.chain, r.seq, r.at,
                                       r.checkout_id, r.action, r.detail) THEN
            RETURN false;
        END IF;
        IF r.chain = 0 AND r.action = 'audit:chains_opened' THEN
            IF v_opened <> 0 THEN
                RETURN false;
            END IF;
            v_opened := (r.detail ->> 'chains')::int;
        END IF;
        v_prev := r.hash;
        v_seq := r.seq;
    END LOOP;

    -- every chain with rows has its audit_heads row
    IF (SELECT count(*) FROM audit_heads ah
         WHERE ah.merchant_id = p_merchant AND ah.chain = ANY (v_chains))
       <> cardinality(v_chains) THEN
        RETURN false;
    END IF;
    -- every anchor names a row of its chain (rows 1..seq checked above)
    IF EXISTS (SELECT 1 FROM audit_heads ah
                WHERE ah.merchant_id = p_merchant AND ah.seq > 0
                  AND NOT EXISTS (
                        SELECT 1 FROM audit_log a
                         WHERE a.merchant_id = p_merchant AND a.chain = ah.chain
                           AND a.seq = ah.seq AND a.hash = ah.hash))
    THEN
        RETURN false;
    END IF;
    -- no chain the log does not show opened; every opened chain still has
    -- its audit_heads row; rows only in chains 0..opened
    IF EXISTS (SELECT 1 FROM audit_heads ah
                WHERE ah.merchant_id = p_merchant AND ah.chain > v_opened)
       OR (SELECT count(*) FROM audit_heads ah
            WHERE ah.merchant_id = p_merchant AND ah.chain BETWEEN 1 AND v_opened) <> v_opened
       OR EXISTS (SELECT 1 FROM audit_log a
                   WHERE a.merchant_id = p_merchant AND a.chain > v_opened) THEN
        RETURN false;
    END IF;
    RETURN true;
END
$$;


--
-- Name: pay_auth(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_auth(p_key_id text) RETURNS TABLE(merchant_id text, key_hash text, mode text, origins text[])
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT * FROM pay_auth(p_key_id, NULL::text)
$$;


--
-- Name: pay_auth(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_auth(p_key_id text, p_key_hash text) RETURNS TABLE(merchant_id text, key_hash text, mode text, origins text[])
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
    -- a server that takes no writes (a standby, a shard made read-only)
    -- refuses an UPDATE even of no row: the use is noted when it takes
    -- writes again, and the merchant's reads go on meanwhile
    IF current_setting('transaction_read_only') = 'off' THEN
        UPDATE api_keys k SET last_used_at = now()
         WHERE k.key_id = p_key_id AND k.key_hash = p_key_hash
           AND k.revoked_at IS NULL
           AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 hour');
    END IF;

    RETURN QUERY
    SELECT k.merchant_id, k.key_hash, k.mode,
           ARRAY(SELECT o.origin FROM merchant_return_origins o
                  WHERE o.merchant_id = k.merchant_id ORDER BY o.origin)
      FROM api_keys k
      JOIN merchants m ON m.merchant_id = k.merchant_id
     -- a key of the other mode than its merchant's is none (the CLI never
     -- makes one; one written by hand could pay test money out live)
     WHERE k.key_id = p_key_id AND k.revoked_at IS NULL AND NOT m.disabled
       AND k.mode = m.mode;
END
$$;


--
-- Name: pay_cancel_claim(text, text, text, integer, integer, text, text, text, text[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_cancel_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout text, p_paid_problem text, p_not_cancelable_problem text, p_other_mode text[]) RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, psp text, psp_token text, nonce text, claim_age bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    c         checkouts%ROWTYPE;
    t         record;
    v_status  int;
    v_body    text;
    v_age     bigint;
    v_wait    int;
BEGIN
    PERFORM 1 FROM checkouts ck
     WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout
       AND ck.psp <> ALL (coalesce(p_other_mode, '{}'));
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::bigint, NULL::int, NULL::int,
                            NULL::text, NULL::text, NULL::text, NULL::text, NULL::bigint;
        RETURN;
    END IF;

    SELECT * INTO t FROM op_key_take(p_merchant, p_idem_key, p_fingerprint,
                                     p_lease_seconds, p_ttl_seconds, p_checkout) x;
    IF t.outcome NOT IN ('new', 'resumed') THEN
        RETURN QUERY SELECT t.outcome, t.lease, t.retry_after, t.response_status,
                            t.response_body, NULL::text, NULL::text, NULL::text,
                            NULL::bigint;
        RETURN;
    END IF;

    SELECT * INTO c FROM checkouts ck
     WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout
       FOR UPDATE;

    IF c.status = 'SUCCESS' THEN
        v_status := 409;
        v_body := p_paid_problem;
    ELSIF c.status = 'FAILED' AND c.failure_code = 'canceled' THEN
        v_status := 200;
        v_body := jsonb_build_object('checkout_id', c.checkout_id,
                                     'status', c.status)::text;
    ELSIF c.status = 'FAILED' THEN
        v_status := 409;
        v_body := p_not_cancelable_problem;
    END IF;

    IF v_status IS NOT NULL THEN
        PERFORM op_key_done(p_merchant, p_idem_key, t.lease, v_status, v_body);
        RETURN QUERY SELECT 'decided'::text, NULL::bigint, NULL::int, v_status,
                            v_body, c.psp, NULL::text, NULL::text, NULL::bigint;
        RETURN;
    END IF;

    -- its registration at the PSP: the key that made the checkout (the
    -- checkout names it: idem_key, stored with the row; nothing indexes
    -- the keys by checkout), in progress under a live lease.  The
    -- checkout's lock orders this with pay_finish, which stores the token
    -- there.  (No live lease: no row, and no wait.)
    IF c.status = 'EXECUTING' AND c.psp_token IS NULL THEN
        SELECT GREATEST(1, ceil(date_part('epoch',
                   ik.lease_until - clock_timestamp())))::int
          INTO v_wait
          FROM idempotency_keys ik
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = c.idem_key
           AND ik.checkout_id = p_checkout AND ik.idem_key <> p_idem_key
           AND ik.state = 'in_progress' AND ik.lease_until > clock_timestamp();

        IF v_wait IS NOT NULL THEN
            IF t.outcome = 'new' THEN
                DELETE FROM idempotency_keys ik
                 WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key;
            ELSE
                UPDATE idempotency_keys ik SET lease_until = now()
                 WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
                   AND ik.state = 'in_progress' AND ik.lease = t.lease;
            END IF;
            RETURN QUERY SELECT 'registering'::text, NULL::bigint, v_wait, NULL::int,
                                NULL::text, c.psp, NULL::text, NULL::text, NULL::bigint;
            RETURN;
        END IF;
    END IF;

    -- an off-session charge that went to its PSP (accepted, held for a
    -- manual capture, or its answer lost) has no session to end: the PSP
    -- took the payment or is deciding it.  Ended here alone it would be
    -- FAILED while the PSP pays it (Adyen), or asked of the PSP as a
    -- session it is not (a 404, for good).  One that needs the shopper
    -- has its hosted page (psp_url) and is canceled as any session.
    IF c.status IN ('EXECUTING', 'AUTHORIZED') AND c.payment_method_id IS NOT NULL
       AND c.psp_url IS NULL THEN
        v_body := jsonb_set(p_not_cancelable_problem::jsonb, '{detail}',
            to_jsonb('the off-session charge was sent to the PSP and cannot '
                     'be canceled; void it while it is held for a manual '
                     'capture, or refund it once paid'::text))::text;
        PERFORM op_key_done(p_merchant, p_idem_key, t.lease, 409, v_body);
        RETURN QUERY SELECT 'decided'::text, NULL::bigint, NULL::int, 409,
                            v_body, c.psp, NULL::text, NULL::text, NULL::bigint;
        RETURN;
    END IF;

    IF c.cancel_requested_at IS NULL THEN
        UPDATE checkouts ck SET cancel_requested_at = now()
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout;
        PERFORM audit_append(p_merchant, p_checkout, 'cancel:requested',
            jsonb_build_object('psp', c.psp));
    END IF;

    SELECT floor(extract(epoch FROM now() - ik.created_at))::bigint INTO v_age
      FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key;

    RETURN QUERY SELECT t.outcome, t.lease, NULL::int, NULL::int, NULL::text,
                        c.psp, c.psp_token, c.nonce, coalesce(v_age, 0);
END
$$;


--
-- Name: pay_cancel_finish(text, text, bigint, text, text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_cancel_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout text, p_result text, p_paid_problem text, p_not_cancelable_problem text) RETURNS TABLE(response_status integer, response_body text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    c         checkouts%ROWTYPE;
    o         record;
    v_status  int;
    v_body    text;
    v_source  text;
BEGIN
    IF p_result NOT IN ('closed', 'gateway', 'paid') THEN
        RAISE EXCEPTION 'pay_cancel_finish: unknown result %', p_result
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- the cancel's key (stored as done at the end), the checkout, then its
    -- orders in id order: the order every money function takes them in
    -- (doc/MONEY.md, "Lock order"), so a retry of this cancel resuming
    -- its claim (key, then checkout) never waits on it in a cycle
    PERFORM 1 FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       FOR UPDATE;
    SELECT * INTO c FROM checkouts ck
     WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pay_cancel_finish: no checkout %', p_checkout
            USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM 1 FROM payment_orders po
     WHERE po.merchant_id = p_merchant AND po.checkout_id = p_checkout
     ORDER BY po.payment_order_id
       FOR UPDATE;

    IF p_result = 'paid' THEN
        -- the PSP took the payment before the cancel: a later failure of
        -- it (an asynchronous method declined) is no cancel
        UPDATE checkouts ck SET cancel_requested_at = NULL
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout;
        PERFORM audit_append(p_merchant, p_checkout, 'cancel:refused_paid',
            jsonb_build_object('psp', c.psp, 'status', c.status));
        v_status := 409;
        v_body := p_paid_problem;

    ELSIF c.status = 'EXECUTING'
          OR c.status = 'REVIEW' AND p_result = 'gateway' THEN
        v_source := CASE WHEN c.status = 'REVIEW' THEN 'cancel:review'
                         ELSE 'cancel:' || c.psp || ':' || p_result END;

        -- a review is decided by the cancel (the risk row after the
        -- checkout: the order pay_review_approve and _reject lock them in)
        IF c.status = 'REVIEW' THEN
            UPDATE checkout_risk r
               SET reviewed = 'canceled', reviewed_at = now()
             WHERE r.merchant_id = p_merchant AND r.checkout_id = p_checkout
               AND r.verdict = 'review' AND r.reviewed IS NULL;
        END IF;

        UPDATE checkouts ck
           SET status = 'FAILED', failure_code = 'canceled',
               cancel_requested_at = NULL, updated_at = now()
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout;

        FOR o IN
            SELECT po.payment_order_id, po.status
              FROM payment_orders po
             WHERE po.merchant_id = p_merchant AND po.checkout_id = p_checkout
             ORDER BY po.seller_account, po.line_no
               FOR UPDATE
        LOOP
            UPDATE payment_orders po
               SET status = 'FAILED', ledger_updated = false,
                   wallet_updated = false, updated_at = now()
             WHERE po.merchant_id = p_merchant
               AND po.payment_order_id = o.payment_order_id;

            INSERT INTO order_events (merchant_id, checkout_id, payment_order_id,
                                      from_status, to_status, source)
            VALUES (p_merchant, p_checkout, o.payment_order_id, o.status,
                    'FAILED', v_source);
        END LOOP;

        PERFORM audit_append(p_merchant, p_checkout, 'cancel:canceled',
            jsonb_strip_nulls(jsonb_build_object('psp', c.psp,
                'result', p_result,
                'from', CASE WHEN c.status = 'REVIEW' THEN 'REVIEW' END)));
        v_status := 200;

    ELSIF c.status = 'FAILED' AND c.failure_code = 'canceled' THEN
        -- the PSP's expiry webhook of this cancel failed it first: the
        -- cancel is decided now, and audited once (a cancel under another
        -- key that finished first found it undecided and did both)
        IF c.cancel_requested_at IS NOT NULL THEN
            UPDATE checkouts ck SET cancel_requested_at = NULL
             WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout;
            PERFORM audit_append(p_merchant, p_checkout, 'cancel:canceled',
                jsonb_build_object('psp', c.psp, 'result', p_result,
                                   'failed_by', 'webhook'));
        END IF;
        v_status := 200;

    ELSIF c.status = 'SUCCESS' THEN
        v_status := 409;
        v_body := p_paid_problem;

    ELSE
        v_status := 409;
        v_body := p_not_cancelable_problem;
    END IF;

    -- refused (paid, held, in review): decided too, so that no later
    -- registration or approval of the checkout counts it as under way
    IF v_status = 409 AND p_result <> 'paid' AND c.cancel_requested_at IS NOT NULL THEN
        UPDATE checkouts ck SET cancel_requested_at = NULL
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout;
    END IF;

    IF v_status = 200 THEN
        v_body := jsonb_build_object('checkout_id', p_checkout,
                                     'status', 'FAILED')::text;
    END IF;

    PERFORM op_key_done(p_merchant, p_idem_key, p_lease, v_status, v_body);

    RETURN QUERY SELECT v_status, v_body;
END
$$;


--
-- Name: pay_capture_claim(text, text, text, integer, integer, text, text, bigint, text, text, jsonb, boolean); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_capture_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_capture_id text, p_order_id text, p_amount bigint, p_currency text, p_kind text, p_metadata jsonb, p_final boolean) RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, refund_id text, psp text, payment_ref text, amount bigint, currency text, reason text, refundable bigint, op_status text, psp_ref text, failure text, claim_age bigint)
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT outcome, lease, retry_after, response_status, response_body, refund_id, psp, payment_ref, amount, currency, reason, refundable, op_status, psp_ref, failure, claim_age FROM pay_capture_claim(p_merchant, p_idem_key, p_fingerprint, p_lease_seconds, p_ttl_seconds, p_capture_id, p_order_id, p_amount, p_currency, p_kind, p_metadata, p_final, NULL::jsonb, NULL::bigint);
$$;


--
-- Name: pay_capture_claim(text, text, text, integer, integer, text, text, bigint, text, text, jsonb, boolean, jsonb, bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_capture_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_capture_id text, p_order_id text, p_amount bigint, p_currency text, p_kind text, p_metadata jsonb, p_final boolean, p_psp_conf jsonb, p_unit bigint) RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, refund_id text, psp text, payment_ref text, amount bigint, currency text, reason text, refundable bigint, op_status text, psp_ref text, failure text, claim_age bigint, psp_conf jsonb)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    k        record;
    o        payment_orders%ROWTYPE;
    c        checkouts%ROWTYPE;
    cp       captures%ROWTYPE;
    v_held   bigint;
    v_left   bigint;
    v_amt    bigint;
    v_unit   bigint := coalesce(p_unit, 1);
    v_err    text;
    v_prior  text;
BEGIN
    IF p_kind NOT IN ('capture', 'void') THEN
        RAISE EXCEPTION 'pay_capture_claim: unknown kind %', p_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_unit < 1 THEN
        RAISE EXCEPTION 'pay_capture_claim: a PSP''s unit is at least 1, not %', p_unit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT * INTO k FROM op_key_take(p_merchant, p_idem_key, p_fingerprint,
                                     p_lease_seconds, p_ttl_seconds, p_capture_id);
    IF k.outcome IN ('replay', 'in_use', 'reused') THEN
        RETURN QUERY SELECT k.outcome, NULL::bigint, k.retry_after, k.response_status,
                            k.response_body, NULL::text, NULL::text, NULL::text,
                            NULL::bigint, NULL::text, NULL::text, NULL::bigint,
                            NULL::text, NULL::text, NULL::text, NULL::bigint,
                            NULL::jsonb;
        RETURN;
    END IF;

    -- the same request (key and body) after its key expired, or was
    -- purged: the capture it made, resumed, never made a second time
    IF k.outcome = 'new' THEN
        v_prior := op_key_prior(p_merchant, p_idem_key, p_fingerprint, 'capture', k.lease);
        IF v_prior IS NOT NULL THEN
            k.outcome := 'resumed';
            k.op_id := v_prior;
        END IF;
    END IF;

    IF k.outcome = 'resumed' THEN
        -- one its PSP can never be sent (an amount that is not a multiple
        -- of its unit): no attempt of it can have reached the PSP, so it
        -- is given up, FAILED, and answered from its row below
        PERFORM capture_unsendable_give_up(p_merchant, x.checkout_id, x.capture_id,
                                           x.currency, v_unit)
           FROM captures x
          WHERE x.merchant_id = p_merchant AND x.capture_id = k.op_id;
        -- one to send again: this attempt may reach the PSP ('trying'), and
        -- an earlier one that never said it sent nothing ('trying' still: it
        -- died, or its lease ran out) may have ('maybe'); a 'maybe' stays
        -- as it is (no write)
        UPDATE captures x
           SET psp_contact = CASE x.psp_contact WHEN 'none' THEN 'trying' ELSE 'maybe' END
         WHERE x.merchant_id = p_merchant AND x.capture_id = k.op_id
           AND x.status = 'PENDING' AND x.psp_ref IS NULL
           AND x.psp_contact <> 'maybe'
        RETURNING * INTO cp;
        IF NOT FOUND THEN
            SELECT * INTO cp FROM captures x
             WHERE x.merchant_id = p_merchant AND x.capture_id = k.op_id;
        END IF;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pay_capture_claim: in-progress key % has no capture', p_idem_key
                USING ERRCODE = 'PY004';
        END IF;
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = cp.checkout_id;
        -- settled, or known to the PSP: answered from the row, never sent
        -- again
        RETURN QUERY SELECT CASE WHEN cp.status <> 'PENDING' OR cp.psp_ref IS NOT NULL
                                 THEN 'settled' ELSE 'resumed' END,
                            k.lease, NULL::int, NULL::int, NULL::text,
                            cp.capture_id, cp.psp, c.psp_payment_ref, cp.amount, cp.currency,
                            cp.kind, NULL::bigint, cp.status, cp.psp_ref, cp.failure,
                            floor(date_part('epoch', clock_timestamp() - cp.created_at))::bigint,
                            cp.psp_conf;
        RETURN;
    END IF;

    -- A new one: the checkout and its orders are locked (in the order
    -- every money function takes them, doc/MONEY.md "Lock order": the
    -- checkout, then its orders in id order), so the captures and voids of
    -- one authorization are decided one at a time, and what is PENDING
    -- counts as taken
    SELECT * INTO o FROM payment_orders po
     WHERE po.merchant_id = p_merchant AND po.payment_order_id = p_order_id;
    IF FOUND THEN
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = o.checkout_id
           FOR UPDATE;
        PERFORM 1 FROM payment_orders po
         WHERE po.merchant_id = p_merchant AND po.checkout_id = o.checkout_id
         ORDER BY po.payment_order_id
           FOR UPDATE;
        SELECT * INTO o FROM payment_orders po
         WHERE po.merchant_id = p_merchant AND po.payment_order_id = p_order_id;
        -- a capture of the checkout its PSP can never be sent, stored by
        -- the previous release, holds nothing: given up first, so that it
        -- neither counts as taken nor makes a void capture_in_progress
        PERFORM capture_unsendable_give_up(p_merchant, o.checkout_id, NULL,
                                           o.currency, v_unit);
    END IF;

    IF o.payment_order_id IS NULL THEN
        v_err := 'not_found';
    ELSIF c.capture_method <> 'manual' OR c.psp_payment_ref IS NULL
          OR o.status NOT IN ('AUTHORIZED', 'SUCCESS') OR o.amount_captured IS NULL
          OR c.hold_closed_at IS NOT NULL THEN
        v_err := 'not_capturable';
    ELSIF p_psp_conf ? 'merchant_account'
          AND stored_request_account(c.psp_request)
              <> p_psp_conf ->> 'merchant_account' THEN
        -- made under another merchant account than the PSP's configuration
        -- names now: refused there, or, under the payment's, its webhook
        -- refused here as another account's (pay_refund_claim): not sent
        v_err := 'merchant_account';
    ELSIF EXISTS (SELECT 1 FROM captures x
                   WHERE x.merchant_id = p_merchant AND x.checkout_id = o.checkout_id
                     AND x.status = 'PENDING'
                     AND (x.kind = 'void' OR x.final OR p_kind = 'void')) THEN
        -- a void or a final capture under way decides the rest: nothing
        -- is taken beside it
        v_err := 'capture_in_progress';
    ELSIF p_kind = 'capture' AND p_final
          AND EXISTS (SELECT 1 FROM captures x
                       WHERE x.merchant_id = p_merchant AND x.checkout_id = o.checkout_id
                         AND x.kind = 'capture' AND x.status <> 'FAILED') THEN
        -- the PSP captures an authorization once
        v_err := 'not_capturable';
    ELSIF p_kind = 'capture' AND EXISTS (SELECT 1 FROM refunds rf
                                          WHERE rf.merchant_id = p_merchant
                                            AND rf.payment_order_id = p_order_id) THEN
        -- refunds are shares of what was captured: captured first
        v_err := 'not_capturable';
    ELSIF p_currency IS NOT NULL AND p_currency <> o.currency THEN
        v_err := 'currency_mismatch';
    ELSE
        SELECT coalesce(sum(x.amount), 0)::bigint INTO v_held FROM captures x
         WHERE x.merchant_id = p_merchant AND x.payment_order_id = p_order_id
           AND x.kind = 'capture' AND x.status = 'PENDING';
        v_left := o.amount - o.amount_captured - v_held;
        IF p_kind = 'capture' THEN
            -- without an amount: what is left, rounded down to what the
            -- PSP can be sent (a rest of 6666.66 IDR at a PSP that counts
            -- whole rupiah is 6666.00 captured; the 0.66 is released with
            -- the rest of the hold)
            v_amt := CASE WHEN p_amount IS NOT NULL THEN p_amount
                          WHEN v_left > 0 THEN v_left - v_left % v_unit
                          ELSE v_left END;
            IF v_amt > v_left OR (v_amt <= 0 AND (p_amount IS NOT NULL OR v_left <= 0)) THEN
                v_err := 'exceeds_authorization';
            ELSIF v_amt <= 0 OR v_amt % v_unit <> 0 THEN
                -- less than the PSP's unit left, or an amount it has no
                -- value for: never a claim it cannot be sent
                v_err := 'not_expressible';
            END IF;
        ELSE
            -- a void releases every order's rest: its amount is the
            -- checkout's uncaptured part, for the record
            SELECT coalesce(sum(po.amount - po.amount_captured), 0)::bigint INTO v_amt
              FROM payment_orders po
             WHERE po.merchant_id = p_merchant AND po.checkout_id = o.checkout_id;
            IF v_amt <= 0 THEN
                v_err := 'not_capturable';
            END IF;
        END IF;
    END IF;

    IF v_err IS NOT NULL THEN
        DELETE FROM idempotency_keys ik
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
           AND ik.lease = k.lease AND ik.state = 'in_progress';
        RETURN QUERY SELECT v_err, NULL::bigint, NULL::int, NULL::int, NULL::text,
                            NULL::text, NULL::text, NULL::text, NULL::bigint,
                            o.currency, NULL::text,
                            CASE WHEN v_left IS NULL THEN NULL ELSE greatest(v_left, 0) END,
                            NULL::text, NULL::text, NULL::text, NULL::bigint,
                            CASE WHEN v_err = 'merchant_account'
                                 THEN jsonb_build_object('merchant_account',
                                          stored_request_account(c.psp_request)) END;
        RETURN;
    END IF;

    INSERT INTO operation_keys (merchant_id, idem_key, fingerprint, kind, op_id)
    VALUES (p_merchant, p_idem_key, p_fingerprint, 'capture', p_capture_id);

    INSERT INTO captures (merchant_id, capture_id, kind, checkout_id, payment_order_id, psp,
                          nonce, amount, currency, final, status, metadata, psp_contact, psp_conf)
    VALUES (p_merchant, p_capture_id, p_kind, o.checkout_id, p_order_id, c.psp,
            p_merchant || ':' || p_capture_id, v_amt, o.currency,
            p_kind = 'void' OR coalesce(p_final, false), 'PENDING',
            coalesce(p_metadata, '{}'), 'trying', p_psp_conf);

    PERFORM audit_append(p_merchant, o.checkout_id, p_kind || ':requested',
        jsonb_build_object('capture_id', p_capture_id, 'payment_order_id', p_order_id,
                           'amount', v_amt, 'currency', o.currency));

    RETURN QUERY SELECT 'new'::text, k.lease, NULL::int, NULL::int, NULL::text,
                        p_capture_id, c.psp, c.psp_payment_ref, v_amt, o.currency,
                        p_kind, NULL::bigint, 'PENDING'::text, NULL::text, NULL::text,
                        0::bigint, p_psp_conf;
END
$$;


--
-- Name: pay_capture_finish(text, text, bigint, text, boolean, text, text, integer, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_capture_finish(p_merchant text, p_idem_key text, p_lease bigint, p_capture_id text, p_registered boolean, p_psp_ref text, p_failure text, p_response_status integer, p_response_body text) RETURNS TABLE(response_status integer, response_body text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    cp  captures%ROWTYPE;
BEGIN
    PERFORM op_key_done(p_merchant, p_idem_key, p_lease, p_response_status, p_response_body);

    SELECT * INTO cp FROM captures x
     WHERE x.merchant_id = p_merchant AND x.capture_id = p_capture_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pay_capture_finish: no capture %', p_capture_id USING ERRCODE = 'PY004';
    END IF;

    IF p_registered THEN
        -- a webhook may have come first and set it already
        UPDATE captures x SET psp_ref = coalesce(x.psp_ref, p_psp_ref)
         WHERE x.merchant_id = p_merchant AND x.capture_id = p_capture_id;
    ELSIF cp.status = 'PENDING' THEN
        UPDATE captures x SET status = 'FAILED', failure = left(p_failure, 1000)
         WHERE x.merchant_id = p_merchant AND x.capture_id = p_capture_id;
        PERFORM audit_append(p_merchant, cp.checkout_id, cp.kind || ':refused',
            jsonb_build_object('capture_id', p_capture_id));
    END IF;

    RETURN QUERY SELECT p_response_status, p_response_body;
END
$$;


--
-- Name: pay_charge_authenticate(text, text, bigint, text, text, text, bigint, text, integer, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_charge_authenticate(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_psp_token text, p_psp_url text, p_psp_expires_at bigint, p_reason text, p_response_status integer, p_response_body text, p_psp_token_index text) RETURNS TABLE(response_status integer, response_body text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_psp     text;
    v_status  pay_status;
    v_pm      text;
    v_key     record;
BEGIN
    SELECT * INTO v_key FROM checkout_key_finish('pay_charge_authenticate', p_merchant, p_idem_key,
                                 p_lease, p_checkout_id,
                                 p_psp_token IS NOT NULL AND p_psp_url IS NOT NULL
                                 AND p_psp_expires_at IS NOT NULL
                                 AND p_response_status IS NOT NULL AND p_response_body IS NOT NULL,
                                 'the session''s token, url and expiry, and the answer, are required',
                                 p_response_status, p_response_body);
    IF v_key.replay THEN
        RETURN QUERY SELECT v_key.stored_status, v_key.stored_body;
        RETURN;
    END IF;

    UPDATE checkouts c
       SET psp_token = p_psp_token, psp_url = p_psp_url,
           expires_at = to_timestamp(p_psp_expires_at),
           updated_at = now()
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id
    -- by its key, its method told by the row (as pay_charge_finish)
    RETURNING c.psp, c.status, c.payment_method_id INTO v_psp, v_status, v_pm;
    IF v_pm IS NULL THEN
        RAISE EXCEPTION 'pay_charge_authenticate: no off-session checkout % for merchant %',
            p_checkout_id, p_merchant USING ERRCODE = 'PY004';
    END IF;

    INSERT INTO psp_tokens (psp, psp_token, merchant_id, checkout_id)
    VALUES (v_psp, coalesce(p_psp_token_index, p_psp_token), p_merchant, p_checkout_id);

    PERFORM audit_append(p_merchant, p_checkout_id, 'charge:authentication_required',
        jsonb_build_object('psp', v_psp, 'status', v_status::text,
                           'reason', p_reason,
                           'expires_at', to_timestamp(p_psp_expires_at)));

    RETURN QUERY SELECT p_response_status, p_response_body;
END
$$;


--
-- Name: pay_charge_finish(text, text, bigint, text, text, text, text, text, integer, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_charge_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_outcome text, p_psp_ref text, p_psp_ref_index text, p_failure text, p_response_status integer, p_response_body text) RETURNS TABLE(response_status integer, response_body text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_psp    text;
    v_pm     text;
    v_key    record;
BEGIN
    IF p_outcome IS NULL
       OR p_outcome NOT IN ('accepted', 'declined', 'authentication_required')
       OR (p_outcome = 'accepted' AND p_psp_ref IS NULL)
       OR p_response_status IS NULL OR p_response_body IS NULL THEN
        RAISE EXCEPTION 'pay_charge_finish: outcome, answer (and the PSP''s id when accepted) are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT * INTO v_key FROM checkout_key_finish('pay_charge_finish', p_merchant, p_idem_key, p_lease,
                                 p_checkout_id, true, NULL,
                                 p_response_status, p_response_body);
    IF v_key.replay THEN
        RETURN QUERY SELECT v_key.stored_status, v_key.stored_body;
        RETURN;
    END IF;

    UPDATE checkouts c
       SET psp_token = coalesce(p_psp_ref, c.psp_token),
           failure = CASE WHEN p_outcome <> 'accepted' AND c.status = 'EXECUTING'
                          THEN p_failure ELSE c.failure END,
           failure_code = CASE WHEN p_outcome <> 'accepted' AND c.status = 'EXECUTING'
                               THEN (CASE WHEN p_outcome = 'declined' THEN 'declined'
                                          ELSE 'authentication_required' END)::pay_failure_code
                               ELSE c.failure_code END,
           status = CASE WHEN p_outcome <> 'accepted' AND c.status = 'EXECUTING'
                         THEN 'FAILED'::pay_status ELSE c.status END,
           updated_at = now()
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id
    -- the checkout by its key, its method told by the row: a condition
    -- on payment_method_id is checkouts_payment_method's predicate, and
    -- planned without statistics that index's walk of the merchant's
    -- charges was taken for the look-up (plans::each_money_move_...)
    RETURNING c.psp, c.payment_method_id INTO v_psp, v_pm;
    IF v_pm IS NULL THEN
        RAISE EXCEPTION 'pay_charge_finish: no off-session checkout % for merchant %',
            p_checkout_id, p_merchant USING ERRCODE = 'PY004';
    END IF;

    IF p_psp_ref IS NOT NULL THEN
        INSERT INTO psp_tokens (psp, psp_token, merchant_id, checkout_id)
        VALUES (v_psp, coalesce(p_psp_ref_index, p_psp_ref), p_merchant, p_checkout_id)
        ON CONFLICT DO NOTHING;
    END IF;

    IF p_outcome <> 'accepted' THEN
        PERFORM checkout_orders_fail(p_merchant, p_checkout_id, v_psp, p_failure,
                                     'charge:' || p_outcome, 'charge:' || p_outcome);
    END IF;

    RETURN QUERY SELECT p_response_status, p_response_body;
END
$$;


--
-- Name: pay_checkout_status(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_checkout_status(p_merchant text, p_checkout_id text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    -- the primary key: one row at most
    RETURN (SELECT c.status::text
              FROM checkouts c
             WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id);
END
$$;


--
-- Name: pay_claim(text, text, text, integer, integer, text, text, text, bigint, text, text, text, bigint, text, jsonb, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text) RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, psp_request text, expires_at bigint, checkout_status text, claim_age bigint)
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT * FROM pay_claim(p_merchant, p_idem_key, p_fingerprint, p_lease_seconds,
                            p_ttl_seconds, p_checkout_id, p_psp, p_currency,
                            p_amount_total, p_success_url, p_cancel_url, p_buyer_email,
                            p_expires_at, p_psp_request, p_orders, p_duplicate_body,
                            '{}'::jsonb, 'automatic', NULL::jsonb);
$$;


--
-- Name: pay_claim(text, text, text, integer, integer, text, text, text, bigint, text, text, text, bigint, text, jsonb, text, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb) RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, psp_request text, expires_at bigint, checkout_status text, claim_age bigint)
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT * FROM pay_claim(p_merchant, p_idem_key, p_fingerprint, p_lease_seconds,
                            p_ttl_seconds, p_checkout_id, p_psp, p_currency,
                            p_amount_total, p_success_url, p_cancel_url, p_buyer_email,
                            p_expires_at, p_psp_request, p_orders, p_duplicate_body,
                            p_metadata, 'automatic', NULL::jsonb);
$$;


--
-- Name: pay_claim(text, text, text, integer, integer, text, text, text, bigint, text, text, text, bigint, text, jsonb, text, jsonb, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb, p_capture_method text) RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, psp_request text, expires_at bigint, checkout_status text, claim_age bigint)
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT * FROM pay_claim(p_merchant, p_idem_key, p_fingerprint, p_lease_seconds,
                            p_ttl_seconds, p_checkout_id, p_psp, p_currency,
                            p_amount_total, p_success_url, p_cancel_url, p_buyer_email,
                            p_expires_at, p_psp_request, p_orders, p_duplicate_body,
                            p_metadata, p_capture_method, NULL::jsonb);
$$;


--
-- Name: pay_claim(text, text, text, integer, integer, text, text, text, bigint, text, text, text, bigint, text, jsonb, text, jsonb, text, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb, p_capture_method text, p_options jsonb) RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, psp_request text, expires_at bigint, checkout_status text, claim_age bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $_$
#variable_conflict use_column
DECLARE
    k             idempotency_keys%ROWTYPE;
    v_lease       bigint;
    v_now         timestamptz;
    v_lease_for   interval := p_lease_seconds * interval '1 second';
    -- the key's TTL and a minute a day of it (1/1440): an answer stored
    -- within that of its claim keeps the claim's expiry, still at least the
    -- TTL after it (checkout_key_finish), and its row is updated in place
    v_ttl         interval := p_ttl_seconds * interval '1 second' * (1441.0 / 1440);
    v_sum         numeric;
    v_constraint  text;
    v_request     text;
    v_expires     timestamptz;
    c             checkouts%ROWTYPE;
    v_unknown     text;
    v_method      payment_methods%ROWTYPE;
    v_method_id   text := p_options ->> 'payment_method';
    v_save        jsonb := p_options -> 'save';
    v_route       text := p_options ->> 'route';
    v_conf        jsonb := p_options -> 'psp_conf';
    v_account     text;
    v_detail      jsonb;
BEGIN
    -- Adapter bugs, not client errors: fail loudly rather than store them.
    IF p_lease_seconds IS NULL OR p_lease_seconds < 1
       OR p_ttl_seconds IS NULL OR p_ttl_seconds < 1 THEN
        RAISE EXCEPTION 'pay_claim: lease and ttl must be at least 1 second'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_capture_method IS DISTINCT FROM 'automatic'
       AND p_capture_method IS DISTINCT FROM 'manual' THEN
        RAISE EXCEPTION 'pay_claim: capture method must be automatic or manual'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- (The options' rules are a second IF, evaluated only when there are
    -- options: PL/pgSQL prepares each condition anew in every transaction,
    -- at its first evaluation, so a plain registration does not prepare
    -- them; without options each of them is false or NULL anyway.)
    IF jsonb_typeof(p_orders) IS DISTINCT FROM 'array' OR p_psp_request IS NULL
       OR jsonb_typeof(p_metadata) IS DISTINCT FROM 'object'
       OR p_duplicate_body IS NULL OR p_expires_at IS NULL
       -- a save without a charge (amount 0): a save, and no orders; every
       -- other checkout has orders
       OR (p_amount_total = 0) IS DISTINCT FROM
          (CASE WHEN jsonb_typeof(p_orders) = 'array' THEN jsonb_array_length(p_orders) = 0 END)
       OR (p_amount_total = 0 AND (v_save IS NULL OR p_capture_method <> 'automatic')) THEN
        RAISE EXCEPTION 'pay_claim: p_orders must be an array, p_metadata an object, p_options a save or a saved method; psp_request, duplicate body and expires_at are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_options IS NOT NULL THEN
        IF jsonb_typeof(p_options) <> 'object'
           -- a save and a charge of a saved method exclude each other; a
           -- save names the customer, our reference for it, the usage and
           -- Adyen's model (checkouts.save_method has no CHECK of its own)
           OR (v_save IS NOT NULL AND v_method_id IS NOT NULL)
           OR (v_save IS NOT NULL
               AND (jsonb_typeof(v_save) IS DISTINCT FROM 'object'
                    OR v_save ->> 'usage' IS DISTINCT FROM 'off_session'
                       AND v_save ->> 'usage' IS DISTINCT FROM 'on_session'
                    OR coalesce(v_save ->> 'customer', '') !~ '^[A-Za-z0-9_.-]{1,64}$'
                    OR coalesce(v_save ->> 'customer_ref', '') !~ '^cu_[0-9a-f]{24}$'
                    OR coalesce(v_save ->> 'recurring', '') NOT IN
                       ('CardOnFile', 'Subscription', 'UnscheduledCardOnFile')))
           OR (v_method_id IS NOT NULL AND v_method_id !~ '^pm_[a-p]{24}$')
           -- a charge's PSP settings (pay_psp_conf_record), to compare
           -- with the account its method was saved under
           OR (v_conf IS NOT NULL
               AND (v_method_id IS NULL OR jsonb_typeof(v_conf) <> 'object'))
           -- a routed checkout: its route's name, and the route's PSPs
           -- passed over before p_psp (checkout_route_first checks each)
           OR (p_options ? 'route' AND jsonb_typeof(p_options -> 'route') IS DISTINCT FROM 'string')
           OR (p_options ? 'passed_over'
               AND (v_route IS NULL OR jsonb_typeof(p_options -> 'passed_over') <> 'array')) THEN
            RAISE EXCEPTION 'pay_claim: p_orders must be an array, p_metadata an object, p_options a save or a saved method; psp_request, duplicate body and expires_at are required'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;

    -- (An unknown merchant is refused where its checkout is stored:
    -- checkouts_merchant_terms, 23503, and nothing of the claim is kept.)
    -- The key row is the one thing concurrent requests with the same key
    -- serialise on: a second INSERT waits for the first transaction, then
    -- either conflicts (it committed) or proceeds (it rolled back).  The loop
    -- only repeats when pay_purge deleted the conflicting row in between.
    FOR attempt IN 1..3 LOOP
        INSERT INTO idempotency_keys AS ik
               (merchant_id, idem_key, fingerprint, state, lease, lease_until,
                checkout_id, created_at, expires_at)
        VALUES (p_merchant, p_idem_key, p_fingerprint, 'in_progress', 1,
                clock_timestamp() + v_lease_for, p_checkout_id, now(), now() + v_ttl)
        ON CONFLICT (merchant_id, idem_key) DO NOTHING
        RETURNING ik.lease INTO v_lease;
        EXIT WHEN v_lease IS NOT NULL;

        -- Under READ COMMITTED this statement sees the row that conflicted.
        SELECT * INTO k FROM idempotency_keys ik
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
           FOR UPDATE;
        CONTINUE WHEN NOT FOUND;
        v_now := clock_timestamp();

        IF k.state = 'done' AND k.expires_at <= v_now
           AND k.fingerprint = p_fingerprint AND k.checkout_id = p_checkout_id THEN
            -- The same request after its key expired: the checkout it
            -- registered is kept, and is never registered again.  Nothing
            -- is stored: the caller says what happened.
            RETURN QUERY SELECT 'expired'::text, NULL::bigint, NULL::int, NULL::int,
                                NULL::text, NULL::text, NULL::bigint, NULL::text,
                                NULL::bigint;
            RETURN;
        END IF;

        IF k.state = 'done' AND k.expires_at <= v_now THEN
            -- Past its TTL a done key counts as absent: claim the row afresh
            -- (the lease counter keeps counting, so old holders stay fenced).
            UPDATE idempotency_keys ik
               SET fingerprint = p_fingerprint, state = 'in_progress',
                   lease = ik.lease + 1, lease_until = v_now + v_lease_for,
                   checkout_id = p_checkout_id, response_status = NULL,
                   response_body = NULL, created_at = now(), expires_at = now() + v_ttl
             WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
            RETURNING ik.lease INTO v_lease;
            EXIT;
        END IF;

        -- The fingerprint first: another body under this key is refused
        -- whatever the key's state, so a lease take-over never resumes a
        -- registration for a different request.
        IF k.fingerprint <> p_fingerprint THEN
            RETURN QUERY SELECT 'reused'::text, NULL::bigint, NULL::int,
                                NULL::int, NULL::text, NULL::text, NULL::bigint,
                                NULL::text, NULL::bigint;
            RETURN;
        END IF;

        IF k.state = 'done' THEN
            RETURN QUERY SELECT 'replay'::text, NULL::bigint, NULL::int,
                                k.response_status, k.response_body, NULL::text, NULL::bigint,
                                NULL::text, NULL::bigint;
            RETURN;
        END IF;

        IF k.lease_until > v_now THEN
            RETURN QUERY SELECT 'in_use'::text, NULL::bigint,
                                GREATEST(1, ceil(date_part('epoch', k.lease_until - v_now)))::int,
                                NULL::int, NULL::text, NULL::text, NULL::bigint,
                                NULL::text, NULL::bigint;
            RETURN;
        END IF;

        -- In progress, lease expired, same request: the holder died.  A
        -- checkout that was decided meanwhile (its webhook came, the
        -- sweeper asked) is never registered again: the PSP may have
        -- forgotten the key, and would open a second session, a second
        -- way to pay.  The key is left as it is.  The checkout is locked
        -- (after the key: the order every function takes them in,
        -- doc/MONEY.md), so that a cancel claimed at this moment
        -- (pay_cancel_claim, which locks it too) either commits first and
        -- is seen here, or comes after this take-over and sees its live
        -- lease.
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = k.checkout_id
           FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pay_claim: in-progress key % of merchant % has no checkout',
                p_idem_key, p_merchant USING ERRCODE = 'PY004';
        END IF;
        IF c.status <> 'EXECUTING' THEN
            RETURN QUERY SELECT 'decided'::text, NULL::bigint, NULL::int, NULL::int,
                                NULL::text, NULL::text, NULL::bigint, c.status::text,
                                NULL::bigint;
            RETURN;
        END IF;
        -- The shop asked to cancel it (its cancel is under way, or ended
        -- without an answer and waits for its retry): a session registered
        -- now would be payable after the cancel, which ends only the
        -- session it saw.  Never registered again; the key is left as it
        -- is.
        IF c.cancel_requested_at IS NOT NULL THEN
            RETURN QUERY SELECT 'canceling'::text, NULL::bigint, NULL::int, NULL::int,
                                NULL::text, NULL::text, NULL::bigint, c.status::text,
                                NULL::bigint;
            RETURN;
        END IF;

        -- Take over with a new lease (the key's expiry stays) and hand back
        -- what was fixed at claim time, so the PSP sees the same nonce and
        -- byte-identical parameters; with the claim's age, which the
        -- caller compares with how long its PSP keeps a key.
        UPDATE idempotency_keys ik
           SET lease = ik.lease + 1, lease_until = v_now + v_lease_for
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
        RETURNING ik.lease INTO v_lease;

        -- One to send again: this attempt may reach the PSP ('trying'); an
        -- earlier one that never said it sent nothing ('trying' still: it
        -- died, or its lease ran out) may have ('maybe'); a 'maybe' stays
        -- as it is (no write).  The age is counted from the earliest
        -- attempt that may have reached the PSP: from now when none can
        -- have (every earlier one said it sent nothing: the PSP never saw
        -- the key, and this attempt's request is the first under it).
        IF c.psp_contact <> 'maybe' THEN
            UPDATE checkouts ck
               SET psp_contact = CASE ck.psp_contact WHEN 'none' THEN 'trying' ELSE 'maybe' END,
                   psp_contact_since = CASE ck.psp_contact WHEN 'none' THEN v_now
                                            ELSE ck.psp_contact_since END
             WHERE ck.merchant_id = p_merchant AND ck.checkout_id = k.checkout_id
            RETURNING * INTO c;
        END IF;

        RETURN QUERY SELECT 'resumed'::text, v_lease, NULL::int, NULL::int,
                            NULL::text, c.psp_request, ts_epoch(c.expires_at),
                            c.status::text,
                            GREATEST(0, floor(date_part('epoch', v_now
                                - coalesce(c.psp_contact_since, c.created_at))))::bigint;
        RETURN;
    END LOOP;

    IF v_lease IS NULL THEN
        -- Three rounds of insert-conflict-vanished: let the client retry.
        RAISE EXCEPTION 'pay_claim: key % kept changing under us', p_idem_key
            USING ERRCODE = 'serialization_failure';
    END IF;

    -- A merchant that registered sellers (payments-merchant add-seller)
    -- registers orders for those only: an order for another would be paid
    -- and never paid out.  Nothing is stored, the key included, so the
    -- fixed body can come with the same key.
    SELECT o.value ->> 'seller_account' INTO v_unknown
      FROM jsonb_array_elements(p_orders) WITH ORDINALITY AS o(value, ord)
     WHERE EXISTS (SELECT 1 FROM sellers s WHERE s.merchant_id = p_merchant)
       AND NOT EXISTS (SELECT 1 FROM sellers s
                        WHERE s.merchant_id = p_merchant
                          AND s.seller_account = o.value ->> 'seller_account')
     ORDER BY o.ord
     LIMIT 1;
    IF v_unknown IS NOT NULL THEN
        DELETE FROM idempotency_keys ik
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
           AND ik.lease = v_lease;
        RETURN QUERY SELECT 'unknown_seller'::text, NULL::bigint, NULL::int,
                            NULL::int, v_unknown, NULL::text, NULL::bigint,
                            NULL::text, NULL::bigint;
        RETURN;
    END IF;

    -- An off-session charge names a saved method of this merchant, still
    -- active, and of the PSP it is sent to (a saved token is its PSP's
    -- alone: no route moves it elsewhere).  Otherwise nothing is stored,
    -- the key included; the row stays locked until the checkout that
    -- names it commits, so a detach waits for it or comes first.
    IF v_method_id IS NOT NULL THEN
        SELECT * INTO v_method FROM payment_methods pm
         WHERE pm.merchant_id = p_merchant AND pm.method_id = v_method_id
           FOR SHARE;
        v_unknown := CASE WHEN NOT FOUND THEN 'missing'
                          WHEN v_method.status <> 'active' THEN 'detached'
                          WHEN v_method.psp <> p_psp THEN 'psp' END;
        IF v_unknown IS NOT NULL THEN
            DELETE FROM idempotency_keys ik
             WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
               AND ik.lease = v_lease;
            RETURN QUERY SELECT 'method_unusable'::text, NULL::bigint, NULL::int,
                                NULL::int, v_unknown,
                                NULL::text, NULL::bigint, NULL::text, NULL::bigint;
            RETURN;
        END IF;

        -- saved under another merchant account than the one its PSP's
        -- configuration names now (a merchant_account= changed in place):
        -- the PSP keeps the token under the account that saved it and
        -- refuses a charge under another, and a charge under that one
        -- would be paid by a webhook refused here as another account's.
        -- Not sent, nothing stored, the key included; response_body the
        -- method's account.  None recorded: charged as before.
        IF v_conf ? 'merchant_account' THEN
            SELECT stored_request_account(sc.psp_request) INTO v_account
              FROM checkouts sc
             WHERE sc.merchant_id = p_merchant
               AND sc.checkout_id = v_method.checkout_id;
            IF v_account <> v_conf ->> 'merchant_account' THEN
                DELETE FROM idempotency_keys ik
                 WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
                   AND ik.lease = v_lease;
                RETURN QUERY SELECT 'merchant_account'::text, NULL::bigint,
                                    NULL::int, NULL::int,
                                    jsonb_build_object('merchant_account',
                                                       v_account)::text,
                                    NULL::text, NULL::bigint, NULL::text,
                                    NULL::bigint;
                RETURN;
            END IF;
        END IF;
    END IF;

    -- A new key: the checkout, its orders (NOT_STARTED -> EXECUTING, written
    -- as EXECUTING with the event that records the move) and the events.
    -- The block is a subtransaction: if the checkout id or an order id is
    -- already this merchant's (even one a concurrent transaction under
    -- another key commits while we wait on its index entry), it is rolled
    -- back and only the key remains, stored as a duplicate.
    BEGIN
        INSERT INTO checkouts (merchant_id, checkout_id, psp, nonce, currency,
                               amount_total, success_url, cancel_url, buyer_email,
                               status, psp_request, expires_at, metadata,
                               capture_method, save_method, payment_method_id,
                               psp_contact, idem_key)
        VALUES (p_merchant, p_checkout_id, p_psp, p_merchant || ':' || p_checkout_id,
                p_currency, p_amount_total, p_success_url, p_cancel_url, p_buyer_email,
                'EXECUTING', p_psp_request, to_timestamp(p_expires_at), p_metadata,
                p_capture_method, v_save, v_method_id, 'trying', p_idem_key);

        WITH o AS (
            SELECT e.value ->> 'payment_order_id' AS id,
                   e.value ->> 'seller_account' AS seller,
                   (e.value ->> 'amount_minor')::bigint AS amount,
                   e.ord::int AS line_no
              FROM jsonb_array_elements(p_orders) WITH ORDINALITY AS e(value, ord)
        ), ins AS (
            INSERT INTO payment_orders (merchant_id, payment_order_id, checkout_id,
                                        line_no, seller_account, amount, currency, status)
            SELECT p_merchant, o.id, p_checkout_id, o.line_no, o.seller, o.amount,
                   p_currency, 'EXECUTING'
              FROM o
             -- Index entries are taken in id order, so two checkouts racing
             -- on overlapping order ids wait for each other, never deadlock.
             ORDER BY o.id
            RETURNING payment_orders.payment_order_id, payment_orders.line_no,
                      payment_orders.amount
        ), ev AS (
            INSERT INTO order_events (merchant_id, checkout_id, payment_order_id,
                                      from_status, to_status, source)
            SELECT p_merchant, p_checkout_id, ins.payment_order_id,
                   'NOT_STARTED', 'EXECUTING', 'registration'
              FROM ins ORDER BY ins.line_no
        )
        SELECT coalesce(sum(ins.amount), 0) INTO v_sum FROM ins;
    EXCEPTION WHEN unique_violation THEN
        GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME;
        IF v_constraint NOT IN ('checkouts_pkey', 'payment_orders_pkey',
                                'payment_orders_checkout_order_key') THEN
            RAISE;
        END IF;
        UPDATE idempotency_keys ik
           SET state = 'done', lease_until = NULL, checkout_id = NULL,
               response_status = 409, response_body = p_duplicate_body
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key;
        RETURN QUERY SELECT 'duplicate'::text, NULL::bigint, NULL::int,
                            409, p_duplicate_body, NULL::text, NULL::bigint,
                            NULL::text, NULL::bigint;
        RETURN;
    END;

    -- The core sums the orders; a mismatch here is a bug, and the whole
    -- transaction (key included) rolls back rather than store it.
    IF v_sum IS DISTINCT FROM p_amount_total THEN
        RAISE EXCEPTION 'pay_claim: orders sum to %, amount_total is %', v_sum, p_amount_total
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The move NOT_STARTED -> EXECUTING reaches the merchant's audit chain
    -- (audit_append) in the transaction that made it.  The detail is built
    -- without a subquery, so that each step is an expression PL/pgSQL
    -- evaluates itself, not a statement the executor starts (the orders'
    -- ids in their order; none: null, as an aggregate of no rows was).
    v_detail := jsonb_build_object('from', 'NOT_STARTED', 'to', 'EXECUTING',
                                   'psp', p_psp, 'currency', p_currency,
                                   'amount_total', p_amount_total,
                                   'expires_at', p_expires_at,
                                   'payment_orders',
                                   CASE WHEN jsonb_array_length(p_orders) > 0
                                        THEN jsonb_path_query_array(p_orders, '$[*].payment_order_id')
                                   END);
    -- a manual capture says so; an automatic one as before
    IF p_capture_method = 'manual' THEN
        v_detail := v_detail || jsonb_build_object('capture', 'manual');
    END IF;
    -- a save asked for, or a saved method charged off-session
    IF v_save IS NOT NULL THEN
        v_detail := v_detail || jsonb_build_object('save_payment_method',
                                    jsonb_build_object('customer_ref', v_save -> 'customer_ref',
                                                       'usage', v_save -> 'usage'));
    END IF;
    IF v_method_id IS NOT NULL THEN
        v_detail := v_detail || jsonb_build_object('payment_method', v_method_id,
                                                   'off_session', true);
    END IF;
    IF p_amount_total = 0 THEN
        v_detail := v_detail || jsonb_build_object('mode', 'setup');
    END IF;
    PERFORM audit_append(p_merchant, p_checkout_id, 'registration:claimed', v_detail);

    -- A routed checkout's route and the PSP it is bound to, recorded with
    -- the claim (pay_route_bind's first bind, in the same transaction):
    -- the binding is in the database before the PSP is called.
    IF v_route IS NOT NULL THEN
        PERFORM checkout_route_first(p_merchant, p_checkout_id, v_route, p_psp,
                                     p_options -> 'passed_over');
    END IF;

    RETURN QUERY SELECT 'claimed'::text, v_lease, NULL::int, NULL::int, NULL::text,
                        p_psp_request, p_expires_at, 'EXECUTING'::text, 0::bigint;
END
$_$;


--
-- Name: pay_claim_answer(text, text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_claim_answer(p_merchant text, p_idem_key text, p_fingerprint text, p_checkout_id text) RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, psp_request text, expires_at bigint, checkout_status text, claim_age bigint)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    k      idempotency_keys%ROWTYPE;
    c      checkouts%ROWTYPE;
    v_now  timestamptz := clock_timestamp();
BEGIN
    SELECT * INTO k FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key;

    -- (as pay_claim: past its TTL a done key counts as absent, unless the
    -- request is the same, whose checkout is never registered again)
    IF FOUND AND NOT (k.state = 'done' AND k.expires_at <= v_now
                      AND (k.fingerprint <> p_fingerprint
                           OR k.checkout_id <> p_checkout_id)) THEN
        IF k.state = 'done' AND k.expires_at <= v_now THEN
            RETURN QUERY SELECT 'expired'::text, NULL::bigint, NULL::int, NULL::int,
                                NULL::text, NULL::text, NULL::bigint, NULL::text,
                                NULL::bigint;
            RETURN;
        END IF;
        IF k.fingerprint <> p_fingerprint THEN
            RETURN QUERY SELECT 'reused'::text, NULL::bigint, NULL::int, NULL::int,
                                NULL::text, NULL::text, NULL::bigint, NULL::text,
                                NULL::bigint;
            RETURN;
        END IF;
        IF k.state = 'done' THEN
            RETURN QUERY SELECT 'replay'::text, NULL::bigint, NULL::int,
                                k.response_status, k.response_body, NULL::text,
                                NULL::bigint, NULL::text, NULL::bigint;
            RETURN;
        END IF;
        IF k.lease_until > v_now THEN
            RETURN QUERY SELECT 'in_use'::text, NULL::bigint,
                                GREATEST(1, ceil(date_part('epoch', k.lease_until - v_now)))::int,
                                NULL::int, NULL::text, NULL::text, NULL::bigint,
                                NULL::text, NULL::bigint;
            RETURN;
        END IF;
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = k.checkout_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pay_claim_answer: in-progress key % of merchant % has no checkout',
                p_idem_key, p_merchant USING ERRCODE = 'PY004';
        END IF;
        RETURN QUERY SELECT CASE WHEN c.status <> 'EXECUTING' THEN 'decided'
                                 WHEN c.cancel_requested_at IS NOT NULL THEN 'canceling'
                                 ELSE 'unsent' END,
                            NULL::bigint, NULL::int, NULL::int, NULL::text, NULL::text,
                            NULL::bigint, c.status::text, NULL::bigint;
        RETURN;
    END IF;

    RETURN QUERY SELECT CASE WHEN EXISTS (SELECT 1 FROM checkouts ck
                                           WHERE ck.merchant_id = p_merchant
                                             AND ck.checkout_id = p_checkout_id)
                             THEN 'duplicate' ELSE 'new' END,
                        NULL::bigint, NULL::int, NULL::int, NULL::text, NULL::text,
                        NULL::bigint, NULL::text, NULL::bigint;
END
$$;


--
-- Name: pay_claim_peek(text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_claim_peek(p_merchant text, p_idem_key text, p_checkout_id text) RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM idempotency_keys ik
                    WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key)
        OR EXISTS (SELECT 1 FROM checkouts c
                    WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id);
END
$$;


--
-- Name: pay_claim_with_verdict(text, text, text, integer, integer, text, text, text, bigint, text, text, text, bigint, text, jsonb, text, jsonb, text, jsonb, text, integer, text, text, integer, integer, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_claim_with_verdict(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb, p_capture_method text, p_options jsonb, p_verdict text, p_score integer, p_reason text, p_source text, p_review_seconds integer, p_response_status integer, p_response_body text) RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, psp_request text, expires_at bigint, checkout_status text, claim_age bigint, risk_outcome text, risk_status integer, risk_body text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    c          record;
    v_outcome  text;
    v_status   integer;
    v_body     text;
BEGIN
    -- a verdict that could not be recorded claims nothing either
    PERFORM risk_verdict_check(p_verdict, p_review_seconds, p_response_status,
                               p_response_body, p_lease_seconds);

    SELECT * INTO c
      FROM pay_claim(p_merchant, p_idem_key, p_fingerprint, p_lease_seconds,
                     p_ttl_seconds, p_checkout_id, p_psp, p_currency,
                     p_amount_total, p_success_url, p_cancel_url, p_buyer_email,
                     p_expires_at, p_psp_request, p_orders, p_duplicate_body,
                     p_metadata, p_capture_method, p_options);

    IF c.outcome = 'claimed' THEN
        PERFORM risk_verdict_record(p_merchant, p_idem_key, p_checkout_id, p_verdict,
                                    p_score, p_reason, p_source, p_review_seconds,
                                    p_response_status, p_response_body,
                                    p_lease_seconds, false);
        v_outcome := p_verdict;
        v_status := p_response_status;
        v_body := p_response_body;
    END IF;

    RETURN QUERY SELECT c.outcome, c.lease, c.retry_after, c.response_status,
                        c.response_body, c.psp_request, c.expires_at,
                        c.checkout_status, c.claim_age,
                        v_outcome, v_status, v_body;
END
$$;


--
-- Name: pay_directory(timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_directory(p_since timestamp with time zone) RETURNS TABLE(kind text, id text, merchant_id text, as_of timestamp with time zone)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT 'm'::text, m.merchant_id, m.merchant_id, now()
      FROM merchants m
     WHERE m.placed_at >= coalesce(p_since, '-infinity')
    UNION ALL
    SELECT 'k'::text, k.key_id, k.merchant_id, now()
      FROM api_keys k
     WHERE k.created_at >= coalesce(p_since, '-infinity') AND k.revoked_at IS NULL;
END
$$;


--
-- Name: pay_endpoint_create(text, text, text, text, text, text[], text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_endpoint_create(p_merchant text, p_idem_key text, p_endpoint text, p_url text, p_host text, p_events text[], p_sealed text, OUT outcome text, OUT item text) RETURNS record
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    e  notify_endpoints%ROWTYPE;
BEGIN
    INSERT INTO notify_endpoints (merchant_id, endpoint_id, url, host, event_types,
                                  secret_sealed, created_idem_key)
    VALUES (p_merchant, p_endpoint, p_url, p_host, p_events, p_sealed, p_idem_key)
    ON CONFLICT (merchant_id, created_idem_key) WHERE created_idem_key IS NOT NULL
    DO NOTHING
    RETURNING * INTO e;

    IF FOUND THEN
        PERFORM audit_append(p_merchant, NULL, 'endpoint:created',
                             jsonb_build_object('endpoint_id', p_endpoint, 'url', p_url,
                                                'events', p_events, 'by', 'merchant'));
        outcome := 'created';
        item := notify_endpoint_item(e)::text;
        RETURN;
    END IF;

    SELECT * INTO STRICT e FROM notify_endpoints ne
     WHERE ne.merchant_id = p_merchant AND ne.created_idem_key = p_idem_key;

    IF e.url = p_url AND e.event_types = p_events THEN
        outcome := 'replayed';
        item := notify_endpoint_item(e)::text;
    ELSE
        outcome := 'reused';
    END IF;
END
$$;


--
-- Name: pay_endpoint_list(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_endpoint_list(p_merchant text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    RETURN (SELECT coalesce(jsonb_agg(notify_endpoint_item(e) ORDER BY e.created_at, e.endpoint_id),
                            '[]'::jsonb)::text
              FROM notify_endpoints e
             WHERE e.merchant_id = p_merchant);
END
$$;


--
-- Name: pay_endpoint_rotate(text, text, text, text, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_endpoint_rotate(p_merchant text, p_endpoint text, p_idem_key text, p_sealed text, p_grace integer, OUT outcome text, OUT item text) RETURNS record
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    e  notify_endpoints%ROWTYPE;
BEGIN
    SELECT * INTO e FROM notify_endpoints ne
     WHERE ne.merchant_id = p_merchant AND ne.endpoint_id = p_endpoint
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;

    IF e.rotated_idem_key = p_idem_key THEN
        outcome := 'replayed';
        item := notify_endpoint_item(e)::text;
        RETURN;
    END IF;

    UPDATE notify_endpoints ne
       SET prev_secret_sealed = CASE WHEN p_grace > 0 THEN ne.secret_sealed END,
           prev_until = CASE WHEN p_grace > 0 THEN now() + make_interval(secs => p_grace) END,
           secret_sealed = p_sealed, rotated_idem_key = p_idem_key, updated_at = now()
     WHERE ne.merchant_id = p_merchant AND ne.endpoint_id = p_endpoint
    RETURNING * INTO e;

    PERFORM audit_append(p_merchant, NULL, 'endpoint:secret_rotated',
                         jsonb_build_object('endpoint_id', p_endpoint,
                                            'grace_seconds', p_grace, 'by', 'merchant'));
    outcome := 'rotated';
    item := notify_endpoint_item(e)::text;
END
$$;


--
-- Name: pay_endpoint_set(text, text, boolean); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_endpoint_set(p_merchant text, p_endpoint text, p_enable boolean) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    e  notify_endpoints%ROWTYPE;
BEGIN
    SELECT * INTO e FROM notify_endpoints ne
     WHERE ne.merchant_id = p_merchant AND ne.endpoint_id = p_endpoint
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    IF p_enable AND e.disabled_at IS NOT NULL THEN
        UPDATE notify_endpoints ne
           SET disabled_at = NULL, disabled_reason = NULL, failures = 0,
               failing_since = NULL, updated_at = now()
         WHERE ne.merchant_id = p_merchant AND ne.endpoint_id = p_endpoint
        RETURNING * INTO e;
        PERFORM audit_append(p_merchant, NULL, 'endpoint:enabled',
                             jsonb_build_object('endpoint_id', p_endpoint, 'by', 'merchant'));

    ELSIF NOT p_enable AND e.disabled_at IS NULL THEN
        UPDATE notify_endpoints ne
           SET disabled_at = now(), disabled_reason = 'merchant', updated_at = now()
         WHERE ne.merchant_id = p_merchant AND ne.endpoint_id = p_endpoint
        RETURNING * INTO e;
        PERFORM audit_append(p_merchant, NULL, 'endpoint:disabled',
                             jsonb_build_object('endpoint_id', p_endpoint, 'by', 'merchant'));
    END IF;

    RETURN notify_endpoint_item(e)::text;
END
$$;


--
-- Name: pay_event_apply(text, text, text, text, text, text, bigint, text, text, text, text[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_event_apply(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_object_ref text, p_tokens text[], OUT outcome text, OUT merchant_id text, OUT checkout_id text) RETURNS record
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v           record;
    w           record;
    v_recorded  boolean;
BEGIN
    -- A dispute's inquiry closed without a chargeback, or what earlier
    -- releases' workers (still running during an upgrade) read it as:
    -- IGNORED, Stripe's charge.dispute.closed neither won nor lost about
    -- the dispute, Adyen's ISSUER_RESPONSE_TIMEFRAME_EXPIRED about its own
    -- pspReference (the dispute is then its checkout's, by our nonce).
    -- dispute_inquiry_closed gives back a dispute they opened for the
    -- inquiry.  Applied again once recorded (the sweeper's retry of one
    -- kept before the upgrade, migration 123; an operator's replay): what
    -- it releases now, else 'duplicate'; the event is recorded once.
    IF p_kind = 'DISPUTE_INQUIRY_CLOSED'
       OR (p_kind = 'IGNORED'
           AND p_type IN ('charge.dispute.closed', 'ISSUER_RESPONSE_TIMEFRAME_EXPIRED')) THEN
        PERFORM pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id));
        SELECT we.merchant_id, we.checkout_id INTO w
          FROM webhook_events we WHERE we.psp = p_psp AND we.event_id = p_event_id;
        v_recorded := FOUND;

        SELECT * INTO v FROM dispute_inquiry_closed(p_psp, p_event_id, p_reference,
            p_payment_ref,
            CASE WHEN p_kind = 'IGNORED' AND p_type = 'ISSUER_RESPONSE_TIMEFRAME_EXPIRED'
                 THEN NULL ELSE p_object_ref END) x;

        IF v_recorded AND v.outcome <> 'applied' THEN
            outcome := 'duplicate';
            merchant_id := w.merchant_id;
            checkout_id := w.checkout_id;
            RETURN;
        END IF;
        IF v.outcome = 'unknown_dispute' THEN
            outcome := v.outcome;
            RETURN;
        END IF;
        IF NOT v_recorded THEN
            INSERT INTO webhook_events (psp, event_id, kind, type, outcome, merchant_id,
                                        checkout_id)
            VALUES (p_psp, p_event_id, p_kind, left(coalesce(p_type, ''), 100), v.outcome,
                    v.merchant_id, v.checkout_id);
        END IF;
        PERFORM audit_append(v.merchant_id, v.checkout_id, 'webhook:' || v.outcome,
            jsonb_build_object('psp', p_psp, 'event_id', p_event_id, 'kind', p_kind,
                               'type', p_type, 'object', p_object_ref,
                               'again', v_recorded));
        outcome := v.outcome;
        merchant_id := v.merchant_id;
        checkout_id := v.checkout_id;
        RETURN;
    END IF;

    IF p_kind IN ('SUCCEEDED', 'CAPTURED', 'AUTHORIZED', 'FAILED', 'PENDING', 'IGNORED',
                  'DECLINED') THEN
        IF p_kind IN ('PENDING', 'IGNORED') AND coalesce(p_object_ref, '') <> '' THEN
            -- authentic news of a refund, dispute or pay-out that moves nothing
            INSERT INTO webhook_events AS we (psp, event_id, kind, type, outcome)
            VALUES (p_psp, p_event_id, p_kind, left(coalesce(p_type, ''), 100),
                    lower(p_kind))
            ON CONFLICT (psp, event_id) DO NOTHING;
            outcome := CASE WHEN FOUND THEN lower(p_kind) ELSE 'duplicate' END;
            RETURN;
        END IF;

        -- called in an expression (it returns one row, not a set): a
        -- SELECT from it would be a statement, an executor's start
        -- (bench/RESULTS.md); its answer is this function's own (a RETURN
        -- QUERY would be a statement more)
        v := pay_webhook_apply_core(p_psp, p_event_id, p_kind, p_type,
            p_token, p_reference, p_amount, p_currency,
            CASE WHEN p_kind IN ('SUCCEEDED', 'CAPTURED', 'AUTHORIZED') THEN p_payment_ref END,
            p_tokens);
        outcome := v.outcome;
        merchant_id := v.merchant_id;
        checkout_id := v.checkout_id;

        -- the audit row (a duplicate delivery changed nothing), appended in
        -- an expression: a PERFORM is a statement of its own.  Its own IF,
        -- not a third operand of the AND: SQL does not promise to evaluate
        -- an AND's operands in order, and a duplicate must append nothing
        IF merchant_id IS NOT NULL AND outcome <> 'duplicate' THEN
            IF audit_append(merchant_id, checkout_id, 'webhook:' || outcome,
                   jsonb_build_object('psp', p_psp, 'event_id', p_event_id,
                                      'kind', p_kind, 'type', p_type)) IS NULL THEN
                RAISE EXCEPTION 'pay_event_apply: no audit row';
            END IF;
        END IF;

        IF p_kind IN ('SUCCEEDED', 'CAPTURED') AND outcome = 'already' THEN
            PERFORM payment_ref_note(p_psp, merchant_id, checkout_id, p_payment_ref);
        END IF;
        RETURN;
    END IF;

    IF p_kind NOT IN ('REFUND_SUCCEEDED', 'REFUND_FAILED', 'DISPUTE_OPENED', 'DISPUTE_WON',
                      'DISPUTE_LOST', 'PAYOUT_PAID', 'PAYOUT_FAILED', 'PAYOUT_REVERSED',
                      'CAPTURE_SUCCEEDED',
                      'CAPTURE_FAILED', 'VOID_SUCCEEDED', 'VOID_FAILED') THEN
        RAISE EXCEPTION 'pay_event_apply: unknown kind %', p_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id));
    SELECT we.merchant_id, we.checkout_id INTO v
      FROM webhook_events we WHERE we.psp = p_psp AND we.event_id = p_event_id;
    IF FOUND THEN
        outcome := 'duplicate';
        merchant_id := v.merchant_id;
        checkout_id := v.checkout_id;
        RETURN;
    END IF;

    IF p_kind LIKE 'REFUND_%' THEN
        SELECT * INTO v FROM refund_event_apply(p_psp, p_event_id, p_kind, p_reference,
                                                p_amount, p_currency, p_object_ref);
    ELSIF p_kind LIKE 'CAPTURE_%' OR p_kind LIKE 'VOID_%' THEN
        SELECT * INTO v FROM capture_event_apply(p_psp, p_event_id, p_kind, p_reference,
                                                 p_amount, p_currency, p_object_ref,
                                                 p_payment_ref);
    ELSIF p_kind LIKE 'DISPUTE_%' THEN
        SELECT * INTO v FROM dispute_event_apply(p_psp, p_event_id, p_kind, p_reference,
                                                 p_amount, p_currency, p_payment_ref,
                                                 p_object_ref);
    ELSE
        SELECT * INTO v FROM payout_event_apply(p_psp, p_event_id, p_kind, p_reference,
                                                p_amount, p_currency, p_object_ref);
    END IF;

    -- not here yet: not recorded, so that pay_event_keep keeps it pending
    -- and pay_inbox_retry applies it once it is
    IF v.outcome IN ('unknown_refund', 'unknown_dispute', 'unknown_capture',
                     'unknown_payout') THEN
        outcome := v.outcome;
        RETURN;
    END IF;

    -- Another path recording this event id meanwhile (none takes the lock
    -- above) makes this a unique violation: the whole event rolls back, and
    -- the PSP's retry finds it recorded.
    INSERT INTO webhook_events (psp, event_id, kind, type, outcome, merchant_id,
                                checkout_id)
    VALUES (p_psp, p_event_id, p_kind, left(coalesce(p_type, ''), 100), v.outcome,
            v.merchant_id, v.checkout_id);

    IF v.merchant_id IS NOT NULL THEN
        PERFORM audit_append(v.merchant_id, v.checkout_id, 'webhook:' || v.outcome,
            jsonb_build_object('psp', p_psp, 'event_id', p_event_id, 'kind', p_kind,
                               'type', p_type, 'object', p_object_ref));
    END IF;

    outcome := v.outcome;
    merchant_id := v.merchant_id;
    checkout_id := v.checkout_id;
END
$$;


--
-- Name: pay_event_keep(text, text, text, text, text, text, bigint, text, text, text, text[], bytea, jsonb, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_event_keep(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_object_ref text, p_tokens text[], p_body bytea, p_headers jsonb, p_key_id text) RETURNS TABLE(outcome text, merchant_id text, checkout_id text, state text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v        record;
    a        record;
    v_state  text;
BEGIN
    -- this month's partition, when the sweeper has not made it ahead
    IF to_regclass('psp_events_' || to_char(now() AT TIME ZONE 'UTC', '"y"YYYY"m"MM')) IS NULL THEN
        PERFORM pay_inbox_partitions(1);
    END IF;

    -- the event's lock, taken in an expression: a PERFORM is a statement
    -- of its own, an executor's start (bench/RESULTS.md)
    IF pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id)) IS NULL THEN
        RAISE EXCEPTION 'pay_event_keep: no lock';
    END IF;
    -- its id first, by psp_event_ids' key: a new event (nearly every one)
    -- costs that one look-up, not psp_event_kept's call as well
    PERFORM 1 FROM psp_event_ids i WHERE i.psp = p_psp AND i.event_id = p_event_id;
    IF FOUND THEN
        SELECT k.* INTO v FROM psp_event_kept(p_psp, p_event_id) k;
        IF FOUND THEN
            RETURN QUERY SELECT 'duplicate'::text, v.merchant_id, v.checkout_id, v.state;
            RETURN;
        END IF;
    END IF;

    -- called in an expression (it returns one row, not a set): a SELECT
    -- from it would be a statement, an executor's start (bench/RESULTS.md)
    a := pay_event_apply(p_psp, p_event_id, p_kind, p_type, p_token, p_reference, p_amount,
                         p_currency, p_payment_ref, p_object_ref, p_tokens);

    -- applied: recorded in webhook_events by whichever path applied it
    -- (psp_event_state's answer for it, without its call and look-up)
    v_state := CASE WHEN a.outcome = 'applied' THEN 'applied'
                    ELSE psp_event_state(p_psp, p_event_id, p_reference, a.outcome) END;

    INSERT INTO psp_events AS e (psp, event_id, state, body, headers, key_id, kind, type,
                                 token, reference, amount, currency, payment_ref, object_ref,
                                 tokens, outcome, merchant_id, checkout_id, applied_at)
    VALUES (p_psp, p_event_id, v_state, p_body, coalesce(p_headers, '{}'), p_key_id,
            p_kind, left(coalesce(p_type, ''), 100), nullif(p_token, ''),
            nullif(p_reference, ''), p_amount, nullif(p_currency, ''),
            nullif(p_payment_ref, ''), nullif(p_object_ref, ''), p_tokens, a.outcome,
            a.merchant_id, a.checkout_id,
            CASE WHEN v_state = 'applied' THEN now() END)
    -- the answer is the row as written (a RETURN QUERY would be a
    -- statement more)
    RETURNING e.outcome, e.merchant_id, e.checkout_id, e.state
         INTO outcome, merchant_id, checkout_id, state;
    RETURN NEXT;
END
$$;


--
-- Name: pay_event_keep_unreadable(text, text, bytea, jsonb, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_event_keep_unreadable(p_psp text, p_event_id text, p_body bytea, p_headers jsonb, p_key_id text) RETURNS text
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT pay_event_keep_unreadable(p_psp, p_event_id, p_body, p_headers, p_key_id, 'unreadable')
$$;


--
-- Name: pay_event_keep_unreadable(text, text, bytea, jsonb, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_event_keep_unreadable(p_psp text, p_event_id text, p_body bytea, p_headers jsonb, p_key_id text, p_outcome text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $_$
BEGIN
    IF p_event_id IS NULL OR p_event_id !~ '^unreadable:[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'pay_event_keep_unreadable: the id is "unreadable:" and the bytes'' SHA-256'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF p_outcome IS NULL OR p_outcome NOT IN ('unreadable', 'livemode', 'merchant_account') THEN
        RAISE EXCEPTION 'pay_event_keep_unreadable: the outcome is unreadable, livemode or merchant_account'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- this month's partition, when the sweeper has not made it ahead
    IF to_regclass('psp_events_' || to_char(now() AT TIME ZONE 'UTC', '"y"YYYY"m"MM')) IS NULL THEN
        PERFORM pay_inbox_partitions(1);
    END IF;

    PERFORM pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id));
    PERFORM 1 FROM psp_event_kept(p_psp, p_event_id) k;
    IF FOUND THEN
        RETURN 'duplicate';
    END IF;

    INSERT INTO psp_events (psp, event_id, state, body, headers, key_id, kind, type,
                            outcome)
    VALUES (p_psp, p_event_id, 'unreadable', p_body, coalesce(p_headers, '{}'), p_key_id,
            'UNREADABLE', '', p_outcome);

    RETURN 'kept';
END
$_$;


--
-- Name: pay_event_locate(text, text, text[], text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_event_locate(p_psp text, p_token text, p_tokens text[], p_payment_ref text, p_object_ref text) RETURNS TABLE(merchant_id text, checkout_id text, found_by text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET jit TO 'off'
    SET enable_seqscan TO 'off'
    SET enable_bitmapscan TO 'off'
    AS $$
#variable_conflict use_column
DECLARE
    v_tok  text;
    v_m    text;
    v_co   text;
BEGIN
    FOREACH v_tok IN ARRAY coalesce(p_tokens, '{}') || p_token LOOP
        CONTINUE WHEN coalesce(v_tok, '') = '';
        SELECT t.merchant_id, t.checkout_id INTO v_m, v_co
          FROM psp_tokens t
         WHERE t.psp = p_psp AND t.psp_token = v_tok;
        IF FOUND THEN
            RETURN QUERY SELECT v_m, v_co, 'token'::text;
            RETURN;
        END IF;
    END LOOP;

    IF coalesce(p_payment_ref, '') <> '' THEN
        SELECT pp.merchant_id, pp.checkout_id INTO v_m, v_co
          FROM psp_payments pp
         WHERE pp.psp = p_psp AND pp.payment_ref = p_payment_ref;
        IF FOUND THEN
            RETURN QUERY SELECT v_m, v_co, 'payment'::text;
            RETURN;
        END IF;
    END IF;

    IF coalesce(p_object_ref, '') = '' THEN
        RETURN;
    END IF;
    SELECT rf.merchant_id, rf.checkout_id INTO v_m, v_co
      FROM refunds rf WHERE rf.psp = p_psp AND rf.psp_refund_id = p_object_ref;
    IF FOUND THEN
        RETURN QUERY SELECT v_m, v_co, 'refund'::text;
        RETURN;
    END IF;
    SELECT d.merchant_id, d.checkout_id INTO v_m, v_co
      FROM disputes d WHERE d.psp = p_psp AND d.psp_dispute_ref = p_object_ref;
    IF FOUND THEN
        RETURN QUERY SELECT v_m, v_co, 'dispute'::text;
        RETURN;
    END IF;
    SELECT po.merchant_id INTO v_m
      FROM payouts po WHERE po.psp = p_psp AND po.psp_payout_id = p_object_ref;
    IF FOUND THEN
        RETURN QUERY SELECT v_m, NULL::text, 'payout'::text;
        RETURN;
    END IF;
    SELECT cp.merchant_id, cp.checkout_id INTO v_m, v_co
      FROM captures cp WHERE cp.psp = p_psp AND cp.psp_ref = p_object_ref
     LIMIT 1;
    IF FOUND THEN
        RETURN QUERY SELECT v_m, v_co, 'capture'::text;
    END IF;
END
$$;


--
-- Name: pay_executing_stats(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_executing_stats() RETURNS TABLE(executing bigint, oldest_seconds bigint)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT * FROM pay_executing_stats(10000);
$$;


--
-- Name: pay_executing_stats(integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_executing_stats(p_exact integer) RETURNS TABLE(executing bigint, oldest_seconds bigint)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET jit TO 'off'
    SET enable_seqscan TO 'off'
    SET enable_bitmapscan TO 'off'
    AS $$
BEGIN
    RETURN QUERY
    SELECT gauge_count(s.n, p_exact, 'checkouts_executing_since'),
           coalesce(floor(extract(epoch FROM now()
                    - (SELECT min(c.created_at) FROM checkouts c
                        WHERE c.status = 'EXECUTING')))::bigint, 0)
      FROM (SELECT count(*) AS n
              -- in the index's order: its first entries, never every row
              FROM (SELECT FROM checkouts c WHERE c.status = 'EXECUTING'
                     ORDER BY c.created_at LIMIT greatest(p_exact, 1)) AS first) AS s;
END
$$;


--
-- Name: pay_finish(text, text, bigint, text, text, text, text, bigint, text, integer, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_status text, p_psp_token text, p_psp_url text, p_psp_expires_at bigint, p_failure text, p_response_status integer, p_response_body text) RETURNS TABLE(response_status integer, response_body text)
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT * FROM pay_finish(p_merchant, p_idem_key, p_lease, p_checkout_id, p_status,
                             p_psp_token, p_psp_url, p_psp_expires_at, p_failure,
                             p_response_status, p_response_body, NULL::text)
$$;


--
-- Name: pay_finish(text, text, bigint, text, text, text, text, bigint, text, integer, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_status text, p_psp_token text, p_psp_url text, p_psp_expires_at bigint, p_failure text, p_response_status integer, p_response_body text, p_psp_token_index text) RETURNS TABLE(response_status integer, response_body text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_psp    text;
    v_key    record;
    v_valid  boolean := p_status IN ('EXECUTING', 'FAILED')
                        AND (p_status = 'FAILED' OR (p_psp_token IS NOT NULL AND p_psp_url IS NOT NULL))
                        AND p_response_status IS NOT NULL AND p_response_body IS NOT NULL;
BEGIN
    -- The key done with the answer; a done key answers what it stored,
    -- whatever this call carries.
    SELECT * INTO v_key FROM checkout_key_finish('pay_finish', p_merchant, p_idem_key, p_lease,
                                 p_checkout_id, v_valid,
                                 'EXECUTING needs a token and url; status and response are required',
                                 p_response_status, p_response_body);
    IF v_key.replay THEN
        RETURN QUERY SELECT v_key.stored_status, v_key.stored_body;
        RETURN;
    END IF;

    -- The status only moves from EXECUTING: should anything have moved the
    -- checkout already, the PSP's answer is still recorded but not applied.
    -- A session registered sets no status: the statement names none, so
    -- that no trigger on the status (each read back at every statement
    -- naming its columns) is prepared for a registration.
    IF p_status = 'FAILED' THEN
        UPDATE checkouts c
           SET psp_token = p_psp_token, psp_url = p_psp_url,
               expires_at = COALESCE(to_timestamp(p_psp_expires_at), c.expires_at),
               failure = p_failure,
               failure_code = CASE WHEN c.status = 'EXECUTING'
                                   THEN 'registration_refused' ELSE c.failure_code END,
               status = CASE WHEN c.status = 'EXECUTING'
                             THEN 'FAILED'::pay_status ELSE c.status END,
               updated_at = now()
         WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id
        RETURNING c.psp INTO v_psp;
    ELSE
        UPDATE checkouts c
           SET psp_token = p_psp_token, psp_url = p_psp_url,
               expires_at = COALESCE(to_timestamp(p_psp_expires_at), c.expires_at),
               failure = p_failure,
               updated_at = now()
         WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id
        RETURNING c.psp INTO v_psp;
    END IF;
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
        PERFORM checkout_orders_fail(p_merchant, p_checkout_id, v_psp, p_failure,
                                     'registration', 'registration:failed');
    END IF;

    RETURN QUERY SELECT p_response_status, p_response_body;
END
$$;


--
-- Name: pay_get_balance(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_get_balance(p_merchant text, p_seller text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v  json;
BEGIN
    SELECT json_agg(json_build_object(
               'currency', cur.currency,
               'wallet_minor', b.wallet,
               'pending_payouts_minor', b.pending,
               'open_disputes_minor', b.disputed,
               'available_minor', b.available,
               -- held for the seller by manual-capture authorizations: not
               -- in the wallet, never paid out, until captured
               'authorized_minor', coalesce(h.held, 0)) ORDER BY cur.currency)
      INTO v
      FROM (SELECT w.currency FROM wallets w
             WHERE w.merchant_id = p_merchant AND w.seller_account = p_seller
            UNION
            SELECT p.currency FROM payouts p
             WHERE p.merchant_id = p_merchant AND p.seller_account = p_seller
            UNION
            SELECT o.currency FROM payment_orders o
             WHERE o.merchant_id = p_merchant AND o.seller_account = p_seller
               AND o.status = 'AUTHORIZED') cur
           CROSS JOIN LATERAL seller_available(p_merchant, p_seller, cur.currency) b
           CROSS JOIN LATERAL (SELECT sum(o.amount)::bigint AS held FROM payment_orders o
                                WHERE o.merchant_id = p_merchant
                                  AND o.seller_account = p_seller
                                  AND o.currency = cur.currency
                                  AND o.status = 'AUTHORIZED') h;

    IF v IS NULL THEN
        PERFORM 1 FROM sellers s WHERE s.merchant_id = p_merchant AND s.seller_account = p_seller;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
    END IF;

    RETURN json_build_object('seller_account', p_seller,
                             'balances', coalesce(v, '[]'::json))::text;
END
$$;


--
-- Name: pay_get_checkout(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_get_checkout(p_merchant text, p_checkout_id text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    RETURN (
        SELECT json_build_object(
                   'checkout_id', c.checkout_id,
                   'status', c.status,
                   'psp', c.psp,
                   -- an off-session charge's payment id, from its
                   -- webhook when no answer stored it
                   'psp_token', checkout_shown_token(c.psp_token, c.payment_method_id,
                                                     c.psp_payment_ref),
                   -- a page to pay at (a pay link): not an off-session
                   -- charge the PSP took
                   'hosted', c.psp_url IS NOT NULL,
                   -- as the 201 said: a saved method charged off-session,
                   -- a save asked for
                   'payment_method', c.payment_method_id,
                   'save_payment_method', CASE WHEN c.save_method IS NOT NULL THEN
                       json_build_object('customer', c.save_method ->> 'customer',
                                         'usage', c.save_method ->> 'usage') END,
                   'expires_at', ts_rfc3339(c.expires_at),
                   'failure', checkout_failure(c.failure_code, c.failure),
                   -- paid after it had failed: the PSP's success came last
                   'paid_after_failure', c.status = 'SUCCESS' AND c.failure_code IS NOT NULL,
                   'currency', c.currency,
                   'metadata', c.metadata,
                   -- the risk check's verdict, when one was asked
                   'risk', (SELECT json_build_object(
                                'verdict', rk.verdict, 'score', rk.score,
                                'reason', rk.reason, 'source', rk.source,
                                'review', rk.reviewed,
                                -- asked again once paid (after_payment=on)
                                'after_payment', (
                                    SELECT json_build_object(
                                               'verdict', a.verdict,
                                               'score', a.score,
                                               'reason', a.reason,
                                               'source', a.source,
                                               'decided_at', ts_rfc3339(a.decided_at))
                                      FROM checkout_risk_after a
                                     WHERE a.merchant_id = rk.merchant_id
                                       AND a.checkout_id = rk.checkout_id))
                              FROM checkout_risk rk
                             WHERE rk.merchant_id = c.merchant_id
                               AND rk.checkout_id = c.checkout_id),
                   'capture', c.capture_method,
                   -- a save without a charge: no orders, amount 0
                   'mode', CASE WHEN c.amount_total = 0 THEN 'setup' ELSE 'payment' END,
                   'payment_orders', COALESCE((
                       SELECT json_agg(json_build_object(
                                  'payment_order_id', o.payment_order_id,
                                  'seller_account', o.seller_account,
                                  'amount_minor', o.amount,
                                  'currency', o.currency,
                                  'status', o.status) ORDER BY o.line_no)
                         FROM payment_orders o
                        WHERE o.merchant_id = c.merchant_id AND o.checkout_id = c.checkout_id),
                       '[]'::json),
                   'events', COALESCE((
                       SELECT json_agg(json_build_object(
                                  'at', ts_rfc3339(e.at),
                                  'payment_order_id', e.payment_order_id,
                                  'from', e.from_status,
                                  'to', e.to_status,
                                  'source', e.source) ORDER BY e.event_id)
                         FROM order_events e
                        WHERE e.merchant_id = c.merchant_id AND e.checkout_id = c.checkout_id),
                       '[]'::json),
                   -- routed (payments_route): the route and each PSP tried,
                   -- with why it moved on; NULL when it was not routed
                   'routing', (
                       SELECT json_build_object(
                                  'route', (array_agg(r.route ORDER BY r.seq))[1],
                                  'psps', json_agg(json_build_object(
                                              'psp', r.psp,
                                              'moved_on', r.moved_on,
                                              'at', ts_rfc3339(r.at)) ORDER BY r.seq))
                         FROM checkout_routes r
                        WHERE r.merchant_id = c.merchant_id AND r.checkout_id = c.checkout_id
                       HAVING count(*) > 0))::text
          FROM checkouts c
         WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id);
END
$$;


--
-- Name: pay_get_order(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_get_order(p_merchant text, p_order_id text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    RETURN (
        SELECT json_build_object(
                   'payment_order_id', o.payment_order_id,
                   'checkout_id', o.checkout_id,
                   'status', o.status,
                   'amount_minor', o.amount,
                   'currency', o.currency,
                   'seller_account', o.seller_account,
                   'psp', c.psp,
                   'psp_token', checkout_shown_token(c.psp_token, c.payment_method_id,
                                                     c.psp_payment_ref),
                   'created_at', ts_rfc3339(o.created_at),
                   'updated_at', ts_rfc3339(o.updated_at),
                   'commission_minor', o.commission,
                   -- manual capture: NULL (left out) for an automatic order
                   'captured_minor', o.amount_captured,
                   'captures', CASE WHEN o.amount_captured IS NOT NULL THEN COALESCE((
                       SELECT json_agg(json_build_object(
                                  'capture_id', x.capture_id,
                                  'kind', x.kind,
                                  'status', x.status,
                                  'amount_minor', x.amount,
                                  'currency', x.currency,
                                  'psp_ref', x.psp_ref,
                                  'created_at', ts_rfc3339(x.created_at),
                                  'updated_at', ts_rfc3339(x.updated_at))
                                  ORDER BY x.created_at, x.capture_id)
                         FROM captures x
                        WHERE x.merchant_id = o.merchant_id
                          AND x.payment_order_id = o.payment_order_id), '[]'::json) END,
                   'refunds', COALESCE((
                       SELECT json_agg(json_build_object(
                                  'refund_id', r.refund_id,
                                  'status', r.status,
                                  'amount_minor', r.amount,
                                  'currency', r.currency,
                                  'reason', r.reason,
                                  'metadata', r.metadata,
                                  'psp_refund_id', r.psp_refund_id,
                                  'created_at', ts_rfc3339(r.created_at),
                                  'updated_at', ts_rfc3339(r.updated_at))
                                  ORDER BY r.created_at, r.refund_id)
                         FROM refunds r
                        WHERE r.merchant_id = o.merchant_id
                          AND r.payment_order_id = o.payment_order_id), '[]'::json),
                   'disputes', COALESCE((
                       SELECT json_agg(json_build_object(
                                  'dispute_id', d.dispute_id,
                                  'status', d.status,
                                  'amount_minor', dp.amount + dp.excess,
                                  'currency', d.currency,
                                  'psp_dispute_id', d.psp_dispute_ref,
                                  'created_at', ts_rfc3339(d.created_at),
                                  'updated_at', ts_rfc3339(d.updated_at))
                                  ORDER BY d.created_at, d.dispute_id)
                         FROM dispute_parts dp,
                              LATERAL (SELECT * FROM disputes x
                                        WHERE x.merchant_id = dp.merchant_id
                                          AND x.dispute_id = dp.dispute_id OFFSET 0) d
                        WHERE dp.merchant_id = o.merchant_id
                          AND dp.payment_order_id = o.payment_order_id), '[]'::json))::text
          -- the order's checkout and each part's dispute looked up by
          -- their keys in subqueries of their own (OFFSET 0 keeping them
          -- so): as joins, a plan made on small tables walks the
          -- merchant's checkouts and disputes (test
          -- plans::each_money_move_reads_...)
          FROM payment_orders o,
               LATERAL (SELECT * FROM checkouts x
                         WHERE x.merchant_id = o.merchant_id
                           AND x.checkout_id = o.checkout_id OFFSET 0) c
         WHERE o.merchant_id = p_merchant AND o.payment_order_id = p_order_id);
END
$$;


--
-- Name: pay_get_payout(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_get_payout(p_merchant text, p_payout_id text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    -- the primary key: one row at most
    RETURN (SELECT json_build_object(
                       'payout_id', p.payout_id,
                       'seller_account', p.seller_account,
                       'psp', p.psp,
                       'status', p.status,
                       'amount_minor', p.amount,
                       'amount_reversed_minor', p.amount_reversed,
                       'currency', p.currency,
                       'psp_payout_id', p.psp_payout_id,
                       'failure', p.failure,
                       'metadata', p.metadata,
                       'created_at', ts_rfc3339(p.created_at),
                       'updated_at', ts_rfc3339(p.updated_at))::text
              FROM payouts p
             WHERE p.merchant_id = p_merchant AND p.payout_id = p_payout_id);
END
$$;


--
-- Name: pay_holds_sweep(text, text[], integer[], integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_holds_sweep(p_owner text, p_psps text[], p_windows integer[], p_warn_before integer, p_limit integer) RETURNS TABLE(merchant_id text, checkout_id text, psp text, action text, left_seconds bigint, expiring bigint)
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT merchant_id, checkout_id, psp, action, left_seconds, expiring FROM pay_holds_sweep(p_owner, p_psps, p_windows, p_warn_before, p_limit, NULL::jsonb);
$$;


--
-- Name: pay_holds_sweep(text, text[], integer[], integer, integer, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_holds_sweep(p_owner text, p_psps text[], p_windows integer[], p_warn_before integer, p_limit integer, p_units jsonb) RETURNS TABLE(merchant_id text, checkout_id text, psp text, action text, left_seconds bigint, expiring bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_n     bigint;
    v_open  boolean;
    h       record;
    v_cur   text;
    v_edge  timestamptz;
BEGIN
    IF coalesce(array_length(p_psps, 1), 0) <> coalesce(array_length(p_windows, 1), 0) THEN
        RAISE EXCEPTION 'pay_holds_sweep: one window per PSP'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Both reads walk the open holds (checkouts_holds_open) from the
    -- oldest to the edge of the shortest window's warning, never past it:
    -- the test of each PSP's own window alone (authorized_at plus its
    -- window) bounds no index scan, and every open hold was read at each
    -- round, 3,800 for a step of 20
    -- (plans_background::the_holds_sweep_reads_the_holds_near_their_end).
    v_edge := now() - make_interval(secs => (SELECT min(x) FROM unnest(p_windows) x)
                                            - p_warn_before);

    SELECT count(*) INTO v_n
      FROM checkouts c
      JOIN unnest(p_psps, p_windows) AS w(psp, secs) ON w.psp = c.psp
     WHERE c.authorized_at IS NOT NULL AND c.hold_closed_at IS NULL
       AND c.authorized_at < v_edge
       AND c.authorized_at + make_interval(secs => w.secs - p_warn_before) < now();

    PERFORM 1 FROM sweeper_lease l
      WHERE l.id = 1 AND l.owner = p_owner AND l.until > now();
    IF NOT FOUND OR v_n = 0 THEN
        RETURN QUERY SELECT NULL::text, NULL::text, NULL::text, NULL::text,
                            NULL::bigint, v_n;
        RETURN;
    END IF;

    -- The round's p_limit places go to the holds it acts on: past their end
    -- (released, or postponed) or not warned yet; one warned and not at its
    -- end yet takes none.  The most overdue come first, and those waiting
    -- for their PSP's word (postponed) after the rest: neither kind can
    -- fill every place round after round while other holds pass their end
    -- (sql::the_holds_sweep_takes_what_it_must_do_before_what_it_only_waits_for).
    -- Except a tenth of the places (one at least, none of a single place),
    -- kept for the most overdue of those waiting: each is named, and at an
    -- hour past its end alerted, in every round, also while more holds
    -- than places pass their end round after round
    -- (sql::a_hold_waiting_for_its_psp_is_named_in_a_round_full_of_others).
    FOR h IN
        SELECT t.* FROM (
            SELECT u.*, row_number() OVER (PARTITION BY u.waits ORDER BY u.left_s) AS rn
              FROM (
                SELECT s.*,
                       s.left_s <= 0
                       AND EXISTS (SELECT 1 FROM captures x
                                    WHERE x.merchant_id = s.m AND x.checkout_id = s.co
                                      AND x.status = 'PENDING') AS waits
                  FROM (
                    SELECT c.merchant_id AS m, c.checkout_id AS co, c.psp AS p,
                           floor(extract(epoch FROM c.authorized_at
                                                    + make_interval(secs => w.secs) - now()))::bigint
                               AS left_s,
                           c.hold_warned_at AS warned
                      FROM checkouts c
                      JOIN unnest(p_psps, p_windows) AS w(psp, secs) ON w.psp = c.psp
                     WHERE c.authorized_at IS NOT NULL AND c.hold_closed_at IS NULL
                       AND c.authorized_at < v_edge
                       AND c.authorized_at + make_interval(secs => w.secs - p_warn_before) < now()
                  ) s
                 WHERE s.left_s <= 0 OR s.warned IS NULL
              ) u
        ) t
         ORDER BY NOT (t.waits AND t.rn <= CASE WHEN p_limit > 1
                                                THEN greatest(1, p_limit / 10)
                                                ELSE 0 END),
                  t.waits, t.left_s
         LIMIT p_limit
    LOOP
        IF h.left_s <= 0 THEN
            -- the checkout, then its orders in id order, as every money
            -- function locks them (doc/MONEY.md, "Lock order")
            PERFORM 1 FROM checkouts ck
             WHERE ck.merchant_id = h.m AND ck.checkout_id = h.co
               AND ck.hold_closed_at IS NULL
               FOR UPDATE;
            v_open := FOUND;
            PERFORM 1 FROM payment_orders po
             WHERE v_open AND po.merchant_id = h.m AND po.checkout_id = h.co
             ORDER BY po.payment_order_id
               FOR UPDATE;
            -- a capture its PSP can never be sent will never settle: given
            -- up, so that it does not hold the release for ever
            IF v_open AND p_units ? h.p
               AND EXISTS (SELECT 1 FROM captures x
                            WHERE x.merchant_id = h.m AND x.checkout_id = h.co
                              AND x.status = 'PENDING' AND x.kind = 'capture') THEN
                FOR v_cur IN SELECT DISTINCT po.currency FROM payment_orders po
                              WHERE po.merchant_id = h.m AND po.checkout_id = h.co
                                AND p_units -> h.p ? po.currency
                LOOP
                    PERFORM capture_unsendable_give_up(h.m, h.co, NULL, v_cur,
                                                       (p_units -> h.p ->> v_cur)::bigint);
                END LOOP;
            END IF;
            IF v_open AND EXISTS (SELECT 1 FROM captures x
                                  WHERE x.merchant_id = h.m AND x.checkout_id = h.co
                                    AND x.status = 'PENDING') THEN
                -- released under a capture the PSP then confirms, the
                -- money would be booked after a failure: wait for it
                RETURN QUERY SELECT h.m, h.co, h.p, 'postponed'::text, h.left_s, v_n;
            ELSIF v_open THEN
                PERFORM hold_release(h.m, h.co, 'authorization_expired',
                                     'sweeper:authorization_expired');
                RETURN QUERY SELECT h.m, h.co, h.p, 'expired'::text, h.left_s, v_n;
            END IF;
        ELSIF h.warned IS NULL THEN
            UPDATE checkouts ck SET hold_warned_at = now()
             WHERE ck.merchant_id = h.m AND ck.checkout_id = h.co;
            RETURN QUERY SELECT h.m, h.co, h.p, 'warning'::text, h.left_s, v_n;
        END IF;
    END LOOP;

    RETURN QUERY SELECT NULL::text, NULL::text, NULL::text, NULL::text, NULL::bigint, v_n;
END
$$;


--
-- Name: pay_inbox_drop_old(integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_inbox_drop_old(p_keep_months integer) RETURNS SETOF text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET "TimeZone" TO 'UTC'
    AS $_$
DECLARE
    v_cut   timestamptz;
    v_part  record;
BEGIN
    IF p_keep_months IS NULL OR p_keep_months < 1 OR p_keep_months > 1200 THEN
        RAISE EXCEPTION 'pay_inbox_drop_old: keep 1 to 1200 months'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    v_cut := date_trunc('month', now()) - make_interval(months => p_keep_months);

    FOR v_part IN
        SELECT c.relname
          FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'psp_events'::regclass
           AND c.relname ~ '^psp_events_y[0-9]{4}m[0-9]{2}$'
           AND to_timestamp(substr(c.relname, 13, 4) || substr(c.relname, 18, 2),
                            'YYYYMM') + interval '1 month' <= v_cut
         ORDER BY c.relname
    LOOP
        -- its events' ids first (psp_event_ids, which no DROP reaches)
        EXECUTE format('DELETE FROM psp_event_ids i USING %I p WHERE i.psp = p.psp'
                       ' AND i.event_id = p.event_id AND i.received_at = p.received_at',
                       v_part.relname);
        EXECUTE format('DROP TABLE %I', v_part.relname);
        RETURN NEXT v_part.relname;
    END LOOP;
END
$_$;


--
-- Name: pay_inbox_forwarded(text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_inbox_forwarded(p_psp text, p_event_id text, p_shard text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $_$
DECLARE
    v_at  timestamptz;
    v_n   bigint;
BEGIN
    IF coalesce(p_shard, '') !~ '^[a-z0-9_]{1,16}$' THEN
        RAISE EXCEPTION 'pay_inbox_forwarded: invalid shard name %', p_shard
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id));
    -- its month by its id (psp_event_ids), then its row there alone
    SELECT i.received_at INTO v_at
      FROM psp_event_ids i
     WHERE i.psp = p_psp AND i.event_id = p_event_id;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    EXECUTE 'UPDATE psp_events pe SET state = ''forwarded'', forwarded_to = $4'
            ' WHERE pe.psp = $1 AND pe.event_id = $2 AND pe.received_at = $3'
            '   AND pe.state IN (''pending'', ''foreign'', ''unmatched'')'
      USING p_psp, p_event_id, v_at, p_shard;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n > 0;
END
$_$;


--
-- Name: pay_inbox_homeless(integer, integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_inbox_homeless(p_unmatched_after integer, p_retry integer, p_limit integer) RETURNS TABLE(psp text, event_id text, received_at timestamp with time zone, kind text, type text, token text, reference text, amount bigint, currency text, payment_ref text, object_ref text, tokens text[], body bytea, headers jsonb, key_id text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET jit TO 'off'
    SET enable_seqscan TO 'off'
    SET enable_bitmapscan TO 'off'
    AS $$
#variable_conflict use_column
BEGIN
    IF p_unmatched_after IS NULL OR p_unmatched_after < 1 OR p_retry IS NULL
       OR p_retry < 0 OR p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'pay_inbox_homeless: invalid window, retry or limit'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- the pending events walked oldest first (psp_events_pending), each
    -- tested as it comes, until p_limit: planned while a partition has no
    -- statistics (a new month's), a bitmap scan tested every pending row
    -- before its sort and its limit (the sequential and bitmap scans are
    -- off for this function)
    RETURN QUERY
    WITH due AS (
        SELECT pe.tableoid AS part, pe.ctid AS place
          FROM psp_events pe
         WHERE pe.state = 'pending'
           AND (pe.received_at > now() - make_interval(secs => p_unmatched_after)
                OR pe.forward_waiting_at > now() - make_interval(secs => p_unmatched_after))
           AND pe.kind <> 'METHOD_SAVED'
           AND (pe.forward_tried_at IS NULL
                OR pe.forward_tried_at <= now() - make_interval(secs => p_retry))
           AND NOT EXISTS (SELECT 1 FROM merchants m
                            WHERE m.merchant_id = coalesce(pe.merchant_id,
                                      (nonce_split(pe.reference)).merchant_id))
           AND NOT EXISTS (SELECT 1 FROM pay_event_locate(pe.psp, pe.token, pe.tokens,
                                                          pe.payment_ref, pe.object_ref))
         ORDER BY pe.received_at
         LIMIT p_limit
           FOR UPDATE OF pe SKIP LOCKED
    )
    -- each marked by its place (its partition and its place there, which
    -- its lock keeps), not by a join on its key: planned while the
    -- partition's statistics said it held no row (an ANALYZE that found
    -- only dead rows), the join read the partition's whole primary key for
    -- each event taken (300,100 rows read for a step of 100 of 3,000,
    -- plans_background::the_inbox_steps_read_about_their_limit)
    UPDATE psp_events pe
       SET forward_tried_at = now()
      FROM due
     WHERE pe.tableoid = due.part AND pe.ctid = due.place
    RETURNING pe.psp, pe.event_id, pe.received_at, pe.kind, pe.type, pe.token,
              pe.reference, pe.amount, pe.currency, pe.payment_ref, pe.object_ref,
              pe.tokens, pe.body, pe.headers, pe.key_id;
END
$$;


--
-- Name: pay_inbox_inquiry_end_elsewhere(text, text, text, text, text[], text, text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_inbox_inquiry_end_elsewhere(p_psp text, p_kind text, p_type text, p_token text, p_tokens text[], p_reference text, p_payment_ref text, p_object_ref text, p_merchant_id text) RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $_$
BEGIN
    IF p_kind NOT IN ('IGNORED', 'DISPUTE_INQUIRY_CLOSED')
       OR p_type NOT IN ('charge.dispute.closed', 'ISSUER_RESPONSE_TIMEFRAME_EXPIRED')
       OR p_merchant_id IS NOT NULL THEN
        RETURN false;
    END IF;

    -- something another shard finds it by
    IF NOT ((p_type = 'charge.dispute.closed'
             AND (coalesce(p_payment_ref, '') <> '' OR coalesce(p_object_ref, '') <> ''))
            OR coalesce(p_reference, '') ~ '^[A-Za-z0-9_-]{1,64}:[A-Za-z0-9_-]{1,64}$') THEN
        RETURN false;
    END IF;

    -- nothing here is its own
    IF EXISTS (SELECT 1 FROM pay_event_locate(p_psp, p_token, p_tokens, p_payment_ref,
                                              p_object_ref))
       OR EXISTS (SELECT 1 FROM merchants m
                   WHERE m.merchant_id = (nonce_split(p_reference)).merchant_id) THEN
        RETURN false;
    END IF;

    -- its dispute's money withdrawn, as kept here
    RETURN coalesce(p_object_ref, '') = ''
        OR NOT EXISTS (SELECT 1 FROM psp_events w
                        WHERE w.psp = p_psp AND w.object_ref = p_object_ref
                          AND w.type IN ('charge.dispute.funds_withdrawn', 'CHARGEBACK'));
END
$_$;


--
-- Name: pay_inbox_partitions(integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_inbox_partitions(p_ahead integer) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET "TimeZone" TO 'UTC'
    AS $$
DECLARE
    v_from  timestamptz;
    v_name  text;
    v_made  integer := 0;
BEGIN
    IF p_ahead IS NULL OR p_ahead < 0 OR p_ahead > 24 THEN
        RAISE EXCEPTION 'pay_inbox_partitions: ahead must be 0 to 24 months'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    FOR i IN 0 .. p_ahead LOOP
        v_from := date_trunc('month', now()) + make_interval(months => i);
        v_name := 'psp_events_' || to_char(v_from, '"y"YYYY"m"MM');
        CONTINUE WHEN to_regclass(v_name) IS NOT NULL;

        -- two makers at once (two gateways' first events of a month): one
        -- at a time, the second finding it made.  A lock on the table, not
        -- an advisory one: taking it reads the catalog's changes committed
        -- meanwhile, which to_regclass then sees.  SHARE UPDATE EXCLUSIVE
        -- conflicts with itself (and ATTACH's), never with reads or inserts.
        LOCK TABLE psp_events IN SHARE UPDATE EXCLUSIVE MODE;
        CONTINUE WHEN to_regclass(v_name) IS NOT NULL;

        EXECUTE format('CREATE TABLE %I (LIKE psp_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS '
                       'INCLUDING STORAGE INCLUDING COMPRESSION)', v_name);
        EXECUTE format('ALTER TABLE psp_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       v_name, v_from, v_from + interval '1 month');
        EXECUTE format('REVOKE ALL ON %I FROM PUBLIC', v_name);
        v_made := v_made + 1;
    END LOOP;

    RETURN v_made;
END
$$;


--
-- Name: pay_inbox_replay(text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_inbox_replay(p_psp text, p_event_id text, p_actor text) RETURNS TABLE(state_before text, state text, outcome text, merchant_id text, checkout_id text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $_$
#variable_conflict use_column
DECLARE
    e        record;
    a        record;
    v_state  text;
    v_at     timestamptz;
    v_n      bigint := 0;
    v_wait   boolean := false;
BEGIN
    PERFORM set_config('payments.event_source', '', true);
    PERFORM pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id));

    -- its month by its id (psp_event_ids), then its row there alone
    SELECT i.received_at INTO v_at
      FROM psp_event_ids i
     WHERE i.psp = p_psp AND i.event_id = p_event_id;
    IF FOUND THEN
        EXECUTE 'SELECT pe.* FROM psp_events pe'
                ' WHERE pe.psp = $1 AND pe.event_id = $2 AND pe.received_at = $3'
                ' FOR UPDATE'
           INTO e USING p_psp, p_event_id, v_at;
        GET DIAGNOSTICS v_n = ROW_COUNT;
    END IF;
    IF v_n = 0 THEN
        RAISE EXCEPTION 'pay_inbox_replay: no event % of psp % is kept', p_event_id, p_psp
            USING ERRCODE = 'no_data_found';
    END IF;

    -- kept and applied by the shard that owns it (forwarded there): this
    -- row only says so, and stays as it is
    IF e.state = 'forwarded' THEN
        RETURN QUERY SELECT e.state, e.state, 'forwarded'::text, e.merchant_id, e.checkout_id;
        RETURN;
    END IF;

    -- kept unread (pay_event_keep_unreadable): nothing was read from it to
    -- apply; the PSP's next delivery, to a release that reads it, is
    IF e.state = 'unreadable' THEN
        RETURN QUERY SELECT e.state, e.state, 'unreadable'::text, e.merchant_id, e.checkout_id;
        RETURN;
    END IF;

    IF e.kind = 'METHOD_SAVED' THEN
        -- a saved method: recorded once it is applied (its row's state);
        -- else saved now from what the row keeps for it (the token sealed)
        IF e.state = 'applied' THEN
            SELECT 'duplicate'::text AS outcome, e.merchant_id AS merchant_id,
                   e.checkout_id AS checkout_id INTO a;
            v_state := 'applied';
        ELSE
            SELECT x.outcome, x.merchant_id, x.checkout_id, x.state AS st INTO a
              FROM pay_method_saved_apply(e.psp, e.event_id, e.reference, e.method) x;
            v_state := a.st;
        END IF;
    ELSE
        SELECT * INTO a FROM pay_event_apply(e.psp, e.event_id, e.kind, e.type, e.token,
                                             e.reference, e.amount, e.currency,
                                             e.payment_ref, e.object_ref, e.tokens) x;
        v_state := psp_event_state(e.psp, e.event_id, e.reference, a.outcome);
    END IF;
    -- still nobody's here: the home sweeper's to forward once more when it
    -- tried before, else as it was
    IF v_state = 'pending' AND e.forward_tried_at IS NOT NULL AND e.kind <> 'METHOD_SAVED' THEN
        v_wait := true;
    ELSIF v_state = 'pending' AND e.state = 'unmatched' THEN
        v_state := 'unmatched';
    ELSIF a.outcome = 'duplicate' AND e.state = 'applied'
          AND pay_inbox_inquiry_end_elsewhere(e.psp, e.kind, e.type, e.token, e.tokens,
                                              e.reference, e.payment_ref, e.object_ref,
                                              e.merchant_id) THEN
        -- an inquiry's end an earlier release kept here with no merchant,
        -- nothing here its own (with several shards, on the home shard;
        -- its dispute on another): pending again, noted waiting, so that
        -- the home sweeper forwards it however old, and the shard that
        -- owns its dispute applies it (once: it is not kept there yet)
        v_state := 'pending';
        v_wait := true;
    END IF;

    UPDATE psp_events pe
       SET state = v_state,
           outcome = CASE WHEN a.outcome = 'duplicate' THEN pe.outcome ELSE a.outcome END,
           merchant_id = coalesce(a.merchant_id, pe.merchant_id),
           checkout_id = coalesce(a.checkout_id, pe.checkout_id),
           applied_at = CASE WHEN v_state = 'applied' THEN coalesce(pe.applied_at, now()) END,
           unmatched_at = CASE WHEN v_wait THEN NULL ELSE pe.unmatched_at END,
           forward_tried_at = CASE WHEN v_wait THEN NULL ELSE pe.forward_tried_at END,
           forward_waiting_at = CASE WHEN v_wait THEN now() ELSE pe.forward_waiting_at END
     WHERE pe.psp = e.psp AND pe.event_id = e.event_id AND pe.received_at = e.received_at;

    IF coalesce(a.merchant_id, e.merchant_id) IS NOT NULL THEN
        PERFORM audit_append(coalesce(a.merchant_id, e.merchant_id),
                             coalesce(a.checkout_id, e.checkout_id), 'inbox:replay',
                             jsonb_build_object('psp', e.psp, 'event_id', e.event_id,
                                                'actor', p_actor, 'before', e.state,
                                                'after', v_state, 'outcome', a.outcome));
    END IF;

    RETURN QUERY SELECT e.state, v_state, a.outcome,
                        coalesce(a.merchant_id, e.merchant_id),
                        coalesce(a.checkout_id, e.checkout_id);
END
$_$;


--
-- Name: pay_inbox_retry(integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_inbox_retry(p_unmatched_after integer, p_limit integer) RETURNS TABLE(psp text, event_id text, kind text, type text, reference text, state text, outcome text, merchant_id text, checkout_id text, age_seconds bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    e        record;
    v_state  text;
    -- what pay_event_apply said (typed: a record set to NULL is not
    -- assigned, and reading its fields fails the whole call)
    v_out    text;
    v_m      text;
    v_co     text;
    v_imm    text;
    v_failed boolean;
BEGIN
    IF p_unmatched_after IS NULL OR p_unmatched_after < 1 OR p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'pay_inbox_retry: invalid window or limit'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- the PSP's words, applied as a webhook's
    PERFORM set_config('payments.event_source', '', true);

    -- The checks deferred to commit are run below with SET CONSTRAINTS
    -- ALL IMMEDIATE, then ALL DEFERRED again: cheap, where naming them
    -- costs a catalog look-up a name at every event (0.2 ms for seven).
    -- ALL DEFERRED would also defer a constraint DEFERRABLE INITIALLY
    -- IMMEDIATE: those (none today) are named back to IMMEDIATE.  The
    -- caller's own deferred checks first, so that none is blamed on an event.
    SELECT string_agg(DISTINCT format('%I.%I', n.nspname, c.conname), ', ')
      INTO v_imm
      FROM pg_constraint c
      JOIN pg_namespace n ON n.oid = c.connamespace
     WHERE c.condeferrable AND NOT c.condeferred;
    SET CONSTRAINTS ALL IMMEDIATE;
    SET CONSTRAINTS ALL DEFERRED;
    IF v_imm IS NOT NULL THEN
        EXECUTE 'SET CONSTRAINTS ' || v_imm || ' IMMEDIATE';
    END IF;

    -- the pending events, oldest first, locked, at most p_limit: their
    -- walk is a function of its own, the only one of the step planned
    -- with the sequential and bitmap scans off (psp_events_retry_batch)
    FOR e IN SELECT * FROM psp_events_retry_batch(p_unmatched_after, p_limit)
    LOOP
        v_out := NULL;
        v_m := NULL;
        v_co := NULL;
        v_failed := false;
        BEGIN
            PERFORM pg_advisory_xact_lock(1436, hashtext(e.psp || ' ' || e.event_id));
            SELECT x.outcome, x.merchant_id, x.checkout_id INTO v_out, v_m, v_co
              FROM pay_event_apply(e.psp, e.event_id, e.kind, e.type, e.token,
                                   e.reference, e.amount, e.currency,
                                   e.payment_ref, e.object_ref, e.tokens) x;
            v_state := psp_event_state(e.psp, e.event_id, e.reference, v_out);
            -- this event's checks deferred to commit, here: one that fails
            -- undoes this event alone (its subtransaction, and with it the
            -- mode set here)
            SET CONSTRAINTS ALL IMMEDIATE;
            SET CONSTRAINTS ALL DEFERRED;
            IF v_imm IS NOT NULL THEN
                EXECUTE 'SET CONSTRAINTS ' || v_imm || ' IMMEDIATE';
            END IF;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'pay_inbox_retry: event % of psp %: %', e.event_id, e.psp, SQLERRM;
            -- nothing of it stays, nor what it said
            v_out := NULL;
            v_m := NULL;
            v_co := NULL;
            v_state := 'pending';
            v_failed := true;
        END;

        IF v_state = 'pending' THEN
            CONTINUE WHEN e.received_at > now() - make_interval(secs => p_unmatched_after);
            v_state := 'unmatched';
        END IF;

        UPDATE psp_events pe
           SET state = v_state,
               outcome = coalesce(v_out, pe.outcome),
               merchant_id = coalesce(v_m, pe.merchant_id),
               checkout_id = coalesce(v_co, pe.checkout_id),
               applied_at = CASE WHEN v_state = 'applied' THEN now() END,
               unmatched_at = CASE WHEN v_state = 'unmatched' THEN now() END
         WHERE pe.psp = e.psp AND pe.event_id = e.event_id
           AND pe.received_at = e.received_at;

        -- one that raised is told apart from one that matched nothing:
        -- outcome 'apply_failed' (returned, not kept; its error is in the
        -- server's log as this function's WARNING)
        RETURN QUERY SELECT e.psp, e.event_id, e.kind, e.type, e.reference, v_state,
                            CASE WHEN v_failed THEN 'apply_failed'
                                 ELSE coalesce(v_out, e.outcome) END,
                            coalesce(v_m, e.merchant_id),
                            coalesce(v_co, e.checkout_id),
                            extract(epoch FROM now() - e.received_at)::bigint;
    END LOOP;
END
$$;


--
-- Name: pay_inbox_waiting(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_inbox_waiting(p_psp text, p_event_id text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $_$
DECLARE
    v_at   timestamptz;
    v_age  bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id));
    -- its month by its id (psp_event_ids), then its row there alone
    SELECT i.received_at INTO v_at
      FROM psp_event_ids i
     WHERE i.psp = p_psp AND i.event_id = p_event_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    EXECUTE 'UPDATE psp_events pe SET forward_waiting_at = now()'
            ' WHERE pe.psp = $1 AND pe.event_id = $2 AND pe.received_at = $3'
            '   AND pe.state = ''pending'''
            ' RETURNING extract(epoch FROM now() - pe.received_at)::bigint'
       INTO v_age USING p_psp, p_event_id, v_at;
    RETURN v_age;
END
$_$;


--
-- Name: pay_list_checkouts(text, text, bigint, bigint, text, text, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_list_checkouts(p_merchant text, p_status text, p_gte bigint, p_lt bigint, p_after text, p_before text, p_limit integer) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET plan_cache_mode TO 'force_custom_plan'
    AS $$
DECLARE
    v_at     timestamptz;
    v_id     text;
    v_newer  boolean := p_before IS NOT NULL;
    v_limit  int := greatest(1, least(p_limit, 100));
    v_items  jsonb;
    v_n      bigint;
BEGIN
    IF p_status IS NOT NULL AND NOT (p_status = ANY (enum_range(NULL::pay_status)::text[])) THEN
        RAISE EXCEPTION 'no checkout has the status %', p_status USING ERRCODE = 'PY013';
    END IF;

    IF p_after IS NOT NULL OR p_before IS NOT NULL THEN
        SELECT c.created_at, c.checkout_id INTO v_at, v_id
          FROM checkouts c
         WHERE c.merchant_id = p_merchant AND c.checkout_id = coalesce(p_after, p_before);
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no such checkout' USING ERRCODE = 'PY014';
        END IF;
    END IF;

    -- one more than asked: whether another page follows; n counts from the
    -- cursor in the page's direction
    SELECT coalesce(jsonb_agg(jsonb_build_object(
                              'checkout_id', x.checkout_id,
                              'status', x.status,
                              'psp', x.psp,
                              'amount', money_decimal(x.amount_total, x.currency),
                              'currency', x.currency,
                              'expires_at', ts_rfc3339(x.expires_at),
                              'created_at', ts_rfc3339(x.created_at),
                              'updated_at', ts_rfc3339(x.updated_at))
                          || CASE WHEN x.status = 'FAILED' AND x.failure_code IS NOT NULL
                                  THEN jsonb_build_object('failure', checkout_failure(x.failure_code, x.failure))
                                  ELSE '{}'::jsonb END
                              ORDER BY x.created_at DESC, x.checkout_id DESC)
                        FILTER (WHERE x.n <= v_limit), '[]'::jsonb),
           count(*)
      INTO v_items, v_n
      FROM (SELECT p.*,
                   CASE WHEN v_newer
                        THEN row_number() OVER (ORDER BY p.created_at, p.checkout_id)
                        ELSE row_number() OVER (ORDER BY p.created_at DESC, p.checkout_id DESC)
                   END AS n
              FROM checkouts_page(p_merchant, p_status,
                            to_timestamp(p_gte), to_timestamp(p_lt),
                            v_at, v_id, v_newer, v_limit + 1) p) x;

    RETURN jsonb_build_object('object', 'list',
                              'data', v_items,
                              'has_more', v_n > v_limit)::text;
END
$$;


--
-- Name: pay_list_events(text, text, text, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_list_events(p_merchant text, p_type text, p_after text, p_limit integer) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET plan_cache_mode TO 'force_custom_plan'
    AS $$
DECLARE
    v_at       timestamptz;
    v_id       text;
    v_xact     xid8;
    -- the oldest transaction in flight, in the snapshot every query of
    -- this (STABLE) function reads
    v_horizon  xid8 := pg_snapshot_xmin(pg_current_snapshot());
    v_limit  int := greatest(1, least(p_limit, 100));
    v_items  jsonb;
    v_n      bigint;
    v_c      notifications%ROWTYPE;
BEGIN
    IF EXISTS (SELECT 1 FROM notifications r
                WHERE r.in_feed
                  AND r.merchant_id = p_merchant
                  AND r.feed_xact >= pg_snapshot_xmax(pg_current_snapshot())) THEN
        RAISE EXCEPTION 'the events feed holds events of another PostgreSQL cluster (a restored backup): run payments-migrate'
              USING ERRCODE = 'PY015';
    END IF;

    IF p_type IS NOT NULL THEN
        BEGIN
            -- the types the table takes, as its own check says them
            PERFORM notifications_row_checks('msg_000000000000000000000000', p_type, 1,
                                             'PENDING', NULL);
        EXCEPTION WHEN check_violation THEN
            RAISE EXCEPTION 'no event has the type %', p_type USING ERRCODE = 'PY013';
        END;
    END IF;

    IF p_after IS NOT NULL THEN
        SELECT * INTO v_c FROM notifications c
         WHERE c.merchant_id = p_merchant AND c.notification_id = p_after;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no such event' USING ERRCODE = 'PY014';
        END IF;

        -- the event's own row: its copies share the transaction's time
        SELECT f.feed_xact, f.created_at, f.notification_id INTO v_xact, v_at, v_id
          FROM notifications f
         WHERE f.in_feed
           AND f.merchant_id = p_merchant
           AND f.feed_xact = v_c.feed_xact
           AND f.created_at = v_c.created_at
           AND f.event_type = v_c.event_type
           AND f.object_id = v_c.object_id
           AND f.sequence = v_c.sequence;
        IF NOT FOUND THEN
            v_xact := v_c.feed_xact;
            v_at := v_c.created_at;
            v_id := v_c.notification_id;
        END IF;
    END IF;

    SELECT coalesce(jsonb_agg(jsonb_build_object('id', x.notification_id) || x.payload::jsonb
                              ORDER BY x.feed_xact, x.created_at, x.notification_id)
                        FILTER (WHERE x.n <= v_limit), '[]'::jsonb),
           count(*)
      INTO v_items, v_n
      FROM (SELECT p.*,
                   row_number() OVER (ORDER BY p.feed_xact, p.created_at,
                                               p.notification_id) AS n
              FROM notifications_feed_page(p_merchant, p_type, v_horizon, v_xact, v_at,
                                           v_id, v_limit + 1) p) x;

    RETURN jsonb_build_object('object', 'list',
                              'data', v_items,
                              'has_more', v_n > v_limit)::text;
END
$$;


--
-- Name: pay_list_methods(text, text, text, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_list_methods(p_merchant text, p_customer text, p_after text, p_limit integer) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_at     timestamptz;
    v_id     text;
    v_limit  int := greatest(1, least(p_limit, 100));
    v_items  jsonb;
    v_n      bigint;
BEGIN
    IF p_after IS NOT NULL THEN
        SELECT p.created_at, p.method_id INTO v_at, v_id
          FROM payment_methods p
         WHERE p.merchant_id = p_merchant AND p.method_id = p_after
           AND p.customer = p_customer;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no such payment method' USING ERRCODE = 'PY014';
        END IF;
    END IF;

    SELECT coalesce(jsonb_agg(payment_method_json(x.pm)
                              ORDER BY (x.pm).created_at DESC,
                                       (x.pm).method_id DESC)
                        FILTER (WHERE x.n <= v_limit), '[]'::jsonb),
           count(*)
      INTO v_items, v_n
      FROM (SELECT q.p AS pm,
                   row_number() OVER (ORDER BY (q.p).created_at DESC,
                                               (q.p).method_id DESC) AS n
              FROM (SELECT p FROM payment_methods p
                     WHERE p.merchant_id = p_merchant AND p.customer = p_customer
                       AND (v_at IS NULL OR (p.created_at, p.method_id) < (v_at, v_id))
                     ORDER BY p.created_at DESC, p.method_id DESC
                     LIMIT v_limit + 1) q) x;

    RETURN jsonb_build_object('object', 'list', 'data', v_items,
                              'has_more', v_n > v_limit)::text;
END
$$;


--
-- Name: pay_list_payment_orders(text, text, bigint, bigint, text, text, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_list_payment_orders(p_merchant text, p_status text, p_gte bigint, p_lt bigint, p_after text, p_before text, p_limit integer) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET plan_cache_mode TO 'force_custom_plan'
    AS $$
DECLARE
    v_at     timestamptz;
    v_id     text;
    v_newer  boolean := p_before IS NOT NULL;
    v_limit  int := greatest(1, least(p_limit, 100));
    v_items  jsonb;
    v_n      bigint;
BEGIN
    IF p_status IS NOT NULL AND NOT (p_status = ANY (enum_range(NULL::pay_status)::text[])) THEN
        RAISE EXCEPTION 'no payment order has the status %', p_status USING ERRCODE = 'PY013';
    END IF;

    IF p_after IS NOT NULL OR p_before IS NOT NULL THEN
        SELECT c.created_at, c.payment_order_id INTO v_at, v_id
          FROM payment_orders c
         WHERE c.merchant_id = p_merchant AND c.payment_order_id = coalesce(p_after, p_before);
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no such payment order' USING ERRCODE = 'PY014';
        END IF;
    END IF;

    -- one more than asked: whether another page follows; n counts from the
    -- cursor in the page's direction
    SELECT coalesce(jsonb_agg(jsonb_build_object(
                              'payment_order_id', x.payment_order_id,
                              'checkout_id', x.checkout_id,
                              'status', x.status,
                              'amount', money_decimal(x.amount, x.currency),
                              'currency', x.currency,
                              'seller_account', x.seller_account,
                              'created_at', ts_rfc3339(x.created_at),
                              'updated_at', ts_rfc3339(x.updated_at))
                              ORDER BY x.created_at DESC, x.payment_order_id DESC)
                        FILTER (WHERE x.n <= v_limit), '[]'::jsonb),
           count(*)
      INTO v_items, v_n
      FROM (SELECT p.*,
                   CASE WHEN v_newer
                        THEN row_number() OVER (ORDER BY p.created_at, p.payment_order_id)
                        ELSE row_number() OVER (ORDER BY p.created_at DESC, p.payment_order_id DESC)
                   END AS n
              FROM payment_orders_page(p_merchant, p_status,
                            to_timestamp(p_gte), to_timestamp(p_lt),
                            v_at, v_id, v_newer, v_limit + 1) p) x;

    RETURN jsonb_build_object('object', 'list',
                              'data', v_items,
                              'has_more', v_n > v_limit)::text;
END
$$;


--
-- Name: pay_list_payouts(text, text, bigint, bigint, text, text, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_list_payouts(p_merchant text, p_status text, p_gte bigint, p_lt bigint, p_after text, p_before text, p_limit integer) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET plan_cache_mode TO 'force_custom_plan'
    AS $$
DECLARE
    v_at     timestamptz;
    v_id     text;
    v_newer  boolean := p_before IS NOT NULL;
    v_limit  int := greatest(1, least(p_limit, 100));
    v_items  jsonb;
    v_n      bigint;
BEGIN
    IF p_status IS NOT NULL AND NOT (p_status IN ('PENDING', 'PAID', 'FAILED')) THEN
        RAISE EXCEPTION 'no pay-out has the status %', p_status USING ERRCODE = 'PY013';
    END IF;

    IF p_after IS NOT NULL OR p_before IS NOT NULL THEN
        SELECT c.created_at, c.payout_id INTO v_at, v_id
          FROM payouts c
         WHERE c.merchant_id = p_merchant AND c.payout_id = coalesce(p_after, p_before);
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no such pay-out' USING ERRCODE = 'PY014';
        END IF;
    END IF;

    -- one more than asked: whether another page follows; n counts from the
    -- cursor in the page's direction
    SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                              'payout_id', x.payout_id,
                              'seller_account', x.seller_account,
                              'psp', x.psp,
                              'status', x.status,
                              'amount', money_decimal(x.amount, x.currency),
                              'amount_reversed', money_decimal(x.amount_reversed, x.currency),
                              'currency', x.currency,
                              'failure', x.failure,
                              'created_at', ts_rfc3339(x.created_at),
                              'updated_at', ts_rfc3339(x.updated_at)))
                          || jsonb_build_object('psp_payout_id', x.psp_payout_id)
                              ORDER BY x.created_at DESC, x.payout_id DESC)
                        FILTER (WHERE x.n <= v_limit), '[]'::jsonb),
           count(*)
      INTO v_items, v_n
      FROM (SELECT p.*,
                   CASE WHEN v_newer
                        THEN row_number() OVER (ORDER BY p.created_at, p.payout_id)
                        ELSE row_number() OVER (ORDER BY p.created_at DESC, p.payout_id DESC)
                   END AS n
              FROM payouts_page(p_merchant, p_status,
                            to_timestamp(p_gte), to_timestamp(p_lt),
                            v_at, v_id, v_newer, v_limit + 1) p) x;

    RETURN jsonb_build_object('object', 'list',
                              'data', v_items,
                              'has_more', v_n > v_limit)::text;
END
$$;


--
-- Name: pay_list_refunds(text, text, bigint, bigint, text, text, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_list_refunds(p_merchant text, p_status text, p_gte bigint, p_lt bigint, p_after text, p_before text, p_limit integer) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET plan_cache_mode TO 'force_custom_plan'
    AS $$
DECLARE
    v_at     timestamptz;
    v_id     text;
    v_newer  boolean := p_before IS NOT NULL;
    v_limit  int := greatest(1, least(p_limit, 100));
    v_items  jsonb;
    v_n      bigint;
BEGIN
    IF p_status IS NOT NULL AND NOT (p_status IN ('PENDING', 'SUCCEEDED', 'FAILED')) THEN
        RAISE EXCEPTION 'no refund has the status %', p_status USING ERRCODE = 'PY013';
    END IF;

    IF p_after IS NOT NULL OR p_before IS NOT NULL THEN
        SELECT c.created_at, c.refund_id INTO v_at, v_id
          FROM refunds c
         WHERE c.merchant_id = p_merchant AND c.refund_id = coalesce(p_after, p_before);
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no such refund' USING ERRCODE = 'PY014';
        END IF;
    END IF;

    -- one more than asked: whether another page follows; n counts from the
    -- cursor in the page's direction
    SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                              'refund_id', x.refund_id,
                              'payment_order_id', x.payment_order_id,
                              'checkout_id', x.checkout_id,
                              'status', x.status,
                              'amount', money_decimal(x.amount, x.currency),
                              'currency', x.currency,
                              'reason', x.reason,
                              'failure', x.failure,
                              'created_at', ts_rfc3339(x.created_at),
                              'updated_at', ts_rfc3339(x.updated_at)))
                          || jsonb_build_object('psp_refund_id', x.psp_refund_id)
                              ORDER BY x.created_at DESC, x.refund_id DESC)
                        FILTER (WHERE x.n <= v_limit), '[]'::jsonb),
           count(*)
      INTO v_items, v_n
      FROM (SELECT p.*,
                   CASE WHEN v_newer
                        THEN row_number() OVER (ORDER BY p.created_at, p.refund_id)
                        ELSE row_number() OVER (ORDER BY p.created_at DESC, p.refund_id DESC)
                   END AS n
              FROM refunds_page(p_merchant, p_status,
                            to_timestamp(p_gte), to_timestamp(p_lt),
                            v_at, v_id, v_newer, v_limit + 1) p) x;

    RETURN jsonb_build_object('object', 'list',
                              'data', v_items,
                              'has_more', v_n > v_limit)::text;
END
$$;


--
-- Name: pay_merchant_here(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_merchant_here(p_merchant text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    RETURN (SELECT 'here'::text FROM merchants m WHERE m.merchant_id = p_merchant);
END
$$;


--
-- Name: pay_merchant_origins(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_merchant_origins(p_merchant text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    RETURN (SELECT coalesce(string_agg(o.origin, ' ' ORDER BY o.origin), '')
              FROM merchant_return_origins o
             WHERE o.merchant_id = p_merchant);
END
$$;


--
-- Name: pay_method_detach(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_method_detach(p_merchant text, p_method text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    p  payment_methods%ROWTYPE;
BEGIN
    SELECT * INTO p FROM payment_methods x
     WHERE x.merchant_id = p_merchant AND x.method_id = p_method
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    IF p.status = 'active' THEN
        UPDATE payment_methods x
           SET status = 'detached', detached_at = now(), updated_at = now()
         WHERE x.merchant_id = p_merchant AND x.method_id = p_method
        RETURNING * INTO p;

        PERFORM audit_append(p_merchant, p.checkout_id, 'payment_method:detached',
                             jsonb_build_object('payment_method', p.method_id,
                                                'psp', p.psp));
    END IF;

    RETURN payment_method_json(p)::text;
END
$$;


--
-- Name: pay_method_detach_start(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_method_detach_start(p_merchant text, p_method text) RETURNS TABLE(method text, psp text, token_sealed text, checkout_id text, customer_ref text, psp_customer text, psp_detached boolean)
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT method, psp, token_sealed, checkout_id, customer_ref, psp_customer, psp_detached FROM pay_method_detach_start(p_merchant, p_method, '{}'::text[])
$$;


--
-- Name: pay_method_detach_start(text, text, text[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_method_detach_start(p_merchant text, p_method text, p_other_mode text[]) RETURNS TABLE(method text, psp text, token_sealed text, checkout_id text, customer_ref text, psp_customer text, psp_detached boolean, saved_account text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_json  text;
BEGIN
    -- a method's PSP never changes: no lock needed to read it first
    PERFORM 1 FROM payment_methods p
      WHERE p.merchant_id = p_merchant AND p.method_id = p_method
        AND p.psp = ANY (coalesce(p_other_mode, '{}'));
    IF FOUND THEN
        RETURN;
    END IF;

    v_json := pay_method_detach(p_merchant, p_method);
    IF v_json IS NULL THEN
        RETURN;
    END IF;

    RETURN QUERY
        SELECT v_json, p.psp, p.token_sealed, p.checkout_id, p.customer_ref,
               p.psp_customer, p.psp_detached_at IS NOT NULL,
               stored_request_account(c.psp_request)
          FROM payment_methods p
          LEFT JOIN checkouts c ON c.merchant_id = p.merchant_id
                               AND c.checkout_id = p.checkout_id
         WHERE p.merchant_id = p_merchant AND p.method_id = p_method;
END
$$;


--
-- Name: pay_method_detach_tried(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_method_detach_tried(p_merchant text, p_method text) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_tries  integer;
BEGIN
    -- the primary key: one row at most (none: v_tries stays NULL)
    UPDATE payment_methods p
       SET psp_detach_tries = p.psp_detach_tries + 1,
           psp_detach_tried_at = now()
     WHERE p.merchant_id = p_merchant AND p.method_id = p_method
       AND p.status = 'detached' AND p.psp_detached_at IS NULL
    RETURNING p.psp_detach_tries INTO v_tries;
    RETURN v_tries;
END
$$;


--
-- Name: pay_method_event_keep(text, text, text, text, text, text, text, jsonb, bytea, jsonb, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_method_event_keep(p_psp text, p_event_id text, p_type text, p_reference text, p_token_sealed text, p_token_index text, p_psp_customer text, p_display jsonb, p_body bytea, p_headers jsonb, p_key_id text) RETURNS TABLE(outcome text, merchant_id text, checkout_id text, state text, method_id text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v         record;
    a         record;
    v_method  jsonb;
BEGIN
    IF to_regclass('psp_events_' || to_char(now() AT TIME ZONE 'UTC', '"y"YYYY"m"MM')) IS NULL THEN
        PERFORM pay_inbox_partitions(1);
    END IF;

    PERFORM pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id));
    -- one index, then the kept row's month alone (psp_event_kept)
    SELECT k.* INTO v FROM psp_event_kept(p_psp, p_event_id) k;
    IF FOUND THEN
        RETURN QUERY SELECT 'duplicate'::text, v.merchant_id, v.checkout_id, v.state,
                            NULL::text;
        RETURN;
    END IF;

    v_method := jsonb_build_object('token_sealed', p_token_sealed,
                                   'token_index', p_token_index,
                                   'psp_customer', nullif(p_psp_customer, ''),
                                   'display', coalesce(p_display, '{}'));

    SELECT * INTO a FROM pay_method_saved_apply(p_psp, p_event_id, p_reference, v_method) x;

    INSERT INTO psp_events (psp, event_id, state, body, headers, key_id, kind, type,
                            reference, outcome, merchant_id, checkout_id, applied_at,
                            unmatched_at, method)
    VALUES (p_psp, p_event_id, a.state, p_body, coalesce(p_headers, '{}'), p_key_id,
            'METHOD_SAVED', left(coalesce(p_type, ''), 100), nullif(p_reference, ''),
            a.outcome, a.merchant_id, a.checkout_id,
            CASE WHEN a.state = 'applied' THEN now() END,
            CASE WHEN a.state = 'unmatched' THEN now() END, v_method);

    RETURN QUERY SELECT a.outcome, a.merchant_id, a.checkout_id, a.state, a.method_id;
END
$$;


--
-- Name: pay_method_for_charge(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_method_for_charge(p_merchant text, p_method text) RETURNS TABLE(psp text, token_sealed text, checkout_id text, customer_ref text, psp_customer text, usage text, recurring text, status text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT p.psp, p.token_sealed, p.checkout_id, p.customer_ref, p.psp_customer,
           p.usage, p.recurring, p.status
      FROM payment_methods p
     WHERE p.merchant_id = p_merchant AND p.method_id = p_method;
END
$$;


--
-- Name: pay_method_get(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_method_get(p_merchant text, p_method text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    -- the primary key: one row at most
    RETURN (SELECT payment_method_json(p)::text
              FROM payment_methods p
             WHERE p.merchant_id = p_merchant AND p.method_id = p_method);
END
$$;


--
-- Name: pay_method_psp_customers(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_method_psp_customers(p_merchant text, p_customer text) RETURNS TABLE(psp text, psp_customer text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT DISTINCT ON (p.psp) p.psp, p.psp_customer
      FROM payment_methods p
     WHERE p.customer = p_customer AND p.merchant_id = p_merchant
       AND p.psp_customer IS NOT NULL
     ORDER BY p.psp, p.created_at, p.method_id;
END
$$;


--
-- Name: pay_method_psp_detached(text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_method_psp_detached(p_merchant text, p_method text, p_how text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    p  payment_methods%ROWTYPE;
BEGIN
    IF p_how IS NULL OR p_how NOT IN ('done', 'gone') THEN
        RAISE EXCEPTION 'pay_method_psp_detached: p_how is done or gone'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT * INTO p FROM payment_methods x
     WHERE x.merchant_id = p_merchant AND x.method_id = p_method
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    IF p.status <> 'detached' THEN
        RAISE EXCEPTION 'pay_method_psp_detached: method % is still active', p_method
            USING ERRCODE = 'PY004';
    END IF;

    IF p.psp_detached_at IS NULL THEN
        UPDATE payment_methods x
           SET psp_detached_at = now(), updated_at = now()
         WHERE x.merchant_id = p_merchant AND x.method_id = p_method
        RETURNING * INTO p;

        PERFORM audit_append(p_merchant, p.checkout_id, 'payment_method:psp_detached',
                             jsonb_build_object('payment_method', p.method_id,
                                                'psp', p.psp, 'psp_answer', p_how));
    END IF;

    RETURN payment_method_json(p)::text;
END
$$;


--
-- Name: pay_method_saved_apply(text, text, text, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_method_saved_apply(p_psp text, p_event_id text, p_reference text, p_method jsonb) RETURNS TABLE(outcome text, merchant_id text, checkout_id text, state text, method_id text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $_$
#variable_conflict use_column
DECLARE
    c        checkouts%ROWTYPE;
    v_out    text;
    v_state  text := 'applied';
    v_id     text;
BEGIN
    SELECT * INTO c FROM checkouts ck
     WHERE ck.nonce = p_reference AND ck.psp = p_psp
       AND ck.merchant_id = split_part(p_reference, ':', 1)
       FOR UPDATE;

    IF NOT FOUND THEN
        v_out := 'unknown_checkout';
        v_state := CASE WHEN coalesce(p_reference, '')
                             ~ '^[A-Za-z0-9_-]{1,64}:[A-Za-z0-9_-]{1,64}$'
                        THEN 'unmatched' ELSE 'foreign' END;
    ELSIF c.save_method IS NULL THEN
        v_out := 'not_asked';
    ELSIF p_method IS NULL OR coalesce(p_method ->> 'token_sealed', '') = '' THEN
        v_out := 'not_kept';
        v_state := 'unmatched';
    ELSE
        -- 96 random bits as letters a-p: an id with no digits is never
        -- taken for a card number in the merchant's request
        v_id := 'pm_' || translate(encode(gen_random_bytes_compat(12), 'hex'),
                                   '0123456789abcdef', 'abcdefghijklmnop');

        INSERT INTO payment_methods (merchant_id, method_id, customer, customer_ref,
                                     psp, psp_customer, token_sealed, token_index,
                                     usage, recurring, brand, last4, exp_month,
                                     exp_year, checkout_id, event_id)
        VALUES (c.merchant_id, v_id, c.save_method ->> 'customer',
                c.save_method ->> 'customer_ref', p_psp,
                nullif(p_method ->> 'psp_customer', ''),
                p_method ->> 'token_sealed', p_method ->> 'token_index',
                c.save_method ->> 'usage', c.save_method ->> 'recurring',
                nullif(lower(p_method -> 'display' ->> 'brand'), ''),
                nullif(p_method -> 'display' ->> 'last4', ''),
                (p_method -> 'display' ->> 'exp_month')::int,
                (p_method -> 'display' ->> 'exp_year')::int,
                c.checkout_id, p_event_id)
        ON CONFLICT DO NOTHING;

        IF FOUND THEN
            v_out := 'saved';
            PERFORM audit_append(c.merchant_id, c.checkout_id, 'payment_method:saved',
                                 jsonb_build_object('payment_method', v_id,
                                                    'psp', p_psp,
                                                    'usage', c.save_method ->> 'usage',
                                                    'event', p_event_id));

            -- a save without a charge (amount 0, no orders) is done once
            -- its method is saved: SUCCESS, nothing booked (no money
            -- moved, no order to pay out); the PSP's zero-amount success
            -- may have moved it first
            IF c.amount_total = 0 AND c.status = 'EXECUTING' THEN
                UPDATE checkouts ck
                   SET status = 'SUCCESS', updated_at = now()
                 WHERE ck.merchant_id = c.merchant_id
                   AND ck.checkout_id = c.checkout_id;
                PERFORM audit_append(c.merchant_id, c.checkout_id, 'setup:succeeded',
                                     jsonb_build_object('from', 'EXECUTING',
                                                        'to', 'SUCCESS',
                                                        'payment_method', v_id,
                                                        'event', p_event_id));
            END IF;
        ELSE
            v_out := 'already';
            v_id := NULL;
        END IF;

        -- the checkout's method is recorded (this one, or the same token
        -- saved by another of its shopper's checkouts): it leaves the
        -- sweeper's checkouts_method_unalerted or checkouts_method_alerted
        -- (pay_sweeper_methods_due)
        UPDATE checkouts ck
           SET method_saved_at = now()
         WHERE ck.merchant_id = c.merchant_id
           AND ck.checkout_id = c.checkout_id
           AND ck.method_saved_at IS NULL;
    END IF;

    RETURN QUERY SELECT v_out, c.merchant_id, c.checkout_id, v_state, v_id;
END
$_$;


--
-- Name: pay_notify_claim(text, integer, integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_notify_claim(p_owner text, p_limit integer, p_lease_ms integer, p_per_endpoint integer) RETURNS TABLE(notification_id text, merchant_id text, endpoint_id text, url text, host text, secret_sealed text, prev_secret_sealed text, attempts integer, payload text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    RETURN QUERY
    SELECT l.notification_id, l.merchant_id, l.endpoint_id, l.url, l.host, l.secret_sealed,
           l.prev_secret_sealed, l.attempts, l.payload
      FROM pay_notify_lease(p_owner, p_limit, p_lease_ms, p_per_endpoint) l;
END
$$;


--
-- Name: pay_notify_get(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_notify_get(p_merchant text, p_id text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    -- the primary key: one row at most
    RETURN (SELECT notify_item(n)::text
              FROM notifications n
             WHERE n.merchant_id = p_merchant AND n.notification_id = p_id);
END
$$;


--
-- Name: pay_notify_heartbeat(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_notify_heartbeat(p_host text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    INSERT INTO notify_deliverers AS d (host, seen_at) VALUES (p_host, now())
    ON CONFLICT (host) DO UPDATE SET seen_at = now();
    DELETE FROM notify_deliverers d WHERE d.seen_at < now() - interval '7 days';
END
$$;


--
-- Name: pay_notify_lease(text, integer, integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_notify_lease(p_owner text, p_limit integer, p_lease_ms integer, p_per_endpoint integer) RETURNS TABLE(notification_id text, merchant_id text, endpoint_id text, url text, host text, secret_sealed text, prev_secret_sealed text, attempts integer, payload text, lease_until timestamp with time zone)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET jit TO 'off'
    SET plan_cache_mode TO 'force_custom_plan'
    SET enable_seqscan TO 'off'
    SET enable_bitmapscan TO 'off'
    SET enable_sort TO 'off'
    AS $$
BEGIN
    IF p_limit < 1 OR p_limit > 1000 OR p_lease_ms < 1000 OR p_per_endpoint < 1
       OR length(p_owner) NOT BETWEEN 1 AND 300
    THEN
        RAISE EXCEPTION 'pay_notify_lease: limit 1..1000, lease >= 1000 ms, per endpoint >= 1, an owner'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    RETURN QUERY
    WITH RECURSIVE waiting AS (
        -- every endpoint with a PENDING row: a skip scan, one index probe
        -- per endpoint
        (SELECT n.merchant_id, n.endpoint_id FROM notifications n
          WHERE n.status = 'PENDING'
          ORDER BY n.merchant_id, n.endpoint_id
          LIMIT 1)
        UNION ALL
        SELECT x.merchant_id, x.endpoint_id
          FROM waiting w,
               LATERAL (SELECT n.merchant_id, n.endpoint_id FROM notifications n
                         WHERE n.status = 'PENDING'
                           AND (n.merchant_id, n.endpoint_id) > (w.merchant_id, w.endpoint_id)
                         ORDER BY n.merchant_id, n.endpoint_id
                         LIMIT 1) x
    ), room AS (
        -- what per_endpoint leaves each enabled one, with the rows leased
        -- now (by any worker or gateway) counted
        -- (the newest leases first, per_endpoint of them at most, which
        -- tells the room wherever it is above zero, the only room used:
        -- notifications_leased's order, which no other index gives
        -- without a sort)
        SELECT w.merchant_id, w.endpoint_id,
               p_per_endpoint - (SELECT count(*)
                                   FROM (SELECT 1 FROM notifications n
                                          WHERE n.merchant_id = w.merchant_id
                                            AND n.endpoint_id = w.endpoint_id
                                            AND n.status = 'PENDING'
                                            AND n.lease_owner IS NOT NULL
                                            AND n.lease_until >= clock_timestamp()
                                          ORDER BY n.lease_until DESC
                                          LIMIT p_per_endpoint) l) AS room
          FROM waiting w
          JOIN notify_endpoints e ON e.merchant_id = w.merchant_id
                                 AND e.endpoint_id = w.endpoint_id
         WHERE e.disabled_at IS NULL
    ), heads AS (
        -- the p_limit endpoints with room whose oldest due row is oldest:
        -- the claim's rows are theirs alone (each endpoint with room
        -- offers at least its oldest, so an endpoint whose oldest is
        -- younger than p_limit others' has no row among the p_limit
        -- oldest).  One index probe each, nothing locked: a claim locks
        -- the rows of p_limit endpoints at most, not of every endpoint
        -- with a backlog (a thousand shops' endpoints down: eight
        -- thousand row locks a claim, each a WAL record, for 32 rows)
        SELECT r.merchant_id, r.endpoint_id, r.room
          FROM room r,
               LATERAL (SELECT n.next_at FROM notifications n
                         WHERE n.merchant_id = r.merchant_id AND n.endpoint_id = r.endpoint_id
                           AND n.status = 'PENDING' AND n.next_at <= now()
                           AND (n.lease_until IS NULL OR n.lease_until < clock_timestamp())
                         ORDER BY n.next_at
                         LIMIT 1) h
         WHERE r.room > 0
         ORDER BY h.next_at
         LIMIT p_limit
    ), candidates AS (
        -- each of those endpoints' oldest due rows, locked where they are
        -- found (SKIP LOCKED: another claimer's are passed over): one
        -- index range per endpoint, nothing found again afterwards, and
        -- no plan that reads every PENDING row (a disabled endpoint's
        -- backlog with them).  At most p_limit per endpoint: with several
        -- endpoints, rows locked beyond p_limit are let go when the
        -- claim's transaction ends (another claimer meanwhile passes over
        -- them, and takes them at its next claim).
        SELECT c.ctid, c.next_at
          FROM heads r,
               LATERAL (SELECT n.ctid, n.next_at FROM notifications n
                         WHERE n.merchant_id = r.merchant_id AND n.endpoint_id = r.endpoint_id
                           AND n.status = 'PENDING' AND n.next_at <= now()
                           AND (n.lease_until IS NULL OR n.lease_until < clock_timestamp())
                         ORDER BY n.next_at
                         LIMIT least(r.room, p_limit)
                           FOR UPDATE OF n SKIP LOCKED) c
    ), due AS (
        SELECT c.ctid
          FROM candidates c
         ORDER BY c.next_at
         LIMIT p_limit
    ), claimed AS (
        UPDATE notifications n
           SET lease_owner = p_owner,
               lease_until = clock_timestamp() + make_interval(secs => p_lease_ms / 1000.0),
               attempts = n.attempts + 1,
               -- this attempt is the send a replay asked for (one made
               -- while a holder that died had it)
               resend = false,
               updated_at = now()
          FROM due
         -- each row taken by its place in the table, which its lock keeps
         -- (a TID scan a row), not by a join on its key: planned while the
         -- statistics say the table holds no row (an ANALYZE that found
         -- only dead rows), the join read the whole primary key and
         -- compared each entry with each row taken.  A row updated
         -- between the statement's snapshot and its lock is not seen at
         -- its new place: it is not taken now, and the next claim takes it
         WHERE n.ctid = due.ctid
        RETURNING n.notification_id, n.merchant_id, n.endpoint_id, n.attempts, n.payload,
                  n.lease_until
    )
    SELECT c.notification_id, c.merchant_id, c.endpoint_id, e.url, e.host, e.secret_sealed,
           CASE WHEN e.prev_until > now() THEN e.prev_secret_sealed END,
           c.attempts, c.payload, c.lease_until
      FROM claimed c
      JOIN notify_endpoints e ON e.merchant_id = c.merchant_id AND e.endpoint_id = c.endpoint_id;
END
$$;


--
-- Name: pay_notify_list(text, text, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_notify_list(p_merchant text, p_status text, p_limit integer) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    RETURN (SELECT coalesce(json_agg(notify_item(l) ORDER BY l.created_at DESC, l.notification_id DESC),
                            '[]'::json)::text
              FROM (SELECT n.*
                      FROM notifications n
                     WHERE n.merchant_id = p_merchant
                       AND n.created_at IS NOT NULL    -- notifications_list's
                       AND (p_status IS NULL OR n.status = p_status)
                     ORDER BY n.created_at DESC, n.notification_id DESC
                     LIMIT greatest(1, least(p_limit, 100))) l);
END
$$;


--
-- Name: pay_notify_record(text, text, text, boolean, integer, text, bigint, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_notify_record(p_merchant text, p_id text, p_owner text, p_ok boolean, p_http_status integer, p_error text, p_retry_ms bigint, p_disable_after integer) RETURNS TABLE(status text, endpoint_disabled boolean)
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT * FROM pay_notify_record(p_merchant, p_id, p_owner, p_ok, p_http_status,
                                    p_error, p_retry_ms, p_disable_after, 0::bigint,
                                    NULL::timestamptz)
$$;


--
-- Name: pay_notify_record(text, text, text, boolean, integer, text, bigint, integer, bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_notify_record(p_merchant text, p_id text, p_owner text, p_ok boolean, p_http_status integer, p_error text, p_retry_ms bigint, p_disable_after integer, p_disable_failing_ms bigint) RETURNS TABLE(status text, endpoint_disabled boolean)
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT * FROM pay_notify_record(p_merchant, p_id, p_owner, p_ok, p_http_status,
                                    p_error, p_retry_ms, p_disable_after, p_disable_failing_ms,
                                    NULL::timestamptz)
$$;


--
-- Name: pay_notify_record(text, text, text, boolean, integer, text, bigint, integer, bigint, timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_notify_record(p_merchant text, p_id text, p_owner text, p_ok boolean, p_http_status integer, p_error text, p_retry_ms bigint, p_disable_after integer, p_disable_failing_ms bigint, p_lease timestamp with time zone) RETURNS TABLE(status text, endpoint_disabled boolean)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_endpoint  text;
    v_status    text;
    v_failures  int;
    v_since     timestamptz;
    v_disabled  boolean := false;
    v_held      boolean;
BEGIN
    -- the row by its key, whether this claim still holds it told by the
    -- row: "status = 'PENDING' AND lease_owner = ..." in an UPDATE's WHERE
    -- is notifications_leased's predicate (and the status
    -- notifications_pending_endpoint's), and a plan made on empty tables
    -- walked the merchant's leased rows through it for the one
    -- (plans::a_deliverys_outcome_reads_its_row_not_the_endpoints_backlog)
    SELECT n.status = 'PENDING' AND n.lease_owner = p_owner
           AND (p_lease IS NULL OR n.lease_until = p_lease)
      INTO v_held
      FROM notifications n
     WHERE n.merchant_id = p_merchant AND n.notification_id = p_id
       FOR UPDATE;
    IF v_held AND p_ok THEN
        UPDATE notifications n
           SET status = CASE WHEN n.resend THEN 'PENDING' ELSE 'DELIVERED' END,
               delivered_at = CASE WHEN n.resend THEN NULL ELSE now() END,
               next_at = CASE WHEN n.resend THEN now() ELSE n.next_at END,
               resend = false, lease_owner = NULL,
               lease_until = NULL, last_status = p_http_status, last_error = NULL,
               updated_at = now()
         WHERE n.merchant_id = p_merchant AND n.notification_id = p_id
        RETURNING n.endpoint_id, n.status INTO v_endpoint, v_status;
    ELSIF v_held THEN
        UPDATE notifications n
           SET status = CASE WHEN n.resend OR p_retry_ms IS NOT NULL THEN 'PENDING'
                             ELSE 'FAILED' END,
               next_at = CASE WHEN n.resend THEN now()
                              WHEN p_retry_ms IS NULL THEN n.next_at
                              ELSE now() + make_interval(secs => p_retry_ms / 1000.0) END,
               resend = false, lease_owner = NULL, lease_until = NULL,
               last_status = p_http_status, last_error = left(p_error, 200),
               updated_at = now()
         WHERE n.merchant_id = p_merchant AND n.notification_id = p_id
        RETURNING n.endpoint_id, n.status INTO v_endpoint, v_status;
    END IF;

    IF v_endpoint IS NULL THEN
        RETURN QUERY SELECT 'STALE'::text, false;
        RETURN;
    END IF;

    IF p_ok THEN
        UPDATE notify_endpoints e SET failures = 0, failing_since = NULL
         WHERE e.merchant_id = p_merchant AND e.endpoint_id = v_endpoint
           AND (e.failures <> 0 OR e.failing_since IS NOT NULL);
    ELSE
        UPDATE notify_endpoints e
           SET failures = e.failures + 1,
               failing_since = coalesce(e.failing_since, now()),
               updated_at = now()
         WHERE e.merchant_id = p_merchant AND e.endpoint_id = v_endpoint
        RETURNING e.failures, e.failing_since INTO v_failures, v_since;

        IF (p_disable_after > 0 AND v_failures >= p_disable_after)
           OR (p_disable_failing_ms > 0
               AND v_since <= now() - make_interval(secs => p_disable_failing_ms / 1000.0)) THEN
            UPDATE notify_endpoints e
               SET disabled_at = now(), disabled_reason = 'failures', updated_at = now()
             WHERE e.merchant_id = p_merchant AND e.endpoint_id = v_endpoint
               AND e.disabled_at IS NULL;
            v_disabled := FOUND;
        END IF;
    END IF;

    RETURN QUERY SELECT v_status, v_disabled;
END
$$;


--
-- Name: pay_notify_replay(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_notify_replay(p_merchant text, p_id text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v      notifications;
    -- one instant for the lease's test, so that the mark and the lease
    -- kept never disagree
    v_now  timestamptz := clock_timestamp();
BEGIN
    PERFORM 1
       FROM notifications n
       JOIN notify_endpoints e ON e.merchant_id = n.merchant_id AND e.endpoint_id = n.endpoint_id
      WHERE n.merchant_id = p_merchant AND n.notification_id = p_id
        AND e.disabled_at IS NOT NULL;
    IF FOUND THEN
        RAISE EXCEPTION 'pay_notify_replay: the endpoint is disabled'
            USING ERRCODE = 'PY010';
    END IF;

    UPDATE notifications n
       SET status = 'PENDING', attempts = 0, next_at = now(),
           resend = n.lease_owner IS NOT NULL AND n.lease_until >= v_now,
           lease_owner = CASE WHEN n.lease_until >= v_now THEN n.lease_owner END,
           lease_until = CASE WHEN n.lease_owner IS NOT NULL
                               AND n.lease_until >= v_now THEN n.lease_until END,
           delivered_at = NULL, updated_at = now()
     WHERE n.merchant_id = p_merchant AND n.notification_id = p_id
    RETURNING n.* INTO v;

    IF v.notification_id IS NULL THEN
        RETURN NULL;
    END IF;

    RETURN notify_item(v)::text;
END
$$;


--
-- Name: pay_notify_stats(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_notify_stats() RETURNS TABLE(pending bigint, oldest_pending_seconds bigint, failed bigint, endpoints_disabled bigint)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET jit TO 'off'
    SET enable_seqscan TO 'off'
    SET enable_bitmapscan TO 'off'
    AS $$
BEGIN
    RETURN QUERY
    SELECT gauge_count(p.n, 10000, 'notifications_pending_since'),
           (SELECT coalesce(ts_epoch(now()) - ts_epoch(min(n.created_at)), 0)
              FROM notifications n WHERE n.status = 'PENDING'),
           gauge_count(f.n, 10000, 'notifications_failed'),
           (SELECT count(*) FROM notify_endpoints e WHERE e.disabled_at IS NOT NULL)
      FROM (SELECT count(*) AS n
              FROM (SELECT FROM notifications n
                     WHERE n.status = 'PENDING' AND n.created_at IS NOT NULL
                     ORDER BY n.created_at LIMIT 10000) AS first) AS p,
           (SELECT count(*) AS n
              FROM (SELECT FROM notifications n WHERE n.status = 'FAILED'
                     ORDER BY n.merchant_id, n.created_at DESC, n.notification_id DESC
                     LIMIT 10000) AS first) AS f;
END
$$;


--
-- Name: pay_op_abandon(text, text, bigint, text, text, integer, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_op_abandon(p_merchant text, p_idem_key text, p_lease bigint, p_op_id text, p_failure text, p_response_status integer, p_response_body text) RETURNS TABLE(response_status integer, response_body text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    k         idempotency_keys%ROWTYPE;
    v_kind    text;
    v_co      text;
    v_action  text;
    v_open    boolean;
BEGIN
    SELECT * INTO k FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       FOR UPDATE;
    IF NOT FOUND OR k.state <> 'in_progress' OR k.lease <> p_lease
       OR k.checkout_id IS DISTINCT FROM p_op_id THEN
        RETURN;
    END IF;

    SELECT ok.kind INTO v_kind FROM operation_keys ok
     WHERE ok.merchant_id = p_merchant AND ok.idem_key = p_idem_key
       AND ok.fingerprint = k.fingerprint AND ok.op_id = p_op_id;
    IF NOT FOUND THEN
        RETURN;
    END IF;

    -- a refund and a pay-out by their keys, their state told by the row:
    -- "status = 'PENDING'" in the WHERE is refunds_pending_seller's and
    -- payouts_seller's predicate, and a plan made on empty tables walked
    -- the merchant's operations in flight through them (pay_refund_claim)
    IF v_kind = 'refund' THEN
        SELECT x.status = 'PENDING' AND x.psp_refund_id IS NULL AND x.psp_contact = 'trying'
          INTO v_open
          FROM refunds x
         WHERE x.merchant_id = p_merchant AND x.refund_id = p_op_id
           FOR UPDATE;
        IF v_open THEN
            UPDATE refunds x
               SET status = 'FAILED', failure = left(p_failure, 1000), psp_contact = 'none'
             WHERE x.merchant_id = p_merchant AND x.refund_id = p_op_id
            RETURNING x.checkout_id, 'refund:abandoned' INTO v_co, v_action;
        END IF;
    ELSIF v_kind = 'capture' THEN
        UPDATE captures x
           SET status = 'FAILED', failure = left(p_failure, 1000), psp_contact = 'none'
         WHERE x.merchant_id = p_merchant AND x.capture_id = p_op_id
           AND x.status = 'PENDING' AND x.psp_ref IS NULL
           AND x.psp_contact = 'trying'
        RETURNING x.checkout_id, x.kind || ':abandoned' INTO v_co, v_action;
    ELSE
        SELECT x.status = 'PENDING' AND x.psp_payout_id IS NULL AND x.psp_contact = 'trying'
          INTO v_open
          FROM payouts x
         WHERE x.merchant_id = p_merchant AND x.payout_id = p_op_id
           FOR UPDATE;
        IF v_open THEN
            UPDATE payouts x
               SET status = 'FAILED', failure = left(p_failure, 1000), psp_contact = 'none'
             WHERE x.merchant_id = p_merchant AND x.payout_id = p_op_id
            RETURNING NULL::text, 'payout:abandoned' INTO v_co, v_action;
        END IF;
    END IF;
    IF v_action IS NULL THEN
        RETURN;
    END IF;

    PERFORM op_key_done(p_merchant, p_idem_key, p_lease, p_response_status, p_response_body);

    PERFORM audit_append(p_merchant, v_co, v_action,
        jsonb_build_object(CASE v_kind WHEN 'refund' THEN 'refund_id'
                                       WHEN 'capture' THEN 'capture_id'
                                       ELSE 'payout_id' END, p_op_id,
                           'reason', 'psp_never_reached'));

    RETURN QUERY SELECT p_response_status, p_response_body;
END
$$;


--
-- Name: pay_op_key_answer(text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_op_key_answer(p_merchant text, p_idem_key text, p_fingerprint text) RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, op_id text, psp text, payment_ref text, amount bigint, currency text, reason text, refundable bigint, op_status text, psp_ref text, failure text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    k      idempotency_keys%ROWTYPE;
    ok     operation_keys%ROWTYPE;
    v_now  timestamptz := clock_timestamp();
BEGIN
    SELECT * INTO k FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key;
    IF NOT FOUND OR (k.state = 'done' AND k.expires_at <= v_now) THEN
        SELECT * INTO ok FROM operation_keys o
         WHERE o.merchant_id = p_merchant AND o.idem_key = p_idem_key
           AND o.fingerprint = p_fingerprint;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'new'::text, NULL::bigint, NULL::int, NULL::int, NULL::text,
                                NULL::text, NULL::text, NULL::text, NULL::bigint, NULL::text,
                                NULL::text, NULL::bigint, NULL::text, NULL::text, NULL::text;
        ELSIF ok.kind = 'refund' THEN
            RETURN QUERY SELECT CASE WHEN rf.status <> 'PENDING' OR rf.psp_refund_id IS NOT NULL
                                     THEN 'settled' ELSE 'unsent' END,
                                NULL::bigint, NULL::int, NULL::int, NULL::text,
                                rf.refund_id, rf.psp, NULL::text, rf.amount, rf.currency,
                                rf.reason, NULL::bigint, rf.status, rf.psp_refund_id, rf.failure
                           FROM refunds rf
                          WHERE rf.merchant_id = p_merchant AND rf.refund_id = ok.op_id;
        ELSIF ok.kind = 'capture' THEN
            RETURN QUERY SELECT CASE WHEN x.status <> 'PENDING' OR x.psp_ref IS NOT NULL
                                     THEN 'settled' ELSE 'unsent' END,
                                NULL::bigint, NULL::int, NULL::int, NULL::text,
                                x.capture_id, x.psp, NULL::text, x.amount, x.currency,
                                x.kind, NULL::bigint, x.status, x.psp_ref, x.failure
                           FROM captures x
                          WHERE x.merchant_id = p_merchant AND x.capture_id = ok.op_id;
        ELSE
            RETURN QUERY SELECT CASE WHEN po.status <> 'PENDING' OR po.psp_payout_id IS NOT NULL
                                     THEN 'settled' ELSE 'unsent' END,
                                NULL::bigint, NULL::int, NULL::int, NULL::text,
                                po.payout_id, po.psp, NULL::text, po.amount, po.currency,
                                NULL::text, NULL::bigint, po.status, po.psp_payout_id, po.failure
                           FROM payouts po
                          WHERE po.merchant_id = p_merchant AND po.payout_id = ok.op_id;
        END IF;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pay_op_key_answer: request % names % %, which does not exist',
                p_idem_key, ok.kind, ok.op_id USING ERRCODE = 'PY004';
        END IF;
    ELSIF k.fingerprint <> p_fingerprint THEN
        RETURN QUERY SELECT 'reused'::text, NULL::bigint, NULL::int, NULL::int, NULL::text,
                            NULL::text, NULL::text, NULL::text, NULL::bigint, NULL::text,
                            NULL::text, NULL::bigint, NULL::text, NULL::text, NULL::text;
    ELSIF k.state = 'done' THEN
        RETURN QUERY SELECT 'replay'::text, NULL::bigint, NULL::int,
                            k.response_status, k.response_body,
                            NULL::text, NULL::text, NULL::text, NULL::bigint, NULL::text,
                            NULL::text, NULL::bigint, NULL::text, NULL::text, NULL::text;
    ELSIF k.lease_until > v_now THEN
        RETURN QUERY SELECT 'in_use'::text, NULL::bigint,
                            GREATEST(1, ceil(date_part('epoch', k.lease_until - v_now)))::int,
                            NULL::int, NULL::text,
                            NULL::text, NULL::text, NULL::text, NULL::bigint, NULL::text,
                            NULL::text, NULL::bigint, NULL::text, NULL::text, NULL::text;
    ELSE
        RETURN QUERY SELECT 'unsent'::text, NULL::bigint, NULL::int, NULL::int, NULL::text,
                            NULL::text, NULL::text, NULL::text, NULL::bigint, NULL::text,
                            NULL::text, NULL::bigint, NULL::text, NULL::text, NULL::text;
    END IF;
END
$$;


--
-- Name: pay_op_release(text, text, bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_op_release(p_merchant text, p_idem_key text, p_lease bigint) RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT pay_op_release(p_merchant, p_idem_key, p_lease, NULL::boolean);
$$;


--
-- Name: pay_op_release(text, text, bigint, boolean); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_op_release(p_merchant text, p_idem_key text, p_lease bigint, p_sent boolean) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_op    text;
    v_kind  text;
    v_from  text;
    v_to    text;
BEGIN
    UPDATE idempotency_keys ik
       SET lease_until = now()
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       AND ik.state = 'in_progress' AND ik.lease = p_lease
    RETURNING ik.checkout_id,
              (SELECT ok.kind FROM operation_keys ok
                WHERE ok.merchant_id = ik.merchant_id AND ok.idem_key = ik.idem_key
                  AND ok.fingerprint = ik.fingerprint AND ok.op_id = ik.checkout_id)
         INTO v_op, v_kind;
    IF v_kind IS NULL THEN
        RETURN;
    END IF;

    -- sent nothing: what the claim made 'trying' is 'none' again (never a
    -- 'maybe': an earlier attempt may have); else 'maybe'
    IF p_sent IS NOT DISTINCT FROM false THEN
        v_from := 'trying';
        v_to := 'none';
    ELSE
        v_to := 'maybe';
    END IF;

    IF v_kind = 'refund' THEN
        UPDATE refunds x SET psp_contact = v_to
         WHERE x.merchant_id = p_merchant AND x.refund_id = v_op
           AND x.psp_contact = coalesce(v_from, x.psp_contact) AND x.psp_contact <> v_to;
    ELSIF v_kind = 'capture' THEN
        UPDATE captures x SET psp_contact = v_to
         WHERE x.merchant_id = p_merchant AND x.capture_id = v_op
           AND x.psp_contact = coalesce(v_from, x.psp_contact) AND x.psp_contact <> v_to;
    ELSE
        UPDATE payouts x SET psp_contact = v_to
         WHERE x.merchant_id = p_merchant AND x.payout_id = v_op
           AND x.psp_contact = coalesce(v_from, x.psp_contact) AND x.psp_contact <> v_to;
    END IF;
END
$$;


--
-- Name: pay_order_refund_info(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_order_refund_info(p_merchant text, p_order_id text) RETURNS TABLE(currency text, psp text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    -- the order's checkout by its key, in a subquery of its own (OFFSET
    -- 0): as a join, a plan made on small tables walks the merchant's
    -- checkouts (test plans::each_money_move_reads_...)
    SELECT o.currency, c.psp
      FROM payment_orders o,
           LATERAL (SELECT x.psp FROM checkouts x
                     WHERE x.merchant_id = o.merchant_id
                       AND x.checkout_id = o.checkout_id OFFSET 0) c
     WHERE o.merchant_id = p_merchant AND o.payment_order_id = p_order_id;
END
$$;


--
-- Name: pay_pay_target(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_pay_target(p_merchant text, p_checkout_id text) RETURNS TABLE(psp text, psp_url text, status text, expires_at bigint)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT c.psp, c.psp_url, c.status::text, ts_epoch(c.expires_at)
      FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id;
END
$$;


--
-- Name: pay_payout_claim(text, text, text, integer, integer, text, text, bigint, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_payout_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_payout_id text, p_seller text, p_amount bigint, p_currency text, p_psp text) RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, payout_id text, psp text, destination text, amount bigint, currency text, available bigint, op_status text, psp_ref text, failure text, claim_age bigint)
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT outcome, lease, retry_after, response_status, response_body, payout_id, psp, destination, amount, currency, available, op_status, psp_ref, failure, claim_age FROM pay_payout_claim(p_merchant, p_idem_key, p_fingerprint, p_lease_seconds, p_ttl_seconds, p_payout_id, p_seller, p_amount, p_currency, p_psp, '{}'::jsonb, NULL::jsonb);
$$;


--
-- Name: pay_payout_claim(text, text, text, integer, integer, text, text, bigint, text, text, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_payout_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_payout_id text, p_seller text, p_amount bigint, p_currency text, p_psp text, p_metadata jsonb) RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, payout_id text, psp text, destination text, amount bigint, currency text, available bigint, op_status text, psp_ref text, failure text, claim_age bigint)
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT outcome, lease, retry_after, response_status, response_body, payout_id, psp, destination, amount, currency, available, op_status, psp_ref, failure, claim_age FROM pay_payout_claim(p_merchant, p_idem_key, p_fingerprint, p_lease_seconds, p_ttl_seconds, p_payout_id, p_seller, p_amount, p_currency, p_psp, p_metadata, NULL::jsonb);
$$;


--
-- Name: pay_payout_claim(text, text, text, integer, integer, text, text, bigint, text, text, jsonb, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_payout_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_payout_id text, p_seller text, p_amount bigint, p_currency text, p_psp text, p_metadata jsonb, p_psp_conf jsonb) RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, payout_id text, psp text, destination text, amount bigint, currency text, available bigint, op_status text, psp_ref text, failure text, claim_age bigint, psp_conf jsonb)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    k        record;
    p        payouts%ROWTYPE;
    s        sellers%ROWTYPE;
    b        record;
    v_err    text;
    v_av     bigint;
    v_prior  text;
BEGIN
    SELECT * INTO k FROM op_key_take(p_merchant, p_idem_key, p_fingerprint,
                                     p_lease_seconds, p_ttl_seconds, p_payout_id);
    IF k.outcome IN ('replay', 'in_use', 'reused') THEN
        RETURN QUERY SELECT k.outcome, NULL::bigint, k.retry_after, k.response_status,
                            k.response_body, NULL::text, NULL::text, NULL::text,
                            NULL::bigint, NULL::text, NULL::bigint,
                            NULL::text, NULL::text, NULL::text, NULL::bigint,
                            NULL::jsonb;
        RETURN;
    END IF;

    -- the same request (key and body) after its key expired, or was
    -- purged: the pay-out it made, resumed, never made a second time
    IF k.outcome = 'new' THEN
        v_prior := op_key_prior(p_merchant, p_idem_key, p_fingerprint, 'payout', k.lease);
        IF v_prior IS NOT NULL THEN
            k.outcome := 'resumed';
            k.op_id := v_prior;
        END IF;
    END IF;

    IF k.outcome = 'resumed' THEN
        -- one to send again: this attempt may reach the PSP ('trying'), and
        -- an earlier one that never said it sent nothing ('trying' still: it
        -- died, or its lease ran out) may have ('maybe'); a 'maybe' stays
        -- as it is (no write).  The pay-out by its key, its state told by
        -- the row: "status = 'PENDING'" in the WHERE is payouts_seller's
        -- predicate, and a plan made on empty tables walked the merchant's
        -- pending pay-outs through it (pay_refund_claim)
        SELECT * INTO p FROM payouts po
         WHERE po.merchant_id = p_merchant AND po.payout_id = k.op_id
           FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pay_payout_claim: in-progress key % has no pay-out', p_idem_key
                USING ERRCODE = 'PY004';
        END IF;
        IF p.status = 'PENDING' AND p.psp_payout_id IS NULL AND p.psp_contact <> 'maybe' THEN
            UPDATE payouts po
               SET psp_contact = CASE po.psp_contact WHEN 'none' THEN 'trying' ELSE 'maybe' END
             WHERE po.merchant_id = p_merchant AND po.payout_id = k.op_id
            RETURNING * INTO p;
        END IF;
        -- settled (its webhook came) or known to the PSP (its answer was
        -- stored): answered from the row, the PSP is not asked again
        RETURN QUERY SELECT CASE WHEN p.status <> 'PENDING' OR p.psp_payout_id IS NOT NULL
                                 THEN 'settled' ELSE 'resumed' END,
                            k.lease, NULL::int, NULL::int, NULL::text,
                            p.payout_id, p.psp, p.destination, p.amount, p.currency,
                            NULL::bigint, p.status, p.psp_payout_id, p.failure,
                            floor(date_part('epoch', clock_timestamp() - p.created_at))::bigint,
                            p.psp_conf;
        RETURN;
    END IF;

    SELECT * INTO s FROM sellers sl
     WHERE sl.merchant_id = p_merchant AND sl.seller_account = p_seller AND sl.psp = p_psp;
    IF NOT FOUND THEN
        v_err := 'seller_unknown';
    ELSE
        -- every pay-out of this seller in this currency passes here one at
        -- a time, and one at a time with the refunds of the seller's
        -- orders (pay_refund_claim takes the same lock; the trigger takes
        -- it again)
        PERFORM 1 FROM wallets w
         WHERE w.merchant_id = p_merchant AND w.seller_account = p_seller
           AND w.currency = p_currency FOR UPDATE;
        SELECT * INTO b FROM seller_available(p_merchant, p_seller, p_currency);
        v_av := b.available;
        IF p_amount > v_av THEN
            v_err := 'insufficient_balance';
        END IF;
    END IF;

    IF v_err IS NOT NULL THEN
        DELETE FROM idempotency_keys ik
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
           AND ik.lease = k.lease AND ik.state = 'in_progress';
        RETURN QUERY SELECT v_err, NULL::bigint, NULL::int, NULL::int, NULL::text,
                            NULL::text, NULL::text, NULL::text, NULL::bigint,
                            p_currency, v_av, NULL::text, NULL::text, NULL::text,
                            NULL::bigint, NULL::jsonb;
        RETURN;
    END IF;

    INSERT INTO operation_keys (merchant_id, idem_key, fingerprint, kind, op_id)
    VALUES (p_merchant, p_idem_key, p_fingerprint, 'payout', p_payout_id);

    INSERT INTO payouts (merchant_id, payout_id, seller_account, psp, destination, nonce,
                         amount, currency, status, metadata, psp_contact, psp_conf)
    VALUES (p_merchant, p_payout_id, p_seller, p_psp, s.destination,
            p_merchant || ':' || p_payout_id, p_amount, p_currency, 'PENDING',
            COALESCE(p_metadata, '{}'), 'trying', p_psp_conf);

    PERFORM audit_append(p_merchant, NULL, 'payout:requested',
        jsonb_build_object('payout_id', p_payout_id, 'seller_account', p_seller,
                           'amount', p_amount, 'currency', p_currency, 'psp', p_psp));

    RETURN QUERY SELECT 'new'::text, k.lease, NULL::int, NULL::int, NULL::text,
                        p_payout_id, p_psp, s.destination, p_amount, p_currency,
                        NULL::bigint, 'PENDING'::text, NULL::text, NULL::text, 0::bigint,
                        p_psp_conf;
END
$$;


--
-- Name: pay_payout_finish(text, text, bigint, text, boolean, text, text, integer, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_payout_finish(p_merchant text, p_idem_key text, p_lease bigint, p_payout_id text, p_registered boolean, p_psp_payout_id text, p_failure text, p_response_status integer, p_response_body text) RETURNS TABLE(response_status integer, response_body text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    p  payouts%ROWTYPE;
BEGIN
    PERFORM op_key_done(p_merchant, p_idem_key, p_lease, p_response_status, p_response_body);

    SELECT * INTO p FROM payouts po
     WHERE po.merchant_id = p_merchant AND po.payout_id = p_payout_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pay_payout_finish: no pay-out %', p_payout_id USING ERRCODE = 'PY004';
    END IF;

    IF p_registered THEN
        UPDATE payouts po SET psp_payout_id = coalesce(po.psp_payout_id, p_psp_payout_id)
         WHERE po.merchant_id = p_merchant AND po.payout_id = p_payout_id;
    ELSIF p.status = 'PENDING' THEN
        UPDATE payouts po SET status = 'FAILED', failure = left(p_failure, 1000)
         WHERE po.merchant_id = p_merchant AND po.payout_id = p_payout_id;
        PERFORM audit_append(p_merchant, NULL, 'payout:refused',
            jsonb_build_object('payout_id', p_payout_id));
    END IF;

    RETURN QUERY SELECT p_response_status, p_response_body;
END
$$;


--
-- Name: pay_purge(integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_purge(p_limit integer) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    n  int;
    d  int;
BEGIN
    -- done idempotency keys past their TTL
    -- (each row deleted by its place in the table, which its lock keeps,
    -- not by a join on its key: planned while the statistics say the
    -- table holds no row, the join read the whole primary key and
    -- compared each entry with each victim; pay_notify_lease says more)
    WITH victims AS (
        SELECT ik.ctid
          FROM idempotency_keys ik
         WHERE ik.expires_at <= now() AND ik.state = 'done'
         ORDER BY ik.expires_at
         LIMIT GREATEST(COALESCE(p_limit, 0), 0)
           FOR UPDATE SKIP LOCKED
    )
    DELETE FROM idempotency_keys ik
     USING victims v
     WHERE ik.ctid = v.ctid;
    GET DIAGNOSTICS n = ROW_COUNT;

    -- notifications delivered more than 30 days ago
    WITH victims AS (
        SELECT x.ctid
          FROM notifications x
         WHERE x.status = 'DELIVERED'
           AND x.delivered_at < now() - interval '30 days'
         ORDER BY x.delivered_at
         LIMIT GREATEST(COALESCE(p_limit, 0), 0)
           FOR UPDATE SKIP LOCKED
    )
    DELETE FROM notifications x
     USING victims v
     WHERE x.ctid = v.ctid;
    GET DIAGNOSTICS d = ROW_COUNT;
    n := n + d;

    -- the risk check's due list past the round's horizon of a week
    -- (pay_risk_after_due never takes them: written while after_payment
    -- was off, or for a checkout no longer paid)
    WITH victims AS (
        SELECT x.ctid
          FROM checkout_risk_after_due x
         WHERE x.decided_at < now() - interval '8 days'
         ORDER BY x.decided_at
         LIMIT GREATEST(COALESCE(p_limit, 0), 0)
           FOR UPDATE SKIP LOCKED
    )
    DELETE FROM checkout_risk_after_due x
     USING victims v
     WHERE x.ctid = v.ctid;
    GET DIAGNOSTICS d = ROW_COUNT;

    RETURN n + d;
END
$$;


--
-- Name: pay_refresh(text, text, bigint, bigint, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_refresh(p_merchant text, p_idem_key text, p_lease bigint, p_expires_at bigint, p_psp_request text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_checkout  text;
    v_old       timestamptz;
    v_status    pay_status;
    v_token     text;
BEGIN
    IF p_expires_at IS NULL OR p_psp_request IS NULL THEN
        RAISE EXCEPTION 'pay_refresh: expires_at and psp_request are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- the key by its key, then its checkout by the checkout's, its status
    -- told by the row: "status = 'EXECUTING'" in the WHERE is
    -- checkouts_executing_since's predicate, and a plan made on empty
    -- tables walked that index, every EXECUTING checkout, for the one
    -- (plans::each_money_move_reads_its_orders_and_sellers_rows_not_the_merchants).
    -- The key's row locked first, then the checkout's (doc/MONEY.md)
    SELECT ik.checkout_id INTO v_checkout
      FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       AND ik.state = 'in_progress' AND ik.lease = p_lease
       AND ik.lease_until > clock_timestamp()
       FOR UPDATE;
    SELECT c.expires_at, c.status, c.psp_token INTO v_old, v_status, v_token
      FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = v_checkout
       FOR UPDATE;
    IF v_status IS DISTINCT FROM 'EXECUTING' OR v_token IS NOT NULL THEN
        RAISE EXCEPTION 'pay_refresh: key % of merchant % is not in progress under lease %',
            p_idem_key, p_merchant, p_lease USING ERRCODE = 'PY003';
    END IF;

    UPDATE checkouts c
       SET psp_request = p_psp_request, expires_at = to_timestamp(p_expires_at),
           updated_at = now()
     WHERE c.merchant_id = p_merchant AND c.checkout_id = v_checkout;

    PERFORM audit_append(p_merchant, v_checkout, 'registration:refreshed',
        jsonb_build_object('expires_at_was', ts_epoch(v_old),
                           'expires_at', p_expires_at));
    RETURN ts_epoch(v_old);
END
$$;


--
-- Name: pay_refund_claim(text, text, text, integer, integer, text, text, bigint, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_refund_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_refund_id text, p_order_id text, p_amount bigint, p_currency text, p_reason text) RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, refund_id text, psp text, payment_ref text, amount bigint, currency text, reason text, refundable bigint, op_status text, psp_ref text, failure text, claim_age bigint)
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT outcome, lease, retry_after, response_status, response_body, refund_id, psp, payment_ref, amount, currency, reason, refundable, op_status, psp_ref, failure, claim_age FROM pay_refund_claim(p_merchant, p_idem_key, p_fingerprint, p_lease_seconds, p_ttl_seconds, p_refund_id, p_order_id, p_amount, p_currency, p_reason, '{}'::jsonb, NULL::jsonb);
$$;


--
-- Name: pay_refund_claim(text, text, text, integer, integer, text, text, bigint, text, text, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_refund_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_refund_id text, p_order_id text, p_amount bigint, p_currency text, p_reason text, p_metadata jsonb) RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, refund_id text, psp text, payment_ref text, amount bigint, currency text, reason text, refundable bigint, op_status text, psp_ref text, failure text, claim_age bigint)
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT outcome, lease, retry_after, response_status, response_body, refund_id, psp, payment_ref, amount, currency, reason, refundable, op_status, psp_ref, failure, claim_age FROM pay_refund_claim(p_merchant, p_idem_key, p_fingerprint, p_lease_seconds, p_ttl_seconds, p_refund_id, p_order_id, p_amount, p_currency, p_reason, p_metadata, NULL::jsonb);
$$;


--
-- Name: pay_refund_claim(text, text, text, integer, integer, text, text, bigint, text, text, jsonb, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_refund_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_refund_id text, p_order_id text, p_amount bigint, p_currency text, p_reason text, p_metadata jsonb, p_psp_conf jsonb) RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, refund_id text, psp text, payment_ref text, amount bigint, currency text, reason text, refundable bigint, op_status text, psp_ref text, failure text, claim_age bigint, psp_conf jsonb)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    k        record;
    o        payment_orders%ROWTYPE;
    c        checkouts%ROWTYPE;
    r        refunds%ROWTYPE;
    b        record;
    h        record;
    v_sum    bigint;
    v_av     bigint;
    v_err    text;
    v_prior  text;
BEGIN
    SELECT * INTO k FROM op_key_take(p_merchant, p_idem_key, p_fingerprint,
                                     p_lease_seconds, p_ttl_seconds, p_refund_id);
    IF k.outcome IN ('replay', 'in_use', 'reused') THEN
        RETURN QUERY SELECT k.outcome, NULL::bigint, k.retry_after, k.response_status,
                            k.response_body, NULL::text, NULL::text, NULL::text,
                            NULL::bigint, NULL::text, NULL::text, NULL::bigint,
                            NULL::text, NULL::text, NULL::text, NULL::bigint,
                            NULL::jsonb;
        RETURN;
    END IF;

    -- the same request (key and body) after its key expired, or was
    -- purged: the refund it made, resumed, never made a second time
    IF k.outcome = 'new' THEN
        v_prior := op_key_prior(p_merchant, p_idem_key, p_fingerprint, 'refund', k.lease);
        IF v_prior IS NOT NULL THEN
            k.outcome := 'resumed';
            k.op_id := v_prior;
        END IF;
    END IF;

    IF k.outcome = 'resumed' THEN
        -- one to send again: this attempt may reach the PSP ('trying'), and
        -- an earlier one that never said it sent nothing ('trying' still: it
        -- died, or its lease ran out) may have ('maybe'); a 'maybe' stays
        -- as it is (no write).  The refund by its key, its state told by
        -- the row: "status = 'PENDING'" in the WHERE is
        -- refunds_pending_seller's predicate, and a plan made on empty
        -- tables walked the merchant's refunds in flight through it
        -- (plans::each_money_move_reads_its_orders_and_sellers_rows_not_the_merchants)
        SELECT * INTO r FROM refunds rf
         WHERE rf.merchant_id = p_merchant AND rf.refund_id = k.op_id
           FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pay_refund_claim: in-progress key % has no refund', p_idem_key
                USING ERRCODE = 'PY004';
        END IF;
        IF r.status = 'PENDING' AND r.psp_refund_id IS NULL AND r.psp_contact <> 'maybe' THEN
            UPDATE refunds rf
               SET psp_contact = CASE rf.psp_contact WHEN 'none' THEN 'trying' ELSE 'maybe' END
             WHERE rf.merchant_id = p_merchant AND rf.refund_id = k.op_id
            RETURNING * INTO r;
        END IF;
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = r.checkout_id;
        -- settled (its webhook came) or known to the PSP (its answer was
        -- stored): answered from the row, the PSP is not asked again
        RETURN QUERY SELECT CASE WHEN r.status <> 'PENDING' OR r.psp_refund_id IS NOT NULL
                                 THEN 'settled' ELSE 'resumed' END,
                            k.lease, NULL::int, NULL::int, NULL::text,
                            r.refund_id, r.psp, c.psp_payment_ref, r.amount, r.currency,
                            r.reason, NULL::bigint, r.status, r.psp_refund_id, r.failure,
                            floor(date_part('epoch', clock_timestamp() - r.created_at))::bigint,
                            r.psp_conf;
        RETURN;
    END IF;

    -- A new refund: every refund of this order passes here one at a time,
    -- and then, under the seller's wallet lock, one at a time with the
    -- seller's pay-outs: a pay-out sees this refund held back from the
    -- available balance, or this refund comes after the pay-out.
    SELECT * INTO o FROM payment_orders po
     WHERE po.merchant_id = p_merchant AND po.payment_order_id = p_order_id
       FOR UPDATE;
    IF FOUND THEN
        PERFORM 1 FROM wallets w
         WHERE w.merchant_id = p_merchant AND w.seller_account = o.seller_account
           AND w.currency = o.currency FOR UPDATE;
    END IF;
    IF o.payment_order_id IS NULL THEN
        v_err := 'not_found';
    ELSE
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = o.checkout_id;
        v_sum := order_given_back(p_merchant, p_order_id, NULL);
        IF o.status <> 'SUCCESS' OR c.psp_payment_ref IS NULL THEN
            v_err := 'not_refundable';
        ELSIF p_psp_conf ? 'merchant_account'
              AND stored_request_account(c.psp_request)
                  <> p_psp_conf ->> 'merchant_account' THEN
            -- the payment was made under another merchant account than its
            -- PSP's configuration names now: under this one the PSP refuses
            -- it, and under the payment's the PSP's webhooks of it are
            -- refused as another account's (never settled): not sent
            v_err := 'merchant_account';
        ELSIF p_currency <> o.currency THEN
            v_err := 'currency_mismatch';
        ELSIF v_sum + p_amount > coalesce(o.amount_captured, o.amount) THEN
            v_err := 'exceeds_capture';
        ELSE
            -- the seller's share of it must be available: what a pay-out
            -- already took, or a PENDING refund or an OPEN chargeback
            -- holds, is not (what the order's hold grows by with it:
            -- order_seller_hold, with this refund and without: its parts
            -- read once)
            SELECT * INTO b FROM seller_available(p_merchant, o.seller_account, o.currency);
            SELECT * INTO h FROM order_seller_hold_parts(p_merchant, p_order_id);
            IF refund_seller_share(h.captured, h.commission, h.given_back,
                                   h.commission_back, h.held + p_amount)
               - refund_seller_share(h.captured, h.commission, h.given_back,
                                     h.commission_back, h.held)
               > b.available THEN
                v_err := 'insufficient_balance';
                v_av := b.available;
            END IF;
        END IF;
    END IF;

    IF v_err IS NOT NULL THEN
        -- nothing is kept: not even the key, so a corrected retry may use it
        DELETE FROM idempotency_keys ik
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
           AND ik.lease = k.lease AND ik.state = 'in_progress';
        RETURN QUERY SELECT v_err, NULL::bigint, NULL::int, NULL::int, NULL::text,
                            NULL::text, NULL::text, NULL::text, NULL::bigint,
                            o.currency, NULL::text,
                            CASE WHEN v_err = 'insufficient_balance' THEN v_av
                                 WHEN o.amount IS NULL THEN NULL
                                 ELSE greatest(coalesce(o.amount_captured, o.amount)
                                               - v_sum, 0) END,
                            NULL::text, NULL::text, NULL::text, NULL::bigint,
                            CASE WHEN v_err = 'merchant_account'
                                 THEN jsonb_build_object('merchant_account',
                                          stored_request_account(c.psp_request)) END;
        RETURN;
    END IF;

    INSERT INTO operation_keys (merchant_id, idem_key, fingerprint, kind, op_id)
    VALUES (p_merchant, p_idem_key, p_fingerprint, 'refund', p_refund_id);

    INSERT INTO refunds (merchant_id, refund_id, checkout_id, payment_order_id, psp, nonce,
                         amount, currency, reason, status, metadata, psp_contact, psp_conf)
    VALUES (p_merchant, p_refund_id, o.checkout_id, p_order_id, c.psp,
            p_merchant || ':' || p_refund_id, p_amount, p_currency, p_reason, 'PENDING',
            COALESCE(p_metadata, '{}'), 'trying', p_psp_conf);

    PERFORM audit_append(p_merchant, o.checkout_id, 'refund:requested',
        jsonb_build_object('refund_id', p_refund_id, 'payment_order_id', p_order_id,
                           'amount', p_amount, 'currency', p_currency));

    RETURN QUERY SELECT 'new'::text, k.lease, NULL::int, NULL::int, NULL::text,
                        p_refund_id, c.psp, c.psp_payment_ref, p_amount, p_currency,
                        p_reason, NULL::bigint, 'PENDING'::text, NULL::text, NULL::text,
                        0::bigint, p_psp_conf;
END
$$;


--
-- Name: pay_refund_finish(text, text, bigint, text, boolean, text, text, integer, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_refund_finish(p_merchant text, p_idem_key text, p_lease bigint, p_refund_id text, p_registered boolean, p_psp_refund_id text, p_failure text, p_response_status integer, p_response_body text) RETURNS TABLE(response_status integer, response_body text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    r  refunds%ROWTYPE;
BEGIN
    PERFORM op_key_done(p_merchant, p_idem_key, p_lease, p_response_status, p_response_body);

    SELECT * INTO r FROM refunds rf
     WHERE rf.merchant_id = p_merchant AND rf.refund_id = p_refund_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pay_refund_finish: no refund %', p_refund_id USING ERRCODE = 'PY004';
    END IF;

    IF p_registered THEN
        -- a webhook may have come first and set it already
        UPDATE refunds rf SET psp_refund_id = coalesce(rf.psp_refund_id, p_psp_refund_id)
         WHERE rf.merchant_id = p_merchant AND rf.refund_id = p_refund_id;
    ELSIF r.status = 'PENDING' THEN
        UPDATE refunds rf SET status = 'FAILED', failure = left(p_failure, 1000)
         WHERE rf.merchant_id = p_merchant AND rf.refund_id = p_refund_id;
        PERFORM audit_append(p_merchant, r.checkout_id, 'refund:refused',
            jsonb_build_object('refund_id', p_refund_id));
    END IF;

    RETURN QUERY SELECT p_response_status, p_response_body;
END
$$;


--
-- Name: pay_release(text, text, bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_release(p_merchant text, p_idem_key text, p_lease bigint) RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT pay_release(p_merchant, p_idem_key, p_lease, NULL::boolean);
$$;


--
-- Name: pay_release(text, text, bigint, boolean); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_release(p_merchant text, p_idem_key text, p_lease bigint, p_sent boolean) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_co  text;
BEGIN
    UPDATE idempotency_keys ik
       SET lease_until = now()
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       AND ik.state = 'in_progress' AND ik.lease = p_lease
    RETURNING ik.checkout_id INTO v_co;
    IF v_co IS NULL THEN
        RETURN;
    END IF;

    -- sent nothing: what the claim made 'trying' is 'none' again (never a
    -- 'maybe': an earlier attempt may have); else 'maybe'
    IF p_sent IS NOT DISTINCT FROM false THEN
        UPDATE checkouts ck SET psp_contact = 'none'
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = v_co
           AND ck.psp_contact = 'trying';
    ELSE
        UPDATE checkouts ck SET psp_contact = 'maybe'
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = v_co
           AND ck.psp_contact <> 'maybe';
    END IF;
END
$$;


--
-- Name: pay_return_target(text, text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_return_target(p_merchant text, p_checkout_id text, p_psp text, p_session_result text) RETURNS TABLE(status text, success_url text, cancel_url text, psp_matches boolean)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
    IF coalesce(p_session_result, '') <> '' THEN
        INSERT INTO checkout_sweeps AS s (merchant_id, checkout_id, session_result)
        SELECT c.merchant_id, c.checkout_id, p_session_result
          FROM checkouts c
         WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id
           AND c.psp = p_psp AND c.status IN ('EXECUTING', 'FAILED')
        ON CONFLICT (merchant_id, checkout_id) DO UPDATE
            SET session_result = EXCLUDED.session_result;
    END IF;

    RETURN QUERY
        SELECT c.status::text, c.success_url, c.cancel_url, c.psp = p_psp
          FROM checkouts c
         WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id;
END
$$;


--
-- Name: pay_review_approve(text, text, text, bigint, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_review_approve(p_merchant text, p_checkout_id text, p_psp_request text, p_expires_at bigint, p_lease_seconds integer) RETURNS TABLE(outcome text, idem_key text, lease bigint, psp_request text, expires_at bigint, response_status integer, response_body text, retry_after integer, claim_age bigint)
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT outcome, idem_key, lease, psp_request, expires_at, response_status, response_body, retry_after, claim_age FROM pay_review_approve(p_merchant, p_checkout_id, p_psp_request, p_expires_at, p_lease_seconds, NULL::jsonb);
$$;


--
-- Name: pay_review_approve(text, text, text, bigint, integer, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_review_approve(p_merchant text, p_checkout_id text, p_psp_request text, p_expires_at bigint, p_lease_seconds integer, p_psp_conf jsonb) RETURNS TABLE(outcome text, idem_key text, lease bigint, psp_request text, expires_at bigint, response_status integer, response_body text, retry_after integer, claim_age bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    c        checkouts%ROWTYPE;
    rk       checkout_risk%ROWTYPE;
    k        idempotency_keys%ROWTYPE;
    v_now    timestamptz := clock_timestamp();
    v_lease  bigint;
    v_key    text;
    v_method payment_methods%ROWTYPE;
    v_saved  text;
BEGIN
    IF p_psp_request IS NULL OR p_expires_at IS NULL
       OR coalesce(p_lease_seconds, 0) < 1 THEN
        RAISE EXCEPTION 'pay_review_approve: psp_request, expires_at and a lease are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The registration's key, precisely: the one that made the checkout,
    -- stored by pay_claim in the transaction that stored the checkout (so
    -- at its created_at, the transaction's start), which the review's
    -- verdict names (review_key: nothing indexes the keys by checkout).  A
    -- cancel's key names the checkout too, and is always younger.  Then
    -- the locks in the order every function takes them (doc/MONEY.md):
    -- the key, the checkout, its risk row.
    v_key := review_key_of(p_merchant, p_checkout_id);
    SELECT * INTO k FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = v_key
       AND ik.checkout_id = p_checkout_id
       FOR UPDATE;
    SELECT * INTO c FROM checkouts ck
     WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout_id
       FOR UPDATE;
    SELECT * INTO rk FROM checkout_risk r
     WHERE r.merchant_id = p_merchant AND r.checkout_id = p_checkout_id
       FOR UPDATE;

    IF c.checkout_id IS NULL OR rk.verdict IS DISTINCT FROM 'review'
       OR k.idem_key IS NULL
       OR NOT (c.status = 'REVIEW' AND rk.reviewed IS NULL
               OR c.status = 'EXECUTING' AND rk.reviewed = 'approved') THEN
        RETURN QUERY SELECT 'decided'::text, NULL::text, NULL::bigint, NULL::text,
                            NULL::bigint, NULL::int, NULL::text, NULL::int, NULL::bigint;
        RETURN;
    END IF;

    IF c.status = 'EXECUTING' THEN
        IF k.state = 'done' THEN
            RETURN QUERY SELECT 'replay'::text, k.idem_key, NULL::bigint, NULL::text,
                                NULL::bigint, k.response_status, k.response_body, NULL::int,
                                NULL::bigint;
            RETURN;
        END IF;
        IF k.lease_until > v_now THEN
            RETURN QUERY SELECT 'in_use'::text, k.idem_key, NULL::bigint, NULL::text,
                                NULL::bigint, NULL::int, NULL::text,
                                GREATEST(1, ceil(date_part('epoch', k.lease_until - v_now)))::int,
                                NULL::bigint;
            RETURN;
        END IF;
    END IF;

    -- a checkout the shop asked to cancel (its cancel under way) is never
    -- sent to a PSP: the cancel ends only the session it saw
    IF c.cancel_requested_at IS NOT NULL THEN
        RETURN QUERY SELECT 'decided'::text, NULL::text, NULL::bigint, NULL::text,
                            NULL::bigint, NULL::int, NULL::text, NULL::int, NULL::bigint;
        RETURN;
    END IF;

    IF c.status = 'EXECUTING' THEN
        UPDATE idempotency_keys ik
           SET lease = ik.lease + 1,
               lease_until = v_now + p_lease_seconds * interval '1 second'
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = k.idem_key
        RETURNING ik.lease INTO v_lease;
        -- as pay_claim's resume: this attempt may reach the PSP, one that
        -- never said it sent nothing may have; a 'maybe' stays
        IF c.psp_contact <> 'maybe' THEN
            UPDATE checkouts ck
               SET psp_contact = CASE ck.psp_contact WHEN 'none' THEN 'trying' ELSE 'maybe' END,
                   psp_contact_since = CASE ck.psp_contact WHEN 'none' THEN v_now
                                            ELSE ck.psp_contact_since END
             WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout_id
            RETURNING * INTO c;
        END IF;
        -- the first approval sent it (reviewed_at, set in the transaction
        -- that took the key before that call), or a later attempt when
        -- every one before it said it sent nothing (psp_contact_since)
        RETURN QUERY SELECT 'resumed'::text, k.idem_key, v_lease, c.psp_request,
                            ts_epoch(c.expires_at), NULL::int, NULL::text, NULL::int,
                            GREATEST(0, floor(date_part('epoch', v_now
                                - GREATEST(rk.reviewed_at, c.psp_contact_since))))::bigint;
        RETURN;
    END IF;

    -- an off-session charge's saved method, locked as a charge's claim
    -- locks it (until this commits: a detach waits for it, or came first):
    -- one detached while the charge was held is never charged
    IF c.payment_method_id IS NOT NULL THEN
        SELECT * INTO v_method FROM payment_methods pm
         WHERE pm.merchant_id = p_merchant AND pm.method_id = c.payment_method_id
           AND pm.status = 'active'
           FOR SHARE;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'method_unusable'::text, NULL::text, NULL::bigint,
                                NULL::text, NULL::bigint, NULL::int, NULL::text,
                                NULL::int, NULL::bigint;
            RETURN;
        END IF;

        -- saved under another merchant account than the one the request
        -- is built with (as pay_claim refuses a charge): not sent
        IF p_psp_conf ? 'merchant_account' THEN
            SELECT stored_request_account(sc.psp_request) INTO v_saved
              FROM checkouts sc
             WHERE sc.merchant_id = p_merchant
               AND sc.checkout_id = v_method.checkout_id;
            IF v_saved <> p_psp_conf ->> 'merchant_account' THEN
                RETURN QUERY SELECT 'merchant_account'::text, NULL::text,
                                    NULL::bigint, NULL::text, NULL::bigint,
                                    NULL::int,
                                    jsonb_build_object('merchant_account',
                                                       v_saved)::text,
                                    NULL::int, NULL::bigint;
                RETURN;
            END IF;
        END IF;
    END IF;

    UPDATE idempotency_keys ik
       SET state = 'in_progress', lease = ik.lease + 1,
           lease_until = v_now + p_lease_seconds * interval '1 second',
           response_status = NULL, response_body = NULL
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = k.idem_key
    RETURNING ik.lease INTO v_lease;

    UPDATE checkouts ck
       SET status = 'EXECUTING', psp_request = p_psp_request,
           expires_at = to_timestamp(p_expires_at), updated_at = now()
     WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout_id;

    UPDATE checkout_risk r
       SET reviewed = 'approved', reviewed_at = now()
     WHERE r.merchant_id = p_merchant AND r.checkout_id = p_checkout_id;

    PERFORM audit_append(p_merchant, p_checkout_id, 'risk:approved',
        jsonb_build_object('from', 'REVIEW', 'to', 'EXECUTING',
                           'expires_at', p_expires_at));

    -- the merchant hears of it (the outbox, in this transaction); the
    -- shop's Idempotency-Key replays the registration with its pay_url
    PERFORM notify_enqueue(
        p_merchant, 'checkout.approved', p_checkout_id, p_checkout_id,
        jsonb_build_object(
            'checkout_id', p_checkout_id,
            'status', 'EXECUTING',
            'amount_total_minor', c.amount_total,
            'amount_total', money_decimal(c.amount_total, c.currency),
            'currency', c.currency,
            'metadata', c.metadata,
            'payment_orders', coalesce((
                SELECT jsonb_agg(jsonb_build_object(
                           'payment_order_id', o.payment_order_id,
                           'status', o.status,
                           'amount_minor', o.amount,
                           'amount', money_decimal(o.amount, o.currency),
                           'currency', o.currency) ORDER BY o.line_no)
                  FROM payment_orders o
                 WHERE o.merchant_id = p_merchant
                   AND o.checkout_id = p_checkout_id), '[]'::jsonb)));

    RETURN QUERY SELECT 'approved'::text, k.idem_key, v_lease, p_psp_request,
                        p_expires_at, NULL::int, NULL::text, NULL::int, 0::bigint;
END
$$;


--
-- Name: pay_review_expire(integer, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_review_expire(p_limit integer, p_response_body text) RETURNS TABLE(nonce text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    r  record;
BEGIN
    FOR r IN SELECT rk.merchant_id, rk.checkout_id FROM checkout_risk rk
              WHERE rk.verdict = 'review' AND rk.reviewed IS NULL
                AND rk.review_until <= now()
              ORDER BY rk.review_until
              LIMIT greatest(1, least(coalesce(p_limit, 50), 1000))
    LOOP
        -- not locked here: pay_review_reject takes the key, the checkout
        -- and then this row, in the order every function does, and finds
        -- a review decided meanwhile (an approval) decided
        IF pay_review_reject(r.merchant_id, r.checkout_id, 'expired',
                             p_response_body) THEN
            nonce := r.merchant_id || ':' || r.checkout_id;
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;


--
-- Name: pay_review_get(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_review_get(p_merchant text, p_checkout_id text) RETURNS TABLE(status text, reviewed text, psp text, body text, live boolean)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT c.status::text, rk.reviewed, c.psp,
           jsonb_strip_nulls(jsonb_build_object(
               'checkout_id', c.checkout_id,
               'psp', c.psp,
               'success_url', c.success_url,
               'cancel_url', c.cancel_url,
               'buyer_info', CASE WHEN c.buyer_email IS NOT NULL
                                  THEN jsonb_build_object('email', c.buyer_email) END,
               'metadata', nullif(c.metadata, '{}'::jsonb),
               'capture', c.capture_method,
               'expires_at', ts_epoch(c.expires_at),
               -- a save asked for, or a saved method charged off-session
               'save_payment_method', CASE WHEN c.save_method IS NOT NULL THEN
                   jsonb_build_object('customer', c.save_method -> 'customer',
                                      'usage', c.save_method -> 'usage',
                                      'schedule', CASE c.save_method ->> 'recurring'
                                                      WHEN 'Subscription' THEN 'subscription'
                                                      WHEN 'UnscheduledCardOnFile' THEN 'unscheduled'
                                                  END,
                                      'shopper_agreed', true) END,
               'payment_method', c.payment_method_id,
               'off_session', CASE WHEN c.payment_method_id IS NOT NULL THEN true END,
               'payment_orders', (
                   SELECT jsonb_agg(jsonb_build_object(
                              'payment_order_id', o.payment_order_id,
                              'seller_account', o.seller_account,
                              'amount', money_decimal(o.amount, o.currency),
                              'currency', o.currency) ORDER BY o.line_no)
                     FROM payment_orders o
                    WHERE o.merchant_id = c.merchant_id
                      AND o.checkout_id = c.checkout_id)))::text,
           m.mode = 'live'
      FROM checkouts c
      JOIN checkout_risk rk ON rk.merchant_id = c.merchant_id
                           AND rk.checkout_id = c.checkout_id
      JOIN merchants m ON m.merchant_id = c.merchant_id
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id
       AND rk.verdict = 'review';
END
$$;


--
-- Name: pay_review_list(integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_review_list(p_limit integer) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    RETURN json_build_object('reviews', COALESCE((
        SELECT json_agg(json_build_object(
                   'nonce', c.nonce,
                   'merchant_id', c.merchant_id,
                   'checkout_id', c.checkout_id,
                   'psp', c.psp,
                   'currency', c.currency,
                   'amount_total_minor', c.amount_total,
                   'amount_total', money_decimal(c.amount_total, c.currency),
                   'score', rk.score,
                   'reason', rk.reason,
                   'source', rk.source,
                   'held_at', ts_rfc3339(rk.decided_at),
                   'review_until', ts_rfc3339(rk.review_until))
                 ORDER BY rk.review_until, c.nonce)
          FROM (SELECT * FROM checkout_risk r
                 WHERE r.verdict = 'review' AND r.reviewed IS NULL
                   -- (every review has its deadline: said so that the
                   -- queue's index, checkout_risk_open_reviews, serves it,
                   -- migration 136)
                   AND r.review_until IS NOT NULL
                 ORDER BY r.review_until
                 LIMIT greatest(1, least(coalesce(p_limit, 100), 1000))) rk
          JOIN checkouts c ON c.merchant_id = rk.merchant_id
                          AND c.checkout_id = rk.checkout_id), '[]'::json))::text;
END
$$;


--
-- Name: pay_review_reject(text, text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_review_reject(p_merchant text, p_checkout_id text, p_outcome text, p_response_body text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_reason  text;
    v_moved   jsonb;
    v_key     text;
BEGIN
    IF p_outcome IS NULL OR p_outcome NOT IN ('rejected', 'expired')
       OR p_response_body IS NULL THEN
        RAISE EXCEPTION 'pay_review_reject: rejected or expired, and the answer, are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The locks in the order every function takes them (doc/MONEY.md):
    -- the registration's key (review_key_of: the one stored with the
    -- checkout, at its created_at; a cancel's key names the checkout too,
    -- and is younger), the checkout, its risk row.
    v_key := review_key_of(p_merchant, p_checkout_id);
    PERFORM 1 FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = v_key
       FOR UPDATE;
    PERFORM 1 FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id
       AND c.status = 'REVIEW'
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;

    UPDATE checkout_risk r
       SET reviewed = p_outcome, reviewed_at = now()
     WHERE r.merchant_id = p_merchant AND r.checkout_id = p_checkout_id
       AND r.verdict = 'review' AND r.reviewed IS NULL
    RETURNING r.reason INTO v_reason;
    IF NOT FOUND THEN
        RETURN false;
    END IF;

    UPDATE checkouts c
       SET status = 'FAILED', failure_code = 'risk_rejected',
           failure = coalesce(v_reason, p_outcome), updated_at = now()
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id;

    v_moved := checkout_orders_failed(p_merchant, p_checkout_id, 'review:' || p_outcome);

    UPDATE idempotency_keys ik
       SET response_status = 403, response_body = p_response_body
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = v_key
       AND ik.checkout_id = p_checkout_id AND ik.state = 'done';

    PERFORM audit_append(p_merchant, p_checkout_id, 'risk:' || p_outcome,
        jsonb_strip_nulls(jsonb_build_object(
            'from', 'REVIEW', 'to', 'FAILED', 'reason', v_reason,
            'payment_orders', v_moved)));

    RETURN true;
END
$$;


--
-- Name: pay_risk_after_due(integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_risk_after_due(p_limit integer, p_horizon_seconds integer) RETURNS TABLE(merchant_id text, checkout_id text, psp text, currency text, amount_total bigint, buyer_email text, psp_payment_ref text, orders text, paid_seconds bigint)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET jit TO 'off'
    SET enable_seqscan TO 'off'
    SET enable_bitmapscan TO 'off'
    AS $$
#variable_conflict use_column
DECLARE
    d        record;
    v_taken  integer := 0;
    v_limit  integer := greatest(1, least(coalesce(p_limit, 50), 1000));
BEGIN
    IF coalesce(p_horizon_seconds, 0) < 1 THEN
        RAISE EXCEPTION 'pay_risk_after_due: a horizon of 1 s at least'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    FOR d IN SELECT x.merchant_id AS m, x.checkout_id AS co
               FROM checkout_risk_after_due x
              WHERE x.decided_at > now() - p_horizon_seconds * interval '1 second'
              ORDER BY x.decided_at
    LOOP
        RETURN QUERY
        SELECT c.merchant_id, c.checkout_id, c.psp, c.currency, c.amount_total,
               c.buyer_email, c.psp_payment_ref,
               (SELECT json_agg(json_build_object(
                           'payment_order_id', o.payment_order_id,
                           'seller_account', o.seller_account,
                           'amount_minor', o.amount) ORDER BY o.line_no)
                  FROM payment_orders o
                 WHERE o.merchant_id = c.merchant_id
                   AND o.checkout_id = c.checkout_id)::text,
               greatest(0, floor(date_part('epoch', now() - coalesce(
                   (SELECT min(e.at) FROM order_events e
                     WHERE e.merchant_id = c.merchant_id
                       AND e.checkout_id = c.checkout_id
                       AND e.to_status = 'SUCCESS'),
                   c.updated_at))))::bigint
          FROM checkouts c
         WHERE c.merchant_id = d.m
           AND c.checkout_id = d.co
           AND c.status = 'SUCCESS'
           -- a setup listed by migration 137's backfill: no money taken
           AND c.amount_total > 0
           AND NOT EXISTS (SELECT 1 FROM checkout_risk_after a
                            WHERE a.merchant_id = d.m
                              AND a.checkout_id = d.co);
        IF FOUND THEN
            v_taken := v_taken + 1;
            EXIT WHEN v_taken >= v_limit;
        END IF;
    END LOOP;
END
$$;


--
-- Name: pay_risk_after_record(text, text, text, integer, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_risk_after_record(p_merchant text, p_checkout_id text, p_verdict text, p_score integer, p_reason text, p_source text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    c  checkouts%ROWTYPE;
BEGIN
    IF p_verdict IS NULL
       OR p_verdict NOT IN ('allow', 'deny', 'review', 'unchecked')
       OR (p_verdict = 'unchecked') <> (p_source IS NOT DISTINCT FROM 'on_error') THEN
        RAISE EXCEPTION 'pay_risk_after_record: a verdict of allow, deny or review from the provider, or unchecked on_error'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- off the round's due list, whatever the outcome: recorded, known
    -- or no longer paid, it is not asked again (a payment made again
    -- lists it again, checkouts_notify)
    DELETE FROM checkout_risk_after_due d
     WHERE d.merchant_id = p_merchant AND d.checkout_id = p_checkout_id;

    SELECT * INTO c FROM checkouts ck
     WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout_id;
    IF c.status IS DISTINCT FROM 'SUCCESS'
       OR NOT EXISTS (SELECT 1 FROM checkout_risk rk
                       WHERE rk.merchant_id = p_merchant
                         AND rk.checkout_id = p_checkout_id) THEN
        RETURN 'not_paid';
    END IF;

    INSERT INTO checkout_risk_after (merchant_id, checkout_id, verdict, score,
                                     reason, source)
    VALUES (p_merchant, p_checkout_id, p_verdict, p_score, p_reason, p_source)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN 'known';
    END IF;

    PERFORM audit_append(p_merchant, p_checkout_id, 'risk:after_' || p_verdict,
        jsonb_strip_nulls(jsonb_build_object(
            'phase', 'after_payment', 'verdict', p_verdict, 'score', p_score,
            'reason', p_reason, 'source', p_source)));

    -- the merchant decides: it may refund through the API
    IF p_verdict IN ('deny', 'review') THEN
        PERFORM notify_enqueue(
            p_merchant, 'checkout.risk_flagged', p_checkout_id, p_checkout_id,
            jsonb_build_object(
                'checkout_id', p_checkout_id,
                'status', c.status,
                'amount_total_minor', c.amount_total,
                'amount_total', money_decimal(c.amount_total, c.currency),
                'currency', c.currency,
                'metadata', c.metadata,
                'risk', jsonb_strip_nulls(jsonb_build_object(
                    'phase', 'after_payment', 'verdict', p_verdict,
                    'score', p_score, 'reason', p_reason,
                    'source', p_source)),
                'payment_orders', coalesce((
                    SELECT jsonb_agg(jsonb_build_object(
                               'payment_order_id', o.payment_order_id,
                               'status', o.status,
                               'amount_minor', o.amount,
                               'amount', money_decimal(o.amount, o.currency),
                               'currency', o.currency) ORDER BY o.line_no)
                      FROM payment_orders o
                     WHERE o.merchant_id = p_merchant
                       AND o.checkout_id = p_checkout_id), '[]'::jsonb)));
    END IF;

    RETURN 'recorded';
END
$$;


--
-- Name: pay_risk_record(text, text, bigint, text, text, integer, text, text, integer, integer, text, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_risk_record(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_verdict text, p_score integer, p_reason text, p_source text, p_review_seconds integer, p_response_status integer, p_response_body text, p_lease_seconds integer) RETURNS TABLE(outcome text, response_status integer, response_body text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    k        idempotency_keys%ROWTYPE;
    v_old    text;
    v_status pay_status;
BEGIN
    PERFORM risk_verdict_check(p_verdict, p_review_seconds, p_response_status,
                               p_response_body, p_lease_seconds);

    SELECT * INTO k FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pay_risk_record: no key % for merchant %', p_idem_key, p_merchant
            USING ERRCODE = 'PY004';
    END IF;
    IF k.state = 'done' THEN
        RETURN QUERY SELECT 'replay'::text, k.response_status, k.response_body;
        RETURN;
    END IF;
    IF k.lease IS DISTINCT FROM p_lease THEN
        RAISE EXCEPTION 'pay_risk_record: lease % of key % was taken over (now %)',
            p_lease, p_idem_key, k.lease USING ERRCODE = 'PY003';
    END IF;
    IF k.checkout_id IS DISTINCT FROM p_checkout_id THEN
        RAISE EXCEPTION 'pay_risk_record: key % belongs to checkout %, not %',
            p_idem_key, k.checkout_id, p_checkout_id USING ERRCODE = 'PY004';
    END IF;

    -- an approved review counts as allow: its claim goes on to the PSP
    SELECT CASE WHEN r.reviewed = 'approved' THEN 'allow' ELSE r.verdict END
      INTO v_old FROM checkout_risk r
     WHERE r.merchant_id = p_merchant AND r.checkout_id = p_checkout_id;
    IF FOUND THEN
        RETURN QUERY SELECT v_old, NULL::int, NULL::text;
        RETURN;
    END IF;

    SELECT c.status INTO v_status FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id
       FOR UPDATE;
    IF v_status IS DISTINCT FROM 'EXECUTING' THEN
        RAISE EXCEPTION 'pay_risk_record: checkout % is %, not EXECUTING',
            p_checkout_id, v_status USING ERRCODE = 'PY004';
    END IF;

    PERFORM risk_verdict_record(p_merchant, p_idem_key, p_checkout_id, p_verdict,
                                p_score, p_reason, p_source, p_review_seconds,
                                p_response_status, p_response_body, p_lease_seconds,
                                true);

    RETURN QUERY SELECT p_verdict, p_response_status, p_response_body;
END
$$;


--
-- Name: pay_route_bind(text, text, bigint, text, text, text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_route_bind(p_merchant text, p_idem_key text, p_lease bigint, p_route text, p_from text, p_why text, p_to text, p_psp_request text) RETURNS text
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT pay_route_bind(p_merchant, p_idem_key, p_lease, p_route, p_from, p_why,
                          p_to, p_psp_request, NULL::text[])
$$;


--
-- Name: pay_route_bind(text, text, bigint, text, text, text, text, text, text[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_route_bind(p_merchant text, p_idem_key text, p_lease bigint, p_route text, p_from text, p_why text, p_to text, p_psp_request text, p_passed_over text[]) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    k      idempotency_keys%ROWTYPE;
    c      checkouts%ROWTYPE;
    v_seq  int;
BEGIN
    SELECT * INTO k FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       FOR UPDATE;
    IF NOT FOUND OR k.state <> 'in_progress' OR k.lease <> p_lease
       OR k.checkout_id IS NULL THEN
        RETURN 'lost';
    END IF;

    SELECT * INTO c FROM checkouts ck
     WHERE ck.merchant_id = p_merchant AND ck.checkout_id = k.checkout_id
       FOR UPDATE;
    IF NOT FOUND OR c.status <> 'EXECUTING' OR c.psp_token IS NOT NULL
       OR c.psp <> coalesce(p_from, p_to) THEN
        RETURN 'lost';
    END IF;

    IF p_from IS NULL THEN
        -- once: pay_claim records it with a fresh claim of a routed
        -- checkout; a claim of the previous release's workers did not
        PERFORM checkout_route_first(p_merchant, c.checkout_id, p_route, p_to,
            (SELECT jsonb_agg(jsonb_build_object('psp', x.psp, 'why', 'psp_not_allowed')
                              ORDER BY x.n)
               FROM unnest(p_passed_over) WITH ORDINALITY AS x(psp, n)));
        RETURN 'bound';
    END IF;

    SELECT coalesce(max(r.seq), 0) INTO v_seq FROM checkout_routes r
     WHERE r.merchant_id = p_merchant AND r.checkout_id = c.checkout_id;

    IF p_why IS NULL OR p_psp_request IS NULL OR p_to = p_from THEN
        RAISE EXCEPTION 'pay_route_bind: moving on needs a reason, another PSP and its request'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF EXISTS (SELECT 1 FROM checkout_routes r
                WHERE r.merchant_id = p_merchant AND r.checkout_id = c.checkout_id
                  AND r.psp = p_to) THEN
        RETURN 'tried';
    END IF;

    -- the PSP left behind: why (its row is there unless the first bind
    -- was lost with its connection)
    UPDATE checkout_routes r SET moved_on = p_why
     WHERE r.merchant_id = p_merchant AND r.checkout_id = c.checkout_id
       AND r.psp = p_from AND r.moved_on IS NULL;
    IF NOT FOUND AND NOT EXISTS (SELECT 1 FROM checkout_routes r
                                  WHERE r.merchant_id = p_merchant
                                    AND r.checkout_id = c.checkout_id
                                    AND r.psp = p_from) THEN
        v_seq := v_seq + 1;
        INSERT INTO checkout_routes (merchant_id, checkout_id, seq, route, psp, moved_on)
        VALUES (p_merchant, c.checkout_id, v_seq, p_route, p_from, p_why);
    END IF;

    v_seq := v_seq + 1;

    IF EXISTS (SELECT 1 FROM merchants m
                WHERE m.merchant_id = p_merchant AND m.psps IS NOT NULL
                  AND NOT p_to = ANY (m.psps)) THEN
        INSERT INTO checkout_routes (merchant_id, checkout_id, seq, route, psp, moved_on)
        VALUES (p_merchant, c.checkout_id, v_seq, p_route, p_to, 'psp_not_allowed');
        PERFORM audit_append(p_merchant, c.checkout_id, 'registration:routed',
            jsonb_build_object('route', p_route, 'from', p_from, 'why', p_why,
                               'skipped', p_to, 'skipped_why', 'psp_not_allowed'));
        RETURN 'not_allowed';
    END IF;

    INSERT INTO checkout_routes (merchant_id, checkout_id, seq, route, psp)
    VALUES (p_merchant, c.checkout_id, v_seq, p_route, p_to);

    UPDATE checkouts ck SET psp = p_to, psp_request = p_psp_request
     WHERE ck.merchant_id = p_merchant AND ck.checkout_id = c.checkout_id;

    PERFORM audit_append(p_merchant, c.checkout_id, 'registration:routed',
        jsonb_build_object('route', p_route, 'from', p_from, 'why', p_why,
                           'psp', p_to));
    RETURN 'bound';
END
$$;


--
-- Name: pay_route_recorded(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_route_recorded(p_merchant text, p_checkout text) RETURNS TABLE(route text, psp text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT (SELECT r.route FROM checkout_routes r
             WHERE r.merchant_id = c.merchant_id
               AND r.checkout_id = c.checkout_id
             ORDER BY r.seq LIMIT 1),
           c.psp
      FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout;
END
$$;


--
-- Name: pay_route_state(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_route_state(p_merchant text, p_checkout text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    -- the primary key: one row at most
    RETURN (SELECT c.psp FROM checkouts c
             WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout);
END
$$;


--
-- Name: pay_schema_version(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_schema_version() RETURNS integer
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    RETURN (SELECT coalesce(max(substr(m.version, 1, 3)::integer), 0)
              FROM schema_migrations m WHERE m.version ~ '^[0-9]{3}_');
END
$$;


--
-- Name: pay_sweeper_apply(text, text, text, text, text, text, bigint, text, text, text[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_sweeper_apply(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_tokens text[]) RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v         record;
    v_token   text := psp_token_key(p_psp, p_token, p_tokens);
    v_amount  bigint := p_amount;
    v_cur     text := p_currency;
BEGIN
    -- Adyen's session result carries no amount: a success without one is
    -- checked against the checkout's own (the PSP's look-up found it by
    -- our session, so its amount is the one we registered) -- unless the
    -- PSP's own success event named another amount or currency (recorded
    -- amount_mismatch, the checkout left for a person): the PSP may have
    -- moved that one, and nothing is booked that it did not move.  Without
    -- an amount put in, the success is amount_mismatch again: recorded,
    -- alerted, nothing booked.  A look-up that names its amount is
    -- checked as it is.
    IF p_kind = 'SUCCEEDED' AND p_amount = -1 AND coalesce(p_currency, '') = ''
       AND coalesce(v_token, '') <> '' THEN
        SELECT c.amount_total, c.currency INTO v_amount, v_cur
          FROM psp_tokens t
          JOIN checkouts c
            ON c.merchant_id = t.merchant_id AND c.checkout_id = t.checkout_id
         WHERE t.psp = p_psp AND t.psp_token = v_token
           AND NOT EXISTS (SELECT 1 FROM webhook_events we
                            WHERE we.merchant_id = c.merchant_id
                              AND we.checkout_id = c.checkout_id
                              AND we.outcome = 'amount_mismatch'
                              AND we.kind IN ('SUCCEEDED', 'CAPTURED', 'AUTHORIZED'));
        v_amount := coalesce(v_amount, -1);
        v_cur := coalesce(v_cur, '');
    END IF;

    PERFORM set_config('payments.event_source', 'sweeper', true);

    SELECT * INTO v FROM pay_webhook_apply_core(p_psp, p_event_id, p_kind,
        p_type, v_token, p_reference, v_amount, v_cur,
        CASE WHEN p_kind IN ('SUCCEEDED', 'CAPTURED', 'AUTHORIZED') THEN p_payment_ref END, NULL) x;

    PERFORM set_config('payments.event_source', '', true);

    IF v.merchant_id IS NOT NULL AND v.outcome <> 'duplicate' THEN
        IF NOT (p_kind = 'FAILED' AND v.outcome = 'pending') THEN
            PERFORM audit_append(v.merchant_id, v.checkout_id, 'sweeper:' || v.outcome,
                jsonb_build_object('psp', p_psp, 'event_id', p_event_id,
                                   'kind', p_kind, 'type', p_type));
        END IF;

        UPDATE checkout_sweeps s SET last_answer = left(p_type || ': ' || v.outcome, 100)
         WHERE s.merchant_id = v.merchant_id AND s.checkout_id = v.checkout_id;
    END IF;

    IF p_kind IN ('SUCCEEDED', 'CAPTURED', 'AUTHORIZED') AND v.outcome = 'already' THEN
        PERFORM payment_ref_note(p_psp, v.merchant_id, v.checkout_id, p_payment_ref);
    END IF;

    RETURN QUERY SELECT v.outcome, v.merchant_id, v.checkout_id;
END
$$;


--
-- Name: pay_sweeper_detaches(text, text[], integer, integer, integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_sweeper_detaches(p_owner text, p_psps text[], p_after integer, p_retry integer, p_limit integer, p_alert integer) RETURNS TABLE(merchant_id text, method_id text, psp text, token_sealed text, checkout_id text, customer_ref text, tries integer, stuck bigint, saved_account text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_stuck  bigint;
BEGIN
    SELECT count(*) INTO v_stuck
      FROM payment_methods p
     WHERE p.status = 'detached' AND p.psp_detached_at IS NULL
       AND p.psp = ANY (p_psps) AND p.psp_detach_tries >= p_alert;

    PERFORM 1 FROM sweeper_lease l
      WHERE l.id = 1 AND l.owner = p_owner AND l.until > now();

    IF FOUND THEN
        -- the due ones first (payment_methods_psp_detach_due), then each
        -- one's checkout by its key, row by row (LATERAL, LIMIT): planned
        -- while the statistics said payment_methods held no row, a join
        -- read every method through another index to match the checkouts
        -- (4,200 rows read for 20 of 4,000 methods,
        -- plans_background::the_methods_detach_sweep_reads_the_detached)
        RETURN QUERY
            SELECT p.merchant_id, p.method_id, p.psp, p.token_sealed, p.checkout_id,
                   p.customer_ref, p.psp_detach_tries, v_stuck,
                   stored_request_account(c.psp_request)
              FROM (SELECT p.merchant_id, p.method_id, p.psp, p.token_sealed,
                           p.checkout_id, p.customer_ref, p.psp_detach_tries,
                           coalesce(p.psp_detach_tried_at, p.detached_at) AS due_at
                      FROM payment_methods p
                     WHERE p.status = 'detached' AND p.psp_detached_at IS NULL
                       AND p.psp = ANY (p_psps)
                       AND p.detached_at <= now() - make_interval(secs => p_after)
                       AND (p.psp_detach_tried_at IS NULL
                            OR p.psp_detach_tried_at <= now() - make_interval(secs => p_retry))
                     ORDER BY coalesce(p.psp_detach_tried_at, p.detached_at)
                     LIMIT p_limit) p
              LEFT JOIN LATERAL (
                   SELECT c.psp_request FROM checkouts c
                    WHERE c.merchant_id = p.merchant_id AND c.checkout_id = p.checkout_id
                    LIMIT 1) c ON true
             ORDER BY p.due_at;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;

    RETURN QUERY SELECT NULL::text, NULL::text, NULL::text, NULL::text, NULL::text,
                        NULL::text, NULL::integer, v_stuck, NULL::text;
END
$$;


--
-- Name: pay_sweeper_due(text, text[], integer, integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_sweeper_due(p_owner text, p_psps text[], p_after integer, p_every integer, p_limit integer) RETURNS TABLE(merchant_id text, checkout_id text, psp text, psp_token text, nonce text, expires_epoch bigint, age_seconds bigint, session_result text)
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT d.merchant_id, d.checkout_id, d.psp, d.psp_token, d.nonce,
           d.expires_epoch, d.age_seconds, d.session_result
      FROM pay_sweeper_due(p_owner, p_psps, '{}'::text[], '{}'::text[], p_after, p_every, 0, p_limit) d;
$$;


--
-- Name: pay_sweeper_due(text, text[], text[], integer, integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_sweeper_due(p_owner text, p_psps text[], p_payment_psps text[], p_after integer, p_every integer, p_limit integer) RETURNS TABLE(merchant_id text, checkout_id text, psp text, psp_token text, nonce text, expires_epoch bigint, age_seconds bigint, session_result text, payment boolean, setup boolean)
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT d.merchant_id, d.checkout_id, d.psp, d.psp_token, d.nonce,
           d.expires_epoch, d.age_seconds, d.session_result, d.payment,
           d.setup
      FROM pay_sweeper_due(p_owner, p_psps, p_payment_psps, '{}'::text[],
                           p_after, p_every, 0, p_limit) d;
$$;


--
-- Name: pay_sweeper_due(text, text[], text[], text[], integer, integer, integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_sweeper_due(p_owner text, p_psps text[], p_payment_psps text[], p_open_psps text[], p_after integer, p_every integer, p_grace integer, p_limit integer) RETURNS TABLE(merchant_id text, checkout_id text, psp text, psp_token text, nonce text, expires_epoch bigint, age_seconds bigint, session_result text, payment boolean, setup boolean, failed boolean)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET jit TO 'off'
    SET enable_seqscan TO 'off'
    SET enable_bitmapscan TO 'off'
    AS $$
#variable_conflict use_column
DECLARE
    -- The EXECUTING ones past p_after, oldest first, from p_from on,
    -- through checkouts_executing_since in its order, each with whether it
    -- is due as never asked, or as asked about p_every ago or more.  A
    -- cursor is planned for its first rows: on 20,000 open sessions
    -- (analyzed) it walks the index, where the same query with a LIMIT was
    -- planned as a hash join of every one and a sort.
    walk CURSOR (p_from timestamptz, p_until timestamptz) FOR
        SELECT c.merchant_id, c.checkout_id, c.created_at,
               (c.psp_token IS NULL AND c.psp = ANY (p_psps)) AS tokenless,
               (s.last_at IS NULL AND k.askable) AS never,
               (s.last_at < now() - make_interval(secs => p_every)
                AND k.askable) AS again
          FROM checkouts c
          -- by its key, row by row (LATERAL, LIMIT: never a join that
          -- reads every open session and sorts them again)
          LEFT JOIN LATERAL (
               SELECT s.last_at FROM checkout_sweeps s
                WHERE s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
                LIMIT 1) s ON true
          -- one this sweeper asks about: of its PSPs, with a session's
          -- token, or an off-session charge where the PSP can look a
          -- payment up (by its payment id, or without one, its every
          -- answer lost, by its nonce)
         CROSS JOIN LATERAL (
               SELECT c.psp = ANY (p_psps)
                      AND CASE WHEN c.payment_method_id IS NOT NULL AND c.psp_url IS NULL
                               THEN c.psp = ANY (coalesce(p_payment_psps, '{}'))
                               ELSE c.psp_token IS NOT NULL END AS askable) k
         WHERE c.status = 'EXECUTING'
           AND c.created_at >= p_from
           AND c.created_at < p_until
         ORDER BY c.created_at;
    -- at most this many open sessions walked a round (asked ones passed
    -- over included): the next round goes on from where this one stopped
    c_walk       constant integer := 10000;
    v_until      timestamptz := now() - make_interval(secs => p_after);
    v_from       timestamptz;
    v_next       timestamptz;
    v_walked     integer := 0;
    -- the share of a busy round's batch kept for those asked about before
    v_reserve    integer := CASE WHEN p_limit >= 2 THEN greatest(1, p_limit / 4)
                                 ELSE 0 END;
    v_reask_from timestamptz;
    v_reask_next timestamptz;
    v_rewalked   boolean := false;
    v_reasked    integer := 0;
    -- the FAILED sessions still payable (below), and how many of them a
    -- busy round asks about: the never asked, and the due again within the
    -- share above; the walks fill the rest of the batch (v_cap)
    v_fm         text[];
    v_fc         text[];
    v_fnever     integer;
    v_fagain     integer;
    v_cap        integer;
    v_merchants  text[] := '{}';
    v_checkouts  text[] := '{}';
    v_fast       boolean := false;
    -- an open session without a token created since (a registration's PSP
    -- call under way) is not walked past: checkouts_sweep_late records
    -- only a token stored later than 30 s after the claim
    v_young      timestamptz := now() - interval '60 seconds';
    v_hold       timestamptz;
    v_psps       text[];
    v_pay_psps   text[];
    v_reset      boolean;
    v_done       boolean := false;
    lr           record;
    v_c          record;
BEGIN
    SELECT l.walk_from, l.walk_psps, l.walk_payment_psps, l.reask_from
      INTO v_from, v_psps, v_pay_psps, v_reask_from
      FROM sweeper_lease l
     WHERE l.id = 1 AND l.owner = p_owner AND l.until > now();
    IF NOT FOUND THEN
        RETURN;
    END IF;

    -- A PSP the rounds that set the mark did not ask about (added to the
    -- sweeper, or one more whose payments it looks up): its sessions
    -- behind the mark were passed over, so the walk starts again from the
    -- oldest (10,000 a round).  Gateways sharing a database configure the
    -- same PSPs (doc/ngx_http_payments_module.md).
    v_reset := v_psps IS NOT NULL
               AND NOT (p_psps <@ v_psps
                        AND coalesce(p_payment_psps, '{}') <@ coalesce(v_pay_psps, '{}'));
    IF v_reset THEN
        v_from := NULL;
    END IF;

    -- The FAILED sessions still payable: a cancel or a decline at a PSP of
    -- p_open_psps (whose sessions a cancel cannot expire), a hosted session
    -- with an amount, until its expiry and p_grace more; found by their
    -- expiry in failed_open_sessions (checkouts_failed_open), and few.  A
    -- busy round asks about those never asked and, within the share of
    -- those asked before, those asked longest ago (fast_due below), and
    -- keeps their room before it walks: a session the walk passes is never
    -- left out of its batch (the walk's mark is past it).
    SELECT coalesce(array_agg(c.merchant_id), '{}'), coalesce(array_agg(c.checkout_id), '{}'),
           count(*) FILTER (WHERE c.psp = ANY (p_psps) AND c.psp_token IS NOT NULL
                              AND s.last_at IS NULL),
           count(*) FILTER (WHERE c.psp = ANY (p_psps) AND c.psp_token IS NOT NULL
                              AND s.last_at < now() - make_interval(secs => p_every))
      INTO v_fm, v_fc, v_fnever, v_fagain
      FROM failed_open_sessions f
      -- each by its key, row by row (LATERAL, LIMIT), its conditions tested
      -- after (in the look-up, they could make another index look as
      -- good: checkouts_list, by merchant and age): planned while the
      -- statistics said checkouts held no row, a join walked every
      -- checkout (checkouts_pkey, or checkouts_list) for the FAILED ones
      -- and matched each with the few sessions here (4,300 rows read for
      -- a round of 50 of 4,000 checkouts,
      -- plans_background::the_sweepers_rounds_over_open_sessions_read_about_what_they_take)
     CROSS JOIN LATERAL (
           SELECT c.merchant_id, c.checkout_id, c.psp, c.psp_token, c.status,
                  c.psp_url, c.expires_at, c.amount_total, c.created_at
             FROM checkouts c
            WHERE c.merchant_id = f.merchant_id AND c.checkout_id = f.checkout_id
            LIMIT 1) c
      LEFT JOIN LATERAL (
           SELECT s.last_at FROM checkout_sweeps s
            WHERE s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
            LIMIT 1) s ON true
     WHERE f.expires_at > now() - make_interval(secs => coalesce(p_grace, 0))
       AND c.status = 'FAILED'
       AND c.psp_url IS NOT NULL
       AND c.expires_at IS NOT NULL
       AND c.expires_at > now() - make_interval(secs => coalesce(p_grace, 0))
       AND c.psp = ANY (coalesce(p_open_psps, '{}'))
       AND c.amount_total > 0
       AND c.created_at < now() - make_interval(secs => p_after);
    v_fnever := least(v_fnever, greatest(p_limit, 0));
    v_fagain := least(v_fagain, v_reserve, greatest(p_limit, 0) - v_fnever);
    v_cap := greatest(p_limit, 0) - v_fnever - v_fagain;

    -- Those that became ones to ask about after a walk passed them
    -- (sweeper_late.ask, checkouts_sweep_late) come first: done with once
    -- asked, no longer open or not this sweeper's; kept while their token
    -- is not stored yet or they are younger than p_after.
    -- One by one, each by its key: they are few, and a join with the
    -- checkouts may be planned as a read of all of them.
    FOR lr IN SELECT lt.merchant_id, lt.checkout_id FROM sweeper_late lt
              WHERE lt.ask ORDER BY lt.since LOOP
        SELECT c.status, c.psp, c.psp_token, c.psp_url, c.payment_method_id,
               c.created_at, s.last_at
          INTO v_c
          FROM checkouts c
          LEFT JOIN checkout_sweeps s
            ON s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
         WHERE c.merchant_id = lr.merchant_id AND c.checkout_id = lr.checkout_id;
        IF v_c.status <> 'EXECUTING' OR v_c.last_at IS NOT NULL
           OR NOT v_c.psp = ANY (p_psps)
           OR (v_c.payment_method_id IS NOT NULL AND v_c.psp_url IS NULL
               AND NOT v_c.psp = ANY (coalesce(p_payment_psps, '{}'))) THEN
            UPDATE sweeper_late lt SET ask = false
             WHERE lt.merchant_id = lr.merchant_id AND lt.checkout_id = lr.checkout_id;
            v_done := true;
        ELSIF v_c.psp_token IS NOT NULL AND v_c.created_at < v_until
              AND cardinality(v_checkouts) < v_cap THEN
            v_merchants := v_merchants || lr.merchant_id;
            v_checkouts := v_checkouts || lr.checkout_id;
        END IF;
    END LOOP;
    IF v_done THEN
        DELETE FROM sweeper_late lt WHERE NOT lt.ask AND NOT lt.alert;
    END IF;

    -- Then those asked about p_every ago or more, up to the batch's share
    -- kept for them: walked among the open sessions created before the
    -- walk's mark below (each asked about once, or not one to ask about),
    -- in creation order from where the last busy round left this walk
    -- (sweeper_lease.reask_from), round again from the oldest once it
    -- reaches the mark.  It walks at most twenty times its share (five
    -- batches), so that a round still reads about its batch when the
    -- sessions it passes were asked about lately.  A round that walks to
    -- the end of the never asked reads every candidate instead (slow_due,
    -- never asked first, then the one asked longest ago), and this walk's
    -- picks and mark are dropped.
    IF v_reserve > v_fagain AND v_from IS NOT NULL AND NOT v_reset
       AND cardinality(v_checkouts) < v_cap THEN
        v_rewalked := true;
        FOR r IN walk(coalesce(v_reask_from, '-infinity'), least(v_from, v_until)) LOOP
            v_walked := v_walked + 1;
            IF r.again THEN
                v_merchants := v_merchants || r.merchant_id;
                v_checkouts := v_checkouts || r.checkout_id;
                v_reasked := v_reasked + 1;
            END IF;
            IF v_reasked >= v_reserve - v_fagain OR cardinality(v_checkouts) >= v_cap
               OR v_walked >= least(c_walk, 20 * v_reserve) THEN
                v_reask_next := r.created_at;
                EXIT;
            END IF;
        END LOOP;
        -- (walked to the mark: v_reask_next NULL, the next from the oldest)
        v_walked := 0;
    END IF;
    v_fast := p_limit > 0 AND cardinality(v_checkouts) >= v_cap;

    -- The never asked fill the batch, oldest first.  The walk starts where the
    -- last one stopped (sweeper_lease.walk_from): each open session created
    -- before it was asked about already, or was not one to ask about then.
    -- It stops with the batch full, or c_walk sessions walked, so that a
    -- round reads about its batch however many sessions are open and asked
    -- about (bench/sweeper_due.sh); the next round goes on from there.
    -- Walked to its end with the batch not full, the round reads every
    -- candidate (slow_due below), and they are then few.  A session that
    -- became one to ask about after a walk had passed it is in
    -- sweeper_late (above), or behind a reset mark (a PSP added).
    IF p_limit > 0 AND NOT v_fast THEN
        FOR r IN walk(coalesce(v_from, '-infinity'), v_until) LOOP
            v_walked := v_walked + 1;
            IF r.tokenless AND r.created_at >= v_young THEN
                v_hold := coalesce(v_hold, r.created_at);
            END IF;
            IF r.never THEN
                v_merchants := v_merchants || r.merchant_id;
                v_checkouts := v_checkouts || r.checkout_id;
                -- on a walk to its end, the next starts at the first left
                v_next := coalesce(v_next, r.created_at);
            END IF;
            IF cardinality(v_checkouts) >= v_cap OR v_walked >= c_walk THEN
                v_fast := true;
                v_next := r.created_at;
                EXIT;
            END IF;
        END LOOP;
        IF NOT v_fast THEN
            v_next := coalesce(v_next, v_until);
        END IF;
        v_next := least(v_next, v_hold);
    END IF;
    -- v_next NULL (no walk: the late ones filled the batch): the mark
    -- stays, or after a reset starts at the oldest.  The second walk's
    -- mark moves only with a round that hands out its picks.
    v_rewalked := v_rewalked AND v_fast;
    UPDATE sweeper_lease l
       SET walk_from = CASE WHEN v_reset OR v_next > coalesce(l.walk_from, '-infinity')
                            THEN v_next ELSE l.walk_from END,
           walk_psps = p_psps,
           walk_payment_psps = coalesce(p_payment_psps, '{}'),
           reask_from = CASE WHEN v_rewalked THEN v_reask_next ELSE l.reask_from END
     WHERE l.id = 1
       AND (v_reset OR v_next > coalesce(l.walk_from, '-infinity')
            OR l.walk_psps IS DISTINCT FROM p_psps
            OR l.walk_payment_psps IS DISTINCT FROM coalesce(p_payment_psps, '{}')
            OR (v_rewalked AND l.reask_from IS DISTINCT FROM v_reask_next));

    RETURN QUERY
    -- the FAILED sessions still payable found above, still FAILED
    -- (the rows picked above are read each by its key, row by row:
    -- LATERAL, LIMIT; planned while the statistics said checkouts held no
    -- row, a join walked every checkout and matched each with the ones
    -- picked)
    WITH failed_open AS (
        SELECT c.merchant_id, c.checkout_id, c.psp, c.psp_token, c.nonce,
               c.expires_at, c.created_at, c.payment_method_id, c.psp_url,
               c.amount_total, c.save_method, c.status
          FROM unnest(v_fm, v_fc) AS k(merchant_id, checkout_id)
         CROSS JOIN LATERAL (
               SELECT c.* FROM checkouts c
                WHERE c.merchant_id = k.merchant_id AND c.checkout_id = k.checkout_id
                LIMIT 1) c
         WHERE c.status = 'FAILED'
    ), fast_due AS (
        -- those walked and the FAILED ones kept room for: p_limit at most
        SELECT n.merchant_id, n.checkout_id, n.psp, n.psp_token, n.nonce,
               ts_epoch(n.expires_at) AS expires_epoch,
               floor(extract(epoch FROM now() - n.created_at))::bigint AS age_seconds,
               n.session_result, n.created_at,
               (n.payment_method_id IS NOT NULL AND n.psp_url IS NULL) AS payment,
               (n.amount_total = 0 AND n.save_method IS NOT NULL) AS setup, n.failed
          FROM (SELECT c.merchant_id, c.checkout_id, c.psp, c.psp_token, c.nonce,
                       c.expires_at, c.created_at, c.payment_method_id, c.psp_url,
                       c.amount_total, c.save_method, s.session_result, false AS failed
                  -- a late one may be walked too
                  FROM (SELECT DISTINCT u.merchant_id, u.checkout_id
                          FROM unnest(v_merchants, v_checkouts) AS u(merchant_id, checkout_id)) k
                 CROSS JOIN LATERAL (
                       SELECT c.* FROM checkouts c
                        WHERE c.merchant_id = k.merchant_id AND c.checkout_id = k.checkout_id
                        LIMIT 1) c
                  LEFT JOIN LATERAL (
                       SELECT s.session_result FROM checkout_sweeps s
                        WHERE s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
                        LIMIT 1) s ON true
                 -- (tested here, not in the look-up: there it would say
                 -- checkouts_executing_since's predicate, and the look-up
                 -- could walk that index, every open session, for its one)
                 WHERE c.status = 'EXECUTING'
                UNION ALL
                (SELECT f.merchant_id, f.checkout_id, f.psp, f.psp_token, f.nonce,
                        f.expires_at, f.created_at, f.payment_method_id, f.psp_url,
                        f.amount_total, f.save_method, s.session_result, true
                   FROM failed_open f
                   LEFT JOIN LATERAL (
                        SELECT s.session_result, s.last_at FROM checkout_sweeps s
                         WHERE s.merchant_id = f.merchant_id AND s.checkout_id = f.checkout_id
                         LIMIT 1) s ON true
                  WHERE f.psp = ANY (p_psps)
                    AND f.psp_token IS NOT NULL
                    AND (s.last_at IS NULL
                         OR s.last_at < now() - make_interval(secs => p_every))
                  ORDER BY s.last_at NULLS FIRST, f.created_at
                  LIMIT v_fnever + v_fagain)) n
         WHERE v_fast
         ORDER BY n.created_at
         LIMIT p_limit
    ), cand AS (
        -- every candidate: EXECUTING by age (checkouts_executing_since),
        -- and the FAILED ones above
        SELECT c.merchant_id, c.checkout_id, c.psp, c.psp_token, c.nonce,
               c.expires_at, c.created_at, c.payment_method_id, c.psp_url,
               c.amount_total, c.save_method, c.status
          FROM checkouts c
         WHERE c.status = 'EXECUTING'
           AND c.created_at < now() - make_interval(secs => p_after)
        UNION ALL
        SELECT * FROM failed_open
    ), slow_due AS (
        SELECT c.merchant_id, c.checkout_id, c.psp, c.psp_token, c.nonce,
               ts_epoch(c.expires_at) AS expires_epoch,
               floor(extract(epoch FROM now() - c.created_at))::bigint AS age_seconds,
               s.session_result, c.created_at,
               (c.payment_method_id IS NOT NULL AND c.psp_url IS NULL) AS payment,
               (c.amount_total = 0 AND c.save_method IS NOT NULL) AS setup,
               (c.status = 'FAILED') AS failed
          FROM cand c
          LEFT JOIN checkout_sweeps s
            ON s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
         WHERE c.psp = ANY (p_psps)
           -- an off-session charge the PSP took holds its payment's id, not
           -- a session: no session look-up can tell of it, nor may an
           -- expiry fail it (the payment may have been taken).  Where the
           -- PSP can look a payment up it is asked as one, by its id, or
           -- by its nonce when every answer to the charge was lost (no id
           -- stored); elsewhere its webhook books it, and past alert=
           -- pay_sweeper_overdue lists it.  One that waits for the shopper
           -- holds a hosted session (psp_url), swept as any: with its
           -- token.
           AND CASE WHEN c.payment_method_id IS NOT NULL AND c.psp_url IS NULL
                    THEN c.psp = ANY (coalesce(p_payment_psps, '{}'))
                    ELSE c.psp_token IS NOT NULL END
           AND (s.last_at IS NULL OR s.last_at < now() - make_interval(secs => p_every))
           -- read only when the way above does not do
           AND NOT v_fast
         -- never asked first, then the one asked longest ago
         ORDER BY s.last_at NULLS FIRST, c.created_at
         LIMIT p_limit
    ), due AS (
        SELECT * FROM fast_due
        UNION ALL
        SELECT * FROM slow_due
    ), asked AS (
        INSERT INTO checkout_sweeps AS s (merchant_id, checkout_id, attempts, last_at)
        SELECT d.merchant_id, d.checkout_id, 1, now() FROM due d
        ON CONFLICT (merchant_id, checkout_id) DO UPDATE
            SET attempts = s.attempts + 1, last_at = now()
    )
    SELECT d.merchant_id, d.checkout_id, d.psp, d.psp_token, d.nonce,
           d.expires_epoch, d.age_seconds, d.session_result, d.payment,
           d.setup, d.failed
      FROM due d
     ORDER BY d.created_at;
END
$$;


--
-- Name: pay_sweeper_lease(text, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_sweeper_lease(p_owner text, p_seconds integer) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
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


--
-- Name: pay_sweeper_method_saved(text, text, text, text, text, text, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_sweeper_method_saved(p_psp text, p_event_id text, p_reference text, p_token_sealed text, p_token_index text, p_psp_customer text, p_display jsonb) RETURNS TABLE(outcome text, merchant_id text, checkout_id text, method_id text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    a  record;
BEGIN
    IF coalesce(p_token_sealed, '') = '' OR coalesce(p_token_index, '') = '' THEN
        RAISE EXCEPTION 'pay_sweeper_method_saved: the sealed token and its index are required'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id));

    SELECT * INTO a FROM pay_method_saved_apply(p_psp, p_event_id, p_reference,
        jsonb_build_object('token_sealed', p_token_sealed,
                           'token_index', p_token_index,
                           'psp_customer', nullif(p_psp_customer, ''),
                           'display', coalesce(p_display, '{}'))) x;

    IF a.merchant_id IS NOT NULL THEN
        IF a.outcome = 'saved' THEN
            PERFORM audit_append(a.merchant_id, a.checkout_id, 'sweeper:saved',
                jsonb_build_object('psp', p_psp, 'event_id', p_event_id,
                                   'payment_method', a.method_id));
        END IF;

        UPDATE checkout_sweeps s SET last_answer = left('method saved: ' || a.outcome, 100)
         WHERE s.merchant_id = a.merchant_id AND s.checkout_id = a.checkout_id;
    END IF;

    RETURN QUERY SELECT a.outcome, a.merchant_id, a.checkout_id, a.method_id;
END
$$;


--
-- Name: pay_sweeper_methods_due(text, text[], integer, integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_sweeper_methods_due(p_owner text, p_psps text[], p_after integer, p_every integer, p_limit integer) RETURNS TABLE(merchant_id text, checkout_id text, psp text, psp_token text, nonce text, age_seconds bigint, session_result text, setup boolean)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET jit TO 'off'
    SET enable_seqscan TO 'off'
    SET enable_bitmapscan TO 'off'
    AS $$
#variable_conflict use_column
BEGIN
    PERFORM 1 FROM sweeper_lease l
      WHERE l.id = 1 AND l.owner = p_owner AND l.until > now();
    IF NOT FOUND THEN
        RETURN;
    END IF;

    RETURN QUERY
    WITH unsaved AS (
        -- the not alerted and the alerted, each through its own index
        SELECT c.merchant_id, c.checkout_id, c.psp, c.psp_token, c.nonce,
               c.amount_total, c.created_at
          FROM checkouts c
         WHERE c.save_method IS NOT NULL
           AND c.method_saved_at IS NULL
           AND c.method_alerted_at IS NULL
           AND c.status IN ('SUCCESS', 'AUTHORIZED')
           AND c.created_at < now() - make_interval(secs => p_after)
           AND c.psp = ANY (coalesce(p_psps, '{}'))
           AND c.psp_token IS NOT NULL
        UNION ALL
        SELECT c.merchant_id, c.checkout_id, c.psp, c.psp_token, c.nonce,
               c.amount_total, c.created_at
          FROM checkouts c
         WHERE c.save_method IS NOT NULL
           AND c.method_saved_at IS NULL
           AND c.method_alerted_at IS NOT NULL
           AND c.status IN ('SUCCESS', 'AUTHORIZED')
           AND c.created_at < now() - make_interval(secs => p_after)
           AND c.psp = ANY (coalesce(p_psps, '{}'))
           AND c.psp_token IS NOT NULL
    ), due AS (
        SELECT c.merchant_id, c.checkout_id, c.psp, c.psp_token, c.nonce,
               floor(extract(epoch FROM now() - c.created_at))::bigint AS age_seconds,
               s.session_result, (c.amount_total = 0) AS setup, c.created_at
          FROM unsaved c
          LEFT JOIN checkout_sweeps s
            ON s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
         WHERE (s.method_asked_at IS NULL
                OR s.method_asked_at < now() - make_interval(secs => p_every))
         -- never asked first, then the one asked longest ago
         ORDER BY s.method_asked_at NULLS FIRST, c.created_at
         LIMIT p_limit
    ), asked AS (
        INSERT INTO checkout_sweeps AS s (merchant_id, checkout_id, method_asked_at)
        SELECT d.merchant_id, d.checkout_id, now() FROM due d
        ON CONFLICT (merchant_id, checkout_id) DO UPDATE
            SET method_asked_at = now()
    )
    SELECT d.merchant_id, d.checkout_id, d.psp, d.psp_token, d.nonce,
           d.age_seconds, d.session_result, d.setup
      FROM due d
     ORDER BY d.created_at;
END
$$;


--
-- Name: pay_sweeper_methods_unsaved(text, text[], integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_sweeper_methods_unsaved(p_owner text, p_psps text[], p_alert_after integer, p_limit integer) RETURNS TABLE(merchant_id text, checkout_id text, psp text, age_seconds bigint, last_answer text, unsaved bigint, oldest_seconds bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET jit TO 'off'
    SET enable_seqscan TO 'off'
    SET enable_bitmapscan TO 'off'
    AS $$
#variable_conflict use_column
DECLARE
    -- each in its index's order: its first row the oldest of its index,
    -- the count stopped at 10,000 (a cursor is planned for its first rows)
    alerted CURSOR FOR
        SELECT c.created_at
          FROM checkouts c
         WHERE c.save_method IS NOT NULL
           AND c.method_saved_at IS NULL
           AND c.method_alerted_at IS NOT NULL
           AND c.status IN ('SUCCESS', 'AUTHORIZED')
           AND c.created_at < now() - make_interval(secs => p_alert_after)
           AND c.psp = ANY (p_psps)
         ORDER BY c.created_at;
    unalerted CURSOR FOR
        SELECT c.created_at
          FROM checkouts c
         WHERE c.save_method IS NOT NULL
           AND c.method_saved_at IS NULL
           AND c.method_alerted_at IS NULL
           AND c.status IN ('SUCCESS', 'AUTHORIZED')
           AND c.created_at < now() - make_interval(secs => p_alert_after)
           AND c.psp = ANY (p_psps)
         ORDER BY c.created_at;
    v_n       bigint := 0;
    v_first   timestamptz;
    v_oldest  bigint := 0;
BEGIN
    -- the alerted, then the not alerted; the first row of each is read
    -- even past 10,000, for the oldest (rows come oldest first: least
    -- keeps the first's)
    FOR r IN alerted LOOP
        v_first := least(v_first, r.created_at);
        EXIT WHEN v_n >= 10000;
        v_n := v_n + 1;
    END LOOP;
    FOR r IN unalerted LOOP
        v_first := least(v_first, r.created_at);
        EXIT WHEN v_n >= 10000;
        v_n := v_n + 1;
    END LOOP;
    IF v_first IS NOT NULL THEN
        v_oldest := floor(extract(epoch FROM now() - v_first))::bigint;
    END IF;

    PERFORM 1 FROM sweeper_lease l
      WHERE l.id = 1 AND l.owner = p_owner AND l.until > now();
    IF NOT FOUND OR v_n = 0 THEN
        RETURN QUERY SELECT NULL::text, NULL::text, NULL::text, NULL::bigint,
                            NULL::text, v_n, v_oldest;
        RETURN;
    END IF;

    RETURN QUERY
    WITH late AS (
        SELECT c.ctid
          FROM checkouts c
         WHERE c.save_method IS NOT NULL
           AND c.method_saved_at IS NULL
           AND c.method_alerted_at IS NULL
           AND c.status IN ('SUCCESS', 'AUTHORIZED')
           AND c.created_at < now() - make_interval(secs => p_alert_after)
           AND c.psp = ANY (p_psps)
         ORDER BY c.created_at
         LIMIT p_limit
    ), marked AS (
        -- each marked by its place in the table, not by a join on its key:
        -- planned while the statistics said checkouts held no row (an
        -- ANALYZE that found only dead rows), the join was a nested loop
        -- that read the whole primary key and the unalerted ones again for
        -- each entry (84,200 rows read to mark 20 of 4,000 checkouts,
        -- plans_background::the_methods_sweep_planned_on_dead_rows_reads_what_it_takes).
        -- (the conditions again: a checkout whose method was saved since
        -- the look-up, while this waited for its row, is not alerted; one
        -- changed meanwhile is left to the next round)
        UPDATE checkouts c SET method_alerted_at = now()
          FROM late l
         WHERE c.ctid = l.ctid
           AND c.method_saved_at IS NULL AND c.method_alerted_at IS NULL
        RETURNING c.merchant_id, c.checkout_id, c.psp, c.created_at
    )
    SELECT m.merchant_id, m.checkout_id, m.psp,
           floor(extract(epoch FROM now() - m.created_at))::bigint,
           s.last_answer, v_n, v_oldest
      FROM marked m
      LEFT JOIN checkout_sweeps s
        ON s.merchant_id = m.merchant_id AND s.checkout_id = m.checkout_id
    UNION ALL
    SELECT NULL, NULL, NULL, NULL, NULL, v_n, v_oldest
     WHERE NOT EXISTS (SELECT 1 FROM marked);
END
$$;


--
-- Name: pay_sweeper_note(text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_sweeper_note(p_merchant text, p_checkout_id text, p_answer text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    UPDATE checkout_sweeps s SET last_answer = left(p_answer, 100)
     WHERE s.merchant_id = p_merchant AND s.checkout_id = p_checkout_id;
END
$$;


--
-- Name: pay_sweeper_overdue(text, text[], integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_sweeper_overdue(p_owner text, p_psps text[], p_alert_after integer, p_limit integer) RETURNS TABLE(merchant_id text, checkout_id text, psp text, age_seconds bigint, last_answer text, unresolved bigint, oldest_seconds bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET jit TO 'off'
    SET enable_seqscan TO 'off'
    SET enable_bitmapscan TO 'off'
    AS $$
#variable_conflict use_column
DECLARE
    -- walked in the index's order: the oldest age from the first row, the
    -- count stopped at 10,000 (a cursor is planned for its first rows)
    late_ones CURSOR FOR
        SELECT c.created_at
          FROM checkouts c
         WHERE c.status = 'EXECUTING'
           AND c.created_at < now() - make_interval(secs => p_alert_after)
           AND c.psp = ANY (p_psps)
         ORDER BY c.created_at;
    -- the ones past alert= from p_from on, in the same order, each with
    -- whether it is still to be alerted
    to_alert CURSOR (p_from timestamptz, p_until timestamptz) FOR
        SELECT c.merchant_id, c.checkout_id, c.created_at,
               (s.alerted_at IS NULL) AS fresh
          FROM checkouts c
          -- by its key, row by row (as pay_sweeper_due's walk)
          LEFT JOIN LATERAL (
               SELECT s.alerted_at FROM checkout_sweeps s
                WHERE s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
                LIMIT 1) s ON true
         WHERE c.status = 'EXECUTING'
           AND c.created_at >= p_from
           AND c.created_at < p_until
           AND c.psp = ANY (p_psps)
         ORDER BY c.created_at;
    -- at most this many walked a round (alerted ones passed over
    -- included), as pay_sweeper_due's walk
    c_walk       constant integer := 10000;
    v_n          bigint := 0;
    v_oldest     bigint := 0;
    v_from       timestamptz;
    v_until      timestamptz := now() - make_interval(secs => p_alert_after);
    v_next       timestamptz := v_until;
    v_walked     integer := 0;
    v_merchants  text[] := '{}';
    v_checkouts  text[] := '{}';
    v_psps       text[];
    v_reset      boolean;
    v_done       boolean := false;
    lr           record;
    v_c          record;
BEGIN
    FOR r IN late_ones LOOP
        IF v_n = 0 THEN
            v_oldest := floor(extract(epoch FROM now() - r.created_at))::bigint;
        END IF;
        v_n := v_n + 1;
        EXIT WHEN v_n >= 10000;
    END LOOP;

    SELECT l.alert_from, l.alert_psps INTO v_from, v_psps FROM sweeper_lease l
     WHERE l.id = 1 AND l.owner = p_owner AND l.until > now();
    IF NOT FOUND OR v_n = 0 THEN
        RETURN QUERY SELECT NULL::text, NULL::text, NULL::text, NULL::bigint,
                            NULL::text, v_n, v_oldest;
        RETURN;
    END IF;

    -- a PSP the rounds that set the mark did not alert for: from the
    -- oldest again, as pay_sweeper_due's walk
    v_reset := v_psps IS NOT NULL AND NOT p_psps <@ v_psps;
    IF v_reset THEN
        v_from := NULL;
    END IF;

    -- Those that became EXECUTING after a walk passed them (an approved
    -- review: sweeper_late.alert, checkouts_sweep_late) come first: done
    -- with once alerted, no longer open or not this sweeper's; kept while
    -- younger than p_alert_after.
    -- One by one, each by its key, as pay_sweeper_due's.
    FOR lr IN SELECT lt.merchant_id, lt.checkout_id FROM sweeper_late lt
              WHERE lt.alert ORDER BY lt.since LOOP
        SELECT c.status, c.psp, c.created_at, s.alerted_at
          INTO v_c
          FROM checkouts c
          LEFT JOIN checkout_sweeps s
            ON s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
         WHERE c.merchant_id = lr.merchant_id AND c.checkout_id = lr.checkout_id;
        IF v_c.status <> 'EXECUTING' OR v_c.alerted_at IS NOT NULL
           OR NOT v_c.psp = ANY (p_psps) THEN
            UPDATE sweeper_late lt SET alert = false
             WHERE lt.merchant_id = lr.merchant_id AND lt.checkout_id = lr.checkout_id;
            v_done := true;
        ELSIF v_c.created_at < v_until AND cardinality(v_checkouts) < p_limit THEN
            v_merchants := v_merchants || lr.merchant_id;
            v_checkouts := v_checkouts || lr.checkout_id;
        END IF;
    END LOOP;
    IF v_done THEN
        DELETE FROM sweeper_late lt WHERE NOT lt.ask AND NOT lt.alert;
    END IF;

    -- The ones not alerted yet, oldest first, from where the last round
    -- stopped: each one created before it was alerted already.  The walk
    -- stops at p_limit of them or at 10,000 walked, and the next round
    -- goes on from there; walked to its end, the next starts at alert='s
    -- edge now.  One that became EXECUTING after a walk passed it (a
    -- review approved) is in sweeper_late (above).
    IF p_limit > 0 AND cardinality(v_checkouts) < p_limit THEN
        FOR r IN to_alert(coalesce(v_from, '-infinity'), v_until) LOOP
            v_walked := v_walked + 1;
            IF r.fresh THEN
                v_merchants := v_merchants || r.merchant_id;
                v_checkouts := v_checkouts || r.checkout_id;
            END IF;
            IF cardinality(v_checkouts) >= p_limit OR v_walked >= c_walk THEN
                v_next := r.created_at;
                EXIT;
            END IF;
        END LOOP;
    ELSE
        v_next := NULL;
    END IF;
    -- v_next NULL (no walk: the late ones filled the batch): the mark
    -- stays, or after a reset starts at the oldest
    UPDATE sweeper_lease l
       SET alert_from = CASE WHEN v_reset OR v_next > coalesce(l.alert_from, '-infinity')
                             THEN v_next ELSE l.alert_from END,
           alert_psps = p_psps
     WHERE l.id = 1
       AND (v_reset OR v_next > coalesce(l.alert_from, '-infinity')
            OR l.alert_psps IS DISTINCT FROM p_psps);

    RETURN QUERY
    WITH late AS (
        SELECT c.merchant_id, c.checkout_id, c.psp,
               floor(extract(epoch FROM now() - c.created_at))::bigint AS age_seconds,
               s.last_answer, c.created_at
          -- a late one may be walked too
          FROM (SELECT DISTINCT u.merchant_id, u.checkout_id
                  FROM unnest(v_merchants, v_checkouts) AS u(merchant_id, checkout_id)) k
          -- each by its key, row by row (LATERAL, LIMIT): planned while
          -- the statistics said checkouts held no row (an ANALYZE that
          -- found only dead rows), a join walked every checkout and
          -- matched each with the ones picked (4,240 rows read to alert 20
          -- of 4,000 checkouts,
          -- plans_background::the_sweepers_rounds_over_open_sessions_read_about_what_they_take)
         CROSS JOIN LATERAL (
               SELECT c.merchant_id, c.checkout_id, c.psp, c.created_at
                 FROM checkouts c
                WHERE c.merchant_id = k.merchant_id AND c.checkout_id = k.checkout_id
                LIMIT 1) c
          LEFT JOIN LATERAL (
               SELECT s.last_answer FROM checkout_sweeps s
                WHERE s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
                LIMIT 1) s ON true
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


--
-- Name: pay_sweeper_unsettled(text, text, text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_sweeper_unsettled(p_psp text, p_event_id text, p_merchant text, p_checkout_id text, p_type text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
BEGIN
    -- the event's lock, as pay_webhook_apply_core takes it
    PERFORM pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id));
    PERFORM 1 FROM webhook_events we
      WHERE we.psp = p_psp AND we.event_id = p_event_id;
    IF FOUND THEN
        RETURN 'duplicate';
    END IF;

    PERFORM 1 FROM checkouts c
      WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id
        AND c.psp = p_psp AND c.status IN ('EXECUTING', 'FAILED')
        FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'already';
    END IF;

    INSERT INTO webhook_events (psp, event_id, kind, type, outcome,
                                merchant_id, checkout_id, source)
    VALUES (p_psp, p_event_id, 'PENDING', left(coalesce(p_type, ''), 100),
            'payment_unsettled', p_merchant, p_checkout_id, 'sweeper');

    PERFORM audit_append(p_merchant, p_checkout_id, 'sweeper:payment_unsettled',
        jsonb_build_object('psp', p_psp, 'event_id', p_event_id,
                           'kind', 'PENDING', 'type', p_type));

    UPDATE checkout_sweeps s
       SET last_answer = left(coalesce(p_type, '') || ': payment_unsettled', 100)
     WHERE s.merchant_id = p_merchant AND s.checkout_id = p_checkout_id;

    RETURN 'payment_unsettled';
END
$$;


--
-- Name: pay_wallets_fold(integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_wallets_fold(p_limit integer) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    SET jit TO 'off'
    AS $$
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
$$;


--
-- Name: pay_webhook_apply_core(text, text, text, text, text, text, bigint, text, text, text[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pay_webhook_apply_core(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_tokens text[], OUT outcome text, OUT merchant_id text, OUT checkout_id text) RETURNS record
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
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
$$;


--
-- Name: payment_methods; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.payment_methods (
    merchant_id text NOT NULL,
    method_id text NOT NULL,
    customer text NOT NULL,
    customer_ref text NOT NULL,
    psp text NOT NULL,
    psp_customer text,
    token_sealed text NOT NULL,
    token_index text NOT NULL,
    usage text NOT NULL,
    recurring text NOT NULL,
    status text DEFAULT 'active'::text NOT NULL,
    brand text,
    last4 text,
    exp_month integer,
    exp_year integer,
    checkout_id text NOT NULL,
    event_id text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    detached_at timestamp with time zone,
    psp_detached_at timestamp with time zone,
    psp_detach_tries integer DEFAULT 0 NOT NULL,
    psp_detach_tried_at timestamp with time zone,
    CONSTRAINT payment_methods_customer CHECK ((customer ~ '^[A-Za-z0-9_.-]{1,64}$'::text)),
    CONSTRAINT payment_methods_customer_ref CHECK ((customer_ref ~ '^cu_[0-9a-f]{24}$'::text)),
    CONSTRAINT payment_methods_detached CHECK (((status = 'detached'::text) = (detached_at IS NOT NULL))),
    CONSTRAINT payment_methods_display CHECK ((((last4 IS NULL) OR (last4 ~ '^[0-9]{4}$'::text)) AND ((brand IS NULL) OR (brand ~ '^[a-z0-9_ -]{1,32}$'::text)) AND ((exp_month IS NULL) OR ((exp_month >= 1) AND (exp_month <= 12))) AND ((exp_year IS NULL) OR ((exp_year >= 2000) AND (exp_year <= 2200))))),
    CONSTRAINT payment_methods_id CHECK ((method_id ~ '^pm_[a-p]{24}$'::text)),
    CONSTRAINT payment_methods_index CHECK ((token_index ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT payment_methods_psp_customer CHECK (((psp_customer IS NULL) OR (psp_customer ~ '^[A-Za-z0-9_-]{1,128}$'::text))),
    CONSTRAINT payment_methods_psp_detach_tries CHECK ((psp_detach_tries >= 0)),
    CONSTRAINT payment_methods_psp_detached CHECK (((psp_detached_at IS NULL) OR (status = 'detached'::text))),
    CONSTRAINT payment_methods_recurring CHECK ((recurring = ANY (ARRAY['CardOnFile'::text, 'Subscription'::text, 'UnscheduledCardOnFile'::text]))),
    CONSTRAINT payment_methods_sealed CHECK ((token_sealed ~~ 'v1.%'::text)),
    CONSTRAINT payment_methods_status CHECK ((status = ANY (ARRAY['active'::text, 'detached'::text]))),
    CONSTRAINT payment_methods_usage CHECK ((usage = ANY (ARRAY['off_session'::text, 'on_session'::text])))
);


--
-- Name: TABLE payment_methods; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.payment_methods IS 'Payment methods shoppers saved at a PSP (the token broker): the PSP''s reusable token sealed, the gateway''s pm_ id, the shop''s customer; charged off-session by checkouts naming them';


--
-- Name: COLUMN payment_methods.customer; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.payment_methods.customer IS 'the shop''s id for the shopper, as it sent it; never sent to a PSP';


--
-- Name: COLUMN payment_methods.customer_ref; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.payment_methods.customer_ref IS 'the gateway''s reference for (merchant, customer), sent to the PSP instead (Adyen shopperReference): an HMAC, never personal data';


--
-- Name: COLUMN payment_methods.token_sealed; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.payment_methods.token_sealed IS 'the PSP''s reusable token (Stripe pm_, Adyen storedPaymentMethodId, generic), sealed: associated data "payment_method:<merchant>:<checkout_id>"';


--
-- Name: COLUMN payment_methods.recurring; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.payment_methods.recurring IS 'Adyen''s recurringProcessingModel for its charges: CardOnFile (on_session), Subscription or UnscheduledCardOnFile';


--
-- Name: COLUMN payment_methods.psp_detached_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.payment_methods.psp_detached_at IS 'when the PSP confirmed the method detached on its side (or no longer had it); NULL while it has not';


--
-- Name: COLUMN payment_methods.psp_detach_tries; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.payment_methods.psp_detach_tries IS 'the sweeper''s sends of the PSP''s detach that it did not confirm';


--
-- Name: COLUMN payment_methods.psp_detach_tried_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.payment_methods.psp_detach_tried_at IS 'the last send of the PSP''s detach that it did not confirm; NULL: none yet';


--
-- Name: payment_method_json(public.payment_methods); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.payment_method_json(p public.payment_methods) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT jsonb_build_object(
               'id', p.method_id,
               'object', 'payment_method',
               'customer', p.customer,
               'psp', p.psp,
               'usage', p.usage,
               'recurring', p.recurring,
               'status', p.status,
               'checkout_id', p.checkout_id,
               'card', CASE WHEN p.brand IS NULL AND p.last4 IS NULL
                                 AND p.exp_month IS NULL THEN NULL
                            ELSE jsonb_build_object('brand', p.brand, 'last4', p.last4,
                                                    'exp_month', p.exp_month,
                                                    'exp_year', p.exp_year) END,
               'created_at', ts_rfc3339(p.created_at),
               'detached_at', ts_rfc3339(p.detached_at));
$$;


--
-- Name: payment_methods_notify(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.payment_methods_notify() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    PERFORM notify_enqueue(
        NEW.merchant_id,
        CASE WHEN TG_OP = 'INSERT' THEN 'payment_method.saved'
             ELSE 'payment_method.detached' END,
        NEW.checkout_id, NEW.method_id, payment_method_json(NEW));
    RETURN NULL;
END
$$;


--
-- Name: payment_orders; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.payment_orders (
    merchant_id text NOT NULL,
    payment_order_id text NOT NULL,
    checkout_id text NOT NULL,
    line_no integer NOT NULL,
    seller_account text NOT NULL,
    amount bigint NOT NULL,
    currency text NOT NULL,
    status public.pay_status NOT NULL,
    ledger_updated boolean DEFAULT false NOT NULL,
    wallet_updated boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    commission bigint,
    amount_captured bigint
)
WITH (fillfactor='80');


--
-- Name: TABLE payment_orders; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.payment_orders IS 'A payment order belongs to exactly one checkout; the primary key makes one registration per order.  line_no keeps the request''s order of the line items (the PSP sees them in that order, and the GET views list them the same way). The (merchant, checkout, order) unique key serves "orders of a checkout" and is what order_events references, so an event can never name an order of another checkout.';


--
-- Name: COLUMN payment_orders.amount_captured; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.payment_orders.amount_captured IS 'manual capture: the part captured so far (at most amount, the authorized); NULL for an automatic order';


--
-- Name: payment_orders_page(text, text, timestamp with time zone, timestamp with time zone, timestamp with time zone, text, boolean, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.payment_orders_page(p_merchant text, p_status text, p_gte timestamp with time zone, p_lt timestamp with time zone, p_at timestamp with time zone, p_id text, p_newer boolean, p_limit integer) RETURNS SETOF public.payment_orders
    LANGUAGE sql STABLE
    AS $$
    (SELECT x.*
       FROM payment_orders x
      WHERE NOT p_newer
        AND x.merchant_id = p_merchant
        AND x.created_at IS NOT NULL  -- the list index's predicate
        AND (p_status IS NULL OR x.status = p_status::pay_status)
        AND (p_gte IS NULL OR x.created_at >= p_gte)
        AND (p_lt IS NULL OR x.created_at < p_lt)
        AND (p_at IS NULL OR (x.created_at, x.payment_order_id) < (p_at, p_id))
      ORDER BY x.merchant_id DESC, x.created_at DESC, x.payment_order_id DESC
      LIMIT p_limit)
    UNION ALL
    (SELECT x.*
       FROM payment_orders x
      WHERE p_newer
        AND x.merchant_id = p_merchant
        AND x.created_at IS NOT NULL  -- the list index's predicate
        AND (p_status IS NULL OR x.status = p_status::pay_status)
        AND (p_gte IS NULL OR x.created_at >= p_gte)
        AND (p_lt IS NULL OR x.created_at < p_lt)
        AND (p_at IS NULL OR (x.created_at, x.payment_order_id) > (p_at, p_id))
      ORDER BY x.merchant_id, x.created_at, x.payment_order_id
      LIMIT p_limit);
$$;


--
-- Name: payment_orders_row_checks(public.payment_orders); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.payment_orders_row_checks(r public.payment_orders) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE
    AS $_$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    -- (a value between two bounds is tested as a member of a range: this
    -- CASE is prepared anew in every transaction, one step per operator,
    -- and the range is one operator where the two bounds were three)
    v_broken := CASE
        WHEN NOT (r.amount > 0) THEN 'payment_orders_amount'
        WHEN NOT ((r.ledger_updated = (r.status = 'SUCCESS'::public.pay_status)) AND (r.wallet_updated = (r.status = 'SUCCESS'::public.pay_status))) THEN 'payment_orders_booked_iff_success'
        WHEN NOT ((r.amount_captured >= 0) AND (r.amount_captured <= r.amount)) THEN 'payment_orders_captured'
        WHEN NOT ((r.commission >= 0) AND (r.commission <= r.amount)) THEN 'payment_orders_commission'
        WHEN NOT (r.currency ~ '^[A-Z]{3}$'::text) THEN 'payment_orders_currency'
        WHEN NOT ((length(r.payment_order_id) <@ int4range(1, 40, '[]')) AND (r.payment_order_id ~ '^[A-Za-z0-9_-]*$'::text)) THEN 'payment_orders_id_format'
        WHEN NOT (r.line_no > 0) THEN 'payment_orders_line_no'
        WHEN NOT ((length(r.seller_account) <@ int4range(1, 64, '[]')) AND (r.seller_account ~ '^[A-Za-z0-9_.-]*$'::text)) THEN 'payment_orders_seller_format'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "payment_orders" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'payment_orders', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$_$;


--
-- Name: payment_ref_note(text, text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.payment_ref_note(p_psp text, p_merchant text, p_checkout text, p_payment_ref text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    IF coalesce(p_payment_ref, '') = '' OR length(p_payment_ref) > 128 THEN
        RETURN;
    END IF;
    UPDATE checkouts ck SET psp_payment_ref = p_payment_ref
     WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout
       AND ck.psp = p_psp AND ck.status = 'SUCCESS' AND ck.psp_payment_ref IS NULL;
    IF FOUND THEN
        INSERT INTO psp_payments (psp, payment_ref, merchant_id, checkout_id)
        VALUES (p_psp, p_payment_ref, p_merchant, p_checkout)
        ON CONFLICT DO NOTHING;
    END IF;
END
$$;


--
-- Name: payout_event_apply(text, text, text, text, bigint, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.payout_event_apply(p_psp text, p_event_id text, p_kind text, p_reference text, p_amount bigint, p_currency text, p_object_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
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
$$;


--
-- Name: payouts_notify(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.payouts_notify() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_type  text;
    v_data  jsonb;
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status IS NOT DISTINCT FROM NEW.status THEN
        IF NEW.status <> 'PAID' OR NEW.amount_reversed <= OLD.amount_reversed THEN
            RETURN NULL;
        END IF;
        v_type := 'payout.reversed';
    ELSE
        v_type := CASE NEW.status WHEN 'PAID' THEN 'payout.paid' ELSE 'payout.failed' END;
    END IF;
    v_data := jsonb_build_object(
                  'payout_id', NEW.payout_id,
                  'seller_account', NEW.seller_account,
                  'status', NEW.status,
                  'amount_minor', NEW.amount,
                  'amount', money_decimal(NEW.amount, NEW.currency),
                  'currency', NEW.currency,
                  'metadata', NEW.metadata,
                  'failure', NEW.failure);
    IF v_type = 'payout.reversed' THEN
        v_data := v_data || jsonb_build_object(
                      'amount_reversed_minor', NEW.amount_reversed,
                      'amount_reversed', money_decimal(NEW.amount_reversed, NEW.currency));
    END IF;
    PERFORM notify_enqueue(NEW.merchant_id, v_type, NULL, NEW.payout_id,
                           jsonb_strip_nulls(v_data));
    RETURN NULL;
END
$$;


--
-- Name: payouts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.payouts (
    merchant_id text NOT NULL,
    payout_id text NOT NULL,
    seller_account text NOT NULL,
    psp text NOT NULL,
    destination text NOT NULL,
    nonce text NOT NULL,
    amount bigint NOT NULL,
    currency text NOT NULL,
    status text NOT NULL,
    psp_payout_id text,
    failure text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    amount_reversed bigint DEFAULT 0 NOT NULL,
    psp_contact text DEFAULT 'maybe'::text NOT NULL,
    psp_conf jsonb,
    CONSTRAINT payouts_amount CHECK ((amount > 0)),
    CONSTRAINT payouts_amount_reversed CHECK (((amount_reversed >= 0) AND (amount_reversed <= amount))),
    CONSTRAINT payouts_currency CHECK ((currency ~ '^[A-Z]{3}$'::text)),
    CONSTRAINT payouts_failure CHECK ((length(failure) <= 1000)),
    CONSTRAINT payouts_id_format CHECK (((length(payout_id) = 28) AND (payout_id ~ '^pyo_[0-9a-f]*$'::text))),
    CONSTRAINT payouts_metadata_object CHECK ((jsonb_typeof(metadata) = 'object'::text)),
    CONSTRAINT payouts_nonce CHECK ((nonce = ((merchant_id || ':'::text) || payout_id))),
    CONSTRAINT payouts_psp_id CHECK (((length(psp_payout_id) >= 1) AND (length(psp_payout_id) <= 128))),
    CONSTRAINT payouts_status CHECK ((status = ANY (ARRAY['PENDING'::text, 'PAID'::text, 'FAILED'::text])))
);


--
-- Name: TABLE payouts; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.payouts IS 'Pay-outs from a seller''s wallet to its PSP destination.';


--
-- Name: COLUMN payouts.metadata; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.payouts.metadata IS 'the merchant''s metadata: a JSON object of strings, {} when none';


--
-- Name: COLUMN payouts.amount_reversed; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.payouts.amount_reversed IS 'what the PSP took back of the paid pay-out so far, booked back to the seller''s wallet (a whole reversal: FAILED)';


--
-- Name: COLUMN payouts.psp_contact; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.payouts.psp_contact IS 'none: no attempt can have reached the PSP; trying: an attempt holds the key''s lease, none before it can have; maybe: one may have (a byte sent, or a holder that never said)';


--
-- Name: COLUMN payouts.psp_conf; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.payouts.psp_conf IS 'the PSP settings its request carried when first sent ({"balance_account": ...}); NULL: not recorded';


--
-- Name: payouts_page(text, text, timestamp with time zone, timestamp with time zone, timestamp with time zone, text, boolean, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.payouts_page(p_merchant text, p_status text, p_gte timestamp with time zone, p_lt timestamp with time zone, p_at timestamp with time zone, p_id text, p_newer boolean, p_limit integer) RETURNS SETOF public.payouts
    LANGUAGE sql STABLE
    AS $$
    (SELECT x.*
       FROM payouts x
      WHERE NOT p_newer
        AND x.merchant_id = p_merchant
        AND x.created_at IS NOT NULL  -- the list index's predicate
        AND (p_status IS NULL OR x.status = p_status)
        AND (p_gte IS NULL OR x.created_at >= p_gte)
        AND (p_lt IS NULL OR x.created_at < p_lt)
        AND (p_at IS NULL OR (x.created_at, x.payout_id) < (p_at, p_id))
      ORDER BY x.merchant_id DESC, x.created_at DESC, x.payout_id DESC
      LIMIT p_limit)
    UNION ALL
    (SELECT x.*
       FROM payouts x
      WHERE p_newer
        AND x.merchant_id = p_merchant
        AND x.created_at IS NOT NULL  -- the list index's predicate
        AND (p_status IS NULL OR x.status = p_status)
        AND (p_gte IS NULL OR x.created_at >= p_gte)
        AND (p_lt IS NULL OR x.created_at < p_lt)
        AND (p_at IS NULL OR (x.created_at, x.payout_id) > (p_at, p_id))
      ORDER BY x.merchant_id, x.created_at, x.payout_id
      LIMIT p_limit);
$$;


--
-- Name: payouts_within_balance(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.payouts_within_balance() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    b  record;
BEGIN
    PERFORM 1 FROM wallets w
     WHERE w.merchant_id = NEW.merchant_id AND w.seller_account = NEW.seller_account
       AND w.currency = NEW.currency FOR UPDATE;
    SELECT * INTO b FROM seller_available(NEW.merchant_id, NEW.seller_account, NEW.currency);
    IF NEW.amount > b.available THEN
        RAISE EXCEPTION 'pay-out %: % exceeds the seller''s available %', NEW.payout_id,
            NEW.amount, b.available USING ERRCODE = 'PY008';
    END IF;
    RETURN NEW;
END
$$;


--
-- Name: psp_event_ids_keep(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.psp_event_ids_keep() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO psp_event_ids (psp, event_id, received_at)
        VALUES (NEW.psp, NEW.event_id, NEW.received_at);
        RETURN NEW;
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM psp_event_ids i
         WHERE i.psp = OLD.psp AND i.event_id = OLD.event_id
           AND i.received_at = OLD.received_at;
        RETURN OLD;
    ELSIF TG_OP = 'TRUNCATE' THEN
        TRUNCATE psp_event_ids;
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'psp_events: an event''s psp, event_id and received_at do not change'
        USING ERRCODE = 'feature_not_supported';
END
$$;


--
-- Name: psp_event_kept(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.psp_event_kept(p_psp text, p_event_id text) RETURNS TABLE(state text, outcome text, merchant_id text, checkout_id text)
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $_$
#variable_conflict use_column
DECLARE
    v_at  timestamptz;
BEGIN
    SELECT i.received_at INTO v_at
      FROM psp_event_ids i
     WHERE i.psp = p_psp AND i.event_id = p_event_id;
    IF NOT FOUND THEN
        RETURN;
    END IF;

    RETURN QUERY EXECUTE
        'SELECT e.state, e.outcome, e.merchant_id, e.checkout_id FROM psp_events e'
        ' WHERE e.psp = $1 AND e.event_id = $2 AND e.received_at = $3'
        USING p_psp, p_event_id, v_at;
    IF NOT FOUND THEN
        DELETE FROM psp_event_ids i WHERE i.psp = p_psp AND i.event_id = p_event_id;
    END IF;
END
$_$;


--
-- Name: psp_event_state(text, text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.psp_event_state(p_psp text, p_event_id text, p_reference text, p_outcome text) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $_$
BEGIN
    -- PL/pgSQL, not SQL: its query's plan is kept for the session (a SQL
    -- function with SET is never inlined, and was planned at every call:
    -- once per webhook, bench/hook_counts.sh)
    RETURN CASE
        WHEN p_outcome LIKE 'unknown\_%'
             AND coalesce(p_reference, '') <> ''
             AND p_reference !~ '^[A-Za-z0-9_-]{1,64}:[A-Za-z0-9_-]{1,64}$'
            THEN 'foreign'
        WHEN EXISTS (SELECT 1 FROM webhook_events we
                      WHERE we.psp = p_psp AND we.event_id = p_event_id)
            THEN 'applied'
        ELSE 'pending'
    END;
END
$_$;


--
-- Name: psp_events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.psp_events (
    psp text NOT NULL,
    event_id text NOT NULL,
    received_at timestamp with time zone DEFAULT now() NOT NULL,
    state text NOT NULL,
    body bytea NOT NULL,
    headers jsonb DEFAULT '{}'::jsonb NOT NULL,
    key_id text,
    kind text NOT NULL,
    type text DEFAULT ''::text NOT NULL,
    token text,
    reference text,
    amount bigint,
    currency text,
    payment_ref text,
    object_ref text,
    tokens text[],
    outcome text,
    merchant_id text,
    checkout_id text,
    applied_at timestamp with time zone,
    unmatched_at timestamp with time zone,
    method jsonb,
    forwarded_to text,
    forward_tried_at timestamp with time zone,
    forward_waiting_at timestamp with time zone
)
PARTITION BY RANGE (received_at);


--
-- Name: TABLE psp_events; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.psp_events IS 'Every verified PSP event as received (signed bytes, the verification''s header values, the verifying key''s id), partitioned by month, with its state: applied, pending, foreign, unmatched, or forwarded (to the shard that owns it).';


--
-- Name: COLUMN psp_events.body; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.psp_events.body IS 'the bytes the PSP signed; sealed ("v1." text as bytes, associated data psp_event:<psp>:<event_id>) when they carry a reusable payment-method token';


--
-- Name: COLUMN psp_events.method; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.psp_events.method IS 'METHOD_SAVED: {token_sealed, token_index, psp_customer, display}, what replaying it needs; the token only sealed';


--
-- Name: COLUMN psp_events.forwarded_to; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.psp_events.forwarded_to IS 'forwarded: the shard (payments_shard name) whose own inbox now keeps and applies the event; NULL otherwise';


--
-- Name: COLUMN psp_events.forward_tried_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.psp_events.forward_tried_at IS 'the home shard''s last try to find the event''s owning shard (NULL: none)';


--
-- Name: COLUMN psp_events.forward_waiting_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.psp_events.forward_waiting_at IS 'the home shard''s last try to find the event''s owning shard at which some shard did not answer (NULL: none did not)';


--
-- Name: psp_events_retry_batch(integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.psp_events_retry_batch(p_unmatched_after integer, p_limit integer) RETURNS SETOF public.psp_events
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    SET jit TO 'off'
    SET enable_seqscan TO 'off'
    SET enable_bitmapscan TO 'off'
    AS $$
BEGIN
    RETURN QUERY
    SELECT pe.* FROM psp_events pe
     WHERE pe.state = 'pending'
       AND (pe.received_at > now() - make_interval(secs => p_unmatched_after)
            OR pe.forward_waiting_at IS NULL
            OR pe.forward_waiting_at <= now() - make_interval(secs => p_unmatched_after))
     ORDER BY pe.received_at
     LIMIT p_limit
       FOR UPDATE SKIP LOCKED;
END
$$;


--
-- Name: psp_events_row_checks(text, text, text, text, bytea, text, text, jsonb, timestamp with time zone, timestamp with time zone, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.psp_events_row_checks(psp text, event_id text, type text, key_id text, body bytea, state text, kind text, method jsonb, applied_at timestamp with time zone, unmatched_at timestamp with time zone, forwarded_to text) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE
    AS $_$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    -- (a value between two bounds is tested as a member of a range: this
    -- CASE is prepared anew in every transaction, one step per operator,
    -- and the range is one operator where the two bounds were three)
    v_broken := CASE
        WHEN NOT ((state = 'applied'::text) = (applied_at IS NOT NULL)) THEN 'psp_events_applied'
        WHEN NOT (((state = 'forwarded'::text) = (forwarded_to IS NOT NULL)) AND ((forwarded_to IS NULL) OR (forwarded_to ~ '^[a-z0-9_]{1,16}$'::text))) THEN 'psp_events_forwarded'
        WHEN NOT ((kind <> 'METHOD_SAVED'::text) OR ((SUBSTRING(body FROM 1 FOR 3) = '\x76312e'::bytea) AND ((method IS NULL) OR ((method ->> 'token_sealed'::text) ~~ 'v1.%'::text)))) THEN 'psp_events_method_sealed'
        WHEN NOT ((length(psp) <@ int4range(1, 64, '[]')) AND (length(event_id) <@ int4range(1, 255, '[]')) AND (length(type) <= 100) AND (length(COALESCE(key_id, ''::text)) <= 128) AND (octet_length(body) <= 1048576)) THEN 'psp_events_sizes'
        WHEN NOT (state = ANY (ARRAY['applied'::text, 'pending'::text, 'foreign'::text, 'unmatched'::text, 'forwarded'::text, 'unreadable'::text])) THEN 'psp_events_state'
        WHEN NOT ((state <> 'unmatched'::text) OR (unmatched_at IS NOT NULL)) THEN 'psp_events_unmatched'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "psp_events" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'psp_events', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$_$;


--
-- Name: psp_token_key(text, text, text[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.psp_token_key(p_psp text, p_token text, p_tokens text[]) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_tok  text;
BEGIN
    IF coalesce(p_token, '') = '' OR coalesce(cardinality(p_tokens), 0) = 0 THEN
        RETURN p_token;
    END IF;
    FOREACH v_tok IN ARRAY p_tokens LOOP
        PERFORM 1 FROM psp_tokens t WHERE t.psp = p_psp AND t.psp_token = v_tok;
        IF FOUND THEN
            RETURN v_tok;
        END IF;
    END LOOP;
    RETURN p_token;
END
$$;


--
-- Name: psp_unit_coarsest(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.psp_unit_coarsest(p_currency text) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT CASE
               WHEN p_currency IN ('CLF', 'CVE', 'IDR', 'MGA', 'UYW') THEN 100
               WHEN p_currency IN ('BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND') THEN 10
               ELSE 1
           END::bigint
$$;


--
-- Name: recon_begin(text, text, text, text, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.recon_begin(p_psp text, p_dialect text, p_sha256 text, p_file text, p_rows integer) RETURNS bigint
    LANGUAGE sql
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT recon_begin(p_psp, p_dialect, p_sha256, p_file, p_rows, NULL);
$$;


--
-- Name: recon_begin(text, text, text, text, integer, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.recon_begin(p_psp text, p_dialect text, p_sha256 text, p_file text, p_rows integer, p_shard text) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_id  bigint;
    v_r   recon_reports%ROWTYPE;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('payments-reconcile'));

    -- over shards (p_shard given) the tool asked every shard in its first
    -- phase: a shard that never saw the PSP may still own rows by nonce
    IF p_shard IS NULL AND NOT EXISTS (SELECT 1 FROM checkouts c WHERE c.psp = p_psp) THEN
        RAISE EXCEPTION 'unknown PSP "%": no checkout was ever registered with it', p_psp
            USING ERRCODE = 'PY011';
    END IF;

    SELECT * INTO v_r FROM recon_reports r WHERE r.sha256 = p_sha256;
    IF FOUND THEN
        IF v_r.psp <> p_psp OR v_r.dialect <> p_dialect THEN
            RAISE EXCEPTION 'this file was reconciled before as report % for PSP "%" (dialect %), not "%" (dialect %): nothing done',
                v_r.report_id, v_r.psp, v_r.dialect, p_psp, p_dialect
                USING ERRCODE = 'PY012';
        END IF;
        RETURN NULL;
    END IF;

    INSERT INTO recon_reports (psp, dialect, sha256, file_name, row_count, shard)
    VALUES (p_psp, p_dialect, p_sha256, left(coalesce(p_file, ''), 1000), p_rows, p_shard)
    RETURNING report_id INTO v_id;

    RETURN v_id;
END
$$;


--
-- Name: recon_rows; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.recon_rows (
    report_id bigint NOT NULL,
    record integer NOT NULL,
    row_id text NOT NULL,
    type text NOT NULL,
    psp_type text DEFAULT ''::text NOT NULL,
    payment_ref text DEFAULT ''::text NOT NULL,
    object_ref text DEFAULT ''::text NOT NULL,
    reference text DEFAULT ''::text NOT NULL,
    currency text NOT NULL,
    gross bigint NOT NULL,
    fee bigint NOT NULL,
    net bigint NOT NULL,
    net_currency text NOT NULL,
    booked_on text DEFAULT ''::text NOT NULL,
    outcome text,
    merchant_id text,
    checkout_id text,
    psp_gross text DEFAULT ''::text NOT NULL,
    psp_fee text DEFAULT ''::text NOT NULL,
    psp_net text DEFAULT ''::text NOT NULL,
    customer_currency text DEFAULT ''::text NOT NULL,
    customer_amount bigint,
    CONSTRAINT recon_rows_currency CHECK ((currency ~ '^[A-Z]{3}$'::text)),
    CONSTRAINT recon_rows_net_currency CHECK ((net_currency ~ '^[A-Z]{3}$'::text)),
    CONSTRAINT recon_rows_outcome CHECK ((outcome = ANY (ARRAY['matched'::text, 'auto_fixed'::text, 'needs_person'::text, 'unclassified'::text, 'seen_before'::text, 'not_ours'::text]))),
    CONSTRAINT recon_rows_record CHECK ((record >= 2)),
    CONSTRAINT recon_rows_row_id CHECK (((length(row_id) >= 1) AND (length(row_id) <= 255))),
    CONSTRAINT recon_rows_type CHECK ((type = ANY (ARRAY['payment'::text, 'refund'::text, 'refund_failure'::text, 'dispute'::text, 'dispute_won'::text, 'payout'::text, 'payout_failure'::text, 'fee'::text, 'bank_payout'::text, 'other'::text])))
);


--
-- Name: TABLE recon_rows; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.recon_rows IS 'One row per data row of a report, as the parser normalised it (amounts in ISO minor units).  outcome: what the run made of it.';


--
-- Name: COLUMN recon_rows.psp_gross; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.recon_rows.psp_gross IS 'the gross as the PSP wrote it when it has no exact value in ISO minor units (gross holds it rounded, never matched nor booked: a person''s); '''' otherwise';


--
-- Name: COLUMN recon_rows.psp_fee; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.recon_rows.psp_fee IS 'the fee as the PSP computed it when finer than ISO minor units (fee holds it rounded half to even, as booked); '''' otherwise';


--
-- Name: COLUMN recon_rows.psp_net; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.recon_rows.psp_net IS 'the net as the PSP computed it when finer than ISO minor units (net holds gross - fee as booked, or it rounded half to even); '''' otherwise';


--
-- Name: COLUMN recon_rows.customer_currency; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.recon_rows.customer_currency IS 'the currency the customer paid in when the PSP settled the row in another (Stripe''s customer_facing_currency); '''' otherwise';


--
-- Name: COLUMN recon_rows.customer_amount; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.recon_rows.customer_amount IS 'the amount the customer paid, ISO minor units of customer_currency; NULL when customer_currency is ''''';


--
-- Name: recon_book_fee(bigint, public.recon_rows, text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.recon_book_fee(p_report bigint, r public.recon_rows, p_merchant text, p_checkout text, p_order text DEFAULT NULL::text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    SET jit TO 'off'
    SET enable_seqscan TO 'off'
    AS $$
DECLARE
    v_order  text := p_order;
    v_txn    bigint;
    v_psp    text;
BEGIN
    IF r.fee = 0 OR p_merchant IS NULL THEN
        RETURN;
    END IF;

    SELECT rp.psp INTO v_psp FROM recon_reports rp WHERE rp.report_id = p_report;

    IF v_order IS NULL AND p_checkout IS NOT NULL THEN
        SELECT o.payment_order_id INTO v_order FROM payment_orders o
         WHERE o.merchant_id = p_merchant AND o.checkout_id = p_checkout
         ORDER BY o.line_no LIMIT 1;
    END IF;

    INSERT INTO ledger_transactions (merchant_id, checkout_id, payment_order_id, source,
                                     kind, object_id)
    VALUES (p_merchant, CASE WHEN v_order IS NULL THEN NULL ELSE p_checkout END, v_order,
            'reconciliation:' || v_psp || ':' || r.row_id || ':fee', 'fee', r.row_id)
    RETURNING txn_id INTO v_txn;

    INSERT INTO ledger_entries (merchant_id, txn_id, entry_no, account, amount, currency)
    VALUES (p_merchant, v_txn, 1, 'psp_fees:' || v_psp, r.fee, r.net_currency),
           (p_merchant, v_txn, 2, 'psp_clearing:' || v_psp, -r.fee, r.net_currency);

    -- audited once per merchant and report at the end of recon_run
    INSERT INTO recon_mismatches (report_id, record, psp, class, kind, merchant_id,
                                  checkout_id, currency, amount, evidence)
    VALUES (p_report, r.record, v_psp, 'auto_fixed', 'fee_booked', p_merchant,
            p_checkout, r.net_currency, r.fee,
            jsonb_build_object('report_row', recon_row_json(r),
                'ours', jsonb_build_object('txn_id', v_txn,
                                           'account', 'psp_fees:' || v_psp),
                'ledger', jsonb_build_array(
                    jsonb_build_object('txn_id', v_txn, 'entry_no', 1,
                        'account', 'psp_fees:' || v_psp, 'amount', r.fee,
                        'currency', r.net_currency),
                    jsonb_build_object('txn_id', v_txn, 'entry_no', 2,
                        'account', 'psp_clearing:' || v_psp, 'amount', -r.fee,
                        'currency', r.net_currency))));
END
$$;


--
-- Name: recon_check_flag(bigint, text, text, text, text, bigint, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.recon_check_flag(p_report bigint, p_kind text, p_merchant text, p_checkout text, p_currency text, p_amount bigint, p_ours jsonb) RETURNS void
    LANGUAGE sql
    SET search_path TO 'public', 'pg_temp'
    AS $$
    INSERT INTO recon_mismatches (report_id, record, psp, class, kind, merchant_id,
                                  checkout_id, currency, amount, evidence)
    SELECT p_report, NULL, rp.psp, 'needs_person', p_kind, p_merchant, p_checkout,
           p_currency, p_amount,
           jsonb_build_object('report_row', NULL, 'ours', p_ours,
               'ledger', CASE WHEN p_checkout IS NULL THEN '[]'::jsonb
                              ELSE recon_ledger_json(p_merchant, p_checkout) END)
      FROM recon_reports rp WHERE rp.report_id = p_report;
$$;


--
-- Name: recon_checkout_json(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.recon_checkout_json(p_merchant text, p_checkout text) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT jsonb_build_object('merchant_id', c.merchant_id, 'checkout_id', c.checkout_id,
               'psp', c.psp, 'status', c.status, 'amount_total', c.amount_total,
               'currency', c.currency, 'created_at', c.created_at,
               'orders', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                              'payment_order_id', o.payment_order_id,
                              'seller_account', o.seller_account, 'amount', o.amount,
                              'currency', o.currency, 'status', o.status)
                            ORDER BY o.line_no), '[]'::jsonb)
                            FROM payment_orders o
                           WHERE o.merchant_id = c.merchant_id AND o.checkout_id = c.checkout_id))
      FROM checkouts c
     WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout;
$$;


--
-- Name: recon_checks(bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.recon_checks(p_report bigint) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    x    record;
    n    int := 0;
BEGIN
    -- every wallet equals its ledger sum (seller_payable is credited: negative)
    FOR x IN
        SELECT coalesce(w.merchant_id, l.merchant_id) AS merchant_id,
               coalesce(w.seller_account, l.seller) AS seller,
               coalesce(w.currency, l.currency) AS currency,
               coalesce(w.balance, 0) AS wallet, coalesce(l.total, 0) AS ledger
          FROM wallets w
          FULL JOIN (SELECT e.merchant_id, substr(e.account, 16) AS seller, e.currency,
                            -sum(e.amount) AS total
                       FROM ledger_entries e
                      WHERE e.account LIKE 'seller\_payable:%'
                      GROUP BY 1, 2, 3) l
            ON l.merchant_id = w.merchant_id AND l.seller = w.seller_account
           AND l.currency = w.currency
         WHERE coalesce(w.balance, 0) <> coalesce(l.total, 0)
    LOOP
        PERFORM recon_check_flag(p_report, 'wallet_ledger_differs', x.merchant_id, NULL,
            x.currency, (x.wallet - x.ledger)::bigint,
            jsonb_build_object('seller_account', x.seller, 'wallet', x.wallet,
                               'ledger', x.ledger));
        n := n + 1;
    END LOOP;

    FOR x IN
        SELECT o.merchant_id, o.checkout_id, o.payment_order_id, o.status, o.amount,
               o.currency, coalesce(t.payments, 0) AS payments, coalesce(t.total, 0) AS total
          FROM payment_orders o
          LEFT JOIN (SELECT lt.merchant_id, lt.payment_order_id,
                            count(*) FILTER (WHERE lt.kind = 'payment'
                                               AND lt.source NOT LIKE 'reconciliation:%:fee'
                                               -- a capture the PSP took back: its
                                               -- booking and the reversal net to nought
                                               AND NOT EXISTS (
                                                   SELECT 1 FROM captures cx
                                                    WHERE cx.merchant_id = lt.merchant_id
                                                      AND cx.capture_id = lt.object_id
                                                      AND cx.status = 'FAILED'))
                                AS payments,
                            count(*) AS total
                       FROM ledger_transactions lt
                      WHERE lt.payment_order_id IS NOT NULL
                      GROUP BY 1, 2) t
            ON t.merchant_id = o.merchant_id AND t.payment_order_id = o.payment_order_id
         -- an automatic order is booked once; a manual-capture one once
         -- per capture that succeeded
         WHERE (o.status = 'SUCCESS'
                AND coalesce(t.payments, 0)
                    <> CASE WHEN o.amount_captured IS NULL THEN 1
                            ELSE (SELECT count(*) FROM captures cx
                                   WHERE cx.merchant_id = o.merchant_id
                                     AND cx.payment_order_id = o.payment_order_id
                                     AND cx.kind = 'capture'
                                     AND cx.status = 'SUCCEEDED') END)
            OR (o.status <> 'SUCCESS' AND coalesce(t.total, 0) > 0)
    LOOP
        PERFORM recon_check_flag(p_report,
            CASE WHEN x.status <> 'SUCCESS' THEN 'ledger_on_unpaid_order'
                 WHEN x.payments = 0 THEN 'success_order_without_ledger'
                 ELSE 'payment_booked_twice' END,
            x.merchant_id, x.checkout_id, x.currency, x.amount,
            jsonb_build_object('payment_order_id', x.payment_order_id, 'status', x.status,
                               'payment_transactions', x.payments,
                               'transactions', x.total));
        n := n + 1;
    END LOOP;

    -- refunds never exceed captures (the PENDING ones are reserved)
    FOR x IN
        SELECT o.merchant_id, o.checkout_id, o.payment_order_id, o.amount, o.currency,
               sum(f.amount) AS refunded
          FROM refunds f
          JOIN payment_orders o ON o.merchant_id = f.merchant_id
                               AND o.payment_order_id = f.payment_order_id
         WHERE f.status IN ('SUCCEEDED', 'PENDING')
         GROUP BY 1, 2, 3, 4, 5, o.amount_captured
        HAVING sum(f.amount) > coalesce(o.amount_captured, o.amount)
    LOOP
        PERFORM recon_check_flag(p_report, 'refunds_exceed_capture', x.merchant_id,
            x.checkout_id, x.currency, (x.refunded - x.amount)::bigint,
            jsonb_build_object('payment_order_id', x.payment_order_id,
                               'captured', x.amount, 'refunded', x.refunded));
        n := n + 1;
    END LOOP;

    -- the audit chains verify
    FOR x IN SELECT m.merchant_id FROM merchants m ORDER BY 1 LOOP
        IF NOT pay_audit_verify(x.merchant_id) THEN
            PERFORM recon_check_flag(p_report, 'audit_chain_broken', x.merchant_id,
                NULL, NULL, NULL, jsonb_build_object('merchant_id', x.merchant_id));
            n := n + 1;
        END IF;
    END LOOP;

    RETURN n;
END
$$;


--
-- Name: recon_failure_shown(bigint, text, text, text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.recon_failure_shown(p_report bigint, p_type text, p_psp_id text, p_nonce text, p_merchant text, p_object text) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT EXISTS (SELECT 1 FROM recon_rows rr
                    WHERE rr.report_id = p_report
                      AND rr.type IN ('refund_failure', 'payout_failure')
                      AND rr.type = p_type
                      AND ((p_psp_id <> '' AND rr.object_ref = p_psp_id)
                           OR (p_nonce <> '' AND rr.reference = p_nonce)))
        OR EXISTS (SELECT 1 FROM recon_seen s
                     JOIN recon_rows rr ON rr.report_id = s.report_id
                                       AND rr.record = s.record
                    WHERE s.merchant_id = p_merchant AND s.object_id = p_object
                      AND rr.type = p_type)
$$;


--
-- Name: recon_flag(bigint, public.recon_rows, text, text, text, text, text, bigint, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.recon_flag(p_report bigint, r public.recon_rows, p_class text, p_kind text, p_merchant text, p_checkout text, p_currency text, p_amount bigint, p_ours jsonb) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    INSERT INTO recon_mismatches (report_id, record, psp, class, kind, merchant_id,
                                  checkout_id, currency, amount, evidence)
    SELECT p_report, r.record, rp.psp, p_class, p_kind, p_merchant, p_checkout,
           p_currency, p_amount,
           jsonb_build_object(
               'report_row', CASE WHEN r.record IS NULL THEN NULL ELSE recon_row_json(r) END,
               'ours', p_ours,
               'ledger', CASE WHEN p_checkout IS NULL THEN '[]'::jsonb
                              ELSE recon_ledger_json(p_merchant, p_checkout) END)
      FROM recon_reports rp WHERE rp.report_id = p_report;
END
$$;


--
-- Name: recon_ledger_json(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.recon_ledger_json(p_merchant text, p_checkout text) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'txn_id', t.txn_id, 'payment_order_id', t.payment_order_id,
               'source', t.source, 'entry_no', e.entry_no, 'account', e.account,
               'amount', e.amount, 'currency', e.currency)
             ORDER BY t.txn_id, e.entry_no), '[]'::jsonb)
      FROM ledger_transactions t
      JOIN ledger_entries e ON e.merchant_id = t.merchant_id AND e.txn_id = t.txn_id
     WHERE t.merchant_id = p_merchant AND t.checkout_id = p_checkout;
$$;


--
-- Name: recon_money(bigint, public.recon_rows); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.recon_money(p_report bigint, r public.recon_rows) RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    SET jit TO 'off'
    SET enable_seqscan TO 'off'
    AS $$
#variable_conflict use_column
DECLARE
    v_psp     text;
    n         record;
    f         refunds%ROWTYPE;
    d         disputes%ROWTYPE;
    p         payouts%ROWTYPE;
    v_m       text;
    v_co      text;
    v_order   text;
    v_obj     text;
    v_j       jsonb;
    v_kind    text;
    v_class   text := 'needs_person';
    v_amount  bigint := r.gross;
    v_applied record;
    v_event   text;
    v_before  bigint;
    v_booked  bigint;
    -- the amount the row says moved: out for a refund or pay-out, back for
    -- its failure
    v_moved   bigint := CASE WHEN r.type IN ('refund_failure', 'payout_failure')
                             THEN r.gross ELSE -r.gross END;
BEGIN
    SELECT rp.psp INTO v_psp FROM recon_reports rp WHERE rp.report_id = p_report;
    SELECT * INTO n FROM nonce_split(nullif(r.reference, ''));

    IF r.type IN ('refund', 'refund_failure') THEN
        IF n.merchant_id IS NOT NULL THEN
            SELECT * INTO f FROM refunds rf
             WHERE rf.merchant_id = n.merchant_id AND rf.refund_id = n.object_id
               AND rf.psp = v_psp;
        END IF;
        IF f.refund_id IS NULL AND r.object_ref <> '' THEN
            SELECT * INTO f FROM refunds rf
             WHERE rf.psp = v_psp AND rf.psp_refund_id = r.object_ref;
        END IF;

        IF f.refund_id IS NULL THEN
            -- refunded at the PSP, not here: the payment's checkout, if known
            SELECT pp.merchant_id, pp.checkout_id INTO v_m, v_co FROM psp_payments pp
             WHERE pp.psp = v_psp AND pp.payment_ref = nullif(r.payment_ref, '');
            v_kind := r.type || '_unknown_here';
        ELSE
            v_m := f.merchant_id;
            v_co := f.checkout_id;
            v_order := f.payment_order_id;
            v_obj := f.refund_id;
            v_j := to_jsonb(f);
            IF r.type = 'refund' AND r.object_ref <> ''
               AND f.psp_refund_id IS NOT NULL AND r.object_ref <> f.psp_refund_id THEN
                -- another PSP refund than ours under our nonce: a second
                -- refund the PSP made (as the webhook's object_mismatch);
                -- never applied as ours
                v_kind := 'refund_object_differs';
            ELSIF f.currency <> r.currency AND r.customer_currency = f.currency THEN
                -- settled in another currency (Stripe's customer_facing_*):
                -- ours, not bookable without a conversion; a person's
                v_kind := r.type || '_settled_in_other_currency';
                v_j := v_j || jsonb_build_object('customer_amount', r.customer_amount,
                                                 'customer_currency', r.customer_currency);
            ELSIF f.currency <> r.currency OR f.amount <> v_moved THEN
                v_kind := 'refund_amount_differs';
                v_amount := v_moved - f.amount;
            ELSIF r.type = 'refund_failure' THEN
                IF f.status <> 'FAILED' THEN
                    v_event := 'REFUND_FAILED';
                END IF;
            ELSIF f.status = 'FAILED' THEN
                IF NOT recon_failure_shown(p_report, 'refund_failure', f.psp_refund_id,
                                           f.nonce, f.merchant_id, f.refund_id) THEN
                    v_kind := 'refund_failed_here';
                END IF;
            ELSIF f.status = 'PENDING' THEN
                v_event := 'REFUND_SUCCEEDED';
            END IF;
        END IF;

    ELSIF r.type IN ('dispute', 'dispute_won') THEN
        IF r.object_ref <> '' THEN
            SELECT * INTO d FROM disputes dd
             WHERE dd.psp = v_psp AND dd.psp_dispute_ref = r.object_ref;
        END IF;
        IF d.dispute_id IS NULL THEN
            SELECT pp.merchant_id, pp.checkout_id INTO v_m, v_co FROM psp_payments pp
             WHERE pp.psp = v_psp AND pp.payment_ref = nullif(r.payment_ref, '');
            v_kind := 'dispute_unknown_here';
        ELSE
            v_m := d.merchant_id;
            v_co := d.checkout_id;
            v_obj := d.dispute_id;
            v_j := to_jsonb(d);
            IF d.currency <> r.currency AND r.customer_currency = d.currency THEN
                v_kind := r.type || '_settled_in_other_currency';
                v_j := v_j || jsonb_build_object('customer_amount', r.customer_amount,
                                                 'customer_currency', r.customer_currency);
            ELSIF d.currency <> r.currency OR d.amount <> abs(r.gross) THEN
                v_kind := 'dispute_amount_differs';
                v_amount := abs(r.gross) - d.amount;
            ELSIF r.type = 'dispute_won' THEN
                -- the reversals the PSP reported of this dispute before this
                -- row (in any report, whatever became of them) against those
                -- its books show (ledger transactions of the dispute that
                -- gave psp_clearing:<psp> money back: one for each win): a
                -- reversal beyond them is money back that no ledger holds (a
                -- row the PSP booked twice, a win whose webhook was lost),
                -- for a person.  Counted, not read from the status: a
                -- dispute won and then lost again (Adyen's SecondChargeback)
                -- is LOST, and its ChargebackReversed is still booked
                SELECT count(*) INTO v_before
                  FROM recon_rows rr
                  JOIN recon_seen s ON s.psp = v_psp AND s.row_id = rr.row_id
                                   AND s.report_id = rr.report_id AND s.record = rr.record
                 WHERE rr.object_ref = r.object_ref AND rr.type = 'dispute_won'
                   AND rr.row_id <> r.row_id;
                SELECT count(DISTINCT t.source) INTO v_booked
                  FROM ledger_transactions t
                  JOIN ledger_entries e ON e.merchant_id = t.merchant_id AND e.txn_id = t.txn_id
                 WHERE t.merchant_id = d.merchant_id AND t.checkout_id = d.checkout_id
                   AND t.kind = 'dispute' AND t.object_id = d.dispute_id
                   AND e.account = 'psp_clearing:' || v_psp AND e.amount > 0;
                IF v_before >= v_booked THEN
                    v_kind := 'dispute_reversal_not_booked';
                    v_j := v_j || jsonb_build_object('reversals_reported', v_before + 1,
                                                     'reversals_booked', v_booked);
                END IF;
            ELSIF r.type = 'dispute' THEN
                -- the withdrawals the PSP reported of this dispute before
                -- this row (in any report, whatever became of them) against
                -- those its books show: a withdrawal beyond them is money
                -- the PSP took that no ledger holds (Adyen's
                -- SecondChargeback after a ChargebackReversed, its webhook
                -- lost): for a person, never matched, its fee with it
                SELECT count(*) INTO v_before
                  FROM recon_rows rr
                  JOIN recon_seen s ON s.psp = v_psp AND s.row_id = rr.row_id
                                   AND s.report_id = rr.report_id AND s.record = rr.record
                 WHERE rr.object_ref = r.object_ref AND rr.type = 'dispute'
                   AND rr.row_id <> r.row_id;
                SELECT count(DISTINCT t.source) INTO v_booked
                  FROM ledger_transactions t
                  JOIN ledger_entries e ON e.merchant_id = t.merchant_id AND e.txn_id = t.txn_id
                 WHERE t.merchant_id = d.merchant_id AND t.checkout_id = d.checkout_id
                   AND t.kind = 'dispute' AND t.object_id = d.dispute_id
                   AND e.account = 'psp_clearing:' || v_psp AND e.amount < 0;
                IF v_before >= v_booked THEN
                    v_kind := 'dispute_withdrawal_not_booked';
                    v_j := v_j || jsonb_build_object('withdrawals_reported', v_before + 1,
                                                     'withdrawals_booked', v_booked);
                END IF;
            END IF;
        END IF;

    ELSIF r.type IN ('payout', 'payout_failure') THEN
        IF n.merchant_id IS NOT NULL THEN
            SELECT * INTO p FROM payouts po
             WHERE po.merchant_id = n.merchant_id AND po.payout_id = n.object_id
               AND po.psp = v_psp;
        END IF;
        IF p.payout_id IS NULL AND r.object_ref <> '' THEN
            SELECT * INTO p FROM payouts po
             WHERE po.psp = v_psp AND po.psp_payout_id = r.object_ref;
        END IF;

        IF p.payout_id IS NULL THEN
            v_kind := r.type || '_unknown_here';
        ELSE
            v_m := p.merchant_id;
            v_obj := p.payout_id;
            v_j := to_jsonb(p);
            IF r.type = 'payout' AND r.object_ref <> ''
               AND p.psp_payout_id IS NOT NULL AND r.object_ref <> p.psp_payout_id THEN
                -- a second transfer under our nonce (the webhook's mismatch)
                v_kind := 'payout_object_differs';
            ELSIF r.type = 'payout_failure' AND p.currency = r.currency
                  AND r.gross > 0 AND r.gross < p.amount THEN
                -- part of the pay-out taken back (Stripe's partial transfer
                -- reversal, a row each): matched while the parts matched
                -- before and this one are within what the books took back
                -- (payouts.amount_reversed; all of it once FAILED)
                SELECT coalesce(sum(rr.gross), 0) INTO v_before
                  FROM recon_seen s
                  JOIN recon_rows rr ON rr.report_id = s.report_id AND rr.record = s.record
                 WHERE s.merchant_id = p.merchant_id AND s.object_id = p.payout_id
                   AND s.psp = v_psp AND s.row_id <> r.row_id
                   AND rr.type = 'payout_failure' AND rr.outcome IN ('matched', 'auto_fixed');
                IF v_before + r.gross > p.amount_reversed THEN
                    v_kind := 'payout_amount_differs';
                    v_amount := v_before + r.gross - p.amount_reversed;
                    v_j := v_j || jsonb_build_object('reversed_reported', v_before + r.gross);
                END IF;
            ELSIF p.currency <> r.currency OR p.amount <> v_moved THEN
                v_kind := 'payout_amount_differs';
                v_amount := v_moved - p.amount;
            ELSIF r.type = 'payout_failure' THEN
                IF p.status <> 'FAILED' THEN
                    v_event := 'PAYOUT_FAILED';
                END IF;
            ELSIF p.status = 'FAILED' THEN
                IF NOT recon_failure_shown(p_report, 'payout_failure', p.psp_payout_id,
                                           p.nonce, p.merchant_id, p.payout_id) THEN
                    v_kind := 'payout_failed_here';
                END IF;
            ELSIF p.status = 'PENDING' THEN
                v_event := 'PAYOUT_PAID';
            END IF;
        END IF;

    ELSE
        v_kind := r.type || '_reported';
    END IF;

    -- a gross with no exact value in ISO minor units (the PSP wrote 100.50
    -- ISK): compared rounded it could pass for ours; a person's, nothing
    -- applied nor booked (its object, when found, is shown by it)
    IF r.psp_gross <> '' THEN
        v_kind := 'gross_finer_than_iso';
        v_class := 'needs_person';
        v_event := NULL;
        v_amount := r.gross;
    END IF;

    IF v_obj IS NOT NULL THEN
        UPDATE recon_seen s SET object_id = v_obj
         WHERE s.psp = v_psp AND s.row_id = r.row_id;
        -- an earlier report's "missing at the PSP" of it was wrong
        UPDATE recon_mismatches m
           SET resolved_at = now(), resolution = 'found in report ' || p_report
         WHERE m.psp = v_psp AND m.kind IN ('refund_missing_at_psp', 'payout_missing_at_psp')
           AND m.resolved_at IS NULL AND m.merchant_id = v_m AND m.object_id = v_obj;
    END IF;

    -- a reversal an earlier report missed (its dispute_ or
    -- payout_reversal_missing_at_psp) is shown now: resolved when what
    -- the reports show reaches what the books hold (recon_run flags it
    -- again after this report's rows otherwise)
    IF r.type IN ('dispute_won', 'payout_failure') AND v_obj IS NOT NULL
       AND (v_kind IS NULL OR v_class = 'auto_fixed') THEN
        UPDATE recon_mismatches m
           SET resolved_at = now(), resolution = 'found in report ' || p_report
         WHERE m.psp = v_psp AND m.resolved_at IS NULL
           AND m.kind = CASE r.type WHEN 'dispute_won' THEN 'dispute_reversal_missing_at_psp'
                                    ELSE 'payout_reversal_missing_at_psp' END
           AND m.merchant_id = v_m AND m.object_id = v_obj;
    END IF;

    -- done at the PSP, not yet here: its webhook was lost; applied exactly
    -- as the webhook would be
    IF v_event IS NOT NULL THEN
        SELECT * INTO v_applied FROM pay_event_apply(v_psp, 'reconcile:' || r.row_id,
            v_event, 'reconciliation', NULL,
            CASE WHEN f.refund_id IS NOT NULL THEN f.nonce ELSE p.nonce END,
            v_moved, r.currency, nullif(r.payment_ref, ''),
            CASE WHEN f.refund_id IS NOT NULL
                 THEN coalesce(f.psp_refund_id, nullif(r.object_ref, ''))
                 ELSE coalesce(p.psp_payout_id, nullif(r.object_ref, '')) END,
            NULL) x;
        IF v_applied.outcome = 'applied' THEN
            v_class := 'auto_fixed';
            v_kind := r.type || '_webhook_missing';
            v_j := v_j || jsonb_build_object('was', coalesce(f.status, p.status),
                                             'event_id', 'reconcile:' || r.row_id);
        ELSE
            v_kind := r.type || '_webhook_apply_refused';
            v_j := v_j || jsonb_build_object('outcome', v_applied.outcome);
        END IF;
    END IF;

    -- the failure shown: a refund or pay-out flagged FAILED here by an
    -- earlier report was right after all
    IF r.type IN ('refund_failure', 'payout_failure') AND v_obj IS NOT NULL
       AND (v_kind IS NULL OR v_class = 'auto_fixed') THEN
        UPDATE recon_mismatches m
           SET resolved_at = now(),
               resolution = 'its failure is in report ' || p_report
         WHERE m.psp = v_psp AND m.kind IN ('refund_failed_here', 'payout_failed_here')
           AND m.resolved_at IS NULL AND m.merchant_id = v_m AND m.object_id = v_obj;
    END IF;

    IF v_kind IS NOT NULL THEN
        PERFORM recon_flag(p_report, r, v_class, v_kind, v_m, v_co,
            r.currency, v_amount, v_j);
        UPDATE recon_mismatches m SET object_id = v_obj
         WHERE m.report_id = p_report AND m.record = r.record AND m.kind = v_kind;
    END IF;

    IF v_class = 'needs_person' AND v_kind IS NOT NULL THEN
        RETURN QUERY SELECT 'needs_person'::text, v_m, v_co;
        RETURN;
    END IF;

    -- matched (or fixed): the PSP's fee of the row
    IF r.type IN ('refund', 'refund_failure', 'payout', 'payout_failure',
                  'dispute', 'dispute_won') THEN
        PERFORM recon_book_fee(p_report, r, v_m, v_co, v_order);
    END IF;

    RETURN QUERY SELECT CASE WHEN v_class = 'auto_fixed' OR r.fee <> 0
                             THEN 'auto_fixed' ELSE 'matched' END, v_m, v_co;
END
$$;


--
-- Name: recon_open(bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.recon_open(p_report bigint) RETURNS bigint
    LANGUAGE sql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT count(*) FROM recon_mismatches m
     WHERE m.report_id = p_report AND m.class <> 'auto_fixed' AND m.resolved_at IS NULL;
$$;


--
-- Name: recon_owned(text, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.recon_owned(p_psp text, p_rows jsonb) RETURNS TABLE(record integer, merchant_id text, found_by text)
    LANGUAGE sql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT r.record, coalesce(m.merchant_id, l.merchant_id),
           CASE WHEN m.merchant_id IS NOT NULL THEN 'nonce' ELSE l.found_by END
      FROM jsonb_to_recordset(coalesce(p_rows, '[]')) AS r(record integer, reference text,
                                                           payment_ref text, object_ref text)
      LEFT JOIN merchants m ON m.merchant_id = (nonce_split(nullif(r.reference, ''))).merchant_id
      LEFT JOIN LATERAL (SELECT x.merchant_id, x.found_by
                           FROM pay_event_locate(p_psp, NULL, NULL, r.payment_ref,
                                                 r.object_ref) x
                          WHERE m.merchant_id IS NULL) l ON true
     WHERE m.merchant_id IS NOT NULL OR l.merchant_id IS NOT NULL
     ORDER BY r.record;
$$;


--
-- Name: recon_payment(bigint, public.recon_rows); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.recon_payment(p_report bigint, r public.recon_rows) RETURNS TABLE(outcome text, merchant_id text, checkout_id text)
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    SET jit TO 'off'
    SET enable_seqscan TO 'off'
    AS $$
#variable_conflict use_column
DECLARE
    v_psp      text;
    c          checkouts%ROWTYPE;
    v_found    boolean := false;
    v_applied  record;
    v_round    bigint := 0;
    v_txn      bigint;
    v_person   boolean := false;
    v_expect   bigint;
    v_left     bigint;
    v_capture  text;
    v_whole    bigint;
    v_captured boolean := false;
    v_other    text;
    v_order    text;
BEGIN
    SELECT rp.psp INTO v_psp FROM recon_reports rp WHERE rp.report_id = p_report;

    IF r.reference <> '' AND position(':' IN r.reference) > 0 THEN
        SELECT * INTO c FROM checkouts ck
         WHERE ck.merchant_id = split_part(r.reference, ':', 1)
           AND ck.checkout_id = substr(r.reference,
                                       length(split_part(r.reference, ':', 1)) + 2)
           AND ck.nonce = r.reference AND ck.psp = v_psp;
        v_found := FOUND;
    END IF;

    IF NOT v_found AND r.payment_ref <> '' THEN
        SELECT ck.* INTO c FROM psp_payments pp
          JOIN checkouts ck ON ck.merchant_id = pp.merchant_id
                           AND ck.checkout_id = pp.checkout_id
         WHERE pp.psp = v_psp AND pp.payment_ref = r.payment_ref;
        v_found := FOUND;
    END IF;

    -- a gross with no exact value in ISO minor units (the PSP wrote 100.50
    -- ISK): no amount of ours is it, and rounding would make it one; a
    -- person's, nothing matched nor booked (the checkout, when found, is
    -- shown by it: not also missing at the PSP)
    IF r.psp_gross <> '' THEN
        PERFORM recon_flag(p_report, r, 'needs_person', 'gross_finer_than_iso',
            c.merchant_id, c.checkout_id, r.currency, r.gross,
            CASE WHEN v_found
                 THEN recon_checkout_json(c.merchant_id, c.checkout_id) END);
        RETURN QUERY SELECT 'needs_person'::text, c.merchant_id, c.checkout_id;
        RETURN;
    END IF;

    IF NOT v_found THEN
        PERFORM recon_flag(p_report, r, 'unclassified', 'unknown_payment', NULL, NULL,
            r.currency, r.gross, NULL);
        RETURN QUERY SELECT 'unclassified'::text, NULL::text, NULL::text;
        RETURN;
    END IF;

    -- another payment than the one booked for this checkout, under our
    -- reference: a second payment the PSP took (as a webhook naming it is
    -- mismatch); nothing of it is booked, a person refunds one
    IF r.payment_ref <> '' AND c.psp_payment_ref IS NOT NULL
       AND r.payment_ref <> c.psp_payment_ref THEN
        PERFORM recon_flag(p_report, r, 'needs_person', 'payment_differs',
            c.merchant_id, c.checkout_id, r.currency, r.gross,
            recon_checkout_json(c.merchant_id, c.checkout_id)
                || jsonb_build_object('booked_payment_ref', c.psp_payment_ref));
        RETURN QUERY SELECT 'needs_person'::text, c.merchant_id, c.checkout_id;
        RETURN;
    END IF;

    -- booked without the PSP's payment id (a sweeper's booking whose
    -- lookup listed no payment): a row naming another payment than the
    -- one an earlier row of this checkout matched is that second payment
    IF r.payment_ref <> '' AND c.psp_payment_ref IS NULL THEN
        SELECT rr.payment_ref INTO v_other FROM recon_seen s
          JOIN recon_rows rr ON rr.report_id = s.report_id AND rr.record = s.record
         WHERE s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
           AND s.psp = v_psp AND s.row_id <> r.row_id AND rr.type = 'payment'
           AND rr.outcome IN ('matched', 'auto_fixed')
           AND rr.payment_ref <> '' AND rr.payment_ref <> r.payment_ref
         ORDER BY rr.report_id, rr.record LIMIT 1;
        IF v_other IS NOT NULL THEN
            PERFORM recon_flag(p_report, r, 'needs_person', 'payment_differs',
                c.merchant_id, c.checkout_id, r.currency, r.gross,
                recon_checkout_json(c.merchant_id, c.checkout_id)
                    || jsonb_build_object('matched_payment_ref', v_other));
            RETURN QUERY SELECT 'needs_person'::text, c.merchant_id, c.checkout_id;
            RETURN;
        END IF;
    END IF;

    -- settled in another currency than the customer paid in (Stripe
    -- reports every row in the account's settlement currency; its
    -- customer_facing_* columns say what the customer paid): the payment
    -- is ours, but the ledger has no conversion to book (the payment is
    -- in the checkout's currency, the PSP's gross and fee in another), so
    -- a person books it, the conversion and the fee; nothing applied nor
    -- booked here.  Another currency without that: currency_differs
    IF r.currency <> c.currency THEN
        PERFORM recon_flag(p_report, r, 'needs_person',
            CASE WHEN r.customer_currency = c.currency
                 THEN 'settled_in_other_currency' ELSE 'currency_differs' END,
            c.merchant_id, c.checkout_id, r.currency, r.gross,
            recon_checkout_json(c.merchant_id, c.checkout_id)
                || CASE WHEN r.customer_currency = c.currency
                        THEN jsonb_build_object('customer_amount', r.customer_amount,
                                 'customer_currency', r.customer_currency,
                                 'customer_amount_less_total',
                                 r.customer_amount - c.amount_total)
                        ELSE '{}'::jsonb END);
        RETURN QUERY SELECT 'needs_person'::text, c.merchant_id, c.checkout_id;
        RETURN;
    END IF;

    -- what the row must show: the checkout's total, or for a paid checkout
    -- captured in parts (manual capture) what the books show captured.  A
    -- PSP settles each capture in a row of its own (Adyen) or the payment
    -- once (Stripe, one capture): the row matches a capture (the orders'
    -- parts one PSP capture made, by its PSP id) that no earlier row
    -- matched, else all of them when no earlier row matched any; the
    -- capture matched is the row's object in recon_seen, a row matching
    -- all has none
    v_expect := c.amount_total;
    IF c.status = 'SUCCESS' THEN
        SELECT count(*) > 0 INTO v_captured FROM captures cp
         WHERE cp.checkout_id = c.checkout_id AND cp.merchant_id = c.merchant_id
           AND cp.kind = 'capture' AND cp.status = 'SUCCEEDED';
    END IF;
    IF v_captured THEN
        v_expect := NULL;
        WITH parts AS (
            SELECT min(cp.capture_id) AS capture_id, sum(cp.amount)::bigint AS amount
              FROM captures cp
             WHERE cp.checkout_id = c.checkout_id AND cp.merchant_id = c.merchant_id
               AND cp.kind = 'capture' AND cp.status = 'SUCCEEDED'
             GROUP BY coalesce(cp.psp_ref, cp.capture_id)),
        earlier AS (
            SELECT s.object_id FROM recon_seen s
              JOIN recon_rows rr ON rr.report_id = s.report_id AND rr.record = s.record
             WHERE s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
               AND s.psp = v_psp AND s.row_id <> r.row_id AND rr.type = 'payment'
               AND rr.outcome IN ('matched', 'auto_fixed')),
        open_parts AS (
            SELECT pa.* FROM parts pa
             WHERE NOT EXISTS (SELECT 1 FROM earlier e
                                WHERE e.object_id IS NULL OR e.object_id = pa.capture_id))
        SELECT (SELECT coalesce(sum(op.amount), 0) FROM open_parts op),
               (SELECT op.capture_id FROM open_parts op
                 WHERE abs(op.amount - r.gross) <= 1
                 ORDER BY abs(op.amount - r.gross), op.capture_id LIMIT 1),
               (SELECT op.amount FROM open_parts op
                 WHERE abs(op.amount - r.gross) <= 1
                 ORDER BY abs(op.amount - r.gross), op.capture_id LIMIT 1),
               (SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM earlier)
                            THEN sum(pa.amount) END FROM parts pa)::bigint
          INTO v_left, v_capture, v_expect, v_whole;
        IF v_capture IS NULL AND abs(r.gross - v_whole) <= 1 THEN
            v_expect := v_whole;        -- every capture in one row
        END IF;
        IF v_expect IS NULL THEN
            PERFORM recon_flag(p_report, r, 'needs_person', 'amount_differs',
                c.merchant_id, c.checkout_id, r.currency, r.gross - v_left,
                recon_checkout_json(c.merchant_id, c.checkout_id));
            RETURN QUERY SELECT 'needs_person'::text, c.merchant_id, c.checkout_id;
            RETURN;
        END IF;
        IF v_capture IS NOT NULL THEN
            UPDATE recon_seen s SET object_id = v_capture
             WHERE s.psp = v_psp AND s.row_id = r.row_id;
        END IF;
    END IF;

    -- one minor unit off: a rounding remainder (an FX conversion, a
    -- per-line rounding at the PSP), booked and otherwise matched
    IF abs(r.gross - v_expect) = 1 THEN
        v_round := r.gross - v_expect;
    ELSIF r.gross <> v_expect THEN
        PERFORM recon_flag(p_report, r, 'needs_person', 'amount_differs',
            c.merchant_id, c.checkout_id, r.currency, r.gross - v_expect,
            recon_checkout_json(c.merchant_id, c.checkout_id));
        RETURN QUERY SELECT 'needs_person'::text, c.merchant_id, c.checkout_id;
        RETURN;
    END IF;

    IF c.status = 'FAILED' THEN
        PERFORM recon_flag(p_report, r, 'needs_person', 'paid_but_failed_here',
            c.merchant_id, c.checkout_id, r.currency, r.gross,
            recon_checkout_json(c.merchant_id, c.checkout_id));
        RETURN QUERY SELECT 'needs_person'::text, c.merchant_id, c.checkout_id;
        RETURN;
    END IF;

    IF c.status <> 'SUCCESS' THEN
        -- paid at the PSP, its webhook never arrived: applied exactly as the
        -- webhook would be (pay_event_apply: the payment's id noted too),
        -- the moves' source saying reconciliation.  A settlement row is
        -- money the PSP captured: CAPTURED, which books it whatever the
        -- stored capture mode (SUCCEEDED would only hold a manual-capture
        -- checkout, and its hold would later be released, the money never
        -- booked); a manual-capture checkout so paid is a person's too
        PERFORM set_config('payments.event_source', 'reconciliation', true);
        SELECT * INTO v_applied FROM pay_event_apply(v_psp, 'reconcile:' || r.row_id,
            'CAPTURED', 'reconciliation', NULL, c.nonce, c.amount_total, r.currency,
            nullif(r.payment_ref, ''), NULL, NULL) x;
        PERFORM set_config('payments.event_source', '', true);

        IF v_applied.outcome = 'applied' THEN
            PERFORM recon_flag(p_report, r, 'auto_fixed', 'webhook_missing',
                c.merchant_id, c.checkout_id, r.currency, r.gross,
                recon_checkout_json(c.merchant_id, c.checkout_id)
                    || jsonb_build_object('was', c.status, 'event_id', 'reconcile:' || r.row_id));
        ELSIF v_applied.outcome = 'captured_for_manual' THEN
            -- booked; the shop asked to capture it itself, and cannot now
            PERFORM recon_flag(p_report, r, 'needs_person', 'captured_for_manual',
                c.merchant_id, c.checkout_id, r.currency, r.gross,
                recon_checkout_json(c.merchant_id, c.checkout_id)
                    || jsonb_build_object('was', c.status, 'event_id', 'reconcile:' || r.row_id));
            v_person := true;
        ELSE
            PERFORM recon_flag(p_report, r, 'needs_person', 'webhook_apply_refused',
                c.merchant_id, c.checkout_id, r.currency, r.gross,
                recon_checkout_json(c.merchant_id, c.checkout_id)
                    || jsonb_build_object('outcome', v_applied.outcome));
            RETURN QUERY SELECT 'needs_person'::text, c.merchant_id, c.checkout_id;
            RETURN;
        END IF;
    END IF;

    -- an earlier report's missing_at_psp for this checkout was wrong
    UPDATE recon_mismatches m
       SET resolved_at = now(), resolution = 'found in report ' || p_report
     WHERE m.psp = v_psp AND m.kind = 'missing_at_psp' AND m.resolved_at IS NULL
       AND m.merchant_id = c.merchant_id AND m.checkout_id = c.checkout_id;

    -- the order the row's fee and remainder are booked on: the one the
    -- capture it matched was made for, else the checkout's first order
    -- paid (a manual checkout's first order may be left authorized or
    -- voided: a ledger transaction there is one on an unpaid order), else
    -- its first
    SELECT o.payment_order_id INTO v_order FROM payment_orders o
     WHERE o.merchant_id = c.merchant_id AND o.checkout_id = c.checkout_id
     ORDER BY o.payment_order_id IS DISTINCT FROM
                  (SELECT cp.payment_order_id FROM captures cp
                    WHERE cp.merchant_id = c.merchant_id
                      AND cp.capture_id = v_capture),
              o.status <> 'SUCCESS', o.line_no
     LIMIT 1;

    IF v_round <> 0 THEN
        v_txn := ledger_book(c.merchant_id, c.checkout_id, v_order,
            'fee', r.row_id, 'reconciliation:' || v_psp || ':' || r.row_id || ':rounding',
            r.currency, ARRAY['psp_clearing:' || v_psp, 'psp_rounding:' || v_psp],
            ARRAY[v_round, -v_round]);
        PERFORM recon_flag(p_report, r, 'auto_fixed', 'rounding_booked',
            c.merchant_id, c.checkout_id, r.currency, v_round,
            jsonb_build_object('txn_id', v_txn, 'account', 'psp_rounding:' || v_psp,
                               'amount_total', c.amount_total));
    END IF;

    PERFORM recon_book_fee(p_report, r, c.merchant_id, c.checkout_id, v_order);

    RETURN QUERY SELECT CASE WHEN v_person THEN 'needs_person'
                             WHEN c.status <> 'SUCCESS' OR r.fee <> 0 OR v_round <> 0
                             THEN 'auto_fixed' ELSE 'matched' END,
                        c.merchant_id, c.checkout_id;
END
$$;


--
-- Name: recon_report_of(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.recon_report_of(p_sha256 text) RETURNS bigint
    LANGUAGE sql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT r.report_id FROM recon_reports r WHERE r.sha256 = p_sha256;
$$;


--
-- Name: recon_row_json(public.recon_rows); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.recon_row_json(r public.recon_rows) RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT to_jsonb(r) - 'report_id' - 'outcome';
$$;


--
-- Name: recon_run(bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.recon_run(p_report bigint) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    SET jit TO 'off'
    SET enable_seqscan TO 'off'
    AS $$
DECLARE
    r       recon_rows%ROWTYPE;
    v_psp   text;
    v       record;
    v_from  timestamptz;
    v_to    timestamptz;
    c       record;
BEGIN
    SELECT rp.psp INTO v_psp FROM recon_reports rp WHERE rp.report_id = p_report;

    FOR r IN SELECT * FROM recon_rows rr WHERE rr.report_id = p_report ORDER BY rr.record LOOP
        INSERT INTO recon_seen (psp, row_id, report_id, record)
        VALUES (v_psp, r.row_id, p_report, r.record)
        ON CONFLICT (psp, row_id) DO NOTHING;

        IF NOT FOUND THEN
            UPDATE recon_rows rr SET outcome = 'seen_before'
             WHERE rr.report_id = p_report AND rr.record = r.record;
            CONTINUE;
        END IF;

        IF r.type = 'payment' THEN
            SELECT * INTO v FROM recon_payment(p_report, r) x;
        ELSIF r.type IN ('refund', 'refund_failure', 'dispute', 'dispute_won',
                         'payout', 'payout_failure') THEN
            SELECT * INTO v FROM recon_money(p_report, r) x;
        ELSIF r.type = 'bank_payout' THEN
            SELECT 'not_ours'::text AS outcome, NULL::text AS merchant_id,
                   NULL::text AS checkout_id INTO v;
        ELSIF r.type = 'fee' THEN
            PERFORM recon_flag(p_report, r, 'needs_person', 'fee_without_payment',
                NULL, NULL, r.net_currency, r.fee, NULL);
            SELECT 'needs_person'::text AS outcome, NULL::text AS merchant_id,
                   NULL::text AS checkout_id INTO v;
        ELSE
            PERFORM recon_flag(p_report, r, 'unclassified', 'unknown_row_type',
                NULL, NULL, r.currency, r.gross, NULL);
            SELECT 'unclassified'::text AS outcome, NULL::text AS merchant_id,
                   NULL::text AS checkout_id INTO v;
        END IF;

        UPDATE recon_rows rr
           SET outcome = v.outcome, merchant_id = v.merchant_id, checkout_id = v.checkout_id
         WHERE rr.report_id = p_report AND rr.record = r.record;
        -- a checkout is "shown" by its payment's row only: a refund of a
        -- payment the report left out does not hide the payment missing
        UPDATE recon_seen s
           SET merchant_id = v.merchant_id,
               checkout_id = CASE WHEN r.type = 'payment' THEN v.checkout_id END
         WHERE s.psp = v_psp AND s.row_id = r.row_id;
    END LOOP;

    -- Missing at the PSP: a checkout paid here, of this PSP, registered
    -- between the first and the last checkout this report matched, that no
    -- report (this one or an earlier one) ever showed.
    SELECT min(ck.created_at), max(ck.created_at) INTO v_from, v_to
      FROM recon_rows rr
      JOIN checkouts ck ON ck.merchant_id = rr.merchant_id AND ck.checkout_id = rr.checkout_id
     WHERE rr.report_id = p_report AND rr.type = 'payment';

    IF v_from IS NOT NULL THEN
        FOR c IN
            SELECT ck.merchant_id, ck.checkout_id, ck.amount_total, ck.currency
              FROM checkouts ck
             WHERE ck.psp = v_psp AND ck.status = 'SUCCESS'
               AND ck.created_at BETWEEN v_from AND v_to
               AND NOT EXISTS (SELECT 1 FROM recon_seen s
                                WHERE s.merchant_id = ck.merchant_id
                                  AND s.checkout_id = ck.checkout_id)
               AND NOT EXISTS (SELECT 1 FROM recon_mismatches m
                                WHERE m.kind = 'missing_at_psp' AND m.resolved_at IS NULL
                                  AND m.merchant_id = ck.merchant_id
                                  AND m.checkout_id = ck.checkout_id)
             ORDER BY ck.created_at, ck.merchant_id, ck.checkout_id
        LOOP
            INSERT INTO recon_mismatches (report_id, record, psp, class, kind, merchant_id,
                                          checkout_id, currency, amount, evidence)
            VALUES (p_report, NULL, v_psp, 'needs_person', 'missing_at_psp', c.merchant_id,
                    c.checkout_id, c.currency, c.amount_total,
                    jsonb_build_object('report_row', NULL,
                        'ours', recon_checkout_json(c.merchant_id, c.checkout_id),
                        'ledger', recon_ledger_json(c.merchant_id, c.checkout_id)));
        END LOOP;
    END IF;

    -- Refunds missing at the PSP: SUCCEEDED here, of this PSP, created
    -- between the first and the last refund this report matched, never in
    -- a report.
    SELECT min(f.created_at), max(f.created_at) INTO v_from, v_to
      FROM recon_seen s
      JOIN refunds f ON f.merchant_id = s.merchant_id AND f.refund_id = s.object_id
     WHERE s.report_id = p_report AND s.psp = v_psp;

    IF v_from IS NOT NULL THEN
        FOR c IN
            SELECT f.* FROM refunds f
             WHERE f.psp = v_psp AND f.status = 'SUCCEEDED'
               AND f.created_at BETWEEN v_from AND v_to
               AND NOT EXISTS (SELECT 1 FROM recon_seen s
                                WHERE s.merchant_id = f.merchant_id
                                  AND s.object_id = f.refund_id)
               AND NOT EXISTS (SELECT 1 FROM recon_mismatches m
                                WHERE m.kind = 'refund_missing_at_psp' AND m.resolved_at IS NULL
                                  AND m.merchant_id = f.merchant_id
                                  AND m.object_id = f.refund_id)
             ORDER BY f.created_at, f.merchant_id, f.refund_id
        LOOP
            INSERT INTO recon_mismatches (report_id, record, psp, class, kind, merchant_id,
                                          checkout_id, object_id, currency, amount, evidence)
            VALUES (p_report, NULL, v_psp, 'needs_person', 'refund_missing_at_psp',
                    c.merchant_id, c.checkout_id, c.refund_id, c.currency, c.amount,
                    jsonb_build_object('report_row', NULL, 'ours', to_jsonb(c),
                        'ledger', recon_ledger_json(c.merchant_id, c.checkout_id)));
        END LOOP;
    END IF;

    -- Pay-outs missing at the PSP: PAID here, likewise.
    SELECT min(po.created_at), max(po.created_at) INTO v_from, v_to
      FROM recon_seen s
      JOIN payouts po ON po.merchant_id = s.merchant_id AND po.payout_id = s.object_id
     WHERE s.report_id = p_report AND s.psp = v_psp;

    IF v_from IS NOT NULL THEN
        FOR c IN
            SELECT po.* FROM payouts po
             WHERE po.psp = v_psp AND po.status = 'PAID'
               AND po.created_at BETWEEN v_from AND v_to
               AND NOT EXISTS (SELECT 1 FROM recon_seen s
                                WHERE s.merchant_id = po.merchant_id
                                  AND s.object_id = po.payout_id)
               AND NOT EXISTS (SELECT 1 FROM recon_mismatches m
                                WHERE m.kind = 'payout_missing_at_psp' AND m.resolved_at IS NULL
                                  AND m.merchant_id = po.merchant_id
                                  AND m.object_id = po.payout_id)
             ORDER BY po.created_at, po.merchant_id, po.payout_id
        LOOP
            INSERT INTO recon_mismatches (report_id, record, psp, class, kind, merchant_id,
                                          checkout_id, object_id, currency, amount, evidence)
            VALUES (p_report, NULL, v_psp, 'needs_person', 'payout_missing_at_psp',
                    c.merchant_id, NULL, c.payout_id, c.currency, c.amount,
                    jsonb_build_object('report_row', NULL, 'ours', to_jsonb(c),
                        'ledger', '[]'::jsonb));
        END LOOP;
    END IF;

    -- Dispute reversals missing at the PSP: a dispute a row of this report
    -- matched whose books show more wins (ledger transactions of it that
    -- gave psp_clearing:<psp> money back) than all reports together showed
    -- reversal rows of it (dispute_won, first seen): money back in the
    -- books that the PSP's balance never got.  Resolved when a later
    -- report shows the reversal (recon_money).
    FOR c IN
        SELECT d.*, x.booked, x.reported
          FROM (SELECT DISTINCT s.merchant_id, s.object_id
                  FROM recon_seen s
                  JOIN recon_rows rr ON rr.report_id = s.report_id AND rr.record = s.record
                 WHERE s.report_id = p_report AND s.psp = v_psp
                   AND rr.type IN ('dispute', 'dispute_won')
                   AND s.object_id IS NOT NULL) sd
          JOIN disputes d ON d.merchant_id = sd.merchant_id AND d.dispute_id = sd.object_id
         CROSS JOIN LATERAL (
            SELECT (SELECT count(DISTINCT t.source)
                      FROM ledger_transactions t
                      JOIN ledger_entries e ON e.merchant_id = t.merchant_id
                                           AND e.txn_id = t.txn_id
                     WHERE t.merchant_id = d.merchant_id AND t.checkout_id = d.checkout_id
                       AND t.kind = 'dispute' AND t.object_id = d.dispute_id
                       AND e.account = 'psp_clearing:' || v_psp AND e.amount > 0) AS booked,
                   (SELECT count(*)
                      FROM recon_seen s2
                      JOIN recon_rows rr2 ON rr2.report_id = s2.report_id
                                         AND rr2.record = s2.record
                     WHERE s2.psp = v_psp AND s2.merchant_id = d.merchant_id
                       AND s2.object_id = d.dispute_id
                       AND rr2.type = 'dispute_won') AS reported) x
         WHERE x.booked > x.reported
           AND NOT EXISTS (SELECT 1 FROM recon_mismatches m
                            WHERE m.kind = 'dispute_reversal_missing_at_psp'
                              AND m.resolved_at IS NULL
                              AND m.merchant_id = d.merchant_id
                              AND m.object_id = d.dispute_id)
         ORDER BY d.merchant_id, d.dispute_id
    LOOP
        INSERT INTO recon_mismatches (report_id, record, psp, class, kind, merchant_id,
                                      checkout_id, object_id, currency, amount, evidence)
        VALUES (p_report, NULL, v_psp, 'needs_person', 'dispute_reversal_missing_at_psp',
                c.merchant_id, c.checkout_id, c.dispute_id, c.currency,
                c.amount * (c.booked - c.reported),
                jsonb_build_object('report_row', NULL,
                    'ours', to_jsonb(c) - 'booked' - 'reported'
                            || jsonb_build_object('reversals_booked', c.booked,
                                                  'reversals_reported', c.reported),
                    'ledger', recon_ledger_json(c.merchant_id, c.checkout_id)));
    END LOOP;

    -- Pay-out reversals missing at the PSP: a pay-out a row of this report
    -- matched whose books took back more (payouts.amount_reversed: what
    -- Stripe reversed in parts, all of it once returned or failed after it
    -- was paid) than all reports together showed matched reversal rows of
    -- it (payout_failure, first seen): money back in the wallet that the
    -- PSP's balance never got.  Resolved when a later report shows it
    -- (recon_money).
    FOR c IN
        SELECT po.*, x.reported
          FROM (SELECT DISTINCT s.merchant_id, s.object_id
                  FROM recon_seen s
                  JOIN recon_rows rr ON rr.report_id = s.report_id AND rr.record = s.record
                 WHERE s.report_id = p_report AND s.psp = v_psp
                   AND rr.type IN ('payout', 'payout_failure')
                   AND s.object_id IS NOT NULL) sp
          JOIN payouts po ON po.merchant_id = sp.merchant_id AND po.payout_id = sp.object_id
         CROSS JOIN LATERAL (
            SELECT coalesce(sum(rr2.gross), 0) AS reported
              FROM recon_seen s2
              JOIN recon_rows rr2 ON rr2.report_id = s2.report_id AND rr2.record = s2.record
             WHERE s2.psp = v_psp AND s2.merchant_id = po.merchant_id
               AND s2.object_id = po.payout_id AND rr2.type = 'payout_failure'
               AND rr2.outcome IN ('matched', 'auto_fixed')) x
         WHERE po.amount_reversed > x.reported
           AND NOT EXISTS (SELECT 1 FROM recon_mismatches m
                            WHERE m.kind = 'payout_reversal_missing_at_psp'
                              AND m.resolved_at IS NULL
                              AND m.merchant_id = po.merchant_id
                              AND m.object_id = po.payout_id)
         ORDER BY po.merchant_id, po.payout_id
    LOOP
        INSERT INTO recon_mismatches (report_id, record, psp, class, kind, merchant_id,
                                      checkout_id, object_id, currency, amount, evidence)
        VALUES (p_report, NULL, v_psp, 'needs_person', 'payout_reversal_missing_at_psp',
                c.merchant_id, NULL, c.payout_id, c.currency,
                c.amount_reversed - c.reported,
                jsonb_build_object('report_row', NULL,
                    'ours', to_jsonb(c) - 'reported'
                            || jsonb_build_object('reversed_reported', c.reported),
                    'ledger', '[]'::jsonb));
    END LOOP;

    -- the fees booked, in each merchant's audit chain: one row per report
    FOR c IN
        SELECT m.merchant_id,
               jsonb_agg(jsonb_build_object('currency', m.currency, 'count', m.n,
                                            'amount', m.amount) ORDER BY m.currency) AS fees
          FROM (SELECT mm.merchant_id, mm.currency, count(*) AS n, sum(mm.amount) AS amount
                  FROM recon_mismatches mm
                 WHERE mm.report_id = p_report AND mm.kind = 'fee_booked'
                 GROUP BY 1, 2) m
         GROUP BY 1 ORDER BY 1
    LOOP
        PERFORM audit_append(c.merchant_id, NULL, 'reconcile:fees_booked',
            jsonb_build_object('psp', v_psp, 'report_id', p_report, 'fees', c.fees,
                               'account', 'psp_fees:' || v_psp));
    END LOOP;

    UPDATE recon_reports rp SET finished_at = now() WHERE rp.report_id = p_report;
END
$$;


--
-- Name: recon_summary(bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.recon_summary(p_report bigint) RETURNS TABLE(class text, kind text, currency text, n bigint, amount numeric)
    LANGUAGE sql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT m.class, m.kind, coalesce(m.currency, '-'), count(*), coalesce(sum(m.amount), 0)
      FROM recon_mismatches m
     WHERE m.report_id = p_report
     GROUP BY 1, 2, 3
     ORDER BY CASE m.class WHEN 'needs_person' THEN 1 WHEN 'unclassified' THEN 2 ELSE 3 END,
              2, 3;
$$;


--
-- Name: refund_event_apply(text, text, text, text, bigint, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.refund_event_apply(p_psp text, p_event_id text, p_kind text, p_reference text, p_amount bigint, p_currency text, p_object_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    n         record;
    r         refunds%ROWTYPE;
    o         payment_orders%ROWTYPE;
    v_sum     bigint;
    v_booked  bigint;
    v_part    bigint;
BEGIN
    SELECT * INTO n FROM nonce_split(p_reference);
    SELECT * INTO r FROM refunds rf
     WHERE rf.merchant_id = n.merchant_id AND rf.refund_id = n.object_id AND rf.psp = p_psp;
    IF NOT FOUND AND coalesce(p_object_ref, '') <> '' THEN
        SELECT * INTO r FROM refunds rf WHERE rf.psp = p_psp AND rf.psp_refund_id = p_object_ref;
    END IF;
    IF r.refund_id IS NULL THEN
        outcome := 'unknown_refund';
        RETURN;
    END IF;

    merchant_id := r.merchant_id;
    checkout_id := r.checkout_id;

    -- the order first, as every refund of it does
    SELECT * INTO o FROM payment_orders po
     WHERE po.merchant_id = r.merchant_id AND po.payment_order_id = r.payment_order_id
       FOR UPDATE;
    SELECT * INTO r FROM refunds rf
     WHERE rf.merchant_id = r.merchant_id AND rf.refund_id = r.refund_id FOR UPDATE;

    IF p_amount IS DISTINCT FROM r.amount OR upper(coalesce(p_currency, '')) <> r.currency THEN
        outcome := 'amount_mismatch';
        RETURN;
    END IF;
    -- another refund at the PSP under our nonce: money moved that this
    -- refund's booking does not cover
    IF coalesce(p_object_ref, '') <> '' AND r.psp_refund_id IS NOT NULL
       AND r.psp_refund_id <> p_object_ref THEN
        outcome := 'object_mismatch';
        RETURN;
    END IF;

    IF (p_kind = 'REFUND_SUCCEEDED' AND r.status = 'SUCCEEDED')
       OR (p_kind = 'REFUND_FAILED' AND r.status = 'FAILED') THEN
        outcome := 'already';
        RETURN;
    END IF;
    IF r.status = 'SUCCEEDED' AND p_kind = 'REFUND_FAILED' THEN
        -- failed after it succeeded (Adyen's REFUND_FAILED after REFUND,
        -- Stripe's refund.failed after refund.succeeded: the bank sent the
        -- money back): its booking is undone, the seller's wallet and the
        -- platform's commission get their shares back, and the amount is
        -- refundable again
        UPDATE refunds rf SET status = 'FAILED', commission_part = NULL,
                              failure = 'failed at the PSP after it had succeeded',
                              psp_refund_id = coalesce(rf.psp_refund_id, nullif(p_object_ref, ''))
         WHERE rf.merchant_id = r.merchant_id AND rf.refund_id = r.refund_id;
        PERFORM ledger_book(r.merchant_id, r.checkout_id, r.payment_order_id, 'refund',
            r.refund_id, 'webhook:' || p_psp || ':' || p_event_id, r.currency,
            ARRAY['seller_payable:' || o.seller_account, 'platform_commission',
                  'psp_clearing:' || p_psp],
            ARRAY[-(r.amount - r.commission_part), -r.commission_part, r.amount]);
        PERFORM wallet_add(r.merchant_id, o.seller_account, r.currency,
                           r.amount - r.commission_part);
        outcome := 'applied';
        RETURN;
    END IF;
    IF r.status <> 'PENDING' THEN
        outcome := 'late_contrary';
        RETURN;
    END IF;

    IF p_kind = 'REFUND_FAILED' THEN
        UPDATE refunds rf SET status = 'FAILED', failure = 'refused by the PSP',
                              psp_refund_id = coalesce(rf.psp_refund_id, nullif(p_object_ref, ''))
         WHERE rf.merchant_id = r.merchant_id AND rf.refund_id = r.refund_id;
        outcome := 'applied';
        RETURN;
    END IF;

    -- SUCCEEDED: the commission's part against what the order gave back
    -- for good and the commission's parts of that (its refunds standing,
    -- its lost chargebacks: order_given_back_for_good;
    -- commission_refund_share), the seller's the rest
    SELECT g.given_back, g.commission_back INTO v_sum, v_booked
      FROM order_given_back_for_good(r.merchant_id, r.payment_order_id) g;
    v_part := commission_refund_share(coalesce(o.amount_captured, o.amount),
                                      coalesce(o.commission, 0), v_sum, v_booked,
                                      r.amount);

    UPDATE refunds rf SET status = 'SUCCEEDED', commission_part = v_part,
                          psp_refund_id = coalesce(rf.psp_refund_id, nullif(p_object_ref, ''))
     WHERE rf.merchant_id = r.merchant_id AND rf.refund_id = r.refund_id;

    PERFORM ledger_book(r.merchant_id, r.checkout_id, r.payment_order_id, 'refund', r.refund_id,
        'webhook:' || p_psp || ':' || p_event_id, r.currency,
        ARRAY['seller_payable:' || o.seller_account, 'platform_commission',
              'psp_clearing:' || p_psp],
        ARRAY[r.amount - v_part, v_part, -r.amount]);
    PERFORM wallet_add(r.merchant_id, o.seller_account, r.currency, -(r.amount - v_part));
    outcome := 'applied';
END
$$;


--
-- Name: refund_seller_share(bigint, bigint, bigint, bigint, bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.refund_seller_share(p_amount bigint, p_commission bigint, p_refunded_before bigint, p_booked_before bigint, p_refund bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT
    SET search_path TO 'public', 'pg_temp'
    AS $$
    SELECT p_refund - commission_refund_share(p_amount, p_commission, p_refunded_before,
                                              p_booked_before, p_refund);
$$;


--
-- Name: refunds_notify(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.refunds_notify() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status IS NOT DISTINCT FROM NEW.status THEN
        RETURN NULL;
    END IF;
    PERFORM notify_enqueue(
        NEW.merchant_id,
        CASE NEW.status WHEN 'SUCCEEDED' THEN 'refund.succeeded' ELSE 'refund.failed' END,
        NEW.checkout_id, NEW.refund_id,
        jsonb_strip_nulls(jsonb_build_object(
            'refund_id', NEW.refund_id,
            'checkout_id', NEW.checkout_id,
            'payment_order_id', NEW.payment_order_id,
            'status', NEW.status,
            'amount_minor', NEW.amount,
            'amount', money_decimal(NEW.amount, NEW.currency),
            'currency', NEW.currency,
            'metadata', NEW.metadata,
            'failure', NEW.failure)));
    RETURN NULL;
END
$$;


--
-- Name: refunds; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.refunds (
    merchant_id text NOT NULL,
    refund_id text NOT NULL,
    checkout_id text NOT NULL,
    payment_order_id text NOT NULL,
    psp text NOT NULL,
    nonce text NOT NULL,
    amount bigint NOT NULL,
    currency text NOT NULL,
    reason text,
    status text NOT NULL,
    psp_refund_id text,
    commission_part bigint,
    failure text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    psp_contact text DEFAULT 'maybe'::text NOT NULL,
    psp_conf jsonb,
    seller_account text,
    CONSTRAINT refunds_amount CHECK ((amount > 0)),
    CONSTRAINT refunds_booked_iff_succeeded CHECK (((status = 'SUCCEEDED'::text) = (commission_part IS NOT NULL))),
    CONSTRAINT refunds_commission_part CHECK ((commission_part >= 0)),
    CONSTRAINT refunds_currency CHECK ((currency ~ '^[A-Z]{3}$'::text)),
    CONSTRAINT refunds_failure CHECK ((length(failure) <= 1000)),
    CONSTRAINT refunds_id_format CHECK (((length(refund_id) = 27) AND (refund_id ~ '^rf_[0-9a-f]*$'::text))),
    CONSTRAINT refunds_metadata_object CHECK ((jsonb_typeof(metadata) = 'object'::text)),
    CONSTRAINT refunds_nonce CHECK ((nonce = ((merchant_id || ':'::text) || refund_id))),
    CONSTRAINT refunds_psp_id CHECK (((length(psp_refund_id) >= 1) AND (length(psp_refund_id) <= 128))),
    CONSTRAINT refunds_reason CHECK ((length(reason) <= 200)),
    CONSTRAINT refunds_status CHECK ((status = ANY (ARRAY['PENDING'::text, 'SUCCEEDED'::text, 'FAILED'::text])))
);


--
-- Name: TABLE refunds; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.refunds IS 'Refunds: one row per refund request, PENDING until the PSP''s webhook.';


--
-- Name: COLUMN refunds.metadata; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.refunds.metadata IS 'the merchant''s metadata: a JSON object of strings, {} when none';


--
-- Name: COLUMN refunds.psp_contact; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.refunds.psp_contact IS 'none: no attempt can have reached the PSP; trying: an attempt holds the key''s lease, none before it can have; maybe: one may have (a byte sent, or a holder that never said)';


--
-- Name: COLUMN refunds.psp_conf; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.refunds.psp_conf IS 'the PSP settings its request carried when first sent ({"merchant_account": ...}); NULL: not recorded';


--
-- Name: COLUMN refunds.seller_account; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.refunds.seller_account IS 'The seller of the refund''s order (who bears it), written on insert (trigger refunds_seller); NULL only on refunds settled before migration 140.';


--
-- Name: refunds_page(text, text, timestamp with time zone, timestamp with time zone, timestamp with time zone, text, boolean, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.refunds_page(p_merchant text, p_status text, p_gte timestamp with time zone, p_lt timestamp with time zone, p_at timestamp with time zone, p_id text, p_newer boolean, p_limit integer) RETURNS SETOF public.refunds
    LANGUAGE sql STABLE
    AS $$
    (SELECT x.*
       FROM refunds x
      WHERE NOT p_newer
        AND x.merchant_id = p_merchant
        AND x.created_at IS NOT NULL  -- the list index's predicate
        AND (p_status IS NULL OR x.status = p_status)
        AND (p_gte IS NULL OR x.created_at >= p_gte)
        AND (p_lt IS NULL OR x.created_at < p_lt)
        AND (p_at IS NULL OR (x.created_at, x.refund_id) < (p_at, p_id))
      ORDER BY x.merchant_id DESC, x.created_at DESC, x.refund_id DESC
      LIMIT p_limit)
    UNION ALL
    (SELECT x.*
       FROM refunds x
      WHERE p_newer
        AND x.merchant_id = p_merchant
        AND x.created_at IS NOT NULL  -- the list index's predicate
        AND (p_status IS NULL OR x.status = p_status)
        AND (p_gte IS NULL OR x.created_at >= p_gte)
        AND (p_lt IS NULL OR x.created_at < p_lt)
        AND (p_at IS NULL OR (x.created_at, x.refund_id) > (p_at, p_id))
      ORDER BY x.merchant_id, x.created_at, x.refund_id
      LIMIT p_limit);
$$;


--
-- Name: refunds_seller(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.refunds_seller() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    SELECT po.seller_account INTO NEW.seller_account
      FROM payment_orders po
     WHERE po.merchant_id = NEW.merchant_id
       AND po.payment_order_id = NEW.payment_order_id;
    RETURN NEW;
END
$$;


--
-- Name: refunds_within_capture(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.refunds_within_capture() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    o      payment_orders%ROWTYPE;
    v_sum  bigint;
BEGIN
    SELECT * INTO o FROM payment_orders po
     WHERE po.merchant_id = NEW.merchant_id AND po.payment_order_id = NEW.payment_order_id
       FOR UPDATE;
    IF o.status <> 'SUCCESS' OR NEW.currency <> o.currency THEN
        RAISE EXCEPTION 'refund %: order % is % in %', NEW.refund_id, o.payment_order_id,
            o.status, o.currency USING ERRCODE = 'PY007';
    END IF;
    v_sum := order_given_back(NEW.merchant_id, NEW.payment_order_id, NEW.refund_id);
    -- a manual-capture order: what was captured of it, not the authorized
    IF v_sum + NEW.amount > coalesce(o.amount_captured, o.amount) THEN
        RAISE EXCEPTION 'refund %: % + % exceeds the % captured less its chargebacks',
            NEW.refund_id, v_sum, NEW.amount, coalesce(o.amount_captured, o.amount)
            USING ERRCODE = 'PY007';
    END IF;
    RETURN NEW;
END
$$;


--
-- Name: review_key_of(text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.review_key_of(p_merchant text, p_checkout_id text) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
BEGIN
    RETURN (SELECT ik.idem_key
              FROM idempotency_keys ik
             WHERE ik.merchant_id = p_merchant
               AND ik.idem_key = (SELECT r.review_key FROM checkout_risk r
                                   WHERE r.merchant_id = p_merchant
                                     AND r.checkout_id = p_checkout_id)
               AND ik.checkout_id = p_checkout_id
               AND ik.created_at = (SELECT ck.created_at FROM checkouts ck
                                     WHERE ck.merchant_id = p_merchant
                                       AND ck.checkout_id = p_checkout_id));
END
$$;


--
-- Name: risk_verdict_check(text, integer, integer, text, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.risk_verdict_check(p_verdict text, p_review_seconds integer, p_response_status integer, p_response_body text, p_lease_seconds integer) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    AS $$
BEGIN
    IF p_verdict IS NULL OR p_verdict NOT IN ('allow', 'deny', 'review')
       OR (p_verdict <> 'allow'
           AND (p_response_status IS NULL OR p_response_body IS NULL))
       OR (p_verdict = 'review' AND coalesce(p_review_seconds, 0) < 1)
       OR coalesce(p_lease_seconds, 0) < 1 THEN
        RAISE EXCEPTION 'a risk verdict of allow, deny or review; deny and review need the answer, review its deadline; a lease of 1 s at least'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;


--
-- Name: risk_verdict_record(text, text, text, text, integer, text, text, integer, integer, text, integer, boolean); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.risk_verdict_record(p_merchant text, p_idem_key text, p_checkout_id text, p_verdict text, p_score integer, p_reason text, p_source text, p_review_seconds integer, p_response_status integer, p_response_body text, p_lease_seconds integer, p_renew_lease boolean) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
#variable_conflict use_column
DECLARE
    v_moved  jsonb;
BEGIN
    -- a review names the key it is written under, the registration's: a
    -- person's approval or rejection takes it first (review_key)
    INSERT INTO checkout_risk (merchant_id, checkout_id, verdict, score, reason,
                               source, review_until, review_key)
    VALUES (p_merchant, p_checkout_id, p_verdict, p_score, p_reason, p_source,
            CASE WHEN p_verdict = 'review'
                 THEN now() + p_review_seconds * interval '1 second' END,
            CASE WHEN p_verdict = 'review' THEN p_idem_key END);

    IF p_verdict = 'deny' THEN
        UPDATE checkouts c
           SET status = 'FAILED', failure_code = 'risk_declined',
               failure = coalesce(p_reason, 'declined'), updated_at = now()
         WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id;

        v_moved := checkout_orders_failed(p_merchant, p_checkout_id, 'risk');

    ELSIF p_verdict = 'review' THEN
        UPDATE checkouts c
           SET status = 'REVIEW', updated_at = now()
         WHERE c.merchant_id = p_merchant AND c.checkout_id = p_checkout_id;
    END IF;

    PERFORM audit_append(p_merchant, p_checkout_id, 'risk:' || p_verdict,
        jsonb_strip_nulls(jsonb_build_object(
            'verdict', p_verdict, 'score', p_score, 'reason', p_reason,
            'source', p_source,
            'to', CASE p_verdict WHEN 'deny' THEN 'FAILED'
                                 WHEN 'review' THEN 'REVIEW' END,
            'payment_orders', v_moved)));

    IF p_verdict = 'allow' AND p_renew_lease THEN
        UPDATE idempotency_keys ik
           SET lease_until = clock_timestamp() + p_lease_seconds * interval '1 second'
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key;
    ELSIF p_verdict <> 'allow' THEN
        UPDATE idempotency_keys ik
           SET state = 'done', lease_until = NULL,
               response_status = p_response_status,
               response_body = p_response_body,
               expires_at = now() + (ik.expires_at - ik.created_at)
         WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key;
    END IF;
END
$$;


--
-- Name: seller_available(text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.seller_available(p_merchant text, p_seller text, p_currency text, OUT wallet bigint, OUT pending bigint, OUT disputed bigint, OUT available bigint) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO 'public', 'pg_temp'
    AS $$
DECLARE
    v_held  bigint;
BEGIN
    SELECT coalesce((SELECT w.balance FROM wallets w
                      WHERE w.merchant_id = p_merchant AND w.seller_account = p_seller
                        AND w.currency = p_currency), 0) INTO wallet;
    SELECT coalesce(sum(p.amount), 0) INTO pending FROM payouts p
     WHERE p.merchant_id = p_merchant AND p.seller_account = p_seller
       AND p.currency = p_currency AND p.status = 'PENDING';
    -- each part's dispute looked up by its key (a scalar subquery is
    -- never made a join, whose plan made on small tables may walk the
    -- merchant's disputes instead: test plans::each_money_move_reads_...)
    SELECT coalesce(sum(dp.amount), 0) INTO disputed
      FROM dispute_parts dp
     WHERE dp.merchant_id = p_merchant AND dp.seller_account = p_seller
       AND dp.currency = p_currency
       AND (SELECT d.status FROM disputes d
             WHERE d.merchant_id = dp.merchant_id
               AND d.dispute_id = dp.dispute_id) = 'OPEN';
    -- what the seller's PENDING refunds and OPEN chargebacks will take
    -- from the wallet, at most: each order's hold (order_seller_hold), so
    -- an open chargeback holds back the seller's share of it, not the
    -- commission's too; `disputed` is the parts whole, what the
    -- chargebacks claim
    -- (the seller's refunds in flight by refunds_pending_seller, and the
    -- orders named each looked up by its key: not the merchant's refunds
    -- or orders filtered)
    SELECT coalesce(sum(order_seller_hold(p_merchant, x.payment_order_id, 0)), 0)
      INTO v_held
      FROM (SELECT rf.payment_order_id
              FROM refunds rf
             WHERE rf.merchant_id = p_merchant AND rf.seller_account = p_seller
               AND rf.currency = p_currency AND rf.status = 'PENDING'
            UNION
            SELECT dp.payment_order_id
              FROM dispute_parts dp
             WHERE dp.merchant_id = p_merchant AND dp.seller_account = p_seller
               AND dp.currency = p_currency
               AND (SELECT d.status FROM disputes d
                     WHERE d.merchant_id = dp.merchant_id
                       AND d.dispute_id = dp.dispute_id) = 'OPEN') x
     WHERE (SELECT o.seller_account = p_seller AND o.currency = p_currency
              FROM payment_orders o
             WHERE o.merchant_id = p_merchant
               AND o.payment_order_id = x.payment_order_id);
    available := wallet - pending - v_held;
END
$$;


--
-- Name: status_forward_guard(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.status_forward_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- Only reached through the INSERT trigger's WHEN: a row born terminal.
        RAISE EXCEPTION '%: a new row cannot start in status %', TG_TABLE_NAME, NEW.status
            USING ERRCODE = 'PY001';
    END IF;
    -- an update that names the status and leaves it (the trigger has no
    -- WHEN: a trigger's condition is read back and prepared at every
    -- statement, which costs more than this call; bench/RESULTS.md)
    IF OLD.status = NEW.status THEN
        RETURN NEW;
    END IF;
    -- A PSP's answer (EXECUTING to its result) is tested alone first: the
    -- whole list below is prepared (anew in every transaction, as PL/pgSQL
    -- prepares an expression) only for the other moves.
    IF NOT (OLD.status = 'EXECUTING' AND NEW.status IN ('AUTHORIZED', 'SUCCESS', 'FAILED')) THEN
        IF NOT ((OLD.status = 'NOT_STARTED' AND NEW.status = 'EXECUTING')
                OR (OLD.status = 'EXECUTING' AND NEW.status IN ('AUTHORIZED', 'SUCCESS', 'FAILED'))
                -- a hold is captured (SUCCESS), or released or expired (FAILED)
                OR (OLD.status = 'AUTHORIZED' AND NEW.status IN ('SUCCESS', 'FAILED'))
                -- a checkout held for a person's review (the risk check), then
                -- approved (registered at its PSP) or rejected
                OR (TG_TABLE_NAME = 'checkouts' AND OLD.status = 'EXECUTING'
                    AND NEW.status = 'REVIEW')
                OR (TG_TABLE_NAME = 'checkouts' AND OLD.status = 'REVIEW'
                    AND NEW.status IN ('EXECUTING', 'FAILED'))
                OR (OLD.status = 'FAILED' AND NEW.status IN ('AUTHORIZED', 'SUCCESS')
                    AND coalesce(current_setting('payments.paid_after_failed', true), '') = 'on')) THEN
            RAISE EXCEPTION '%: status may not move from % to %', TG_TABLE_NAME, OLD.status, NEW.status
                USING ERRCODE = 'PY001';
        END IF;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;


--
-- Name: stored_request_account(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.stored_request_account(p_request text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
DECLARE
    v_conf  jsonb;
BEGIN
    IF p_request IS NULL OR p_request NOT LIKE '%"conf"%' THEN
        RETURN NULL;
    END IF;

    BEGIN
        v_conf := p_request::jsonb -> 'conf';
    EXCEPTION WHEN invalid_text_representation THEN
        RETURN NULL;
    END;

    IF jsonb_typeof(v_conf) <> 'object'
       OR jsonb_typeof(v_conf -> 'merchant_account') <> 'string'
    THEN
        RETURN NULL;
    END IF;

    RETURN v_conf ->> 'merchant_account';
END
$$;


--
-- Name: trigger_ensure(text[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.trigger_ensure(VARIADIC p_defs text[]) RETURNS text[]
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    v_def   text;
    v_name  text;
    v_made  text[] := '{}';
BEGIN
    FOREACH v_def IN ARRAY p_defs LOOP
        IF v_def !~ '^CREATE TRIGGER [a-z0-9_]+ ' THEN
            RAISE EXCEPTION 'trigger_ensure: not a trigger as pg_get_triggerdef writes it: %', v_def;
        END IF;
        v_name := split_part(v_def, ' ', 3);
        IF NOT EXISTS (SELECT FROM pg_trigger
                        WHERE tgname = v_name AND pg_get_triggerdef(oid) = v_def) THEN
            EXECUTE regexp_replace(v_def, '^CREATE TRIGGER', 'CREATE OR REPLACE TRIGGER');
            v_made := v_made || v_name;
        END IF;
    END LOOP;
    RETURN v_made;
END
$$;


--
-- Name: ts_epoch(timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ts_epoch(ts timestamp with time zone) RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT pg_catalog.floor(pg_catalog.date_part('epoch', ts))::bigint
$$;


--
-- Name: ts_rfc3339(timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ts_rfc3339(ts timestamp with time zone) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT pg_catalog.to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;


--
-- Name: wallet_add(text, text, text, bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.wallet_add(p_merchant text, p_seller text, p_currency text, p_amount bigint) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'public', 'pg_temp'
    AS $$
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


--
-- Name: wallet_credits_row_checks(text, bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.wallet_credits_row_checks(currency text, amount bigint) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE
    AS $_$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    v_broken := CASE
        WHEN NOT (amount <> 0) THEN 'wallet_credits_amount'
        WHEN NOT (currency ~ '^[A-Z]{3}$'::text) THEN 'wallet_credits_currency'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "wallet_credits" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'wallet_credits', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$_$;


--
-- Name: webhook_events_row_checks(text, text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.webhook_events_row_checks(event_id text, kind text, type text, source text) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE
    AS $$
DECLARE
    v_broken  text;
BEGIN
    -- the first rule broken, in the constraints' (name) order; NULL passes
    -- (a value between two bounds is tested as a member of a range: this
    -- CASE is prepared anew in every transaction, one step per operator,
    -- and the range is one operator where the two bounds were three)
    v_broken := CASE
        WHEN NOT (length(event_id) <@ int4range(1, 255, '[]')) THEN 'webhook_events_id'
        WHEN NOT (kind = ANY (ARRAY['SUCCEEDED'::text, 'CAPTURED'::text, 'AUTHORIZED'::text, 'FAILED'::text, 'PENDING'::text, 'IGNORED'::text, 'REFUND_SUCCEEDED'::text, 'REFUND_FAILED'::text, 'DISPUTE_OPENED'::text, 'DISPUTE_WON'::text, 'DISPUTE_LOST'::text, 'DISPUTE_INQUIRY_CLOSED'::text, 'PAYOUT_PAID'::text, 'PAYOUT_FAILED'::text, 'PAYOUT_REVERSED'::text, 'CAPTURE_SUCCEEDED'::text, 'CAPTURE_FAILED'::text, 'VOID_SUCCEEDED'::text, 'VOID_FAILED'::text, 'DECLINED'::text])) THEN 'webhook_events_kind'
        WHEN NOT (source = ANY (ARRAY['reconciliation'::text, 'webhook'::text, 'sweeper'::text])) THEN 'webhook_events_source'
        WHEN NOT (length(type) <= 100) THEN 'webhook_events_type'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "webhook_events" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', TABLE = 'webhook_events', CONSTRAINT = v_broken;
    END IF;
    RETURN true;
END
$$;


--
-- Name: api_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.api_keys (
    key_id text NOT NULL,
    merchant_id text NOT NULL,
    key_hash text NOT NULL,
    mode text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    revoked_at timestamp with time zone,
    last_used_at timestamp with time zone,
    CONSTRAINT api_keys_hash_format CHECK (((length(key_hash) = 64) AND (key_hash ~ '^[0-9a-f]*$'::text))),
    CONSTRAINT api_keys_id_format CHECK (((length(key_id) = 12) AND (key_id ~ '^[A-Za-z0-9]*$'::text))),
    CONSTRAINT api_keys_mode CHECK ((mode = ANY (ARRAY['test'::text, 'live'::text])))
);


--
-- Name: TABLE api_keys; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.api_keys IS 'Only the key id (public, the lookup) and SHA-256 of the whole key string are stored: a dump of this table does not let anyone call the API.';


--
-- Name: COLUMN api_keys.last_used_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.api_keys.last_used_at IS 'the last request this key authenticated, within an hour (NULL: never)';


--
-- Name: audit_heads; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.audit_heads (
    merchant_id text NOT NULL,
    seq bigint NOT NULL,
    hash bytea NOT NULL,
    chain smallint DEFAULT 0 NOT NULL,
    prev_hash bytea
)
WITH (fillfactor='50');


--
-- Name: TABLE audit_heads; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.audit_heads IS 'Each audit chain''s anchor: a row of the chain (its number and hashes) the log must keep, moved forward to every eighth row when the row after it is appended (audit_log_link), and the chains a merchant has opened.  A chain''s head is its last audit_log row.';


--
-- Name: audit_log; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.audit_log (
    merchant_id text NOT NULL,
    seq bigint NOT NULL,
    at timestamp with time zone NOT NULL,
    checkout_id text,
    action text NOT NULL,
    detail jsonb NOT NULL,
    prev_hash bytea NOT NULL,
    hash bytea NOT NULL,
    chain smallint DEFAULT 0 NOT NULL,
    CONSTRAINT audit_log_row_checks CHECK (public.audit_log_row_checks(action, chain))
);


--
-- Name: TABLE audit_log; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.audit_log IS 'The hash-chained audit log, append-only: each row''s hash covers the previous row''s hash, so a changed or removed row breaks its chain (pay_audit_verify).';


--
-- Name: captures; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.captures (
    merchant_id text NOT NULL,
    capture_id text NOT NULL,
    kind text NOT NULL,
    checkout_id text NOT NULL,
    payment_order_id text NOT NULL,
    psp text NOT NULL,
    nonce text NOT NULL,
    amount bigint NOT NULL,
    currency text NOT NULL,
    final boolean NOT NULL,
    status text NOT NULL,
    psp_ref text,
    commission_part bigint,
    failure text,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    psp_contact text DEFAULT 'maybe'::text NOT NULL,
    psp_conf jsonb,
    CONSTRAINT captures_amount CHECK ((amount > 0)),
    CONSTRAINT captures_booked_iff_captured CHECK ((((kind = 'capture'::text) AND (status = 'SUCCEEDED'::text)) = (commission_part IS NOT NULL))),
    CONSTRAINT captures_commission_part CHECK (((commission_part >= 0) AND (commission_part <= amount))),
    CONSTRAINT captures_currency CHECK ((currency ~ '^[A-Z]{3}$'::text)),
    CONSTRAINT captures_failure CHECK ((length(failure) <= 1000)),
    CONSTRAINT captures_id_format CHECK (((capture_id ~ '^(cp|vd)_[0-9a-f]{24}$'::text) AND ((kind = 'capture'::text) = (capture_id ~~ 'cp\_%'::text)))),
    CONSTRAINT captures_kind CHECK ((kind = ANY (ARRAY['capture'::text, 'void'::text]))),
    CONSTRAINT captures_metadata_object CHECK ((jsonb_typeof(metadata) = 'object'::text)),
    CONSTRAINT captures_nonce CHECK ((nonce = ((merchant_id || ':'::text) || capture_id))),
    CONSTRAINT captures_psp_ref CHECK (((length(psp_ref) >= 1) AND (length(psp_ref) <= 128))),
    CONSTRAINT captures_status CHECK ((status = ANY (ARRAY['PENDING'::text, 'SUCCEEDED'::text, 'FAILED'::text])))
);


--
-- Name: TABLE captures; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.captures IS 'captures and voids of manual-capture orders: each a PSP call under its own nonce, settled by the PSP''s webhook; a SUCCEEDED capture is booked (commission_part), nothing else is';


--
-- Name: COLUMN captures.psp_contact; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.captures.psp_contact IS 'none: no attempt can have reached the PSP; trying: an attempt holds the key''s lease, none before it can have; maybe: one may have (a byte sent, or a holder that never said)';


--
-- Name: COLUMN captures.psp_conf; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.captures.psp_conf IS 'the PSP settings its request carried when first sent ({"merchant_account": ...}); NULL: not recorded';


--
-- Name: checkout_risk_after; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.checkout_risk_after (
    merchant_id text NOT NULL,
    checkout_id text NOT NULL,
    verdict text NOT NULL,
    score integer,
    reason text,
    source text NOT NULL,
    decided_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT checkout_risk_after_reason CHECK ((reason ~ '^[a-z0-9_.-]{1,64}$'::text)),
    CONSTRAINT checkout_risk_after_score CHECK (((score >= 0) AND (score <= 1000))),
    CONSTRAINT checkout_risk_after_source CHECK ((((source = 'provider'::text) AND (verdict <> 'unchecked'::text)) OR ((source = 'on_error'::text) AND (verdict = 'unchecked'::text) AND (score IS NULL) AND (reason IS NOT NULL)))),
    CONSTRAINT checkout_risk_after_verdict CHECK ((verdict = ANY (ARRAY['allow'::text, 'deny'::text, 'review'::text, 'unchecked'::text])))
);


--
-- Name: TABLE checkout_risk_after; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.checkout_risk_after IS 'the risk check asked again after the payment (after_payment=on): never reverses booked money (doc/RISK.md)';


--
-- Name: COLUMN checkout_risk_after.verdict; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.checkout_risk_after.verdict IS 'allow, deny or review: the provider''s; unchecked when it had no usable answer in the bounded time (source on_error)';


--
-- Name: COLUMN checkout_risk_after.reason; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.checkout_risk_after.reason IS 'the provider''s reason code, or what failed (timeout, unavailable, malformed, signature) when unchecked';


--
-- Name: checkout_risk_after_due; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.checkout_risk_after_due (
    merchant_id text NOT NULL,
    checkout_id text NOT NULL,
    decided_at timestamp with time zone NOT NULL
);


--
-- Name: TABLE checkout_risk_after_due; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.checkout_risk_after_due IS 'the paid checkouts the risk check asked about before their PSP and not yet after (after_payment=on, doc/RISK.md): the sweeper''s round reads these alone';


--
-- Name: checkout_routes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.checkout_routes (
    merchant_id text NOT NULL,
    checkout_id text NOT NULL,
    seq integer NOT NULL,
    route text NOT NULL,
    psp text NOT NULL,
    moved_on text,
    at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT checkout_routes_moved_on CHECK (((moved_on IS NULL) OR (moved_on = ANY (ARRAY['circuit_open'::text, 'connect_refused'::text, 'refused'::text, 'throttled'::text, 'psp_5xx_nothing_made'::text, 'psp_not_allowed'::text])))),
    CONSTRAINT checkout_routes_seq CHECK ((seq >= 1))
);


--
-- Name: TABLE checkout_routes; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.checkout_routes IS 'the PSPs a routed checkout was bound to, in order: moved_on says why it left one (an outcome proving no session was made); the row without it is the PSP that holds or may hold the session (checkouts.psp)';


--
-- Name: checkout_sweeps; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.checkout_sweeps (
    merchant_id text NOT NULL,
    checkout_id text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    last_at timestamp with time zone,
    last_answer text,
    alerted_at timestamp with time zone,
    session_result text,
    method_asked_at timestamp with time zone,
    CONSTRAINT checkout_sweeps_answer CHECK ((length(last_answer) <= 100)),
    CONSTRAINT checkout_sweeps_session_result CHECK ((((length(session_result) >= 1) AND (length(session_result) <= 4096)) AND (session_result ~ '^[\x21-\x7e]+$'::text)))
);


--
-- Name: TABLE checkout_sweeps; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.checkout_sweeps IS 'What the sweeper did with each checkout it asked about: when it last asked, how often, and whether the "still unresolved" alert was raised.';


--
-- Name: COLUMN checkout_sweeps.method_asked_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.checkout_sweeps.method_asked_at IS 'when the sweeper last asked the PSP for the method a paid checkout saved, its event lost (pay_sweeper_methods_due)';


--
-- Name: dispute_parts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dispute_parts (
    merchant_id text NOT NULL,
    dispute_id text NOT NULL,
    checkout_id text NOT NULL,
    payment_order_id text NOT NULL,
    seller_account text NOT NULL,
    amount bigint NOT NULL,
    currency text NOT NULL,
    excess bigint DEFAULT 0 NOT NULL,
    borne bigint,
    commission_part bigint,
    CONSTRAINT dispute_parts_amount CHECK ((amount >= 0)),
    CONSTRAINT dispute_parts_borne CHECK ((((borne IS NULL) AND (commission_part IS NULL)) OR (((borne >= 0) AND (borne <= amount)) AND ((commission_part >= 0) AND (commission_part <= borne))))),
    CONSTRAINT dispute_parts_excess CHECK ((excess >= 0))
);


--
-- Name: TABLE dispute_parts; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.dispute_parts IS 'A dispute''s amount split over its checkout''s payment orders (dispute_split), so each order''s seller bears its part.';


--
-- Name: COLUMN dispute_parts.excess; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispute_parts.excess IS 'The part of the order''s share of the dispute beyond what the order still held when it opened: withdrawn by the PSP, the platform''s when lost (psp_shortfall), never the seller''s.';


--
-- Name: COLUMN dispute_parts.borne; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispute_parts.borne IS 'Once lost: what the order bore of its part (within what it held then; the rest is the platform''s shortfall). NULL while open or won, and for parts lost before migration 139.';


--
-- Name: COLUMN dispute_parts.commission_part; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.dispute_parts.commission_part IS 'Once lost: the commission''s share of borne, given back as a refund of it would be (commission_refund_share); the seller bore borne - commission_part.';


--
-- Name: disputes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.disputes (
    merchant_id text NOT NULL,
    dispute_id text NOT NULL,
    psp text NOT NULL,
    psp_dispute_ref text NOT NULL,
    checkout_id text NOT NULL,
    amount bigint NOT NULL,
    currency text NOT NULL,
    status text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT disputes_amount CHECK ((amount > 0)),
    CONSTRAINT disputes_currency CHECK ((currency ~ '^[A-Z]{3}$'::text)),
    CONSTRAINT disputes_id_format CHECK (((length(dispute_id) = 27) AND (dispute_id ~ '^dp_[0-9a-f]*$'::text))),
    CONSTRAINT disputes_ref CHECK (((length(psp_dispute_ref) >= 1) AND (length(psp_dispute_ref) <= 128))),
    CONSTRAINT disputes_status CHECK ((status = ANY (ARRAY['OPEN'::text, 'WON'::text, 'LOST'::text])))
);


--
-- Name: TABLE disputes; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.disputes IS 'Disputes: one per PSP dispute; split over the checkout''s orders.';


--
-- Name: failed_open_sessions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.failed_open_sessions (
    merchant_id text NOT NULL,
    checkout_id text NOT NULL,
    expires_at timestamp with time zone NOT NULL
);


--
-- Name: TABLE failed_open_sessions; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.failed_open_sessions IS 'Checkouts FAILED here with a hosted session (psp_url) the PSP may still take a payment in until its expiry (expires_at, the checkout''s): the sweeper asks about them (pay_sweeper_due); written by the trigger checkouts_failed_open, deleted with their checkout or when it leaves that state';


--
-- Name: inquiry_ends_unread; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.inquiry_ends_unread (
    partition text NOT NULL
);


--
-- Name: TABLE inquiry_ends_unread; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.inquiry_ends_unread IS 'The partitions of psp_events still to read for the inquiry ends kept before the upgrade to make pending again (inquiry_ends_applied_again, run by payments-migrate after the upgrade commits), one a row, deleted once read: empty once done.';


--
-- Name: ledger_accounts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ledger_accounts (
    account text NOT NULL,
    description text NOT NULL,
    CONSTRAINT ledger_accounts_name CHECK (((length(account) >= 1) AND (length(account) <= 200)))
);


--
-- Name: TABLE ledger_accounts; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.ledger_accounts IS 'The fees account: ledger account names are ''psp_fees:<psp>'' (debited with the PSP''s fee, psp_clearing:<psp> credited).  This table names the accounts the reconciliation may post to, for the reports'' readers.';


--
-- Name: ledger_entries; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ledger_entries (
    merchant_id text NOT NULL,
    txn_id bigint NOT NULL,
    entry_no integer NOT NULL,
    account text NOT NULL,
    amount bigint NOT NULL,
    currency text NOT NULL,
    CONSTRAINT ledger_entries_row_checks CHECK (public.ledger_entries_row_checks(account, amount, currency))
);


--
-- Name: TABLE ledger_entries; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.ledger_entries IS 'Signed amounts: a debit is positive, a credit negative.';


--
-- Name: ledger_transactions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ledger_transactions (
    merchant_id text NOT NULL,
    txn_id bigint NOT NULL,
    checkout_id text,
    payment_order_id text,
    source text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    kind text DEFAULT 'payment'::text NOT NULL,
    object_id text,
    CONSTRAINT ledger_transactions_row_checks CHECK (public.ledger_transactions_row_checks(checkout_id, payment_order_id, kind, object_id))
);


--
-- Name: TABLE ledger_transactions; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.ledger_transactions IS 'Double-entry ledger transactions, append-only; their entries (ledger_entries) sum to zero in each currency (ledger_balanced, at commit).';


--
-- Name: ledger_transactions_txn_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.ledger_transactions_txn_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: ledger_transactions_txn_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.ledger_transactions_txn_id_seq OWNED BY public.ledger_transactions.txn_id;


--
-- Name: merchant_commission_fixed; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.merchant_commission_fixed (
    merchant_id text NOT NULL,
    currency text NOT NULL,
    amount bigint NOT NULL,
    CONSTRAINT merchant_commission_fixed_amount CHECK ((amount >= 0)),
    CONSTRAINT merchant_commission_fixed_currency CHECK ((currency ~ '^[A-Z]{3}$'::text))
);


--
-- Name: TABLE merchant_commission_fixed; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.merchant_commission_fixed IS 'A merchant''s fixed commission per currency, in that currency''s minor units, beside its rate in merchants.';


--
-- Name: merchant_return_origins; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.merchant_return_origins (
    merchant_id text NOT NULL,
    origin text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT merchant_return_origins_format CHECK (((origin ~ '^https://[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[1-9][0-9]{0,4})?$'::text) AND (length(origin) <= 300)))
);


--
-- Name: TABLE merchant_return_origins; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.merchant_return_origins IS 'Origins in the canonical form the CLI writes: https, lower-case host without a trailing dot, the port only when it is not 443, nothing after it.  The adapter parses them with pay_origin_parse and compares by component.';


--
-- Name: merchants; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.merchants (
    merchant_id text NOT NULL,
    name text DEFAULT ''::text NOT NULL,
    mode text NOT NULL,
    disabled boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    commission_bps integer DEFAULT 0 NOT NULL,
    psps text[],
    placed_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT merchants_commission_bps CHECK (((commission_bps >= 0) AND (commission_bps <= 10000))),
    CONSTRAINT merchants_id_format CHECK ((((length(merchant_id) >= 1) AND (length(merchant_id) <= 23)) AND (merchant_id ~ '^[a-z0-9_]*$'::text))),
    CONSTRAINT merchants_mode CHECK ((mode = ANY (ARRAY['test'::text, 'live'::text]))),
    CONSTRAINT merchants_name_length CHECK ((length(name) <= 200))
);


--
-- Name: TABLE merchants; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.merchants IS 'merchant_id is at most 23 characters so that the PSP nonce "<merchant_id>:<checkout_id>" (checkout ids are at most 40) fits in 64.';


--
-- Name: COLUMN merchants.psps; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.merchants.psps IS 'the payments_psp names the merchant''s checkouts may use (payments-merchant set-psps); NULL: any';


--
-- Name: COLUMN merchants.placed_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.merchants.placed_at IS 'when the merchant was placed on this shard (created here, or moved here): the gateways'' directory reads the merchants placed since its last look';


--
-- Name: notify_deliverers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.notify_deliverers (
    host text NOT NULL,
    seen_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT notify_deliverers_host_check CHECK (((length(host) >= 1) AND (length(host) <= 255)))
);


--
-- Name: TABLE notify_deliverers; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.notify_deliverers IS 'hosts whose gateways deliver notifications, and when each was last seen';


--
-- Name: notify_sequences; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.notify_sequences (
    merchant_id text NOT NULL,
    subject text NOT NULL,
    last integer NOT NULL
);


--
-- Name: TABLE notify_sequences; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.notify_sequences IS 'The sequence of each checkout (its refunds and disputes count under it) and of each pay-out: the row lock of the upsert orders concurrent changes of one subject.';


--
-- Name: COLUMN notify_sequences.subject; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.notify_sequences.subject IS '<object>:<id>, object one of checkout, refund, dispute, payout: what data.sequence counts';


--
-- Name: operation_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.operation_keys (
    merchant_id text NOT NULL,
    idem_key text NOT NULL,
    fingerprint text NOT NULL,
    kind text NOT NULL,
    op_id text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT operation_keys_fingerprint_format CHECK (((length(fingerprint) = 64) AND (fingerprint ~ '^[0-9a-f]*$'::text))),
    CONSTRAINT operation_keys_key_format CHECK ((((length(idem_key) >= 1) AND (length(idem_key) <= 255)) AND (idem_key ~ '^[ -~]*$'::text))),
    CONSTRAINT operation_keys_kind CHECK ((kind = ANY (ARRAY['refund'::text, 'capture'::text, 'payout'::text]))),
    CONSTRAINT operation_keys_op_id CHECK ((op_id ~ '^(rf|cp|vd|pyo)_[0-9a-f]{24}$'::text))
);


--
-- Name: TABLE operation_keys; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.operation_keys IS 'The request that made each refund, capture and pay-out (its Idempotency-Key and fingerprint), kept after the key is purged: the same request again finds its operation.';


--
-- Name: order_events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.order_events (
    merchant_id text NOT NULL,
    event_id bigint NOT NULL,
    checkout_id text NOT NULL,
    payment_order_id text NOT NULL,
    from_status public.pay_status NOT NULL,
    to_status public.pay_status NOT NULL,
    source text NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT order_events_source CHECK (((length(source) >= 1) AND (length(source) <= 300)))
);


--
-- Name: TABLE order_events; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.order_events IS 'Every status move of an order, append-only.  event_id orders the events of one checkout: moves of one checkout''s orders are serialised by the orders'' row locks, so a later move always draws a larger event_id.';


--
-- Name: order_events_event_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.order_events_event_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: order_events_event_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.order_events_event_id_seq OWNED BY public.order_events.event_id;


--
-- Name: psp_event_ids; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.psp_event_ids (
    psp text NOT NULL,
    event_id text NOT NULL,
    received_at timestamp with time zone NOT NULL
);


--
-- Name: TABLE psp_event_ids; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.psp_event_ids IS 'One row per event kept in psp_events (its trigger writes it): the PSP''s event id, unique, and the received_at (partition key) of the row that keeps it';


--
-- Name: psp_payments; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.psp_payments (
    psp text NOT NULL,
    payment_ref text NOT NULL,
    merchant_id text NOT NULL,
    checkout_id text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: TABLE psp_payments; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.psp_payments IS 'The narrow PSP-facing look-up of a paid checkout by the PSP''s payment id: disputes and refunds name the payment, not the session.';


--
-- Name: psp_tokens; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.psp_tokens (
    psp text NOT NULL,
    psp_token text NOT NULL,
    merchant_id text NOT NULL,
    checkout_id text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: TABLE psp_tokens; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.psp_tokens IS 'The narrow PSP-facing lookup: a webhook names a PSP token, not a merchant.';


--
-- Name: COLUMN psp_tokens.psp_token; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.psp_tokens.psp_token IS 'the blind index of the PSP token (64 hex, domain ''psp_token:'' || psp), or a legacy plaintext token';


--
-- Name: recon_mismatches; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.recon_mismatches (
    mismatch_id bigint NOT NULL,
    report_id bigint NOT NULL,
    record integer,
    psp text NOT NULL,
    class text NOT NULL,
    kind text NOT NULL,
    merchant_id text,
    checkout_id text,
    currency text,
    amount bigint,
    evidence jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    resolved_at timestamp with time zone,
    resolution text,
    object_id text,
    CONSTRAINT recon_mismatches_class CHECK ((class = ANY (ARRAY['auto_fixed'::text, 'needs_person'::text, 'unclassified'::text]))),
    CONSTRAINT recon_mismatches_currency CHECK ((currency ~ '^[A-Z]{3}$'::text)),
    CONSTRAINT recon_mismatches_kind CHECK ((((length(kind) >= 1) AND (length(kind) <= 60)) AND (kind ~ '^[a-z_]*$'::text))),
    CONSTRAINT recon_mismatches_resolution CHECK ((length(resolution) <= 1000))
);


--
-- Name: TABLE recon_mismatches; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.recon_mismatches IS 'Every difference a reconciliation run found between a settlement report and the ledger, with its class and what was done.';


--
-- Name: recon_mismatches_mismatch_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.recon_mismatches_mismatch_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: recon_mismatches_mismatch_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.recon_mismatches_mismatch_id_seq OWNED BY public.recon_mismatches.mismatch_id;


--
-- Name: recon_reports; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.recon_reports (
    report_id bigint NOT NULL,
    psp text NOT NULL,
    dialect text NOT NULL,
    sha256 text NOT NULL,
    file_name text NOT NULL,
    row_count integer NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone,
    shard text,
    CONSTRAINT recon_reports_dialect CHECK ((dialect = ANY (ARRAY['stripe'::text, 'adyen'::text, 'generic'::text]))),
    CONSTRAINT recon_reports_file CHECK ((length(file_name) <= 1000)),
    CONSTRAINT recon_reports_psp CHECK ((((length(psp) >= 1) AND (length(psp) <= 32)) AND (psp ~ '^[A-Za-z0-9_.-]*$'::text))),
    CONSTRAINT recon_reports_rows CHECK ((row_count >= 0)),
    CONSTRAINT recon_reports_sha256 CHECK (((length(sha256) = 64) AND (sha256 ~ '^[0-9a-f]*$'::text))),
    CONSTRAINT recon_reports_shard CHECK ((shard ~ '^[a-z0-9_]{1,16}$'::text))
);


--
-- Name: TABLE recon_reports; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.recon_reports IS 'One row per settlement report reconciled: the file''s hash, its PSP and its totals; a file is reconciled once.';


--
-- Name: recon_reports_report_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.recon_reports_report_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: recon_reports_report_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.recon_reports_report_id_seq OWNED BY public.recon_reports.report_id;


--
-- Name: recon_seen; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.recon_seen (
    psp text NOT NULL,
    row_id text NOT NULL,
    report_id bigint NOT NULL,
    record integer NOT NULL,
    merchant_id text,
    checkout_id text,
    object_id text
);


--
-- Name: TABLE recon_seen; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.recon_seen IS 'The first report that reconciled each PSP row.';


--
-- Name: schema_functions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_functions (
    file text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: schema_migrations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_migrations (
    version text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: sellers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sellers (
    merchant_id text NOT NULL,
    seller_account text NOT NULL,
    psp text NOT NULL,
    destination text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT sellers_account_format CHECK ((((length(seller_account) >= 1) AND (length(seller_account) <= 64)) AND (seller_account ~ '^[A-Za-z0-9_.-]*$'::text))),
    CONSTRAINT sellers_destination_format CHECK ((((length(destination) >= 1) AND (length(destination) <= 128)) AND (destination ~ '^[A-Za-z0-9_.:-]*$'::text))),
    CONSTRAINT sellers_psp_format CHECK ((((length(psp) >= 1) AND (length(psp) <= 32)) AND (psp ~ '^[A-Za-z0-9_.-]*$'::text)))
);


--
-- Name: TABLE sellers; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.sellers IS 'Sellers and their PSP destinations (bin/payments-merchant add-seller).';


--
-- Name: sweeper_late; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sweeper_late (
    merchant_id text NOT NULL,
    checkout_id text NOT NULL,
    ask boolean NOT NULL,
    alert boolean NOT NULL,
    since timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: TABLE sweeper_late; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.sweeper_late IS 'Open sessions that became ones to ask about (ask) or to alert about (alert) after a sweeper round''s walk had passed them (checkouts_sweep_late); rounds take them first and delete them once done or no longer open';


--
-- Name: sweeper_lease; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sweeper_lease (
    id integer NOT NULL,
    owner text NOT NULL,
    taken timestamp with time zone DEFAULT now() NOT NULL,
    until timestamp with time zone NOT NULL,
    walk_from timestamp with time zone,
    alert_from timestamp with time zone,
    walk_psps text[],
    walk_payment_psps text[],
    alert_psps text[],
    reask_from timestamp with time zone,
    CONSTRAINT sweeper_lease_one CHECK ((id = 1)),
    CONSTRAINT sweeper_lease_owner CHECK (((length(owner) >= 1) AND (length(owner) <= 200)))
);


--
-- Name: TABLE sweeper_lease; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.sweeper_lease IS 'One row: who sweeps, until when.  A gateway takes it when it is free or expired and keeps it by renewing it each round; another gateway''s worker finds it held and does nothing.';


--
-- Name: COLUMN sweeper_lease.walk_from; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.sweeper_lease.walk_from IS 'pay_sweeper_due: the creation time from which the next round walks the open sessions for those never asked about; NULL: from the oldest';


--
-- Name: COLUMN sweeper_lease.alert_from; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.sweeper_lease.alert_from IS 'pay_sweeper_overdue: the creation time from which the next round walks the checkouts past alert= for those not alerted yet; NULL: from the oldest';


--
-- Name: COLUMN sweeper_lease.walk_psps; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.sweeper_lease.walk_psps IS 'pay_sweeper_due: the p_psps of the round that set walk_from; a round with a PSP not in it walks from the oldest';


--
-- Name: COLUMN sweeper_lease.walk_payment_psps; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.sweeper_lease.walk_payment_psps IS 'pay_sweeper_due: the p_payment_psps of the round that set walk_from; as walk_psps';


--
-- Name: COLUMN sweeper_lease.alert_psps; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.sweeper_lease.alert_psps IS 'pay_sweeper_overdue: the p_psps of the round that set alert_from; as walk_psps';


--
-- Name: COLUMN sweeper_lease.reask_from; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.sweeper_lease.reask_from IS 'pay_sweeper_due: the creation time from which the next busy round walks the open sessions behind walk_from for those to ask about again; NULL: from the oldest';


--
-- Name: wallet_credits; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.wallet_credits (
    merchant_id text NOT NULL,
    seller_account text NOT NULL,
    currency text NOT NULL,
    amount bigint NOT NULL,
    booked_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT wallet_credits_row_checks CHECK (public.wallet_credits_row_checks(currency, amount))
)
WITH (autovacuum_vacuum_scale_factor='0', autovacuum_vacuum_threshold='20000');


--
-- Name: TABLE wallet_credits; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.wallet_credits IS 'Credits to sellers'' wallets, appended without locking the wallet row and folded into wallets by pay_wallets_fold.';


--
-- Name: wallets_folded; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.wallets_folded (
    merchant_id text NOT NULL,
    seller_account text NOT NULL,
    currency text NOT NULL,
    balance bigint NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT wallets_folded_currency CHECK ((currency ~ '^[A-Z]{3}$'::text))
);


--
-- Name: TABLE wallets_folded; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.wallets_folded IS 'A seller''s wallet as of the last fold, from its first credit; its row lock orders a seller''s pay-outs and refunds.';


--
-- Name: wallets; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.wallets AS
 SELECT f.merchant_id,
    f.seller_account,
    f.currency,
    (f.balance + (COALESCE(( SELECT sum(c.amount) AS sum
           FROM public.wallet_credits c
          WHERE ((c.merchant_id = f.merchant_id) AND (c.seller_account = f.seller_account) AND (c.currency = f.currency))), (0)::numeric))::bigint) AS balance,
    f.updated_at
   FROM public.wallets_folded f;


--
-- Name: VIEW wallets; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON VIEW public.wallets IS 'A seller''s balance: its folded row plus the credits not folded yet.';


--
-- Name: webhook_events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.webhook_events (
    psp text NOT NULL,
    event_id text NOT NULL,
    kind text NOT NULL,
    type text NOT NULL,
    outcome text NOT NULL,
    merchant_id text,
    checkout_id text,
    received_at timestamp with time zone DEFAULT now() NOT NULL,
    source text DEFAULT COALESCE(NULLIF(current_setting('payments.event_source'::text, true), ''::text), 'webhook'::text) NOT NULL,
    CONSTRAINT webhook_events_row_checks CHECK (public.webhook_events_row_checks(event_id, kind, type, source))
);


--
-- Name: TABLE webhook_events; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.webhook_events IS 'Every verified PSP event, once per PSP and event id, with the outcome of applying it; append-only but for that outcome''s one write.';


--
-- Name: ledger_transactions txn_id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ledger_transactions ALTER COLUMN txn_id SET DEFAULT nextval('public.ledger_transactions_txn_id_seq'::regclass);


--
-- Name: order_events event_id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.order_events ALTER COLUMN event_id SET DEFAULT nextval('public.order_events_event_id_seq'::regclass);


--
-- Name: recon_mismatches mismatch_id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.recon_mismatches ALTER COLUMN mismatch_id SET DEFAULT nextval('public.recon_mismatches_mismatch_id_seq'::regclass);


--
-- Name: recon_reports report_id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.recon_reports ALTER COLUMN report_id SET DEFAULT nextval('public.recon_reports_report_id_seq'::regclass);


--
-- Name: api_keys api_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (key_id);


--
-- Name: audit_heads audit_heads_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_heads
    ADD CONSTRAINT audit_heads_pkey PRIMARY KEY (merchant_id, chain);


--
-- Name: audit_log audit_log_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_log
    ADD CONSTRAINT audit_log_pkey PRIMARY KEY (merchant_id, chain, seq);


--
-- Name: captures captures_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.captures
    ADD CONSTRAINT captures_pkey PRIMARY KEY (merchant_id, capture_id);


--
-- Name: captures captures_psp_conf; Type: CHECK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE public.captures
    ADD CONSTRAINT captures_psp_conf CHECK ((jsonb_typeof(psp_conf) = 'object'::text)) NOT VALID;


--
-- Name: captures captures_psp_contact; Type: CHECK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE public.captures
    ADD CONSTRAINT captures_psp_contact CHECK ((psp_contact = ANY (ARRAY['none'::text, 'trying'::text, 'maybe'::text]))) NOT VALID;


--
-- Name: checkout_risk_after_due checkout_risk_after_due_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.checkout_risk_after_due
    ADD CONSTRAINT checkout_risk_after_due_pkey PRIMARY KEY (merchant_id, checkout_id);


--
-- Name: checkout_risk_after checkout_risk_after_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.checkout_risk_after
    ADD CONSTRAINT checkout_risk_after_pkey PRIMARY KEY (merchant_id, checkout_id);


--
-- Name: checkout_risk checkout_risk_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.checkout_risk
    ADD CONSTRAINT checkout_risk_pkey PRIMARY KEY (merchant_id, checkout_id);


--
-- Name: checkout_risk checkout_risk_row_checks; Type: CHECK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE public.checkout_risk
    ADD CONSTRAINT checkout_risk_row_checks CHECK (public.checkout_risk_row_checks(checkout_risk.*)) NOT VALID;


--
-- Name: checkout_routes checkout_routes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.checkout_routes
    ADD CONSTRAINT checkout_routes_pkey PRIMARY KEY (merchant_id, checkout_id, seq);


--
-- Name: checkout_routes checkout_routes_psp_once; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.checkout_routes
    ADD CONSTRAINT checkout_routes_psp_once UNIQUE (psp, merchant_id, checkout_id);


--
-- Name: checkout_sweeps checkout_sweeps_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.checkout_sweeps
    ADD CONSTRAINT checkout_sweeps_pkey PRIMARY KEY (merchant_id, checkout_id);


--
-- Name: checkouts checkouts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.checkouts
    ADD CONSTRAINT checkouts_pkey PRIMARY KEY (merchant_id, checkout_id);


--
-- Name: checkouts checkouts_row_checks; Type: CHECK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE public.checkouts
    ADD CONSTRAINT checkouts_row_checks CHECK (public.checkouts_row_checks(checkouts.*));


--
-- Name: dispute_parts dispute_parts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispute_parts
    ADD CONSTRAINT dispute_parts_pkey PRIMARY KEY (merchant_id, dispute_id, payment_order_id);


--
-- Name: disputes disputes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.disputes
    ADD CONSTRAINT disputes_pkey PRIMARY KEY (merchant_id, dispute_id);


--
-- Name: failed_open_sessions failed_open_sessions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.failed_open_sessions
    ADD CONSTRAINT failed_open_sessions_pkey PRIMARY KEY (merchant_id, checkout_id);


--
-- Name: idempotency_keys idempotency_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.idempotency_keys
    ADD CONSTRAINT idempotency_keys_pkey PRIMARY KEY (merchant_id, idem_key);


--
-- Name: idempotency_keys idempotency_keys_row_checks; Type: CHECK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE public.idempotency_keys
    ADD CONSTRAINT idempotency_keys_row_checks CHECK (public.idempotency_keys_row_checks(idempotency_keys.*));


--
-- Name: inquiry_ends_unread inquiry_ends_unread_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.inquiry_ends_unread
    ADD CONSTRAINT inquiry_ends_unread_pkey PRIMARY KEY (partition);


--
-- Name: ledger_accounts ledger_accounts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ledger_accounts
    ADD CONSTRAINT ledger_accounts_pkey PRIMARY KEY (account);


--
-- Name: ledger_entries ledger_entries_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ledger_entries
    ADD CONSTRAINT ledger_entries_pkey PRIMARY KEY (merchant_id, txn_id, entry_no);


--
-- Name: ledger_transactions ledger_transactions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ledger_transactions
    ADD CONSTRAINT ledger_transactions_pkey PRIMARY KEY (merchant_id, txn_id);


--
-- Name: merchant_commission_fixed merchant_commission_fixed_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.merchant_commission_fixed
    ADD CONSTRAINT merchant_commission_fixed_pkey PRIMARY KEY (merchant_id, currency);


--
-- Name: merchant_return_origins merchant_return_origins_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.merchant_return_origins
    ADD CONSTRAINT merchant_return_origins_pkey PRIMARY KEY (merchant_id, origin);


--
-- Name: merchants merchants_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.merchants
    ADD CONSTRAINT merchants_pkey PRIMARY KEY (merchant_id);


--
-- Name: notifications notifications_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_pkey PRIMARY KEY (merchant_id, notification_id);


--
-- Name: notify_deliverers notify_deliverers_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.notify_deliverers
    ADD CONSTRAINT notify_deliverers_pkey PRIMARY KEY (host);


--
-- Name: notify_endpoints notify_endpoints_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.notify_endpoints
    ADD CONSTRAINT notify_endpoints_pkey PRIMARY KEY (merchant_id, endpoint_id);


--
-- Name: notify_sequences notify_sequences_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.notify_sequences
    ADD CONSTRAINT notify_sequences_pkey PRIMARY KEY (merchant_id, subject);


--
-- Name: operation_keys operation_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.operation_keys
    ADD CONSTRAINT operation_keys_pkey PRIMARY KEY (merchant_id, idem_key, fingerprint);


--
-- Name: order_events order_events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.order_events
    ADD CONSTRAINT order_events_pkey PRIMARY KEY (merchant_id, checkout_id, event_id);


--
-- Name: payment_methods payment_methods_checkout_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.payment_methods
    ADD CONSTRAINT payment_methods_checkout_key UNIQUE (checkout_id, merchant_id);


--
-- Name: payment_methods payment_methods_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.payment_methods
    ADD CONSTRAINT payment_methods_pkey PRIMARY KEY (merchant_id, method_id);


--
-- Name: payment_methods payment_methods_psp_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.payment_methods
    ADD CONSTRAINT payment_methods_psp_key UNIQUE (psp, method_id, merchant_id);


--
-- Name: payment_methods payment_methods_token_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.payment_methods
    ADD CONSTRAINT payment_methods_token_key UNIQUE (token_index, psp);


--
-- Name: payment_orders payment_orders_checkout_order_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.payment_orders
    ADD CONSTRAINT payment_orders_checkout_order_key UNIQUE (merchant_id, checkout_id, payment_order_id);


--
-- Name: payment_orders payment_orders_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.payment_orders
    ADD CONSTRAINT payment_orders_pkey PRIMARY KEY (merchant_id, payment_order_id);


--
-- Name: payment_orders payment_orders_row_checks; Type: CHECK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE public.payment_orders
    ADD CONSTRAINT payment_orders_row_checks CHECK (public.payment_orders_row_checks(payment_orders.*));


--
-- Name: payouts payouts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.payouts
    ADD CONSTRAINT payouts_pkey PRIMARY KEY (merchant_id, payout_id);


--
-- Name: payouts payouts_psp_conf; Type: CHECK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE public.payouts
    ADD CONSTRAINT payouts_psp_conf CHECK ((jsonb_typeof(psp_conf) = 'object'::text)) NOT VALID;


--
-- Name: payouts payouts_psp_contact; Type: CHECK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE public.payouts
    ADD CONSTRAINT payouts_psp_contact CHECK ((psp_contact = ANY (ARRAY['none'::text, 'trying'::text, 'maybe'::text]))) NOT VALID;


--
-- Name: psp_event_ids psp_event_ids_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.psp_event_ids
    ADD CONSTRAINT psp_event_ids_pkey PRIMARY KEY (psp, event_id);


--
-- Name: psp_events psp_events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.psp_events
    ADD CONSTRAINT psp_events_pkey PRIMARY KEY (psp, event_id, received_at);


--
-- Name: psp_events psp_events_row_checks; Type: CHECK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE public.psp_events
    ADD CONSTRAINT psp_events_row_checks CHECK (public.psp_events_row_checks(psp, event_id, type, key_id, body, state, kind, method, applied_at, unmatched_at, forwarded_to)) NOT VALID;


--
-- Name: psp_payments psp_payments_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.psp_payments
    ADD CONSTRAINT psp_payments_pkey PRIMARY KEY (psp, payment_ref);


--
-- Name: psp_tokens psp_tokens_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.psp_tokens
    ADD CONSTRAINT psp_tokens_pkey PRIMARY KEY (psp, psp_token);


--
-- Name: recon_mismatches recon_mismatches_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.recon_mismatches
    ADD CONSTRAINT recon_mismatches_pkey PRIMARY KEY (mismatch_id);


--
-- Name: recon_reports recon_reports_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.recon_reports
    ADD CONSTRAINT recon_reports_pkey PRIMARY KEY (report_id);


--
-- Name: recon_reports recon_reports_sha256_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.recon_reports
    ADD CONSTRAINT recon_reports_sha256_key UNIQUE (sha256);


--
-- Name: recon_rows recon_rows_customer; Type: CHECK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE public.recon_rows
    ADD CONSTRAINT recon_rows_customer CHECK ((((customer_currency = ''::text) AND (customer_amount IS NULL)) OR ((customer_currency ~ '^[A-Z]{3}$'::text) AND (customer_amount IS NOT NULL)))) NOT VALID;


--
-- Name: recon_rows recon_rows_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.recon_rows
    ADD CONSTRAINT recon_rows_pkey PRIMARY KEY (report_id, record);


--
-- Name: recon_rows recon_rows_psp_amounts; Type: CHECK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE public.recon_rows
    ADD CONSTRAINT recon_rows_psp_amounts CHECK (((psp_gross ~ '^(-?[0-9]{1,20}(\.[0-9]{1,18})?)?$'::text) AND (psp_fee ~ '^(-?[0-9]{1,20}(\.[0-9]{1,18})?)?$'::text) AND (psp_net ~ '^(-?[0-9]{1,20}(\.[0-9]{1,18})?)?$'::text))) NOT VALID;


--
-- Name: recon_seen recon_seen_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.recon_seen
    ADD CONSTRAINT recon_seen_pkey PRIMARY KEY (psp, row_id);


--
-- Name: refunds refunds_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.refunds
    ADD CONSTRAINT refunds_pkey PRIMARY KEY (merchant_id, refund_id);


--
-- Name: refunds refunds_psp_conf; Type: CHECK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE public.refunds
    ADD CONSTRAINT refunds_psp_conf CHECK ((jsonb_typeof(psp_conf) = 'object'::text)) NOT VALID;


--
-- Name: refunds refunds_psp_contact; Type: CHECK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE public.refunds
    ADD CONSTRAINT refunds_psp_contact CHECK ((psp_contact = ANY (ARRAY['none'::text, 'trying'::text, 'maybe'::text]))) NOT VALID;


--
-- Name: refunds refunds_seller_when_pending; Type: CHECK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE public.refunds
    ADD CONSTRAINT refunds_seller_when_pending CHECK (((status <> 'PENDING'::text) OR (seller_account IS NOT NULL))) NOT VALID;


--
-- Name: schema_functions schema_functions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_functions
    ADD CONSTRAINT schema_functions_pkey PRIMARY KEY (file);


--
-- Name: schema_migrations schema_migrations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);


--
-- Name: sellers sellers_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sellers
    ADD CONSTRAINT sellers_pkey PRIMARY KEY (merchant_id, seller_account, psp);


--
-- Name: sweeper_late sweeper_late_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sweeper_late
    ADD CONSTRAINT sweeper_late_pkey PRIMARY KEY (merchant_id, checkout_id);


--
-- Name: sweeper_lease sweeper_lease_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sweeper_lease
    ADD CONSTRAINT sweeper_lease_pkey PRIMARY KEY (id);


--
-- Name: wallets_folded wallets_folded_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.wallets_folded
    ADD CONSTRAINT wallets_folded_pkey PRIMARY KEY (merchant_id, seller_account, currency);


--
-- Name: webhook_events webhook_events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_events
    ADD CONSTRAINT webhook_events_pkey PRIMARY KEY (psp, event_id);


--
-- Name: api_keys_created; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX api_keys_created ON public.api_keys USING btree (created_at) WHERE (revoked_at IS NULL);


--
-- Name: api_keys_merchant; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX api_keys_merchant ON public.api_keys USING btree (merchant_id);


--
-- Name: captures_checkout; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX captures_checkout ON public.captures USING btree (checkout_id, merchant_id);


--
-- Name: captures_order; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX captures_order ON public.captures USING btree (payment_order_id, merchant_id);


--
-- Name: captures_psp_ref; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX captures_psp_ref ON public.captures USING btree (psp, psp_ref) WHERE (psp_ref IS NOT NULL);


--
-- Name: checkout_risk_after_due_decided; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX checkout_risk_after_due_decided ON public.checkout_risk_after_due USING btree (decided_at);


--
-- Name: checkout_risk_decided; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX checkout_risk_decided ON public.checkout_risk USING btree (decided_at);


--
-- Name: checkout_risk_open_reviews; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX checkout_risk_open_reviews ON public.checkout_risk USING btree (review_until) WHERE ((verdict = 'review'::text) AND (reviewed IS NULL) AND (review_until IS NOT NULL));


--
-- Name: checkouts_executing_since; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX checkouts_executing_since ON public.checkouts USING btree (created_at) WHERE (status = 'EXECUTING'::public.pay_status);


--
-- Name: checkouts_holds_open; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX checkouts_holds_open ON public.checkouts USING btree (authorized_at) WHERE ((authorized_at IS NOT NULL) AND (hold_closed_at IS NULL));


--
-- Name: checkouts_list; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX checkouts_list ON public.checkouts USING btree (merchant_id, created_at, checkout_id) WHERE (created_at IS NOT NULL);


--
-- Name: checkouts_method_alerted; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX checkouts_method_alerted ON public.checkouts USING btree (created_at) WHERE ((save_method IS NOT NULL) AND (method_saved_at IS NULL) AND (method_alerted_at IS NOT NULL) AND (status = ANY (ARRAY['SUCCESS'::public.pay_status, 'AUTHORIZED'::public.pay_status])));


--
-- Name: checkouts_method_unalerted; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX checkouts_method_unalerted ON public.checkouts USING btree (created_at) WHERE ((save_method IS NOT NULL) AND (method_saved_at IS NULL) AND (method_alerted_at IS NULL) AND (status = ANY (ARRAY['SUCCESS'::public.pay_status, 'AUTHORIZED'::public.pay_status])));


--
-- Name: checkouts_payment_method; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX checkouts_payment_method ON public.checkouts USING btree (merchant_id, payment_method_id) WHERE (payment_method_id IS NOT NULL);


--
-- Name: dispute_parts_order; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX dispute_parts_order ON public.dispute_parts USING btree (payment_order_id, merchant_id, dispute_id);


--
-- Name: dispute_parts_seller; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX dispute_parts_seller ON public.dispute_parts USING btree (merchant_id, seller_account, currency);


--
-- Name: disputes_checkout; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX disputes_checkout ON public.disputes USING btree (checkout_id, merchant_id);


--
-- Name: disputes_psp_ref; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX disputes_psp_ref ON public.disputes USING btree (psp, psp_dispute_ref);


--
-- Name: failed_open_sessions_expiry; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX failed_open_sessions_expiry ON public.failed_open_sessions USING btree (expires_at);


--
-- Name: idempotency_keys_expiry; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idempotency_keys_expiry ON public.idempotency_keys USING btree (expires_at);


--
-- Name: ledger_transactions_checkout; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ledger_transactions_checkout ON public.ledger_transactions USING btree (merchant_id, checkout_id);


--
-- Name: merchants_placed; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX merchants_placed ON public.merchants USING btree (placed_at);


--
-- Name: notifications_delivered; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX notifications_delivered ON public.notifications USING btree (delivered_at) WHERE (status = 'DELIVERED'::text);


--
-- Name: notifications_failed; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX notifications_failed ON public.notifications USING btree (merchant_id, created_at DESC, notification_id DESC) WHERE (status = 'FAILED'::text);


--
-- Name: notifications_feed; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX notifications_feed ON public.notifications USING btree (merchant_id, feed_xact, created_at, notification_id) WHERE in_feed;


--
-- Name: notifications_leased; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX notifications_leased ON public.notifications USING btree (merchant_id, endpoint_id, lease_until) WHERE ((status = 'PENDING'::text) AND (lease_owner IS NOT NULL));


--
-- Name: notifications_list; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX notifications_list ON public.notifications USING btree (merchant_id, created_at DESC) WHERE (created_at IS NOT NULL);


--
-- Name: notifications_pending_endpoint; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX notifications_pending_endpoint ON public.notifications USING btree (merchant_id, endpoint_id, next_at) WHERE (status = 'PENDING'::text);


--
-- Name: notifications_pending_since; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX notifications_pending_since ON public.notifications USING btree (created_at) WHERE ((status = 'PENDING'::text) AND (created_at IS NOT NULL));


--
-- Name: notify_endpoints_created_idem_key; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX notify_endpoints_created_idem_key ON public.notify_endpoints USING btree (merchant_id, created_idem_key) WHERE (created_idem_key IS NOT NULL);


--
-- Name: payment_methods_customer_page; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX payment_methods_customer_page ON public.payment_methods USING btree (customer, merchant_id, created_at DESC, method_id DESC);


--
-- Name: payment_methods_psp_detach_due; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX payment_methods_psp_detach_due ON public.payment_methods USING btree (psp, COALESCE(psp_detach_tried_at, detached_at)) WHERE ((status = 'detached'::text) AND (psp_detached_at IS NULL));


--
-- Name: payment_orders_list; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX payment_orders_list ON public.payment_orders USING btree (merchant_id, created_at, payment_order_id) WHERE (created_at IS NOT NULL);


--
-- Name: payouts_list; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX payouts_list ON public.payouts USING btree (merchant_id, created_at, payout_id) WHERE (created_at IS NOT NULL);


--
-- Name: payouts_psp_created; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX payouts_psp_created ON public.payouts USING btree (psp, created_at);


--
-- Name: payouts_psp_id; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX payouts_psp_id ON public.payouts USING btree (psp, psp_payout_id);


--
-- Name: payouts_seller; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX payouts_seller ON public.payouts USING btree (merchant_id, seller_account, currency) WHERE (status = 'PENDING'::text);


--
-- Name: psp_events_checkout; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX psp_events_checkout ON ONLY public.psp_events USING btree (checkout_id, merchant_id) WHERE (checkout_id IS NOT NULL);


--
-- Name: psp_events_pending; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX psp_events_pending ON ONLY public.psp_events USING btree (received_at) WHERE (state = 'pending'::text);


--
-- Name: psp_payments_checkout; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX psp_payments_checkout ON public.psp_payments USING btree (checkout_id, merchant_id);


--
-- Name: psp_tokens_checkout; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX psp_tokens_checkout ON public.psp_tokens USING btree (checkout_id, merchant_id);


--
-- Name: recon_mismatches_open; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX recon_mismatches_open ON public.recon_mismatches USING btree (psp, kind, merchant_id, checkout_id) WHERE (resolved_at IS NULL);


--
-- Name: recon_mismatches_report; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX recon_mismatches_report ON public.recon_mismatches USING btree (report_id, class);


--
-- Name: recon_rows_disputes; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX recon_rows_disputes ON public.recon_rows USING btree (object_ref) WHERE (type = ANY (ARRAY['dispute'::text, 'dispute_won'::text]));


--
-- Name: recon_rows_failures; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX recon_rows_failures ON public.recon_rows USING btree (report_id) WHERE (type = ANY (ARRAY['refund_failure'::text, 'payout_failure'::text]));


--
-- Name: recon_seen_checkout; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX recon_seen_checkout ON public.recon_seen USING btree (merchant_id, checkout_id);


--
-- Name: recon_seen_object; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX recon_seen_object ON public.recon_seen USING btree (merchant_id, object_id) WHERE (object_id IS NOT NULL);


--
-- Name: refunds_list; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX refunds_list ON public.refunds USING btree (merchant_id, created_at, refund_id) WHERE (created_at IS NOT NULL);


--
-- Name: refunds_order; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX refunds_order ON public.refunds USING btree (payment_order_id, merchant_id);


--
-- Name: refunds_pending_seller; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX refunds_pending_seller ON public.refunds USING btree (merchant_id, seller_account, currency, payment_order_id) WHERE (status = 'PENDING'::text);


--
-- Name: refunds_psp_created; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX refunds_psp_created ON public.refunds USING btree (psp, created_at);


--
-- Name: refunds_psp_id; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX refunds_psp_id ON public.refunds USING btree (psp, psp_refund_id);


--
-- Name: wallet_credits_seller; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX wallet_credits_seller ON public.wallet_credits USING btree (merchant_id, seller_account, currency);


--
-- Name: webhook_events_amount_mismatch; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_events_amount_mismatch ON public.webhook_events USING btree (merchant_id, checkout_id) WHERE ((outcome = 'amount_mismatch'::text) AND (kind = ANY (ARRAY['SUCCEEDED'::text, 'CAPTURED'::text, 'AUTHORIZED'::text])));


--
-- Name: webhook_events_pending; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX webhook_events_pending ON public.webhook_events USING btree (merchant_id, checkout_id) WHERE (kind = 'PENDING'::text);


--
-- Name: api_keys api_keys_limit; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER api_keys_limit BEFORE INSERT OR UPDATE OF revoked_at, merchant_id ON public.api_keys FOR EACH ROW WHEN ((new.revoked_at IS NULL)) EXECUTE FUNCTION public.api_keys_limit();


--
-- Name: audit_heads audit_heads_forward; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_heads_forward AFTER DELETE OR UPDATE ON public.audit_heads FOR EACH ROW EXECUTE FUNCTION public.audit_heads_forward();


--
-- Name: audit_log audit_log_link; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_log_link BEFORE INSERT ON public.audit_log FOR EACH ROW EXECUTE FUNCTION public.audit_log_link();


--
-- Name: audit_log audit_log_no_change; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_log_no_change BEFORE DELETE OR UPDATE ON public.audit_log FOR EACH ROW EXECUTE FUNCTION public.evidence_append_only();


--
-- Name: audit_log audit_log_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON public.audit_log FOR EACH STATEMENT EXECUTE FUNCTION public.evidence_append_only();


--
-- Name: captures captures_forward; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER captures_forward BEFORE DELETE OR UPDATE ON public.captures FOR EACH ROW EXECUTE FUNCTION public.money_status_forward();


--
-- Name: captures captures_notify; Type: TRIGGER; Schema: public; Owner: -
--

CREATE CONSTRAINT TRIGGER captures_notify AFTER UPDATE OF status ON public.captures DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (((new.status = 'FAILED'::text) AND (new.kind = 'capture'::text))) EXECUTE FUNCTION public.captures_notify();


--
-- Name: captures captures_notify_made; Type: TRIGGER; Schema: public; Owner: -
--

CREATE CONSTRAINT TRIGGER captures_notify_made AFTER INSERT ON public.captures DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN ((new.kind = 'capture'::text)) EXECUTE FUNCTION public.captures_notify();


--
-- Name: checkouts checkouts_commission_frozen; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER checkouts_commission_frozen BEFORE UPDATE OF commission_bps, commission_fixed ON public.checkouts FOR EACH ROW WHEN (((old.commission_bps IS DISTINCT FROM new.commission_bps) OR (old.commission_fixed IS DISTINCT FROM new.commission_fixed))) EXECUTE FUNCTION public.checkouts_commission_frozen();


--
-- Name: checkouts checkouts_failed_open; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER checkouts_failed_open AFTER UPDATE OF status, psp_url, expires_at ON public.checkouts FOR EACH ROW WHEN (((old.status = 'FAILED'::public.pay_status) OR (new.status = 'FAILED'::public.pay_status))) EXECUTE FUNCTION public.checkouts_failed_open();


--
-- Name: checkouts checkouts_merchant_terms; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER checkouts_merchant_terms BEFORE INSERT OR UPDATE OF psp ON public.checkouts FOR EACH ROW EXECUTE FUNCTION public.checkouts_merchant_terms();


--
-- Name: checkouts checkouts_notify; Type: TRIGGER; Schema: public; Owner: -
--

CREATE CONSTRAINT TRIGGER checkouts_notify AFTER UPDATE OF status ON public.checkouts DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.checkouts_notify();


--
-- Name: checkouts checkouts_status_forward; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER checkouts_status_forward BEFORE UPDATE OF status ON public.checkouts FOR EACH ROW EXECUTE FUNCTION public.status_forward_guard();


--
-- Name: checkouts checkouts_status_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER checkouts_status_insert BEFORE INSERT ON public.checkouts FOR EACH ROW WHEN ((new.status <> ALL (ARRAY['NOT_STARTED'::public.pay_status, 'EXECUTING'::public.pay_status]))) EXECUTE FUNCTION public.status_forward_guard();


--
-- Name: checkouts checkouts_sweep_late; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER checkouts_sweep_late AFTER UPDATE OF status, psp_token ON public.checkouts FOR EACH ROW WHEN ((new.status = 'EXECUTING'::public.pay_status)) EXECUTE FUNCTION public.checkouts_sweep_late();


--
-- Name: disputes disputes_forward; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER disputes_forward BEFORE DELETE OR UPDATE ON public.disputes FOR EACH ROW EXECUTE FUNCTION public.money_status_forward();


--
-- Name: disputes disputes_notify; Type: TRIGGER; Schema: public; Owner: -
--

CREATE CONSTRAINT TRIGGER disputes_notify AFTER INSERT OR UPDATE OF status ON public.disputes DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.disputes_notify();


--
-- Name: ledger_entries ledger_entries_balanced; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER ledger_entries_balanced AFTER INSERT ON public.ledger_entries REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_entries_balanced();


--
-- Name: ledger_entries ledger_entries_no_change; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER ledger_entries_no_change BEFORE DELETE OR UPDATE ON public.ledger_entries FOR EACH ROW EXECUTE FUNCTION public.evidence_append_only();


--
-- Name: ledger_entries ledger_entries_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON public.ledger_entries FOR EACH STATEMENT EXECUTE FUNCTION public.evidence_append_only();


--
-- Name: ledger_transactions ledger_transactions_balanced; Type: TRIGGER; Schema: public; Owner: -
--

CREATE CONSTRAINT TRIGGER ledger_transactions_balanced AFTER INSERT ON public.ledger_transactions DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.ledger_balanced();


--
-- Name: ledger_transactions ledger_transactions_no_change; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER ledger_transactions_no_change BEFORE DELETE OR UPDATE ON public.ledger_transactions FOR EACH ROW EXECUTE FUNCTION public.evidence_append_only();


--
-- Name: ledger_transactions ledger_transactions_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER ledger_transactions_no_truncate BEFORE TRUNCATE ON public.ledger_transactions FOR EACH STATEMENT EXECUTE FUNCTION public.evidence_append_only();


--
-- Name: merchants merchants_no_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER merchants_no_delete BEFORE DELETE ON public.merchants FOR EACH ROW EXECUTE FUNCTION public.merchants_keep();


--
-- Name: merchants merchants_no_rename; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER merchants_no_rename BEFORE UPDATE OF merchant_id ON public.merchants FOR EACH ROW WHEN ((old.merchant_id IS DISTINCT FROM new.merchant_id)) EXECUTE FUNCTION public.merchants_keep();


--
-- Name: merchants merchants_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER merchants_no_truncate BEFORE TRUNCATE ON public.merchants FOR EACH STATEMENT EXECUTE FUNCTION public.merchants_keep();


--
-- Name: operation_keys operation_keys_no_change; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER operation_keys_no_change BEFORE DELETE OR UPDATE ON public.operation_keys FOR EACH ROW EXECUTE FUNCTION public.evidence_append_only();


--
-- Name: operation_keys operation_keys_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER operation_keys_no_truncate BEFORE TRUNCATE ON public.operation_keys FOR EACH STATEMENT EXECUTE FUNCTION public.evidence_append_only();


--
-- Name: order_events order_events_no_change; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER order_events_no_change BEFORE DELETE OR UPDATE ON public.order_events FOR EACH ROW EXECUTE FUNCTION public.order_events_append_only();


--
-- Name: order_events order_events_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER order_events_no_truncate BEFORE TRUNCATE ON public.order_events FOR EACH STATEMENT EXECUTE FUNCTION public.order_events_append_only();


--
-- Name: payment_methods payment_methods_notify_detached; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER payment_methods_notify_detached AFTER UPDATE OF status ON public.payment_methods FOR EACH ROW WHEN (((old.status IS DISTINCT FROM new.status) AND (new.status = 'detached'::text))) EXECUTE FUNCTION public.payment_methods_notify();


--
-- Name: payment_methods payment_methods_notify_saved; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER payment_methods_notify_saved AFTER INSERT ON public.payment_methods FOR EACH ROW EXECUTE FUNCTION public.payment_methods_notify();


--
-- Name: payment_orders payment_orders_status_forward; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER payment_orders_status_forward BEFORE UPDATE OF status ON public.payment_orders FOR EACH ROW EXECUTE FUNCTION public.status_forward_guard();


--
-- Name: payment_orders payment_orders_status_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER payment_orders_status_insert BEFORE INSERT ON public.payment_orders FOR EACH ROW WHEN ((new.status <> ALL (ARRAY['NOT_STARTED'::public.pay_status, 'EXECUTING'::public.pay_status]))) EXECUTE FUNCTION public.status_forward_guard();


--
-- Name: payouts payouts_forward; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER payouts_forward BEFORE DELETE OR UPDATE ON public.payouts FOR EACH ROW EXECUTE FUNCTION public.money_status_forward();


--
-- Name: payouts payouts_notify; Type: TRIGGER; Schema: public; Owner: -
--

CREATE CONSTRAINT TRIGGER payouts_notify AFTER INSERT OR UPDATE OF status, amount_reversed ON public.payouts DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN ((new.status = ANY (ARRAY['PAID'::text, 'FAILED'::text]))) EXECUTE FUNCTION public.payouts_notify();


--
-- Name: payouts payouts_within_balance; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER payouts_within_balance BEFORE INSERT ON public.payouts FOR EACH ROW EXECUTE FUNCTION public.payouts_within_balance();


--
-- Name: psp_events psp_events_id_change; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER psp_events_id_change BEFORE UPDATE OF psp, event_id, received_at ON public.psp_events FOR EACH ROW WHEN (((new.psp IS DISTINCT FROM old.psp) OR (new.event_id IS DISTINCT FROM old.event_id) OR (new.received_at IS DISTINCT FROM old.received_at))) EXECUTE FUNCTION public.psp_event_ids_keep();


--
-- Name: psp_events psp_events_id_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER psp_events_id_delete AFTER DELETE ON public.psp_events FOR EACH ROW EXECUTE FUNCTION public.psp_event_ids_keep();


--
-- Name: psp_events psp_events_id_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER psp_events_id_insert BEFORE INSERT ON public.psp_events FOR EACH ROW EXECUTE FUNCTION public.psp_event_ids_keep();


--
-- Name: psp_events psp_events_id_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER psp_events_id_truncate AFTER TRUNCATE ON public.psp_events FOR EACH STATEMENT EXECUTE FUNCTION public.psp_event_ids_keep();


--
-- Name: refunds refunds_forward; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER refunds_forward BEFORE DELETE OR UPDATE ON public.refunds FOR EACH ROW EXECUTE FUNCTION public.money_status_forward();


--
-- Name: refunds refunds_notify; Type: TRIGGER; Schema: public; Owner: -
--

CREATE CONSTRAINT TRIGGER refunds_notify AFTER INSERT OR UPDATE OF status ON public.refunds DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN ((new.status = ANY (ARRAY['SUCCEEDED'::text, 'FAILED'::text]))) EXECUTE FUNCTION public.refunds_notify();


--
-- Name: refunds refunds_seller; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER refunds_seller BEFORE INSERT ON public.refunds FOR EACH ROW EXECUTE FUNCTION public.refunds_seller();


--
-- Name: refunds refunds_within_capture; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER refunds_within_capture BEFORE INSERT ON public.refunds FOR EACH ROW EXECUTE FUNCTION public.refunds_within_capture();


--
-- Name: webhook_events webhook_events_no_change; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER webhook_events_no_change BEFORE DELETE OR UPDATE ON public.webhook_events FOR EACH ROW EXECUTE FUNCTION public.evidence_append_only();


--
-- Name: webhook_events webhook_events_no_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER webhook_events_no_truncate BEFORE TRUNCATE ON public.webhook_events FOR EACH STATEMENT EXECUTE FUNCTION public.evidence_append_only();


--
-- Name: api_keys api_keys_merchant_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_merchant_id_fkey FOREIGN KEY (merchant_id) REFERENCES public.merchants(merchant_id);


--
-- Name: captures captures_merchant_id_payment_order_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.captures
    ADD CONSTRAINT captures_merchant_id_payment_order_id_fkey FOREIGN KEY (merchant_id, payment_order_id) REFERENCES public.payment_orders(merchant_id, payment_order_id);


--
-- Name: checkout_risk_after_due checkout_risk_after_due_merchant_id_checkout_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.checkout_risk_after_due
    ADD CONSTRAINT checkout_risk_after_due_merchant_id_checkout_id_fkey FOREIGN KEY (merchant_id, checkout_id) REFERENCES public.checkout_risk(merchant_id, checkout_id) ON DELETE CASCADE;


--
-- Name: checkout_risk_after checkout_risk_after_merchant_id_checkout_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.checkout_risk_after
    ADD CONSTRAINT checkout_risk_after_merchant_id_checkout_id_fkey FOREIGN KEY (merchant_id, checkout_id) REFERENCES public.checkout_risk(merchant_id, checkout_id) ON DELETE CASCADE;


--
-- Name: checkout_risk checkout_risk_merchant_id_checkout_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.checkout_risk
    ADD CONSTRAINT checkout_risk_merchant_id_checkout_id_fkey FOREIGN KEY (merchant_id, checkout_id) REFERENCES public.checkouts(merchant_id, checkout_id) ON DELETE CASCADE;


--
-- Name: checkout_routes checkout_routes_checkout; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.checkout_routes
    ADD CONSTRAINT checkout_routes_checkout FOREIGN KEY (merchant_id, checkout_id) REFERENCES public.checkouts(merchant_id, checkout_id) ON DELETE CASCADE;


--
-- Name: checkout_sweeps checkout_sweeps_merchant_id_checkout_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.checkout_sweeps
    ADD CONSTRAINT checkout_sweeps_merchant_id_checkout_id_fkey FOREIGN KEY (merchant_id, checkout_id) REFERENCES public.checkouts(merchant_id, checkout_id);


--
-- Name: checkouts checkouts_payment_method_fk; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.checkouts
    ADD CONSTRAINT checkouts_payment_method_fk FOREIGN KEY (merchant_id, payment_method_id, psp) REFERENCES public.payment_methods(merchant_id, method_id, psp);


--
-- Name: dispute_parts dispute_parts_merchant_id_checkout_id_payment_order_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispute_parts
    ADD CONSTRAINT dispute_parts_merchant_id_checkout_id_payment_order_id_fkey FOREIGN KEY (merchant_id, checkout_id, payment_order_id) REFERENCES public.payment_orders(merchant_id, checkout_id, payment_order_id);


--
-- Name: dispute_parts dispute_parts_merchant_id_dispute_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dispute_parts
    ADD CONSTRAINT dispute_parts_merchant_id_dispute_id_fkey FOREIGN KEY (merchant_id, dispute_id) REFERENCES public.disputes(merchant_id, dispute_id);


--
-- Name: disputes disputes_merchant_id_checkout_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.disputes
    ADD CONSTRAINT disputes_merchant_id_checkout_id_fkey FOREIGN KEY (merchant_id, checkout_id) REFERENCES public.checkouts(merchant_id, checkout_id);


--
-- Name: failed_open_sessions failed_open_sessions_merchant_id_checkout_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.failed_open_sessions
    ADD CONSTRAINT failed_open_sessions_merchant_id_checkout_id_fkey FOREIGN KEY (merchant_id, checkout_id) REFERENCES public.checkouts(merchant_id, checkout_id) ON DELETE CASCADE;


--
-- Name: ledger_transactions ledger_transactions_merchant_id_checkout_id_payment_order__fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ledger_transactions
    ADD CONSTRAINT ledger_transactions_merchant_id_checkout_id_payment_order__fkey FOREIGN KEY (merchant_id, checkout_id, payment_order_id) REFERENCES public.payment_orders(merchant_id, checkout_id, payment_order_id);


--
-- Name: merchant_commission_fixed merchant_commission_fixed_merchant_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.merchant_commission_fixed
    ADD CONSTRAINT merchant_commission_fixed_merchant_id_fkey FOREIGN KEY (merchant_id) REFERENCES public.merchants(merchant_id);


--
-- Name: merchant_return_origins merchant_return_origins_merchant_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.merchant_return_origins
    ADD CONSTRAINT merchant_return_origins_merchant_id_fkey FOREIGN KEY (merchant_id) REFERENCES public.merchants(merchant_id);


--
-- Name: notifications notifications_merchant_id_endpoint_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_merchant_id_endpoint_id_fkey FOREIGN KEY (merchant_id, endpoint_id) REFERENCES public.notify_endpoints(merchant_id, endpoint_id);


--
-- Name: order_events order_events_merchant_id_checkout_id_payment_order_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.order_events
    ADD CONSTRAINT order_events_merchant_id_checkout_id_payment_order_id_fkey FOREIGN KEY (merchant_id, checkout_id, payment_order_id) REFERENCES public.payment_orders(merchant_id, checkout_id, payment_order_id);


--
-- Name: payment_methods payment_methods_checkout_fk; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.payment_methods
    ADD CONSTRAINT payment_methods_checkout_fk FOREIGN KEY (merchant_id, checkout_id) REFERENCES public.checkouts(merchant_id, checkout_id);


--
-- Name: payment_orders payment_orders_merchant_id_checkout_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.payment_orders
    ADD CONSTRAINT payment_orders_merchant_id_checkout_id_fkey FOREIGN KEY (merchant_id, checkout_id) REFERENCES public.checkouts(merchant_id, checkout_id);


--
-- Name: payouts payouts_merchant_id_seller_account_psp_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.payouts
    ADD CONSTRAINT payouts_merchant_id_seller_account_psp_fkey FOREIGN KEY (merchant_id, seller_account, psp) REFERENCES public.sellers(merchant_id, seller_account, psp);


--
-- Name: psp_payments psp_payments_merchant_id_checkout_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.psp_payments
    ADD CONSTRAINT psp_payments_merchant_id_checkout_id_fkey FOREIGN KEY (merchant_id, checkout_id) REFERENCES public.checkouts(merchant_id, checkout_id);


--
-- Name: psp_tokens psp_tokens_merchant_id_checkout_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.psp_tokens
    ADD CONSTRAINT psp_tokens_merchant_id_checkout_id_fkey FOREIGN KEY (merchant_id, checkout_id) REFERENCES public.checkouts(merchant_id, checkout_id);


--
-- Name: recon_mismatches recon_mismatches_report_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.recon_mismatches
    ADD CONSTRAINT recon_mismatches_report_id_fkey FOREIGN KEY (report_id) REFERENCES public.recon_reports(report_id);


--
-- Name: recon_rows recon_rows_report_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.recon_rows
    ADD CONSTRAINT recon_rows_report_id_fkey FOREIGN KEY (report_id) REFERENCES public.recon_reports(report_id);


--
-- Name: recon_seen recon_seen_report_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.recon_seen
    ADD CONSTRAINT recon_seen_report_id_fkey FOREIGN KEY (report_id) REFERENCES public.recon_reports(report_id);


--
-- Name: refunds refunds_merchant_id_checkout_id_payment_order_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.refunds
    ADD CONSTRAINT refunds_merchant_id_checkout_id_payment_order_id_fkey FOREIGN KEY (merchant_id, checkout_id, payment_order_id) REFERENCES public.payment_orders(merchant_id, checkout_id, payment_order_id);


--
-- Name: sellers sellers_merchant_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sellers
    ADD CONSTRAINT sellers_merchant_id_fkey FOREIGN KEY (merchant_id) REFERENCES public.merchants(merchant_id);


--
-- Name: sweeper_late sweeper_late_merchant_id_checkout_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sweeper_late
    ADD CONSTRAINT sweeper_late_merchant_id_checkout_id_fkey FOREIGN KEY (merchant_id, checkout_id) REFERENCES public.checkouts(merchant_id, checkout_id);


--
-- Name: FUNCTION api_keys_limit(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.api_keys_limit() FROM PUBLIC;


--
-- Name: FUNCTION audit_append(p_merchant text, p_checkout text, p_action text, p_detail jsonb); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.audit_append(p_merchant text, p_checkout text, p_action text, p_detail jsonb) FROM PUBLIC;


--
-- Name: FUNCTION audit_append_to(p_merchant text, p_chain smallint, p_checkout text, p_action text, p_detail jsonb); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.audit_append_to(p_merchant text, p_chain smallint, p_checkout text, p_action text, p_detail jsonb) FROM PUBLIC;


--
-- Name: FUNCTION audit_chain_hash(p_prev bytea, p_merchant text, p_chain smallint, p_seq bigint, p_at timestamp with time zone, p_checkout text, p_action text, p_detail jsonb); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.audit_chain_hash(p_prev bytea, p_merchant text, p_chain smallint, p_seq bigint, p_at timestamp with time zone, p_checkout text, p_action text, p_detail jsonb) FROM PUBLIC;


--
-- Name: FUNCTION audit_chain_of(p_checkout text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.audit_chain_of(p_checkout text) FROM PUBLIC;


--
-- Name: FUNCTION audit_heads_forward(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.audit_heads_forward() FROM PUBLIC;


--
-- Name: FUNCTION audit_log_link(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.audit_log_link() FROM PUBLIC;


--
-- Name: FUNCTION audit_log_row_checks(action text, chain smallint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.audit_log_row_checks(action text, chain smallint) FROM PUBLIC;


--
-- Name: FUNCTION audit_open_chains(p_merchant text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.audit_open_chains(p_merchant text) FROM PUBLIC;


--
-- Name: FUNCTION audit_row_hash(p_prev bytea, p_merchant text, p_seq bigint, p_at timestamp with time zone, p_checkout text, p_action text, p_detail jsonb); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.audit_row_hash(p_prev bytea, p_merchant text, p_seq bigint, p_at timestamp with time zone, p_checkout text, p_action text, p_detail jsonb) FROM PUBLIC;


--
-- Name: FUNCTION audit_row_hash(p_prev bytea, p_merchant text, p_chain smallint, p_seq bigint, p_at timestamp with time zone, p_checkout text, p_action text, p_detail jsonb); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.audit_row_hash(p_prev bytea, p_merchant text, p_chain smallint, p_seq bigint, p_at timestamp with time zone, p_checkout text, p_action text, p_detail jsonb) FROM PUBLIC;


--
-- Name: FUNCTION capture_event_apply(p_psp text, p_event_id text, p_kind text, p_reference text, p_amount bigint, p_currency text, p_object_ref text, p_payment_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.capture_event_apply(p_psp text, p_event_id text, p_kind text, p_reference text, p_amount bigint, p_currency text, p_object_ref text, p_payment_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text) FROM PUBLIC;


--
-- Name: FUNCTION capture_unsendable_give_up(p_merchant text, p_checkout text, p_capture text, p_currency text, p_unit bigint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.capture_unsendable_give_up(p_merchant text, p_checkout text, p_capture text, p_currency text, p_unit bigint) FROM PUBLIC;


--
-- Name: FUNCTION captures_notify(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.captures_notify() FROM PUBLIC;


--
-- Name: FUNCTION checkout_failure(p_code public.pay_failure_code, p_failure text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.checkout_failure(p_code public.pay_failure_code, p_failure text) FROM PUBLIC;


--
-- Name: FUNCTION checkout_failure_code(p_type text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.checkout_failure_code(p_type text) FROM PUBLIC;


--
-- Name: FUNCTION checkout_key_finish(p_fn text, p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_valid boolean, p_invalid text, p_response_status integer, p_response_body text, OUT replay boolean, OUT stored_status integer, OUT stored_body text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.checkout_key_finish(p_fn text, p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_valid boolean, p_invalid text, p_response_status integer, p_response_body text, OUT replay boolean, OUT stored_status integer, OUT stored_body text) FROM PUBLIC;


--
-- Name: FUNCTION checkout_orders_fail(p_merchant text, p_checkout_id text, p_psp text, p_failure text, p_source text, p_audit text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.checkout_orders_fail(p_merchant text, p_checkout_id text, p_psp text, p_failure text, p_source text, p_audit text) FROM PUBLIC;


--
-- Name: FUNCTION checkout_orders_failed(p_merchant text, p_checkout_id text, p_source text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.checkout_orders_failed(p_merchant text, p_checkout_id text, p_source text) FROM PUBLIC;


--
-- Name: FUNCTION checkout_payment_under_way(p_psp text, p_merchant text, p_checkout text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.checkout_payment_under_way(p_psp text, p_merchant text, p_checkout text) FROM PUBLIC;


--
-- Name: FUNCTION checkout_risk_row_checks(r public.checkout_risk); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.checkout_risk_row_checks(r public.checkout_risk) FROM PUBLIC;


--
-- Name: FUNCTION checkout_route_first(p_merchant text, p_checkout text, p_route text, p_to text, p_passed jsonb); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.checkout_route_first(p_merchant text, p_checkout text, p_route text, p_to text, p_passed jsonb) FROM PUBLIC;


--
-- Name: FUNCTION checkout_shown_token(p_token text, p_method text, p_ref text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.checkout_shown_token(p_token text, p_method text, p_ref text) FROM PUBLIC;


--
-- Name: FUNCTION checkouts_commission_frozen(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.checkouts_commission_frozen() FROM PUBLIC;


--
-- Name: FUNCTION checkouts_failed_open(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.checkouts_failed_open() FROM PUBLIC;


--
-- Name: FUNCTION checkouts_merchant_terms(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.checkouts_merchant_terms() FROM PUBLIC;


--
-- Name: FUNCTION checkouts_notify(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.checkouts_notify() FROM PUBLIC;


--
-- Name: FUNCTION checkouts_page(p_merchant text, p_status text, p_gte timestamp with time zone, p_lt timestamp with time zone, p_at timestamp with time zone, p_id text, p_newer boolean, p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.checkouts_page(p_merchant text, p_status text, p_gte timestamp with time zone, p_lt timestamp with time zone, p_at timestamp with time zone, p_id text, p_newer boolean, p_limit integer) FROM PUBLIC;


--
-- Name: FUNCTION checkouts_row_checks(r public.checkouts); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.checkouts_row_checks(r public.checkouts) FROM PUBLIC;


--
-- Name: FUNCTION checkouts_sweep_late(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.checkouts_sweep_late() FROM PUBLIC;


--
-- Name: FUNCTION commission_of(p_amount bigint, p_bps integer, p_fixed bigint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.commission_of(p_amount bigint, p_bps integer, p_fixed bigint) FROM PUBLIC;


--
-- Name: FUNCTION commission_refund_part(p_amount bigint, p_commission bigint, p_refunded_before bigint, p_refund bigint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.commission_refund_part(p_amount bigint, p_commission bigint, p_refunded_before bigint, p_refund bigint) FROM PUBLIC;


--
-- Name: FUNCTION commission_refund_share(p_amount bigint, p_commission bigint, p_refunded_before bigint, p_booked_before bigint, p_refund bigint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.commission_refund_share(p_amount bigint, p_commission bigint, p_refunded_before bigint, p_booked_before bigint, p_refund bigint) FROM PUBLIC;


--
-- Name: FUNCTION dispute_event_apply(p_psp text, p_event_id text, p_kind text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_object_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.dispute_event_apply(p_psp text, p_event_id text, p_kind text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_object_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text) FROM PUBLIC;


--
-- Name: FUNCTION dispute_inquiry_closed(p_psp text, p_event_id text, p_reference text, p_payment_ref text, p_object_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.dispute_inquiry_closed(p_psp text, p_event_id text, p_reference text, p_payment_ref text, p_object_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text) FROM PUBLIC;


--
-- Name: FUNCTION dispute_inquiry_held(p_merchant text, p_dispute_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.dispute_inquiry_held(p_merchant text, p_dispute_id text) FROM PUBLIC;


--
-- Name: FUNCTION dispute_split(p_merchant text, p_checkout text, p_amount bigint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.dispute_split(p_merchant text, p_checkout text, p_amount bigint) FROM PUBLIC;


--
-- Name: FUNCTION disputes_notify(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.disputes_notify() FROM PUBLIC;


--
-- Name: FUNCTION evidence_append_only(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.evidence_append_only() FROM PUBLIC;


--
-- Name: FUNCTION gauge_count(p_counted bigint, p_cap integer, p_index regclass); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.gauge_count(p_counted bigint, p_cap integer, p_index regclass) FROM PUBLIC;


--
-- Name: FUNCTION gen_random_bytes_compat(p_n integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.gen_random_bytes_compat(p_n integer) FROM PUBLIC;


--
-- Name: FUNCTION hold_release(p_merchant text, p_checkout text, p_code public.pay_failure_code, p_source text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.hold_release(p_merchant text, p_checkout text, p_code public.pay_failure_code, p_source text) FROM PUBLIC;


--
-- Name: FUNCTION idempotency_keys_row_checks(r public.idempotency_keys); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.idempotency_keys_row_checks(r public.idempotency_keys) FROM PUBLIC;


--
-- Name: PROCEDURE inquiry_ends_applied_again(INOUT p_events bigint, INOUT p_partitions bigint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON PROCEDURE public.inquiry_ends_applied_again(INOUT p_events bigint, INOUT p_partitions bigint) FROM PUBLIC;


--
-- Name: FUNCTION ledger_balance_check(p_merchant text, p_txn bigint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.ledger_balance_check(p_merchant text, p_txn bigint) FROM PUBLIC;


--
-- Name: FUNCTION ledger_balanced(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.ledger_balanced() FROM PUBLIC;


--
-- Name: FUNCTION ledger_book(p_merchant text, p_checkout text, p_order text, p_kind text, p_object text, p_source text, p_currency text, p_accounts text[], p_amounts bigint[]); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.ledger_book(p_merchant text, p_checkout text, p_order text, p_kind text, p_object text, p_source text, p_currency text, p_accounts text[], p_amounts bigint[]) FROM PUBLIC;


--
-- Name: FUNCTION ledger_entries_balanced(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.ledger_entries_balanced() FROM PUBLIC;


--
-- Name: FUNCTION ledger_entries_row_checks(account text, amount bigint, currency text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.ledger_entries_row_checks(account text, amount bigint, currency text) FROM PUBLIC;


--
-- Name: FUNCTION ledger_transactions_row_checks(checkout_id text, payment_order_id text, kind text, object_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.ledger_transactions_row_checks(checkout_id text, payment_order_id text, kind text, object_id text) FROM PUBLIC;


--
-- Name: FUNCTION merchants_keep(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.merchants_keep() FROM PUBLIC;


--
-- Name: FUNCTION money_decimal(p_minor bigint, p_currency text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.money_decimal(p_minor bigint, p_currency text) FROM PUBLIC;


--
-- Name: FUNCTION money_status_forward(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.money_status_forward() FROM PUBLIC;


--
-- Name: FUNCTION nonce_split(p_reference text, OUT merchant_id text, OUT object_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.nonce_split(p_reference text, OUT merchant_id text, OUT object_id text) FROM PUBLIC;


--
-- Name: FUNCTION notifications_row_checks(notification_id text, event_type text, sequence integer, status text, last_error text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.notifications_row_checks(notification_id text, event_type text, sequence integer, status text, last_error text) FROM PUBLIC;


--
-- Name: FUNCTION notifications_feed_page(p_merchant text, p_type text, p_horizon xid8, p_xact xid8, p_at timestamp with time zone, p_id text, p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.notifications_feed_page(p_merchant text, p_type text, p_horizon xid8, p_xact xid8, p_at timestamp with time zone, p_id text, p_limit integer) FROM PUBLIC;


--
-- Name: FUNCTION notifications_feed_places(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.notifications_feed_places() FROM PUBLIC;


--
-- Name: PROCEDURE notifications_feed_renumber(INOUT p_events bigint, INOUT p_merchants bigint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON PROCEDURE public.notifications_feed_renumber(INOUT p_events bigint, INOUT p_merchants bigint) FROM PUBLIC;


--
-- Name: FUNCTION notify_endpoint_item(e public.notify_endpoints); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.notify_endpoint_item(e public.notify_endpoints) FROM PUBLIC;


--
-- Name: FUNCTION notify_enqueue(p_merchant text, p_type text, p_checkout text, p_object text, p_data jsonb); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.notify_enqueue(p_merchant text, p_type text, p_checkout text, p_object text, p_data jsonb) FROM PUBLIC;


--
-- Name: FUNCTION notify_item(n public.notifications); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.notify_item(n public.notifications) FROM PUBLIC;


--
-- Name: FUNCTION op_key_done(p_merchant text, p_idem_key text, p_lease bigint, p_status integer, p_body text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.op_key_done(p_merchant text, p_idem_key text, p_lease bigint, p_status integer, p_body text) FROM PUBLIC;


--
-- Name: FUNCTION op_key_prior(p_merchant text, p_idem_key text, p_fingerprint text, p_kind text, p_lease bigint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.op_key_prior(p_merchant text, p_idem_key text, p_fingerprint text, p_kind text, p_lease bigint) FROM PUBLIC;


--
-- Name: FUNCTION op_key_take(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_op_id text, OUT outcome text, OUT lease bigint, OUT retry_after integer, OUT response_status integer, OUT response_body text, OUT op_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.op_key_take(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_op_id text, OUT outcome text, OUT lease bigint, OUT retry_after integer, OUT response_status integer, OUT response_body text, OUT op_id text) FROM PUBLIC;


--
-- Name: FUNCTION order_events_append_only(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.order_events_append_only() FROM PUBLIC;


--
-- Name: FUNCTION order_given_back(p_merchant text, p_order_id text, p_except text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.order_given_back(p_merchant text, p_order_id text, p_except text) FROM PUBLIC;


--
-- Name: FUNCTION order_given_back_for_good(p_merchant text, p_order_id text, OUT given_back bigint, OUT commission_back bigint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.order_given_back_for_good(p_merchant text, p_order_id text, OUT given_back bigint, OUT commission_back bigint) FROM PUBLIC;


--
-- Name: FUNCTION order_seller_hold(p_merchant text, p_order_id text, p_extra bigint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.order_seller_hold(p_merchant text, p_order_id text, p_extra bigint) FROM PUBLIC;


--
-- Name: FUNCTION order_seller_hold_parts(p_merchant text, p_order_id text, OUT captured bigint, OUT commission bigint, OUT given_back bigint, OUT commission_back bigint, OUT held bigint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.order_seller_hold_parts(p_merchant text, p_order_id text, OUT captured bigint, OUT commission bigint, OUT given_back bigint, OUT commission_back bigint, OUT held bigint) FROM PUBLIC;


--
-- Name: FUNCTION pay_abandon(p_merchant text, p_idem_key text, p_lease bigint, p_reason text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_abandon(p_merchant text, p_idem_key text, p_lease bigint, p_reason text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_abandon(p_merchant text, p_idem_key text, p_lease bigint, p_reason text) TO payments_gateway;


--
-- Name: FUNCTION pay_audit_verify(p_merchant text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_audit_verify(p_merchant text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_audit_verify(p_merchant text) TO payments_gateway;


--
-- Name: FUNCTION pay_auth(p_key_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_auth(p_key_id text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_auth(p_key_id text) TO payments_gateway;


--
-- Name: FUNCTION pay_auth(p_key_id text, p_key_hash text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_auth(p_key_id text, p_key_hash text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_auth(p_key_id text, p_key_hash text) TO payments_gateway;


--
-- Name: FUNCTION pay_cancel_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout text, p_paid_problem text, p_not_cancelable_problem text, p_other_mode text[]); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_cancel_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout text, p_paid_problem text, p_not_cancelable_problem text, p_other_mode text[]) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_cancel_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout text, p_paid_problem text, p_not_cancelable_problem text, p_other_mode text[]) TO payments_gateway;


--
-- Name: FUNCTION pay_cancel_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout text, p_result text, p_paid_problem text, p_not_cancelable_problem text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_cancel_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout text, p_result text, p_paid_problem text, p_not_cancelable_problem text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_cancel_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout text, p_result text, p_paid_problem text, p_not_cancelable_problem text) TO payments_gateway;


--
-- Name: FUNCTION pay_capture_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_capture_id text, p_order_id text, p_amount bigint, p_currency text, p_kind text, p_metadata jsonb, p_final boolean); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_capture_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_capture_id text, p_order_id text, p_amount bigint, p_currency text, p_kind text, p_metadata jsonb, p_final boolean) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_capture_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_capture_id text, p_order_id text, p_amount bigint, p_currency text, p_kind text, p_metadata jsonb, p_final boolean) TO payments_gateway;


--
-- Name: FUNCTION pay_capture_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_capture_id text, p_order_id text, p_amount bigint, p_currency text, p_kind text, p_metadata jsonb, p_final boolean, p_psp_conf jsonb, p_unit bigint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_capture_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_capture_id text, p_order_id text, p_amount bigint, p_currency text, p_kind text, p_metadata jsonb, p_final boolean, p_psp_conf jsonb, p_unit bigint) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_capture_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_capture_id text, p_order_id text, p_amount bigint, p_currency text, p_kind text, p_metadata jsonb, p_final boolean, p_psp_conf jsonb, p_unit bigint) TO payments_gateway;


--
-- Name: FUNCTION pay_capture_finish(p_merchant text, p_idem_key text, p_lease bigint, p_capture_id text, p_registered boolean, p_psp_ref text, p_failure text, p_response_status integer, p_response_body text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_capture_finish(p_merchant text, p_idem_key text, p_lease bigint, p_capture_id text, p_registered boolean, p_psp_ref text, p_failure text, p_response_status integer, p_response_body text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_capture_finish(p_merchant text, p_idem_key text, p_lease bigint, p_capture_id text, p_registered boolean, p_psp_ref text, p_failure text, p_response_status integer, p_response_body text) TO payments_gateway;


--
-- Name: FUNCTION pay_charge_authenticate(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_psp_token text, p_psp_url text, p_psp_expires_at bigint, p_reason text, p_response_status integer, p_response_body text, p_psp_token_index text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_charge_authenticate(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_psp_token text, p_psp_url text, p_psp_expires_at bigint, p_reason text, p_response_status integer, p_response_body text, p_psp_token_index text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_charge_authenticate(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_psp_token text, p_psp_url text, p_psp_expires_at bigint, p_reason text, p_response_status integer, p_response_body text, p_psp_token_index text) TO payments_gateway;


--
-- Name: FUNCTION pay_charge_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_outcome text, p_psp_ref text, p_psp_ref_index text, p_failure text, p_response_status integer, p_response_body text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_charge_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_outcome text, p_psp_ref text, p_psp_ref_index text, p_failure text, p_response_status integer, p_response_body text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_charge_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_outcome text, p_psp_ref text, p_psp_ref_index text, p_failure text, p_response_status integer, p_response_body text) TO payments_gateway;


--
-- Name: FUNCTION pay_checkout_status(p_merchant text, p_checkout_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_checkout_status(p_merchant text, p_checkout_id text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_checkout_status(p_merchant text, p_checkout_id text) TO payments_gateway;


--
-- Name: FUNCTION pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text) TO payments_gateway;


--
-- Name: FUNCTION pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb) TO payments_gateway;


--
-- Name: FUNCTION pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb, p_capture_method text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb, p_capture_method text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb, p_capture_method text) TO payments_gateway;


--
-- Name: FUNCTION pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb, p_capture_method text, p_options jsonb); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb, p_capture_method text, p_options jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb, p_capture_method text, p_options jsonb) TO payments_gateway;


--
-- Name: FUNCTION pay_claim_answer(p_merchant text, p_idem_key text, p_fingerprint text, p_checkout_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_claim_answer(p_merchant text, p_idem_key text, p_fingerprint text, p_checkout_id text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_claim_answer(p_merchant text, p_idem_key text, p_fingerprint text, p_checkout_id text) TO payments_gateway;


--
-- Name: FUNCTION pay_claim_peek(p_merchant text, p_idem_key text, p_checkout_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_claim_peek(p_merchant text, p_idem_key text, p_checkout_id text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_claim_peek(p_merchant text, p_idem_key text, p_checkout_id text) TO payments_gateway;


--
-- Name: FUNCTION pay_claim_with_verdict(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb, p_capture_method text, p_options jsonb, p_verdict text, p_score integer, p_reason text, p_source text, p_review_seconds integer, p_response_status integer, p_response_body text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_claim_with_verdict(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb, p_capture_method text, p_options jsonb, p_verdict text, p_score integer, p_reason text, p_source text, p_review_seconds integer, p_response_status integer, p_response_body text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_claim_with_verdict(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb, p_capture_method text, p_options jsonb, p_verdict text, p_score integer, p_reason text, p_source text, p_review_seconds integer, p_response_status integer, p_response_body text) TO payments_gateway;


--
-- Name: FUNCTION pay_directory(p_since timestamp with time zone); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_directory(p_since timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_directory(p_since timestamp with time zone) TO payments_gateway;


--
-- Name: FUNCTION pay_endpoint_create(p_merchant text, p_idem_key text, p_endpoint text, p_url text, p_host text, p_events text[], p_sealed text, OUT outcome text, OUT item text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_endpoint_create(p_merchant text, p_idem_key text, p_endpoint text, p_url text, p_host text, p_events text[], p_sealed text, OUT outcome text, OUT item text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_endpoint_create(p_merchant text, p_idem_key text, p_endpoint text, p_url text, p_host text, p_events text[], p_sealed text, OUT outcome text, OUT item text) TO payments_gateway;


--
-- Name: FUNCTION pay_endpoint_list(p_merchant text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_endpoint_list(p_merchant text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_endpoint_list(p_merchant text) TO payments_gateway;


--
-- Name: FUNCTION pay_endpoint_rotate(p_merchant text, p_endpoint text, p_idem_key text, p_sealed text, p_grace integer, OUT outcome text, OUT item text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_endpoint_rotate(p_merchant text, p_endpoint text, p_idem_key text, p_sealed text, p_grace integer, OUT outcome text, OUT item text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_endpoint_rotate(p_merchant text, p_endpoint text, p_idem_key text, p_sealed text, p_grace integer, OUT outcome text, OUT item text) TO payments_gateway;


--
-- Name: FUNCTION pay_endpoint_set(p_merchant text, p_endpoint text, p_enable boolean); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_endpoint_set(p_merchant text, p_endpoint text, p_enable boolean) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_endpoint_set(p_merchant text, p_endpoint text, p_enable boolean) TO payments_gateway;


--
-- Name: FUNCTION pay_event_apply(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_object_ref text, p_tokens text[], OUT outcome text, OUT merchant_id text, OUT checkout_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_event_apply(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_object_ref text, p_tokens text[], OUT outcome text, OUT merchant_id text, OUT checkout_id text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_event_apply(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_object_ref text, p_tokens text[], OUT outcome text, OUT merchant_id text, OUT checkout_id text) TO payments_gateway;


--
-- Name: FUNCTION pay_event_keep(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_object_ref text, p_tokens text[], p_body bytea, p_headers jsonb, p_key_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_event_keep(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_object_ref text, p_tokens text[], p_body bytea, p_headers jsonb, p_key_id text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_event_keep(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_object_ref text, p_tokens text[], p_body bytea, p_headers jsonb, p_key_id text) TO payments_gateway;


--
-- Name: FUNCTION pay_event_keep_unreadable(p_psp text, p_event_id text, p_body bytea, p_headers jsonb, p_key_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_event_keep_unreadable(p_psp text, p_event_id text, p_body bytea, p_headers jsonb, p_key_id text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_event_keep_unreadable(p_psp text, p_event_id text, p_body bytea, p_headers jsonb, p_key_id text) TO payments_gateway;


--
-- Name: FUNCTION pay_event_keep_unreadable(p_psp text, p_event_id text, p_body bytea, p_headers jsonb, p_key_id text, p_outcome text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_event_keep_unreadable(p_psp text, p_event_id text, p_body bytea, p_headers jsonb, p_key_id text, p_outcome text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_event_keep_unreadable(p_psp text, p_event_id text, p_body bytea, p_headers jsonb, p_key_id text, p_outcome text) TO payments_gateway;


--
-- Name: FUNCTION pay_event_locate(p_psp text, p_token text, p_tokens text[], p_payment_ref text, p_object_ref text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_event_locate(p_psp text, p_token text, p_tokens text[], p_payment_ref text, p_object_ref text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_event_locate(p_psp text, p_token text, p_tokens text[], p_payment_ref text, p_object_ref text) TO payments_gateway;


--
-- Name: FUNCTION pay_executing_stats(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_executing_stats() FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_executing_stats() TO payments_gateway;


--
-- Name: FUNCTION pay_executing_stats(p_exact integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_executing_stats(p_exact integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_executing_stats(p_exact integer) TO payments_gateway;


--
-- Name: FUNCTION pay_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_status text, p_psp_token text, p_psp_url text, p_psp_expires_at bigint, p_failure text, p_response_status integer, p_response_body text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_status text, p_psp_token text, p_psp_url text, p_psp_expires_at bigint, p_failure text, p_response_status integer, p_response_body text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_status text, p_psp_token text, p_psp_url text, p_psp_expires_at bigint, p_failure text, p_response_status integer, p_response_body text) TO payments_gateway;


--
-- Name: FUNCTION pay_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_status text, p_psp_token text, p_psp_url text, p_psp_expires_at bigint, p_failure text, p_response_status integer, p_response_body text, p_psp_token_index text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_status text, p_psp_token text, p_psp_url text, p_psp_expires_at bigint, p_failure text, p_response_status integer, p_response_body text, p_psp_token_index text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_finish(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_status text, p_psp_token text, p_psp_url text, p_psp_expires_at bigint, p_failure text, p_response_status integer, p_response_body text, p_psp_token_index text) TO payments_gateway;


--
-- Name: FUNCTION pay_get_balance(p_merchant text, p_seller text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_get_balance(p_merchant text, p_seller text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_get_balance(p_merchant text, p_seller text) TO payments_gateway;


--
-- Name: FUNCTION pay_get_checkout(p_merchant text, p_checkout_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_get_checkout(p_merchant text, p_checkout_id text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_get_checkout(p_merchant text, p_checkout_id text) TO payments_gateway;


--
-- Name: FUNCTION pay_get_order(p_merchant text, p_order_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_get_order(p_merchant text, p_order_id text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_get_order(p_merchant text, p_order_id text) TO payments_gateway;


--
-- Name: FUNCTION pay_get_payout(p_merchant text, p_payout_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_get_payout(p_merchant text, p_payout_id text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_get_payout(p_merchant text, p_payout_id text) TO payments_gateway;


--
-- Name: FUNCTION pay_holds_sweep(p_owner text, p_psps text[], p_windows integer[], p_warn_before integer, p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_holds_sweep(p_owner text, p_psps text[], p_windows integer[], p_warn_before integer, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_holds_sweep(p_owner text, p_psps text[], p_windows integer[], p_warn_before integer, p_limit integer) TO payments_gateway;


--
-- Name: FUNCTION pay_holds_sweep(p_owner text, p_psps text[], p_windows integer[], p_warn_before integer, p_limit integer, p_units jsonb); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_holds_sweep(p_owner text, p_psps text[], p_windows integer[], p_warn_before integer, p_limit integer, p_units jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_holds_sweep(p_owner text, p_psps text[], p_windows integer[], p_warn_before integer, p_limit integer, p_units jsonb) TO payments_gateway;


--
-- Name: FUNCTION pay_inbox_drop_old(p_keep_months integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_inbox_drop_old(p_keep_months integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_inbox_drop_old(p_keep_months integer) TO payments_gateway;


--
-- Name: FUNCTION pay_inbox_forwarded(p_psp text, p_event_id text, p_shard text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_inbox_forwarded(p_psp text, p_event_id text, p_shard text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_inbox_forwarded(p_psp text, p_event_id text, p_shard text) TO payments_gateway;


--
-- Name: FUNCTION pay_inbox_homeless(p_unmatched_after integer, p_retry integer, p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_inbox_homeless(p_unmatched_after integer, p_retry integer, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_inbox_homeless(p_unmatched_after integer, p_retry integer, p_limit integer) TO payments_gateway;


--
-- Name: FUNCTION pay_inbox_inquiry_end_elsewhere(p_psp text, p_kind text, p_type text, p_token text, p_tokens text[], p_reference text, p_payment_ref text, p_object_ref text, p_merchant_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_inbox_inquiry_end_elsewhere(p_psp text, p_kind text, p_type text, p_token text, p_tokens text[], p_reference text, p_payment_ref text, p_object_ref text, p_merchant_id text) FROM PUBLIC;


--
-- Name: FUNCTION pay_inbox_partitions(p_ahead integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_inbox_partitions(p_ahead integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_inbox_partitions(p_ahead integer) TO payments_gateway;


--
-- Name: FUNCTION pay_inbox_replay(p_psp text, p_event_id text, p_actor text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_inbox_replay(p_psp text, p_event_id text, p_actor text) FROM PUBLIC;


--
-- Name: FUNCTION pay_inbox_retry(p_unmatched_after integer, p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_inbox_retry(p_unmatched_after integer, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_inbox_retry(p_unmatched_after integer, p_limit integer) TO payments_gateway;


--
-- Name: FUNCTION pay_inbox_waiting(p_psp text, p_event_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_inbox_waiting(p_psp text, p_event_id text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_inbox_waiting(p_psp text, p_event_id text) TO payments_gateway;


--
-- Name: FUNCTION pay_list_checkouts(p_merchant text, p_status text, p_gte bigint, p_lt bigint, p_after text, p_before text, p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_list_checkouts(p_merchant text, p_status text, p_gte bigint, p_lt bigint, p_after text, p_before text, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_list_checkouts(p_merchant text, p_status text, p_gte bigint, p_lt bigint, p_after text, p_before text, p_limit integer) TO payments_gateway;


--
-- Name: FUNCTION pay_list_events(p_merchant text, p_type text, p_after text, p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_list_events(p_merchant text, p_type text, p_after text, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_list_events(p_merchant text, p_type text, p_after text, p_limit integer) TO payments_gateway;


--
-- Name: FUNCTION pay_list_methods(p_merchant text, p_customer text, p_after text, p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_list_methods(p_merchant text, p_customer text, p_after text, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_list_methods(p_merchant text, p_customer text, p_after text, p_limit integer) TO payments_gateway;


--
-- Name: FUNCTION pay_list_payment_orders(p_merchant text, p_status text, p_gte bigint, p_lt bigint, p_after text, p_before text, p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_list_payment_orders(p_merchant text, p_status text, p_gte bigint, p_lt bigint, p_after text, p_before text, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_list_payment_orders(p_merchant text, p_status text, p_gte bigint, p_lt bigint, p_after text, p_before text, p_limit integer) TO payments_gateway;


--
-- Name: FUNCTION pay_list_payouts(p_merchant text, p_status text, p_gte bigint, p_lt bigint, p_after text, p_before text, p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_list_payouts(p_merchant text, p_status text, p_gte bigint, p_lt bigint, p_after text, p_before text, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_list_payouts(p_merchant text, p_status text, p_gte bigint, p_lt bigint, p_after text, p_before text, p_limit integer) TO payments_gateway;


--
-- Name: FUNCTION pay_list_refunds(p_merchant text, p_status text, p_gte bigint, p_lt bigint, p_after text, p_before text, p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_list_refunds(p_merchant text, p_status text, p_gte bigint, p_lt bigint, p_after text, p_before text, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_list_refunds(p_merchant text, p_status text, p_gte bigint, p_lt bigint, p_after text, p_before text, p_limit integer) TO payments_gateway;


--
-- Name: FUNCTION pay_merchant_here(p_merchant text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_merchant_here(p_merchant text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_merchant_here(p_merchant text) TO payments_gateway;


--
-- Name: FUNCTION pay_merchant_origins(p_merchant text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_merchant_origins(p_merchant text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_merchant_origins(p_merchant text) TO payments_gateway;


--
-- Name: FUNCTION pay_method_detach(p_merchant text, p_method text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_method_detach(p_merchant text, p_method text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_method_detach(p_merchant text, p_method text) TO payments_gateway;


--
-- Name: FUNCTION pay_method_detach_start(p_merchant text, p_method text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_method_detach_start(p_merchant text, p_method text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_method_detach_start(p_merchant text, p_method text) TO payments_gateway;


--
-- Name: FUNCTION pay_method_detach_start(p_merchant text, p_method text, p_other_mode text[]); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_method_detach_start(p_merchant text, p_method text, p_other_mode text[]) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_method_detach_start(p_merchant text, p_method text, p_other_mode text[]) TO payments_gateway;


--
-- Name: FUNCTION pay_method_detach_tried(p_merchant text, p_method text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_method_detach_tried(p_merchant text, p_method text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_method_detach_tried(p_merchant text, p_method text) TO payments_gateway;


--
-- Name: FUNCTION pay_method_event_keep(p_psp text, p_event_id text, p_type text, p_reference text, p_token_sealed text, p_token_index text, p_psp_customer text, p_display jsonb, p_body bytea, p_headers jsonb, p_key_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_method_event_keep(p_psp text, p_event_id text, p_type text, p_reference text, p_token_sealed text, p_token_index text, p_psp_customer text, p_display jsonb, p_body bytea, p_headers jsonb, p_key_id text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_method_event_keep(p_psp text, p_event_id text, p_type text, p_reference text, p_token_sealed text, p_token_index text, p_psp_customer text, p_display jsonb, p_body bytea, p_headers jsonb, p_key_id text) TO payments_gateway;


--
-- Name: FUNCTION pay_method_for_charge(p_merchant text, p_method text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_method_for_charge(p_merchant text, p_method text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_method_for_charge(p_merchant text, p_method text) TO payments_gateway;


--
-- Name: FUNCTION pay_method_get(p_merchant text, p_method text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_method_get(p_merchant text, p_method text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_method_get(p_merchant text, p_method text) TO payments_gateway;


--
-- Name: FUNCTION pay_method_psp_customers(p_merchant text, p_customer text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_method_psp_customers(p_merchant text, p_customer text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_method_psp_customers(p_merchant text, p_customer text) TO payments_gateway;


--
-- Name: FUNCTION pay_method_psp_detached(p_merchant text, p_method text, p_how text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_method_psp_detached(p_merchant text, p_method text, p_how text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_method_psp_detached(p_merchant text, p_method text, p_how text) TO payments_gateway;


--
-- Name: FUNCTION pay_method_saved_apply(p_psp text, p_event_id text, p_reference text, p_method jsonb); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_method_saved_apply(p_psp text, p_event_id text, p_reference text, p_method jsonb) FROM PUBLIC;


--
-- Name: FUNCTION pay_notify_claim(p_owner text, p_limit integer, p_lease_ms integer, p_per_endpoint integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_notify_claim(p_owner text, p_limit integer, p_lease_ms integer, p_per_endpoint integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_notify_claim(p_owner text, p_limit integer, p_lease_ms integer, p_per_endpoint integer) TO payments_gateway;


--
-- Name: FUNCTION pay_notify_get(p_merchant text, p_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_notify_get(p_merchant text, p_id text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_notify_get(p_merchant text, p_id text) TO payments_gateway;


--
-- Name: FUNCTION pay_notify_heartbeat(p_host text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_notify_heartbeat(p_host text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_notify_heartbeat(p_host text) TO payments_gateway;


--
-- Name: FUNCTION pay_notify_lease(p_owner text, p_limit integer, p_lease_ms integer, p_per_endpoint integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_notify_lease(p_owner text, p_limit integer, p_lease_ms integer, p_per_endpoint integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_notify_lease(p_owner text, p_limit integer, p_lease_ms integer, p_per_endpoint integer) TO payments_gateway;


--
-- Name: FUNCTION pay_notify_list(p_merchant text, p_status text, p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_notify_list(p_merchant text, p_status text, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_notify_list(p_merchant text, p_status text, p_limit integer) TO payments_gateway;


--
-- Name: FUNCTION pay_notify_record(p_merchant text, p_id text, p_owner text, p_ok boolean, p_http_status integer, p_error text, p_retry_ms bigint, p_disable_after integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_notify_record(p_merchant text, p_id text, p_owner text, p_ok boolean, p_http_status integer, p_error text, p_retry_ms bigint, p_disable_after integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_notify_record(p_merchant text, p_id text, p_owner text, p_ok boolean, p_http_status integer, p_error text, p_retry_ms bigint, p_disable_after integer) TO payments_gateway;


--
-- Name: FUNCTION pay_notify_record(p_merchant text, p_id text, p_owner text, p_ok boolean, p_http_status integer, p_error text, p_retry_ms bigint, p_disable_after integer, p_disable_failing_ms bigint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_notify_record(p_merchant text, p_id text, p_owner text, p_ok boolean, p_http_status integer, p_error text, p_retry_ms bigint, p_disable_after integer, p_disable_failing_ms bigint) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_notify_record(p_merchant text, p_id text, p_owner text, p_ok boolean, p_http_status integer, p_error text, p_retry_ms bigint, p_disable_after integer, p_disable_failing_ms bigint) TO payments_gateway;


--
-- Name: FUNCTION pay_notify_record(p_merchant text, p_id text, p_owner text, p_ok boolean, p_http_status integer, p_error text, p_retry_ms bigint, p_disable_after integer, p_disable_failing_ms bigint, p_lease timestamp with time zone); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_notify_record(p_merchant text, p_id text, p_owner text, p_ok boolean, p_http_status integer, p_error text, p_retry_ms bigint, p_disable_after integer, p_disable_failing_ms bigint, p_lease timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_notify_record(p_merchant text, p_id text, p_owner text, p_ok boolean, p_http_status integer, p_error text, p_retry_ms bigint, p_disable_after integer, p_disable_failing_ms bigint, p_lease timestamp with time zone) TO payments_gateway;


--
-- Name: FUNCTION pay_notify_replay(p_merchant text, p_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_notify_replay(p_merchant text, p_id text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_notify_replay(p_merchant text, p_id text) TO payments_gateway;


--
-- Name: FUNCTION pay_notify_stats(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_notify_stats() FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_notify_stats() TO payments_gateway;


--
-- Name: FUNCTION pay_op_abandon(p_merchant text, p_idem_key text, p_lease bigint, p_op_id text, p_failure text, p_response_status integer, p_response_body text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_op_abandon(p_merchant text, p_idem_key text, p_lease bigint, p_op_id text, p_failure text, p_response_status integer, p_response_body text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_op_abandon(p_merchant text, p_idem_key text, p_lease bigint, p_op_id text, p_failure text, p_response_status integer, p_response_body text) TO payments_gateway;


--
-- Name: FUNCTION pay_op_key_answer(p_merchant text, p_idem_key text, p_fingerprint text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_op_key_answer(p_merchant text, p_idem_key text, p_fingerprint text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_op_key_answer(p_merchant text, p_idem_key text, p_fingerprint text) TO payments_gateway;


--
-- Name: FUNCTION pay_op_release(p_merchant text, p_idem_key text, p_lease bigint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_op_release(p_merchant text, p_idem_key text, p_lease bigint) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_op_release(p_merchant text, p_idem_key text, p_lease bigint) TO payments_gateway;


--
-- Name: FUNCTION pay_op_release(p_merchant text, p_idem_key text, p_lease bigint, p_sent boolean); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_op_release(p_merchant text, p_idem_key text, p_lease bigint, p_sent boolean) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_op_release(p_merchant text, p_idem_key text, p_lease bigint, p_sent boolean) TO payments_gateway;


--
-- Name: FUNCTION pay_order_refund_info(p_merchant text, p_order_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_order_refund_info(p_merchant text, p_order_id text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_order_refund_info(p_merchant text, p_order_id text) TO payments_gateway;


--
-- Name: FUNCTION pay_pay_target(p_merchant text, p_checkout_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_pay_target(p_merchant text, p_checkout_id text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_pay_target(p_merchant text, p_checkout_id text) TO payments_gateway;


--
-- Name: FUNCTION pay_payout_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_payout_id text, p_seller text, p_amount bigint, p_currency text, p_psp text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_payout_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_payout_id text, p_seller text, p_amount bigint, p_currency text, p_psp text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_payout_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_payout_id text, p_seller text, p_amount bigint, p_currency text, p_psp text) TO payments_gateway;


--
-- Name: FUNCTION pay_payout_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_payout_id text, p_seller text, p_amount bigint, p_currency text, p_psp text, p_metadata jsonb); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_payout_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_payout_id text, p_seller text, p_amount bigint, p_currency text, p_psp text, p_metadata jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_payout_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_payout_id text, p_seller text, p_amount bigint, p_currency text, p_psp text, p_metadata jsonb) TO payments_gateway;


--
-- Name: FUNCTION pay_payout_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_payout_id text, p_seller text, p_amount bigint, p_currency text, p_psp text, p_metadata jsonb, p_psp_conf jsonb); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_payout_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_payout_id text, p_seller text, p_amount bigint, p_currency text, p_psp text, p_metadata jsonb, p_psp_conf jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_payout_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_payout_id text, p_seller text, p_amount bigint, p_currency text, p_psp text, p_metadata jsonb, p_psp_conf jsonb) TO payments_gateway;


--
-- Name: FUNCTION pay_payout_finish(p_merchant text, p_idem_key text, p_lease bigint, p_payout_id text, p_registered boolean, p_psp_payout_id text, p_failure text, p_response_status integer, p_response_body text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_payout_finish(p_merchant text, p_idem_key text, p_lease bigint, p_payout_id text, p_registered boolean, p_psp_payout_id text, p_failure text, p_response_status integer, p_response_body text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_payout_finish(p_merchant text, p_idem_key text, p_lease bigint, p_payout_id text, p_registered boolean, p_psp_payout_id text, p_failure text, p_response_status integer, p_response_body text) TO payments_gateway;


--
-- Name: FUNCTION pay_purge(p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_purge(p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_purge(p_limit integer) TO payments_gateway;


--
-- Name: FUNCTION pay_refresh(p_merchant text, p_idem_key text, p_lease bigint, p_expires_at bigint, p_psp_request text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_refresh(p_merchant text, p_idem_key text, p_lease bigint, p_expires_at bigint, p_psp_request text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_refresh(p_merchant text, p_idem_key text, p_lease bigint, p_expires_at bigint, p_psp_request text) TO payments_gateway;


--
-- Name: FUNCTION pay_refund_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_refund_id text, p_order_id text, p_amount bigint, p_currency text, p_reason text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_refund_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_refund_id text, p_order_id text, p_amount bigint, p_currency text, p_reason text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_refund_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_refund_id text, p_order_id text, p_amount bigint, p_currency text, p_reason text) TO payments_gateway;


--
-- Name: FUNCTION pay_refund_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_refund_id text, p_order_id text, p_amount bigint, p_currency text, p_reason text, p_metadata jsonb); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_refund_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_refund_id text, p_order_id text, p_amount bigint, p_currency text, p_reason text, p_metadata jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_refund_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_refund_id text, p_order_id text, p_amount bigint, p_currency text, p_reason text, p_metadata jsonb) TO payments_gateway;


--
-- Name: FUNCTION pay_refund_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_refund_id text, p_order_id text, p_amount bigint, p_currency text, p_reason text, p_metadata jsonb, p_psp_conf jsonb); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_refund_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_refund_id text, p_order_id text, p_amount bigint, p_currency text, p_reason text, p_metadata jsonb, p_psp_conf jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_refund_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_refund_id text, p_order_id text, p_amount bigint, p_currency text, p_reason text, p_metadata jsonb, p_psp_conf jsonb) TO payments_gateway;


--
-- Name: FUNCTION pay_refund_finish(p_merchant text, p_idem_key text, p_lease bigint, p_refund_id text, p_registered boolean, p_psp_refund_id text, p_failure text, p_response_status integer, p_response_body text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_refund_finish(p_merchant text, p_idem_key text, p_lease bigint, p_refund_id text, p_registered boolean, p_psp_refund_id text, p_failure text, p_response_status integer, p_response_body text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_refund_finish(p_merchant text, p_idem_key text, p_lease bigint, p_refund_id text, p_registered boolean, p_psp_refund_id text, p_failure text, p_response_status integer, p_response_body text) TO payments_gateway;


--
-- Name: FUNCTION pay_release(p_merchant text, p_idem_key text, p_lease bigint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_release(p_merchant text, p_idem_key text, p_lease bigint) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_release(p_merchant text, p_idem_key text, p_lease bigint) TO payments_gateway;


--
-- Name: FUNCTION pay_release(p_merchant text, p_idem_key text, p_lease bigint, p_sent boolean); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_release(p_merchant text, p_idem_key text, p_lease bigint, p_sent boolean) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_release(p_merchant text, p_idem_key text, p_lease bigint, p_sent boolean) TO payments_gateway;


--
-- Name: FUNCTION pay_return_target(p_merchant text, p_checkout_id text, p_psp text, p_session_result text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_return_target(p_merchant text, p_checkout_id text, p_psp text, p_session_result text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_return_target(p_merchant text, p_checkout_id text, p_psp text, p_session_result text) TO payments_gateway;


--
-- Name: FUNCTION pay_review_approve(p_merchant text, p_checkout_id text, p_psp_request text, p_expires_at bigint, p_lease_seconds integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_review_approve(p_merchant text, p_checkout_id text, p_psp_request text, p_expires_at bigint, p_lease_seconds integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_review_approve(p_merchant text, p_checkout_id text, p_psp_request text, p_expires_at bigint, p_lease_seconds integer) TO payments_gateway;


--
-- Name: FUNCTION pay_review_approve(p_merchant text, p_checkout_id text, p_psp_request text, p_expires_at bigint, p_lease_seconds integer, p_psp_conf jsonb); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_review_approve(p_merchant text, p_checkout_id text, p_psp_request text, p_expires_at bigint, p_lease_seconds integer, p_psp_conf jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_review_approve(p_merchant text, p_checkout_id text, p_psp_request text, p_expires_at bigint, p_lease_seconds integer, p_psp_conf jsonb) TO payments_gateway;


--
-- Name: FUNCTION pay_review_expire(p_limit integer, p_response_body text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_review_expire(p_limit integer, p_response_body text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_review_expire(p_limit integer, p_response_body text) TO payments_gateway;


--
-- Name: FUNCTION pay_review_get(p_merchant text, p_checkout_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_review_get(p_merchant text, p_checkout_id text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_review_get(p_merchant text, p_checkout_id text) TO payments_gateway;


--
-- Name: FUNCTION pay_review_list(p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_review_list(p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_review_list(p_limit integer) TO payments_gateway;


--
-- Name: FUNCTION pay_review_reject(p_merchant text, p_checkout_id text, p_outcome text, p_response_body text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_review_reject(p_merchant text, p_checkout_id text, p_outcome text, p_response_body text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_review_reject(p_merchant text, p_checkout_id text, p_outcome text, p_response_body text) TO payments_gateway;


--
-- Name: FUNCTION pay_risk_after_due(p_limit integer, p_horizon_seconds integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_risk_after_due(p_limit integer, p_horizon_seconds integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_risk_after_due(p_limit integer, p_horizon_seconds integer) TO payments_gateway;


--
-- Name: FUNCTION pay_risk_after_record(p_merchant text, p_checkout_id text, p_verdict text, p_score integer, p_reason text, p_source text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_risk_after_record(p_merchant text, p_checkout_id text, p_verdict text, p_score integer, p_reason text, p_source text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_risk_after_record(p_merchant text, p_checkout_id text, p_verdict text, p_score integer, p_reason text, p_source text) TO payments_gateway;


--
-- Name: FUNCTION pay_risk_record(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_verdict text, p_score integer, p_reason text, p_source text, p_review_seconds integer, p_response_status integer, p_response_body text, p_lease_seconds integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_risk_record(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_verdict text, p_score integer, p_reason text, p_source text, p_review_seconds integer, p_response_status integer, p_response_body text, p_lease_seconds integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_risk_record(p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_verdict text, p_score integer, p_reason text, p_source text, p_review_seconds integer, p_response_status integer, p_response_body text, p_lease_seconds integer) TO payments_gateway;


--
-- Name: FUNCTION pay_route_bind(p_merchant text, p_idem_key text, p_lease bigint, p_route text, p_from text, p_why text, p_to text, p_psp_request text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_route_bind(p_merchant text, p_idem_key text, p_lease bigint, p_route text, p_from text, p_why text, p_to text, p_psp_request text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_route_bind(p_merchant text, p_idem_key text, p_lease bigint, p_route text, p_from text, p_why text, p_to text, p_psp_request text) TO payments_gateway;


--
-- Name: FUNCTION pay_route_bind(p_merchant text, p_idem_key text, p_lease bigint, p_route text, p_from text, p_why text, p_to text, p_psp_request text, p_passed_over text[]); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_route_bind(p_merchant text, p_idem_key text, p_lease bigint, p_route text, p_from text, p_why text, p_to text, p_psp_request text, p_passed_over text[]) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_route_bind(p_merchant text, p_idem_key text, p_lease bigint, p_route text, p_from text, p_why text, p_to text, p_psp_request text, p_passed_over text[]) TO payments_gateway;


--
-- Name: FUNCTION pay_route_recorded(p_merchant text, p_checkout text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_route_recorded(p_merchant text, p_checkout text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_route_recorded(p_merchant text, p_checkout text) TO payments_gateway;


--
-- Name: FUNCTION pay_route_state(p_merchant text, p_checkout text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_route_state(p_merchant text, p_checkout text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_route_state(p_merchant text, p_checkout text) TO payments_gateway;


--
-- Name: FUNCTION pay_schema_version(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_schema_version() FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_schema_version() TO payments_gateway;


--
-- Name: FUNCTION pay_sweeper_apply(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_tokens text[]); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_sweeper_apply(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_tokens text[]) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_sweeper_apply(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_tokens text[]) TO payments_gateway;


--
-- Name: FUNCTION pay_sweeper_detaches(p_owner text, p_psps text[], p_after integer, p_retry integer, p_limit integer, p_alert integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_sweeper_detaches(p_owner text, p_psps text[], p_after integer, p_retry integer, p_limit integer, p_alert integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_sweeper_detaches(p_owner text, p_psps text[], p_after integer, p_retry integer, p_limit integer, p_alert integer) TO payments_gateway;


--
-- Name: FUNCTION pay_sweeper_due(p_owner text, p_psps text[], p_after integer, p_every integer, p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_sweeper_due(p_owner text, p_psps text[], p_after integer, p_every integer, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_sweeper_due(p_owner text, p_psps text[], p_after integer, p_every integer, p_limit integer) TO payments_gateway;


--
-- Name: FUNCTION pay_sweeper_due(p_owner text, p_psps text[], p_payment_psps text[], p_after integer, p_every integer, p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_sweeper_due(p_owner text, p_psps text[], p_payment_psps text[], p_after integer, p_every integer, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_sweeper_due(p_owner text, p_psps text[], p_payment_psps text[], p_after integer, p_every integer, p_limit integer) TO payments_gateway;


--
-- Name: FUNCTION pay_sweeper_due(p_owner text, p_psps text[], p_payment_psps text[], p_open_psps text[], p_after integer, p_every integer, p_grace integer, p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_sweeper_due(p_owner text, p_psps text[], p_payment_psps text[], p_open_psps text[], p_after integer, p_every integer, p_grace integer, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_sweeper_due(p_owner text, p_psps text[], p_payment_psps text[], p_open_psps text[], p_after integer, p_every integer, p_grace integer, p_limit integer) TO payments_gateway;


--
-- Name: FUNCTION pay_sweeper_lease(p_owner text, p_seconds integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_sweeper_lease(p_owner text, p_seconds integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_sweeper_lease(p_owner text, p_seconds integer) TO payments_gateway;


--
-- Name: FUNCTION pay_sweeper_method_saved(p_psp text, p_event_id text, p_reference text, p_token_sealed text, p_token_index text, p_psp_customer text, p_display jsonb); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_sweeper_method_saved(p_psp text, p_event_id text, p_reference text, p_token_sealed text, p_token_index text, p_psp_customer text, p_display jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_sweeper_method_saved(p_psp text, p_event_id text, p_reference text, p_token_sealed text, p_token_index text, p_psp_customer text, p_display jsonb) TO payments_gateway;


--
-- Name: FUNCTION pay_sweeper_methods_due(p_owner text, p_psps text[], p_after integer, p_every integer, p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_sweeper_methods_due(p_owner text, p_psps text[], p_after integer, p_every integer, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_sweeper_methods_due(p_owner text, p_psps text[], p_after integer, p_every integer, p_limit integer) TO payments_gateway;


--
-- Name: FUNCTION pay_sweeper_methods_unsaved(p_owner text, p_psps text[], p_alert_after integer, p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_sweeper_methods_unsaved(p_owner text, p_psps text[], p_alert_after integer, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_sweeper_methods_unsaved(p_owner text, p_psps text[], p_alert_after integer, p_limit integer) TO payments_gateway;


--
-- Name: FUNCTION pay_sweeper_note(p_merchant text, p_checkout_id text, p_answer text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_sweeper_note(p_merchant text, p_checkout_id text, p_answer text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_sweeper_note(p_merchant text, p_checkout_id text, p_answer text) TO payments_gateway;


--
-- Name: FUNCTION pay_sweeper_overdue(p_owner text, p_psps text[], p_alert_after integer, p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_sweeper_overdue(p_owner text, p_psps text[], p_alert_after integer, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_sweeper_overdue(p_owner text, p_psps text[], p_alert_after integer, p_limit integer) TO payments_gateway;


--
-- Name: FUNCTION pay_sweeper_unsettled(p_psp text, p_event_id text, p_merchant text, p_checkout_id text, p_type text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_sweeper_unsettled(p_psp text, p_event_id text, p_merchant text, p_checkout_id text, p_type text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_sweeper_unsettled(p_psp text, p_event_id text, p_merchant text, p_checkout_id text, p_type text) TO payments_gateway;


--
-- Name: FUNCTION pay_wallets_fold(p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_wallets_fold(p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pay_wallets_fold(p_limit integer) TO payments_gateway;


--
-- Name: FUNCTION pay_webhook_apply_core(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_tokens text[], OUT outcome text, OUT merchant_id text, OUT checkout_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pay_webhook_apply_core(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_tokens text[], OUT outcome text, OUT merchant_id text, OUT checkout_id text) FROM PUBLIC;


--
-- Name: FUNCTION payment_method_json(p public.payment_methods); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.payment_method_json(p public.payment_methods) FROM PUBLIC;


--
-- Name: FUNCTION payment_methods_notify(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.payment_methods_notify() FROM PUBLIC;


--
-- Name: FUNCTION payment_orders_page(p_merchant text, p_status text, p_gte timestamp with time zone, p_lt timestamp with time zone, p_at timestamp with time zone, p_id text, p_newer boolean, p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.payment_orders_page(p_merchant text, p_status text, p_gte timestamp with time zone, p_lt timestamp with time zone, p_at timestamp with time zone, p_id text, p_newer boolean, p_limit integer) FROM PUBLIC;


--
-- Name: FUNCTION payment_orders_row_checks(r public.payment_orders); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.payment_orders_row_checks(r public.payment_orders) FROM PUBLIC;


--
-- Name: FUNCTION payment_ref_note(p_psp text, p_merchant text, p_checkout text, p_payment_ref text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.payment_ref_note(p_psp text, p_merchant text, p_checkout text, p_payment_ref text) FROM PUBLIC;


--
-- Name: FUNCTION payout_event_apply(p_psp text, p_event_id text, p_kind text, p_reference text, p_amount bigint, p_currency text, p_object_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.payout_event_apply(p_psp text, p_event_id text, p_kind text, p_reference text, p_amount bigint, p_currency text, p_object_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text) FROM PUBLIC;


--
-- Name: FUNCTION payouts_notify(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.payouts_notify() FROM PUBLIC;


--
-- Name: FUNCTION payouts_page(p_merchant text, p_status text, p_gte timestamp with time zone, p_lt timestamp with time zone, p_at timestamp with time zone, p_id text, p_newer boolean, p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.payouts_page(p_merchant text, p_status text, p_gte timestamp with time zone, p_lt timestamp with time zone, p_at timestamp with time zone, p_id text, p_newer boolean, p_limit integer) FROM PUBLIC;


--
-- Name: FUNCTION payouts_within_balance(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.payouts_within_balance() FROM PUBLIC;


--
-- Name: FUNCTION psp_event_ids_keep(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.psp_event_ids_keep() FROM PUBLIC;


--
-- Name: FUNCTION psp_event_kept(p_psp text, p_event_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.psp_event_kept(p_psp text, p_event_id text) FROM PUBLIC;


--
-- Name: FUNCTION psp_event_state(p_psp text, p_event_id text, p_reference text, p_outcome text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.psp_event_state(p_psp text, p_event_id text, p_reference text, p_outcome text) FROM PUBLIC;


--
-- Name: FUNCTION psp_events_retry_batch(p_unmatched_after integer, p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.psp_events_retry_batch(p_unmatched_after integer, p_limit integer) FROM PUBLIC;


--
-- Name: FUNCTION psp_events_row_checks(psp text, event_id text, type text, key_id text, body bytea, state text, kind text, method jsonb, applied_at timestamp with time zone, unmatched_at timestamp with time zone, forwarded_to text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.psp_events_row_checks(psp text, event_id text, type text, key_id text, body bytea, state text, kind text, method jsonb, applied_at timestamp with time zone, unmatched_at timestamp with time zone, forwarded_to text) FROM PUBLIC;


--
-- Name: FUNCTION psp_token_key(p_psp text, p_token text, p_tokens text[]); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.psp_token_key(p_psp text, p_token text, p_tokens text[]) FROM PUBLIC;


--
-- Name: FUNCTION psp_unit_coarsest(p_currency text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.psp_unit_coarsest(p_currency text) FROM PUBLIC;


--
-- Name: FUNCTION recon_begin(p_psp text, p_dialect text, p_sha256 text, p_file text, p_rows integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.recon_begin(p_psp text, p_dialect text, p_sha256 text, p_file text, p_rows integer) FROM PUBLIC;


--
-- Name: FUNCTION recon_begin(p_psp text, p_dialect text, p_sha256 text, p_file text, p_rows integer, p_shard text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.recon_begin(p_psp text, p_dialect text, p_sha256 text, p_file text, p_rows integer, p_shard text) FROM PUBLIC;


--
-- Name: FUNCTION recon_book_fee(p_report bigint, r public.recon_rows, p_merchant text, p_checkout text, p_order text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.recon_book_fee(p_report bigint, r public.recon_rows, p_merchant text, p_checkout text, p_order text) FROM PUBLIC;


--
-- Name: FUNCTION recon_check_flag(p_report bigint, p_kind text, p_merchant text, p_checkout text, p_currency text, p_amount bigint, p_ours jsonb); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.recon_check_flag(p_report bigint, p_kind text, p_merchant text, p_checkout text, p_currency text, p_amount bigint, p_ours jsonb) FROM PUBLIC;


--
-- Name: FUNCTION recon_checkout_json(p_merchant text, p_checkout text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.recon_checkout_json(p_merchant text, p_checkout text) FROM PUBLIC;


--
-- Name: FUNCTION recon_checks(p_report bigint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.recon_checks(p_report bigint) FROM PUBLIC;


--
-- Name: FUNCTION recon_failure_shown(p_report bigint, p_type text, p_psp_id text, p_nonce text, p_merchant text, p_object text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.recon_failure_shown(p_report bigint, p_type text, p_psp_id text, p_nonce text, p_merchant text, p_object text) FROM PUBLIC;


--
-- Name: FUNCTION recon_flag(p_report bigint, r public.recon_rows, p_class text, p_kind text, p_merchant text, p_checkout text, p_currency text, p_amount bigint, p_ours jsonb); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.recon_flag(p_report bigint, r public.recon_rows, p_class text, p_kind text, p_merchant text, p_checkout text, p_currency text, p_amount bigint, p_ours jsonb) FROM PUBLIC;


--
-- Name: FUNCTION recon_ledger_json(p_merchant text, p_checkout text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.recon_ledger_json(p_merchant text, p_checkout text) FROM PUBLIC;


--
-- Name: FUNCTION recon_money(p_report bigint, r public.recon_rows); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.recon_money(p_report bigint, r public.recon_rows) FROM PUBLIC;


--
-- Name: FUNCTION recon_open(p_report bigint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.recon_open(p_report bigint) FROM PUBLIC;


--
-- Name: FUNCTION recon_owned(p_psp text, p_rows jsonb); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.recon_owned(p_psp text, p_rows jsonb) FROM PUBLIC;


--
-- Name: FUNCTION recon_payment(p_report bigint, r public.recon_rows); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.recon_payment(p_report bigint, r public.recon_rows) FROM PUBLIC;


--
-- Name: FUNCTION recon_report_of(p_sha256 text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.recon_report_of(p_sha256 text) FROM PUBLIC;


--
-- Name: FUNCTION recon_row_json(r public.recon_rows); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.recon_row_json(r public.recon_rows) FROM PUBLIC;


--
-- Name: FUNCTION recon_run(p_report bigint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.recon_run(p_report bigint) FROM PUBLIC;


--
-- Name: FUNCTION recon_summary(p_report bigint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.recon_summary(p_report bigint) FROM PUBLIC;


--
-- Name: FUNCTION refund_event_apply(p_psp text, p_event_id text, p_kind text, p_reference text, p_amount bigint, p_currency text, p_object_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.refund_event_apply(p_psp text, p_event_id text, p_kind text, p_reference text, p_amount bigint, p_currency text, p_object_ref text, OUT outcome text, OUT merchant_id text, OUT checkout_id text) FROM PUBLIC;


--
-- Name: FUNCTION refund_seller_share(p_amount bigint, p_commission bigint, p_refunded_before bigint, p_booked_before bigint, p_refund bigint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.refund_seller_share(p_amount bigint, p_commission bigint, p_refunded_before bigint, p_booked_before bigint, p_refund bigint) FROM PUBLIC;


--
-- Name: FUNCTION refunds_notify(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.refunds_notify() FROM PUBLIC;


--
-- Name: FUNCTION refunds_page(p_merchant text, p_status text, p_gte timestamp with time zone, p_lt timestamp with time zone, p_at timestamp with time zone, p_id text, p_newer boolean, p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.refunds_page(p_merchant text, p_status text, p_gte timestamp with time zone, p_lt timestamp with time zone, p_at timestamp with time zone, p_id text, p_newer boolean, p_limit integer) FROM PUBLIC;


--
-- Name: FUNCTION refunds_seller(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.refunds_seller() FROM PUBLIC;


--
-- Name: FUNCTION refunds_within_capture(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.refunds_within_capture() FROM PUBLIC;


--
-- Name: FUNCTION review_key_of(p_merchant text, p_checkout_id text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.review_key_of(p_merchant text, p_checkout_id text) FROM PUBLIC;


--
-- Name: FUNCTION risk_verdict_check(p_verdict text, p_review_seconds integer, p_response_status integer, p_response_body text, p_lease_seconds integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.risk_verdict_check(p_verdict text, p_review_seconds integer, p_response_status integer, p_response_body text, p_lease_seconds integer) FROM PUBLIC;


--
-- Name: FUNCTION risk_verdict_record(p_merchant text, p_idem_key text, p_checkout_id text, p_verdict text, p_score integer, p_reason text, p_source text, p_review_seconds integer, p_response_status integer, p_response_body text, p_lease_seconds integer, p_renew_lease boolean); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.risk_verdict_record(p_merchant text, p_idem_key text, p_checkout_id text, p_verdict text, p_score integer, p_reason text, p_source text, p_review_seconds integer, p_response_status integer, p_response_body text, p_lease_seconds integer, p_renew_lease boolean) FROM PUBLIC;


--
-- Name: FUNCTION seller_available(p_merchant text, p_seller text, p_currency text, OUT wallet bigint, OUT pending bigint, OUT disputed bigint, OUT available bigint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.seller_available(p_merchant text, p_seller text, p_currency text, OUT wallet bigint, OUT pending bigint, OUT disputed bigint, OUT available bigint) FROM PUBLIC;


--
-- Name: FUNCTION status_forward_guard(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.status_forward_guard() FROM PUBLIC;


--
-- Name: FUNCTION stored_request_account(p_request text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.stored_request_account(p_request text) FROM PUBLIC;


--
-- Name: FUNCTION trigger_ensure(VARIADIC p_defs text[]); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.trigger_ensure(VARIADIC p_defs text[]) FROM PUBLIC;


--
-- Name: FUNCTION ts_epoch(ts timestamp with time zone); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.ts_epoch(ts timestamp with time zone) FROM PUBLIC;


--
-- Name: FUNCTION ts_rfc3339(ts timestamp with time zone); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.ts_rfc3339(ts timestamp with time zone) FROM PUBLIC;


--
-- Name: FUNCTION wallet_add(p_merchant text, p_seller text, p_currency text, p_amount bigint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.wallet_add(p_merchant text, p_seller text, p_currency text, p_amount bigint) FROM PUBLIC;


--
-- Name: FUNCTION wallet_credits_row_checks(currency text, amount bigint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.wallet_credits_row_checks(currency text, amount bigint) FROM PUBLIC;


--
-- Name: FUNCTION webhook_events_row_checks(event_id text, kind text, type text, source text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.webhook_events_row_checks(event_id text, kind text, type text, source text) FROM PUBLIC;


--
-- PostgreSQL database dump complete
--


