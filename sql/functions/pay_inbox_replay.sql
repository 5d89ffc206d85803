-- An operator's replay of one kept event (payments-events replay): applied
-- again by pay_event_apply from its kept fields, under the event's lock; a
-- METHOD_SAVED event by pay_method_saved_apply, from the sealed token its
-- row keeps (an applied one is 'duplicate').
-- Idempotent: an event pay_event_apply has recorded is 'duplicate' and
-- changes nothing; a pending or unmatched one whose object is here now is
-- applied, once.  An unmatched one still matching nothing stays unmatched,
-- but for one the home shard's sweeper tried to forward (forward_tried_at:
-- with several shards, an event kept at home for want of an owner, say
-- while the shard that owns it was down): pending again, noted waiting
-- (forward_waiting_at now, unmatched_at cleared), so that the home sweeper
-- tries at once to forward it (pay_inbox_homeless) and it is not unmatched
-- again for the sweeper's unmatched= (alerted again then, when still no
-- shard owns it).
-- An inquiry's end an earlier release kept here as IGNORED with no
-- merchant, applied ('duplicate' now) and nothing here its own
-- (pay_inbox_inquiry_end_elsewhere: with several shards, kept on the home
-- shard while its dispute lives on another): pending again, noted waiting
-- (forward_waiting_at now), so that the home sweeper forwards it however
-- old to the shard that owns it, which applies it once (payments-migrate
-- does the same to those kept before the upgrade).
-- Audited (audit_append, action inbox:replay, with p_actor) when the event
-- names a checkout.  A forwarded event (kept and applied by the shard that
-- owns it) is left as it is: outcome 'forwarded'; so is an unreadable one
-- (kept unread: nothing to apply), outcome 'unreadable'.  SQLSTATE P0002
-- when no such event is kept.
CREATE OR REPLACE FUNCTION pay_inbox_replay(p_psp text, p_event_id text, p_actor text)
 RETURNS TABLE(state_before text, state text, outcome text, merchant_id text, checkout_id text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    e        record;
    a        record;
    v_state  text;
    v_at     timestamptz;
    v_n      bigint := 0;
    v_wait   boolean := false;
BEGIN
    PERFORM set_config('payments.event_source', '', true);
    PERFORM pg_advisory_xact_lock(1436, hashtext(p_psp || ' ' || p_event_id));

    -- its month by its id (psp_event_ids), then its row there alone
    SELECT i.received_at INTO v_at
      FROM psp_event_ids i
     WHERE i.psp = p_psp AND i.event_id = p_event_id;
    IF FOUND THEN
        EXECUTE 'SELECT pe.* FROM psp_events pe'
                ' WHERE pe.psp = $1 AND pe.event_id = $2 AND pe.received_at = $3'
                ' FOR UPDATE'
           INTO e USING p_psp, p_event_id, v_at;
        GET DIAGNOSTICS v_n = ROW_COUNT;
    END IF;
    IF v_n = 0 THEN
        RAISE EXCEPTION 'pay_inbox_replay: no event % of psp % is kept', p_event_id, p_psp
            USING ERRCODE = 'no_data_found';
    END IF;

    -- kept and applied by the shard that owns it (forwarded there): this
    -- row only says so, and stays as it is
    IF e.state = 'forwarded' THEN
        RETURN QUERY SELECT e.state, e.state, 'forwarded'::text, e.merchant_id, e.checkout_id;
        RETURN;
    END IF;

    -- kept unread (pay_event_keep_unreadable): nothing was read from it to
    -- apply; the PSP's next delivery, to a release that reads it, is
    IF e.state = 'unreadable' THEN
        RETURN QUERY SELECT e.state, e.state, 'unreadable'::text, e.merchant_id, e.checkout_id;
        RETURN;
    END IF;

    IF e.kind = 'METHOD_SAVED' THEN
        -- a saved method: recorded once it is applied (its row's state);
        -- else saved now from what the row keeps for it (the token sealed)
        IF e.state = 'applied' THEN
            SELECT 'duplicate'::text AS outcome, e.merchant_id AS merchant_id,
                   e.checkout_id AS checkout_id INTO a;
            v_state := 'applied';
        ELSE
            SELECT x.outcome, x.merchant_id, x.checkout_id, x.state AS st INTO a
              FROM pay_method_saved_apply(e.psp, e.event_id, e.reference, e.method) x;
            v_state := a.st;
        END IF;
    ELSE
        SELECT * INTO a FROM pay_event_apply(e.psp, e.event_id, e.kind, e.type, e.token,
                                             e.reference, e.amount, e.currency,
                                             e.payment_ref, e.object_ref, e.tokens) x;
        v_state := psp_event_state(e.psp, e.event_id, e.reference, a.outcome);
    END IF;
    -- still nobody's here: the home sweeper's to forward once more when it
    -- tried before, else as it was
    IF v_state = 'pending' AND e.forward_tried_at IS NOT NULL AND e.kind <> 'METHOD_SAVED' THEN
        v_wait := true;
    ELSIF v_state = 'pending' AND e.state = 'unmatched' THEN
        v_state := 'unmatched';
    ELSIF a.outcome = 'duplicate' AND e.state = 'applied'
          AND pay_inbox_inquiry_end_elsewhere(e.psp, e.kind, e.type, e.token, e.tokens,
                                              e.reference, e.payment_ref, e.object_ref,
                                              e.merchant_id) THEN
        -- an inquiry's end an earlier release kept here with no merchant,
        -- nothing here its own (with several shards, on the home shard;
        -- its dispute on another): pending again, noted waiting, so that
        -- the home sweeper forwards it however old, and the shard that
        -- owns its dispute applies it (once: it is not kept there yet)
        v_state := 'pending';
        v_wait := true;
    END IF;

    UPDATE psp_events pe
       SET state = v_state,
           outcome = CASE WHEN a.outcome = 'duplicate' THEN pe.outcome ELSE a.outcome END,
           merchant_id = coalesce(a.merchant_id, pe.merchant_id),
           checkout_id = coalesce(a.checkout_id, pe.checkout_id),
           applied_at = CASE WHEN v_state = 'applied' THEN coalesce(pe.applied_at, now()) END,
           unmatched_at = CASE WHEN v_wait THEN NULL ELSE pe.unmatched_at END,
           forward_tried_at = CASE WHEN v_wait THEN NULL ELSE pe.forward_tried_at END,
           forward_waiting_at = CASE WHEN v_wait THEN now() ELSE pe.forward_waiting_at END
     WHERE pe.psp = e.psp AND pe.event_id = e.event_id AND pe.received_at = e.received_at;

    IF coalesce(a.merchant_id, e.merchant_id) IS NOT NULL THEN
        PERFORM audit_append(coalesce(a.merchant_id, e.merchant_id),
                             coalesce(a.checkout_id, e.checkout_id), 'inbox:replay',
                             jsonb_build_object('psp', e.psp, 'event_id', e.event_id,
                                                'actor', p_actor, 'before', e.state,
                                                'after', v_state, 'outcome', a.outcome));
    END IF;

    RETURN QUERY SELECT e.state, v_state, a.outcome,
                        coalesce(a.merchant_id, e.merchant_id),
                        coalesce(a.checkout_id, e.checkout_id);
END
$function$;
REVOKE ALL ON FUNCTION pay_inbox_replay(p_psp text, p_event_id text, p_actor text) FROM PUBLIC;
