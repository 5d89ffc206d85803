-- Migrations 123's and 126's work, after the upgrade has committed: the
-- inquiry ends an earlier release kept (psp_events, IGNORED, applied:
-- Stripe's charge.dispute.closed, Adyen's
-- ISSUER_RESPONSE_TIMEFRAME_EXPIRED) of a dispute still OPEN are made
-- pending again, and the sweeper's next round applies them by this
-- release's functions (pay_inbox_retry, dispute_inquiry_closed); those
-- kept on the home shard of several for a dispute on another are made
-- pending for forwarding (126's comment says which).  bin/payments-migrate
-- calls it at every run, after the migrations and the functions, outside
-- any transaction block (doc/OPERATIONS.md, "Upgrading").
--
-- Reads each partition the migration listed (inquiry_ends_unread) whole,
-- nothing indexing those ends, in a transaction of its own that deletes
-- the partition's row: no lock but its rows' (ROW EXCLUSIVE on that month,
-- ACCESS SHARE on disputes, neither held up by nor holding up the
-- gateway's writes), and a run cut short goes on where it stopped.  The
-- OPEN disputes are read once a month and hashed, by PSP reference and by
-- checkout (no join filter comparing every end with every dispute, as one
-- statement over the whole inbox was planned).  A partition dropped
-- since (housekeeping) is passed over: its events are gone.  With the
-- table empty, one probe of it.
--
-- p_events, p_partitions: how many events were made pending, in how many
-- partitions read (0, 0: nothing left to read).  A procedure (it commits
-- as it goes), not SECURITY DEFINER: run by the tables' owner.
CREATE OR REPLACE PROCEDURE inquiry_ends_applied_again(INOUT p_events bigint DEFAULT NULL, INOUT p_partitions bigint DEFAULT NULL)
 LANGUAGE plpgsql
AS $procedure$
DECLARE
    v_part  text;
    v_rows  bigint;
BEGIN
    p_events := 0;
    p_partitions := 0;

    LOOP
        SELECT u.partition INTO v_part FROM public.inquiry_ends_unread u
         ORDER BY u.partition LIMIT 1;
        EXIT WHEN v_part IS NULL;

        IF to_regclass(format('public.%I', v_part)) IS NOT NULL THEN
            -- no JIT: compiling it took 2.7 s of the 3 s a month of 83,000
            -- events took to read (0.3 s without)
            PERFORM set_config('jit', 'off', true);
            EXECUTE format($sql$
                UPDATE public.%I pe
                   SET state = 'pending', applied_at = NULL
                 WHERE pe.state = 'applied' AND pe.kind = 'IGNORED'
                   AND pe.type IN ('charge.dispute.closed', 'ISSUER_RESPONSE_TIMEFRAME_EXPIRED')
                   AND (EXISTS (SELECT 1 FROM public.disputes d
                                 WHERE d.psp = pe.psp AND d.psp_dispute_ref = pe.object_ref
                                   AND d.status = 'OPEN')
                        OR (pe.psp, pe.reference) IN
                           (SELECT d.psp, d.merchant_id || ':' || d.checkout_id
                              FROM public.disputes d WHERE d.status = 'OPEN'))$sql$, v_part);
            GET DIAGNOSTICS v_rows = ROW_COUNT;
            p_events := p_events + v_rows;

            -- an end kept here, with several shards on the home one, for a
            -- dispute on another (migration 126): nothing here its own;
            -- pending and noted waiting, so that the home sweeper forwards
            -- it however old to the shard that owns its payment
            -- (pay_inbox_homeless); not one whose dispute's withdrawal is
            -- kept here too, which the owner would not see; the disputes
            -- and the withdrawals hashed as above
            EXECUTE format($sql$
                UPDATE public.%I pe
                   SET state = 'pending', applied_at = NULL,
                       forward_tried_at = NULL, forward_waiting_at = now()
                 WHERE pe.state = 'applied' AND pe.kind = 'IGNORED'
                   AND pe.type IN ('charge.dispute.closed', 'ISSUER_RESPONSE_TIMEFRAME_EXPIRED')
                   AND pe.merchant_id IS NULL
                   AND ((pe.type = 'charge.dispute.closed'
                         AND (coalesce(pe.payment_ref, '') <> '' OR coalesce(pe.object_ref, '') <> ''))
                        OR coalesce(pe.reference, '') ~ '^[A-Za-z0-9_-]{1,64}:[A-Za-z0-9_-]{1,64}$')
                   AND NOT EXISTS (SELECT 1 FROM public.disputes d
                                    WHERE d.psp = pe.psp AND d.psp_dispute_ref = pe.object_ref)
                   AND (pe.psp, coalesce(pe.reference, '')) NOT IN
                       (SELECT d.psp, d.merchant_id || ':' || d.checkout_id FROM public.disputes d)
                   AND NOT EXISTS (SELECT 1 FROM public.psp_payments pp
                                    WHERE pp.psp = pe.psp AND pp.payment_ref = pe.payment_ref)
                   AND NOT EXISTS (SELECT 1 FROM public.merchants m
                                    WHERE m.merchant_id = split_part(pe.reference, ':', 1))
                   AND (coalesce(pe.object_ref, '') = ''
                        OR (pe.psp, pe.object_ref) NOT IN
                           (SELECT w.psp, w.object_ref FROM public.psp_events w
                             WHERE w.type IN ('charge.dispute.funds_withdrawn', 'CHARGEBACK')
                               AND w.object_ref IS NOT NULL))$sql$, v_part);
            GET DIAGNOSTICS v_rows = ROW_COUNT;
            p_events := p_events + v_rows;
        END IF;
        DELETE FROM public.inquiry_ends_unread WHERE partition = v_part;
        p_partitions := p_partitions + 1;
        COMMIT;
    END LOOP;
END
$procedure$;
REVOKE ALL ON PROCEDURE inquiry_ends_applied_again(INOUT p_events bigint, INOUT p_partitions bigint) FROM PUBLIC;
