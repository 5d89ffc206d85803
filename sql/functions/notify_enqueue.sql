-- One change: nothing when no endpoint of the merchant wants the type (one
-- index probe), else the subject's next sequence number and one row per
-- endpoint that wants it (a disabled one too: its rows wait for it).
CREATE OR REPLACE FUNCTION notify_enqueue(p_merchant text, p_type text, p_checkout text, p_object text, p_data jsonb)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
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
    VALUES (p_merchant, coalesce(p_checkout, p_object), 1)
    ON CONFLICT (merchant_id, subject) DO UPDATE SET last = s.last + 1
    RETURNING s.last INTO v_seq;

    v_payload := jsonb_build_object(
                     'type', p_type,
                     'timestamp', ts_rfc3339(now()),
                     'data', p_data || jsonb_build_object('merchant_id', p_merchant,
                                                          'sequence', v_seq))::text;

    INSERT INTO notifications (merchant_id, notification_id, endpoint_id, event_type,
                               checkout_id, object_id, sequence, payload)
    SELECT p_merchant, 'msg_' || encode(gen_random_bytes_compat(12), 'hex'), e.endpoint_id,
           p_type, p_checkout, p_object, v_seq, v_payload
      FROM notify_endpoints e
     WHERE e.merchant_id = p_merchant
       AND (e.event_types = '{}' OR p_type = ANY (e.event_types));
END
$function$;
REVOKE ALL ON FUNCTION notify_enqueue(p_merchant text, p_type text, p_checkout text, p_object text, p_data jsonb) FROM PUBLIC;
