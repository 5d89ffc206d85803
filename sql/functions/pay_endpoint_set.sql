-- POST /v1/webhook_endpoints/{id}/enable and .../disable: the merchant
-- moves its own endpoint, and the move is on its audit chain.  Enabling
-- clears the failures (its clock of time spent failing starts again);
-- disabling keeps the notifications PENDING until it is enabled.  Asking
-- for the state it is in changes nothing and writes no audit row.  NULL
-- when the endpoint is not the merchant's.
CREATE OR REPLACE FUNCTION pay_endpoint_set(p_merchant text, p_endpoint text, p_enable boolean)
 RETURNS text
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
$function$;
REVOKE ALL ON FUNCTION pay_endpoint_set(p_merchant text, p_endpoint text, p_enable boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_endpoint_set(p_merchant text, p_endpoint text, p_enable boolean) TO payments_gateway;
