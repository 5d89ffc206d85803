CREATE OR REPLACE FUNCTION op_key_take(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_op_id text, OUT outcome text, OUT lease bigint, OUT retry_after integer, OUT response_status integer, OUT response_body text, OUT op_id text)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
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
$function$;
REVOKE ALL ON FUNCTION op_key_take(p_merchant text, p_idem_key text, p_fingerprint text, p_lease_seconds integer, p_ttl_seconds integer, p_op_id text, OUT outcome text, OUT lease bigint, OUT retry_after integer, OUT response_status integer, OUT response_body text, OUT op_id text) FROM PUBLIC;
