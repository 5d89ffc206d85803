-- The operation (refund, capture or pay-out: p_kind) that an earlier
-- request with this key and this body made, found in operation_keys when
-- op_key_take has just claimed the key as new (it had expired, or was
-- purged): the key, claimed under p_lease, names that operation again, so
-- that the claim resumes it (answered from its row, or sent again under
-- its nonce while the PSP keeps its key) and never makes a second one.
-- NULL when no request with this key and body made one.
CREATE OR REPLACE FUNCTION op_key_prior(p_merchant text, p_idem_key text, p_fingerprint text, p_kind text, p_lease bigint)
 RETURNS text
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
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
$function$;
REVOKE ALL ON FUNCTION op_key_prior(p_merchant text, p_idem_key text, p_fingerprint text, p_kind text, p_lease bigint) FROM PUBLIC;
