-- A verified PSP event kept raw and applied in one transaction (the
-- webhook's): the inbox row (psp_events) with the signed bytes, the header
-- values the verification read and the id of the key that verified it,
-- written with the outcome of pay_event_apply.  Its state:
--   applied   pay_event_apply recorded it (whatever its outcome);
--   pending   it refers to a checkout, refund, capture or dispute not here
--             yet: kept for the sweeper's retry (pay_inbox_retry);
--   foreign   not applicable, and its reference is not this gateway's
--             nonce "<merchant_id>:<id>": another system's, kept, counted.
-- A second delivery of a kept event changes nothing: 'duplicate', with the
-- state it has.  Both run under the event's advisory lock (pay_event_apply's).
-- The duplicate check reads one index, however many months the inbox
-- keeps, and then that event's month alone (psp_event_kept).  The insert's
-- trigger claims the id in psp_event_ids (psp_event_ids_keep): a second
-- row of one event fails.
CREATE OR REPLACE FUNCTION pay_event_keep(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_object_ref text, p_tokens text[], p_body bytea, p_headers jsonb, p_key_id text)
 RETURNS TABLE(outcome text, merchant_id text, checkout_id text, state text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    v        record;
    a        record;
    v_state  text;
BEGIN
    -- this month's partition, when the sweeper has not made it ahead
    IF to_regclass('psp_events_' || to_char(now() AT TIME ZONE 'UTC', '"y"YYYY"m"MM')) IS NULL THEN
        PERFORM pay_inbox_partitions(1);
    END IF;

    -- the event's lock, taken in an expression: a PERFORM is a statement
    -- of its own, an executor's start (bench/RESULTS.md)
    IF pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id)) IS NULL THEN
        RAISE EXCEPTION 'pay_event_keep: no lock';
    END IF;
    -- its id first, by psp_event_ids' key: a new event (nearly every one)
    -- costs that one look-up, not psp_event_kept's call as well
    PERFORM 1 FROM psp_event_ids i WHERE i.psp = p_psp AND i.event_id = p_event_id;
    IF FOUND THEN
        SELECT k.* INTO v FROM psp_event_kept(p_psp, p_event_id) k;
        IF FOUND THEN
            RETURN QUERY SELECT 'duplicate'::text, v.merchant_id, v.checkout_id, v.state;
            RETURN;
        END IF;
    END IF;

    -- called in an expression (it returns one row, not a set): a SELECT
    -- from it would be a statement, an executor's start (bench/RESULTS.md)
    a := pay_event_apply(p_psp, p_event_id, p_kind, p_type, p_token, p_reference, p_amount,
                         p_currency, p_payment_ref, p_object_ref, p_tokens);

    -- applied: recorded in webhook_events by whichever path applied it
    -- (psp_event_state's answer for it, without its call and look-up)
    v_state := CASE WHEN a.outcome = 'applied' THEN 'applied'
                    ELSE psp_event_state(p_psp, p_event_id, p_reference, a.outcome) END;

    INSERT INTO psp_events AS e (psp, event_id, state, body, headers, key_id, kind, type,
                                 token, reference, amount, currency, payment_ref, object_ref,
                                 tokens, outcome, merchant_id, checkout_id, applied_at)
    VALUES (p_psp, p_event_id, v_state, p_body, coalesce(p_headers, '{}'), p_key_id,
            p_kind, left(coalesce(p_type, ''), 100), nullif(p_token, ''),
            nullif(p_reference, ''), p_amount, nullif(p_currency, ''),
            nullif(p_payment_ref, ''), nullif(p_object_ref, ''), p_tokens, a.outcome,
            a.merchant_id, a.checkout_id,
            CASE WHEN v_state = 'applied' THEN now() END)
    -- the answer is the row as written (a RETURN QUERY would be a
    -- statement more)
    RETURNING e.outcome, e.merchant_id, e.checkout_id, e.state
         INTO outcome, merchant_id, checkout_id, state;
    RETURN NEXT;
END
$function$;
REVOKE ALL ON FUNCTION pay_event_keep(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_object_ref text, p_tokens text[], p_body bytea, p_headers jsonb, p_key_id text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_event_keep(p_psp text, p_event_id text, p_kind text, p_type text, p_token text, p_reference text, p_amount bigint, p_currency text, p_payment_ref text, p_object_ref text, p_tokens text[], p_body bytea, p_headers jsonb, p_key_id text) TO payments_gateway;
