-- The key is done with the answer; p_lease must still be the holder's.
CREATE OR REPLACE FUNCTION op_key_done(p_merchant text, p_idem_key text, p_lease bigint, p_status integer, p_body text)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
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
$function$;
REVOKE ALL ON FUNCTION op_key_done(p_merchant text, p_idem_key text, p_lease bigint, p_status integer, p_body text) FROM PUBLIC;
