-- POST /v1/webhook_endpoints: the merchant's new endpoint, its secret
-- sealed by the gateway (the plaintext never reaches the database), on its
-- audit chain.  outcome: 'created'; 'replayed' when this Idempotency-Key
-- already created one with the same url and events (the row is answered,
-- the secret is not: it was shown once); 'reused' when it created one with
-- another url or events (nothing stored).
CREATE OR REPLACE FUNCTION pay_endpoint_create(p_merchant text, p_idem_key text, p_endpoint text, p_url text, p_host text, p_events text[], p_sealed text, OUT outcome text, OUT item text)
 RETURNS record
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
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
$function$;
REVOKE ALL ON FUNCTION pay_endpoint_create(p_merchant text, p_idem_key text, p_endpoint text, p_url text, p_host text, p_events text[], p_sealed text, OUT outcome text, OUT item text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_endpoint_create(p_merchant text, p_idem_key text, p_endpoint text, p_url text, p_host text, p_events text[], p_sealed text, OUT outcome text, OUT item text) TO payments_gateway;
