-- Notification sequences count per object (a checkout, each refund, each
-- dispute, each pay-out), keyed "<object>:<id>" (notify_enqueue).  The
-- counters kept so far were keyed by the checkout's id (its refunds and
-- disputes counted with it) or a pay-out's id: each becomes its object's,
-- so a checkout or pay-out notified again goes on from where it was.  A
-- refund or dispute notified again starts its own count.

UPDATE notify_sequences s
   SET subject = CASE WHEN EXISTS (SELECT 1 FROM payouts p
                                    WHERE p.merchant_id = s.merchant_id
                                      AND p.payout_id = s.subject)
                      THEN 'payout:' ELSE 'checkout:' END || s.subject
 WHERE s.subject NOT LIKE '%:%';

COMMENT ON COLUMN notify_sequences.subject IS
    '<object>:<id>, object one of checkout, refund, dispute, payout: what data.sequence counts';
