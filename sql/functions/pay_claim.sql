CREATE OR REPLACE FUNCTION pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb, p_capture_method text, p_options jsonb)
 RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, psp_request text, expires_at bigint, checkout_status text, claim_age bigint)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
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
$function$;
REVOKE ALL ON FUNCTION pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb, p_capture_method text, p_options jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb, p_capture_method text, p_options jsonb) TO payments_gateway;


-- The signature without options (a save, an off-session charge), which
-- the previous release's module calls during an upgrade: neither.
CREATE OR REPLACE FUNCTION pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb, p_capture_method text)
 RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, psp_request text, expires_at bigint, checkout_status text, claim_age bigint)
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT * FROM pay_claim(p_merchant, p_idem_key, p_fingerprint, p_lease_seconds,
                            p_ttl_seconds, p_checkout_id, p_psp, p_currency,
                            p_amount_total, p_success_url, p_cancel_url, p_buyer_email,
                            p_expires_at, p_psp_request, p_orders, p_duplicate_body,
                            p_metadata, p_capture_method, NULL::jsonb);
$function$;
REVOKE ALL ON FUNCTION pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb, p_capture_method text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb, p_capture_method text) TO payments_gateway;

-- The signature without a capture method, which the previous release's
-- module calls during an upgrade: a checkout captured automatically.
CREATE OR REPLACE FUNCTION pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb)
 RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, psp_request text, expires_at bigint, checkout_status text, claim_age bigint)
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT * FROM pay_claim(p_merchant, p_idem_key, p_fingerprint, p_lease_seconds,
                            p_ttl_seconds, p_checkout_id, p_psp, p_currency,
                            p_amount_total, p_success_url, p_cancel_url, p_buyer_email,
                            p_expires_at, p_psp_request, p_orders, p_duplicate_body,
                            p_metadata, 'automatic', NULL::jsonb);
$function$;
REVOKE ALL ON FUNCTION pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text, p_metadata jsonb) TO payments_gateway;

-- The signature without metadata, which the previous release's module
-- calls during an upgrade: a checkout without metadata.
CREATE OR REPLACE FUNCTION pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text)
 RETURNS TABLE(outcome text, lease bigint, retry_after integer, response_status integer, response_body text, psp_request text, expires_at bigint, checkout_status text, claim_age bigint)
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT * FROM pay_claim(p_merchant, p_idem_key, p_fingerprint, p_lease_seconds,
                            p_ttl_seconds, p_checkout_id, p_psp, p_currency,
                            p_amount_total, p_success_url, p_cancel_url, p_buyer_email,
                            p_expires_at, p_psp_request, p_orders, p_duplicate_body,
                            '{}'::jsonb, 'automatic', NULL::jsonb);
$function$;
REVOKE ALL ON FUNCTION pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_claim(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_checkout_id text, p_psp text, p_currency text, p_amount_total bigint, p_success_url text, p_cancel_url text, p_buyer_email text, p_expires_at bigint, p_psp_request text, p_orders jsonb, p_duplicate_body text) TO payments_gateway;
