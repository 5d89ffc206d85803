-- POST /v1/webhook_endpoints/{id}/rotate_secret: the merchant's endpoint
-- signs with the new secret (sealed by the gateway) and, for p_grace
-- seconds, with the one it had too (payments-merchant rotate-secret
-- --grace), on its audit chain.  outcome: 'rotated'; 'replayed' when the
-- last rotation had this Idempotency-Key (nothing changes, the row is
-- answered without a secret); NULL when the endpoint is not the merchant's.
CREATE OR REPLACE FUNCTION pay_endpoint_rotate(p_merchant text, p_endpoint text, p_idem_key text, p_sealed text, p_grace integer, OUT outcome text, OUT item text)
 RETURNS record
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
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
$function$;
REVOKE ALL ON FUNCTION pay_endpoint_rotate(p_merchant text, p_endpoint text, p_idem_key text, p_sealed text, p_grace integer, OUT outcome text, OUT item text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_endpoint_rotate(p_merchant text, p_endpoint text, p_idem_key text, p_sealed text, p_grace integer, OUT outcome text, OUT item text) TO payments_gateway;
