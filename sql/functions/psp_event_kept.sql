-- A kept event's row, found by its id without opening every month of the
-- inbox: psp_event_ids' key gives its received_at, and the row is read
-- from that month's partition alone (planned with that value, so no other
-- partition is opened).  An id whose row is gone (its month dropped by
-- hand, the ids left) is given back: no row, and the caller keeps the event
-- anew.  The duplicate check of pay_event_keep and pay_method_event_keep,
-- under the event's advisory lock.
CREATE OR REPLACE FUNCTION psp_event_kept(p_psp text, p_event_id text)
 RETURNS TABLE(state text, outcome text, merchant_id text, checkout_id text)
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    v_at  timestamptz;
BEGIN
    SELECT i.received_at INTO v_at
      FROM psp_event_ids i
     WHERE i.psp = p_psp AND i.event_id = p_event_id;
    IF NOT FOUND THEN
        RETURN;
    END IF;

    RETURN QUERY EXECUTE
        'SELECT e.state, e.outcome, e.merchant_id, e.checkout_id FROM psp_events e'
        ' WHERE e.psp = $1 AND e.event_id = $2 AND e.received_at = $3'
        USING p_psp, p_event_id, v_at;
    IF NOT FOUND THEN
        DELETE FROM psp_event_ids i WHERE i.psp = p_psp AND i.event_id = p_event_id;
    END IF;
END
$function$;
REVOKE ALL ON FUNCTION psp_event_kept(p_psp text, p_event_id text) FROM PUBLIC;
