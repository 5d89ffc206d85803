-- A shard's sweeper step, with several shards, over the events it keeps
-- for want of an owner (the home's, or a former home's from before the
-- home flag moved): up to p_limit pending events, oldest first, that name no merchant
-- of this shard (neither the merchant they were matched to nor their
-- nonce's) and that nothing here locates (pay_event_locate), received in
-- the last p_unmatched_after seconds or, older, found waiting for a shard
-- that did not answer in the last p_unmatched_after seconds
-- (forward_waiting_at, pay_inbox_waiting: however long its shard is down;
-- the other older ones are the unmatched alert's, pay_inbox_retry's), not
-- tried in the last p_retry seconds.  Each is
-- marked tried now and returned with what pay_event_keep needs to keep it
-- on its owner: its kept fields, the signed bytes, the header values and
-- the verifying key's id.  The caller locates each on the other shards,
-- keeps it there, then calls pay_inbox_forwarded here.  A saved method's
-- event is never one of them (it is kept unmatched, not pending).
CREATE OR REPLACE FUNCTION pay_inbox_homeless(p_unmatched_after integer, p_retry integer, p_limit integer)
 RETURNS TABLE(psp text, event_id text, received_at timestamp with time zone, kind text, type text, token text, reference text, amount bigint, currency text, payment_ref text, object_ref text, tokens text[], body bytea, headers jsonb, key_id text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET jit TO 'off'
 SET enable_seqscan TO 'off'
 SET enable_bitmapscan TO 'off'
AS $function$
#variable_conflict use_column
BEGIN
    IF p_unmatched_after IS NULL OR p_unmatched_after < 1 OR p_retry IS NULL
       OR p_retry < 0 OR p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'pay_inbox_homeless: invalid window, retry or limit'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- the pending events walked oldest first (psp_events_pending), each
    -- tested as it comes, until p_limit: planned while a partition has no
    -- statistics (a new month's), a bitmap scan tested every pending row
    -- before its sort and its limit (the sequential and bitmap scans are
    -- off for this function)
    RETURN QUERY
    WITH due AS (
        SELECT pe.tableoid AS part, pe.ctid AS place
          FROM psp_events pe
         WHERE pe.state = 'pending'
           AND (pe.received_at > now() - make_interval(secs => p_unmatched_after)
                OR pe.forward_waiting_at > now() - make_interval(secs => p_unmatched_after))
           AND pe.kind <> 'METHOD_SAVED'
           AND (pe.forward_tried_at IS NULL
                OR pe.forward_tried_at <= now() - make_interval(secs => p_retry))
           AND NOT EXISTS (SELECT 1 FROM merchants m
                            WHERE m.merchant_id = coalesce(pe.merchant_id,
                                      (nonce_split(pe.reference)).merchant_id))
           AND NOT EXISTS (SELECT 1 FROM pay_event_locate(pe.psp, pe.token, pe.tokens,
                                                          pe.payment_ref, pe.object_ref))
         ORDER BY pe.received_at
         LIMIT p_limit
           FOR UPDATE OF pe SKIP LOCKED
    )
    -- each marked by its place (its partition and its place there, which
    -- its lock keeps), not by a join on its key: planned while the
    -- partition's statistics said it held no row (an ANALYZE that found
    -- only dead rows), the join read the partition's whole primary key for
    -- each event taken (300,100 rows read for a step of 100 of 3,000,
    -- plans_background::the_inbox_steps_read_about_their_limit)
    UPDATE psp_events pe
       SET forward_tried_at = now()
      FROM due
     WHERE pe.tableoid = due.part AND pe.ctid = due.place
    RETURNING pe.psp, pe.event_id, pe.received_at, pe.kind, pe.type, pe.token,
              pe.reference, pe.amount, pe.currency, pe.payment_ref, pe.object_ref,
              pe.tokens, pe.body, pe.headers, pe.key_id;
END
$function$;
REVOKE ALL ON FUNCTION pay_inbox_homeless(p_unmatched_after integer, p_retry integer, p_limit integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_inbox_homeless(p_unmatched_after integer, p_retry integer, p_limit integer) TO payments_gateway;
