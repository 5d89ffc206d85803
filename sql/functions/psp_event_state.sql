-- The inbox state of an event pay_event_apply has just been asked to apply
-- (under the event's lock): 'applied' when it recorded the event (in
-- webhook_events, whatever the outcome), else 'pending' (what it refers to
-- is not here yet); 'foreign' instead of either when nothing here matched
-- (an unknown_* outcome) and its reference is not this gateway's nonce
-- "<merchant_id>:<id>" (ids are [A-Za-z0-9_-]).
CREATE OR REPLACE FUNCTION psp_event_state(p_psp text, p_event_id text, p_reference text, p_outcome text)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    -- PL/pgSQL, not SQL: its query's plan is kept for the session (a SQL
    -- function with SET is never inlined, and was planned at every call:
    -- once per webhook, bench/hook_counts.sh)
    RETURN CASE
        WHEN p_outcome LIKE 'unknown\_%'
             AND coalesce(p_reference, '') <> ''
             AND p_reference !~ '^[A-Za-z0-9_-]{1,64}:[A-Za-z0-9_-]{1,64}$'
            THEN 'foreign'
        WHEN EXISTS (SELECT 1 FROM webhook_events we
                      WHERE we.psp = p_psp AND we.event_id = p_event_id)
            THEN 'applied'
        ELSE 'pending'
    END;
END
$function$;
REVOKE ALL ON FUNCTION psp_event_state(p_psp text, p_event_id text, p_reference text, p_outcome text) FROM PUBLIC;
