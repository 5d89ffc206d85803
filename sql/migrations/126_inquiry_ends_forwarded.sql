-- Inquiry ends an earlier release kept on the home shard for a dispute on
-- another shard.  Those releases read an inquiry's end (Stripe's
-- charge.dispute.closed with warning_closed; Adyen's
-- ISSUER_RESPONSE_TIMEFRAME_EXPIRED) as IGNORED, news about a dispute that
-- moves nothing: with several shards, kept on the home shard and recorded
-- there with no merchant, never located.  The dispute they opened for the
-- inquiry's first news (located by its payment) lives on its merchant's
-- shard, OPEN for good: migration 123 finds only ends kept on the
-- dispute's own shard, and such an end is long past the age at which the
-- home sweeper still forwards an event (unmatched=).
--
-- Here such ends (applied, IGNORED, recorded with no merchant, nothing of
-- theirs here: no dispute, payment or nonce's merchant, so not 123's)
-- are made pending for forwarding, as pay_inbox_waiting notes an event
-- whose owner did not answer: forward_waiting_at now, so that the home
-- sweeper locates each on the other shards at its next round, however old
-- (pay_inbox_homeless), keeps it on the shard that owns its payment or
-- dispute (pay_event_keep: applied there once, by this release's
-- functions, which give back a dispute still held for the inquiry,
-- dispute_inquiry_closed) and marks it forwarded here.  One no shard owns
-- is applied again here after unmatched= (pay_inbox_retry): 'duplicate',
-- applied as before.  Not one whose withdrawal (Stripe's
-- charge.dispute.funds_withdrawn, Adyen's CHARGEBACK, which earlier
-- releases also kept here) is kept here: the PSP took that money, and the
-- shard that owns the dispute would not see that it did.
-- payments-events replay of such an end at home does the same
-- (pay_inbox_replay, by pay_inbox_inquiry_end_elsewhere: this query's
-- conditions, read in the tables pay_event_locate reads for such an end,
-- since this release's functions come after its migrations).
-- doc/OPERATIONS.md, "Upgrading".
--
-- Run on every shard (a shard not the home keeps none: nothing changes);
-- reads the inbox (psp_events, the months it keeps) whole twice, for the
-- ends and for the withdrawals, with no lock that waits for the webhooks
-- kept meanwhile; writes only those rows.
SET LOCAL lock_timeout = '5s';

UPDATE psp_events pe
   SET state = 'pending', applied_at = NULL, forward_tried_at = NULL,
       forward_waiting_at = now()
 WHERE pe.state = 'applied' AND pe.kind = 'IGNORED'
   AND pe.type IN ('charge.dispute.closed', 'ISSUER_RESPONSE_TIMEFRAME_EXPIRED')
   AND pe.merchant_id IS NULL
   -- something another shard finds it by: Stripe's payment or dispute,
   -- Adyen's our nonce (its object is its own pspReference)
   AND ((pe.type = 'charge.dispute.closed'
         AND (coalesce(pe.payment_ref, '') <> '' OR coalesce(pe.object_ref, '') <> ''))
        OR coalesce(pe.reference, '') ~ '^[A-Za-z0-9_-]{1,64}:[A-Za-z0-9_-]{1,64}$')
   AND NOT EXISTS (SELECT 1 FROM disputes d
                    WHERE d.psp = pe.psp
                      AND (d.psp_dispute_ref = pe.object_ref
                           OR d.merchant_id || ':' || d.checkout_id = pe.reference))
   AND NOT EXISTS (SELECT 1 FROM psp_payments pp
                    WHERE pp.psp = pe.psp AND pp.payment_ref = pe.payment_ref)
   AND NOT EXISTS (SELECT 1 FROM merchants m
                    WHERE m.merchant_id = split_part(pe.reference, ':', 1))
   AND NOT EXISTS (SELECT 1 FROM psp_events w
                    WHERE w.psp = pe.psp AND w.object_ref = pe.object_ref
                      AND w.type IN ('charge.dispute.funds_withdrawn', 'CHARGEBACK'));
