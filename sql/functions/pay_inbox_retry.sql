-- The sweeper's step over the inbox: up to p_limit pending events, oldest
-- first, each applied again by pay_event_apply from its kept fields, in a
-- subtransaction of its own (one event that fails stays pending and the
-- others go on).  That includes the checks deferred to commit (the
-- constraint triggers DEFERRABLE INITIALLY DEFERRED: a ledger
-- transaction's balance, the notifications of a status moved): run at the
-- end of each event's subtransaction (SET CONSTRAINTS ALL IMMEDIATE, then
-- each constraint back to its initial mode), not at the commit of the
-- whole batch, where one that failed would undo every event of it, at
-- every round.  Those the caller deferred before the call are run first,
-- outside every event's (and a mode the caller set is not kept).  An
-- event now recorded is 'applied' (once: pay_event_apply records an event
-- id once, under its lock); one still pending past
-- p_unmatched_after seconds becomes 'unmatched' (alerted by the caller,
-- once: only this change returns it).  Not one the home shard keeps for
-- want of an owner while a shard did not answer its look-up in the last
-- p_unmatched_after seconds (forward_waiting_at, pay_inbox_waiting): that
-- shard may own it, and it waits, pending, for the home sweeper to forward
-- it (pay_inbox_homeless), however old.  Returns the events whose state
-- changed, with their new state, outcome and age.
CREATE OR REPLACE FUNCTION pay_inbox_retry(p_unmatched_after integer, p_limit integer)
 RETURNS TABLE(psp text, event_id text, kind text, type text, reference text, state text, outcome text, merchant_id text, checkout_id text, age_seconds bigint)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    e        record;
    v_state  text;
    -- what pay_event_apply said (typed: a record set to NULL is not
    -- assigned, and reading its fields fails the whole call)
    v_out    text;
    v_m      text;
    v_co     text;
    v_imm    text;
    v_failed boolean;
BEGIN
    IF p_unmatched_after IS NULL OR p_unmatched_after < 1 OR p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'pay_inbox_retry: invalid window or limit'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- the PSP's words, applied as a webhook's
    PERFORM set_config('payments.event_source', '', true);

    -- The checks deferred to commit are run below with SET CONSTRAINTS
    -- ALL IMMEDIATE, then ALL DEFERRED again: cheap, where naming them
    -- costs a catalog look-up a name at every event (0.2 ms for seven).
    -- ALL DEFERRED would also defer a constraint DEFERRABLE INITIALLY
    -- IMMEDIATE: those (none today) are named back to IMMEDIATE.  The
    -- caller's own deferred checks first, so that none is blamed on an event.
    SELECT string_agg(DISTINCT format('%I.%I', n.nspname, c.conname), ', ')
      INTO v_imm
      FROM pg_constraint c
      JOIN pg_namespace n ON n.oid = c.connamespace
     WHERE c.condeferrable AND NOT c.condeferred;
    SET CONSTRAINTS ALL IMMEDIATE;
    SET CONSTRAINTS ALL DEFERRED;
    IF v_imm IS NOT NULL THEN
        EXECUTE 'SET CONSTRAINTS ' || v_imm || ' IMMEDIATE';
    END IF;

    -- the pending events, oldest first, locked, at most p_limit: their
    -- walk is a function of its own, the only one of the step planned
    -- with the sequential and bitmap scans off (psp_events_retry_batch)
    FOR e IN SELECT * FROM psp_events_retry_batch(p_unmatched_after, p_limit)
    LOOP
        v_out := NULL;
        v_m := NULL;
        v_co := NULL;
        v_failed := false;
        BEGIN
            PERFORM pg_advisory_xact_lock(1436, hashtext(e.psp || ' ' || e.event_id));
            SELECT x.outcome, x.merchant_id, x.checkout_id INTO v_out, v_m, v_co
              FROM pay_event_apply(e.psp, e.event_id, e.kind, e.type, e.token,
                                   e.reference, e.amount, e.currency,
                                   e.payment_ref, e.object_ref, e.tokens) x;
            v_state := psp_event_state(e.psp, e.event_id, e.reference, v_out);
            -- this event's checks deferred to commit, here: one that fails
            -- undoes this event alone (its subtransaction, and with it the
            -- mode set here)
            SET CONSTRAINTS ALL IMMEDIATE;
            SET CONSTRAINTS ALL DEFERRED;
            IF v_imm IS NOT NULL THEN
                EXECUTE 'SET CONSTRAINTS ' || v_imm || ' IMMEDIATE';
            END IF;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'pay_inbox_retry: event % of psp %: %', e.event_id, e.psp, SQLERRM;
            -- nothing of it stays, nor what it said
            v_out := NULL;
            v_m := NULL;
            v_co := NULL;
            v_state := 'pending';
            v_failed := true;
        END;

        IF v_state = 'pending' THEN
            CONTINUE WHEN e.received_at > now() - make_interval(secs => p_unmatched_after);
            v_state := 'unmatched';
        END IF;

        UPDATE psp_events pe
           SET state = v_state,
               outcome = coalesce(v_out, pe.outcome),
               merchant_id = coalesce(v_m, pe.merchant_id),
               checkout_id = coalesce(v_co, pe.checkout_id),
               applied_at = CASE WHEN v_state = 'applied' THEN now() END,
               unmatched_at = CASE WHEN v_state = 'unmatched' THEN now() END
         WHERE pe.psp = e.psp AND pe.event_id = e.event_id
           AND pe.received_at = e.received_at;

        -- one that raised is told apart from one that matched nothing:
        -- outcome 'apply_failed' (returned, not kept; its error is in the
        -- server's log as this function's WARNING)
        RETURN QUERY SELECT e.psp, e.event_id, e.kind, e.type, e.reference, v_state,
                            CASE WHEN v_failed THEN 'apply_failed'
                                 ELSE coalesce(v_out, e.outcome) END,
                            coalesce(v_m, e.merchant_id),
                            coalesce(v_co, e.checkout_id),
                            extract(epoch FROM now() - e.received_at)::bigint;
    END LOOP;
END
$function$;
REVOKE ALL ON FUNCTION pay_inbox_retry(p_unmatched_after integer, p_limit integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_inbox_retry(p_unmatched_after integer, p_limit integer) TO payments_gateway;
