-- Disputes earlier releases opened for an inquiry, whose inquiry ended
-- before this upgrade.  Those releases read an inquiry's first news
-- (Stripe's charge.dispute.created with a warning_* status, Adyen's
-- NOTIFICATION_OF_CHARGEBACK) as the dispute opened and booked it
-- psp_clearing -> disputes, though the PSP withdrew nothing, and recorded
-- its end as ignored (Stripe's charge.dispute.closed with warning_closed,
-- Adyen's ISSUER_RESPONSE_TIMEFRAME_EXPIRED): the dispute stayed OPEN, its
-- sellers' balances short and its orders unrefundable, and no event will
-- come to close it.  This release gives such a dispute back when its
-- inquiry's end is applied (sql/functions/dispute_inquiry_closed.sql); so
-- the ends kept before (psp_events, IGNORED, applied) of a dispute still
-- OPEN here are made pending again, and the sweeper's next round applies
-- them by this release's functions (pay_inbox_retry): a dispute that holds
-- money its PSP never withdrew (dispute_inquiry_held) is released as a won
-- one, once, audited (dispute:inquiry_released) and notified
-- (dispute.won); any other is left as it is, the event 'duplicate'.  Being
-- recorded already (webhook_events), such an event is applied again, never
-- unmatched.  doc/OPERATIONS.md, "Upgrading".
--
-- Reads the inbox (psp_events, the months it keeps) whole once, with no
-- lock that waits for the webhooks kept meanwhile; writes only those rows.
SET LOCAL lock_timeout = '5s';

UPDATE psp_events pe
   SET state = 'pending', applied_at = NULL
 WHERE pe.state = 'applied' AND pe.kind = 'IGNORED'
   AND pe.type IN ('charge.dispute.closed', 'ISSUER_RESPONSE_TIMEFRAME_EXPIRED')
   AND EXISTS (SELECT 1 FROM disputes d
                WHERE d.psp = pe.psp AND d.status = 'OPEN'
                  AND (d.psp_dispute_ref = pe.object_ref
                       OR d.merchant_id || ':' || d.checkout_id = pe.reference));
