-- One change: nothing when no endpoint of the merchant wants the type (one
-- index probe), else the object's next sequence number and one row per
-- endpoint that wants it (a disabled one too: its rows wait for it).  Each
-- object counts on its own: a checkout, each refund, each dispute and each
-- pay-out, keyed by the type's object ("checkout", "refund", ...) and its
-- id, so that a shop keeps the notification with the largest sequence of
-- one object as that object's state.  The first endpoint's row (by
-- creation) is the event's row in the events feed (in_feed).
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
$function$;
REVOKE ALL ON FUNCTION notify_enqueue(p_merchant text, p_type text, p_checkout text, p_object text, p_data jsonb) FROM PUBLIC;
