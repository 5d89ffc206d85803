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
-- Finding those ends reads the inbox (psp_events, the months it keeps)
-- whole, and nothing indexes them: not in the upgrade's transaction, which
-- holds the locks of the migrations before this one meanwhile.  This one
-- only lists the inbox's partitions (the months kept now: an end applied
-- by the previous release's functions is in one of them); once the
-- upgrade has committed, payments-migrate reads them, one transaction
-- each, deleting each row as it goes
-- (sql/functions/inquiry_ends_applied_again.sql).  A run cut short goes
-- on where it stopped; the table empty, nothing is left to do.
CREATE TABLE inquiry_ends_unread (
    partition   text PRIMARY KEY
);
COMMENT ON TABLE inquiry_ends_unread IS 'The partitions of psp_events still to read for the inquiry ends kept before the upgrade to make pending again (inquiry_ends_applied_again, run by payments-migrate after the upgrade commits), one a row, deleted once read: empty once done.';
REVOKE ALL ON inquiry_ends_unread FROM PUBLIC;

INSERT INTO inquiry_ends_unread (partition)
SELECT c.relname FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'psp_events'::regclass;
