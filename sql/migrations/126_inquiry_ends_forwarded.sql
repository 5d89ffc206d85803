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
-- Such ends (applied, IGNORED, recorded with no merchant, nothing of
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
-- Finding them reads the inbox whole, as 123's do, so not in the
-- upgrade's transaction either: payments-migrate reads the months listed
-- in inquiry_ends_unread once the upgrade has committed, a transaction
-- each, and inquiry_ends_applied_again makes both 123's ends and these
-- pending again (sql/functions/inquiry_ends_applied_again.sql).  This
-- migration lists the months again, for a database whose 123 read them
-- before this one came (making 123's ends pending again is harmless: an
-- end applied again by this release's functions gives back a dispute
-- once).  Run on every shard (a shard not the home keeps none).
CREATE TABLE IF NOT EXISTS inquiry_ends_unread (
    partition   text PRIMARY KEY
);
REVOKE ALL ON inquiry_ends_unread FROM PUBLIC;

INSERT INTO inquiry_ends_unread (partition)
SELECT c.relname FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'psp_events'::regclass
ON CONFLICT DO NOTHING;
