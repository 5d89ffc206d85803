-- A checkout's Idempotency-Key done with its answer, for pay_finish and
-- pay_charge_finish (p_fn names the caller in its errors).  The usual case
-- is one statement: the key, still in progress under p_lease and the
-- checkout's, becomes done (its row lock also makes a concurrent second
-- finish wait, then find it done); replay is NULL and the caller goes on.
-- A key already done: replay true with the answer it stored, whatever
-- this call carries, and the caller changes nothing.  Otherwise it raises:
-- no key (PY004), p_valid false (invalid_parameter_value), the lease
-- taken over (PY003), another checkout's key (PY004).
CREATE OR REPLACE FUNCTION checkout_key_finish(p_fn text, p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_valid boolean, p_invalid text, p_response_status integer, p_response_body text, OUT replay boolean, OUT stored_status integer, OUT stored_body text)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
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
$function$;
REVOKE ALL ON FUNCTION checkout_key_finish(p_fn text, p_merchant text, p_idem_key text, p_lease bigint, p_checkout_id text, p_valid boolean, p_invalid text, p_response_status integer, p_response_body text, OUT replay boolean, OUT stored_status integer, OUT stored_body text) FROM PUBLIC;
