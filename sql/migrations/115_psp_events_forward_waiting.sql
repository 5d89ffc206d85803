-- An event the home shard keeps for want of an owner waits there, pending,
-- for as long as a shard does not answer the home sweeper's look-up of its
-- owner: the shard that owns it may be that one.  forward_waiting_at: when
-- a look-up last found a shard not answering (pay_inbox_waiting).  While
-- that is less than the sweeper's unmatched= ago, the event is not
-- unmatched however old (pay_inbox_retry leaves it to the home sweeper,
-- pay_inbox_homeless still takes it), so it is forwarded once its shard is
-- back, however long that shard was down.
--
-- Safe while gateways run: a nullable column without a default (no
-- rewrite, no scan), its ALTER waiting at most 5 s for its lock.
SET LOCAL lock_timeout = '5s';

ALTER TABLE psp_events ADD COLUMN IF NOT EXISTS forward_waiting_at timestamptz;

COMMENT ON COLUMN psp_events.forward_waiting_at IS
    'the home shard''s last try to find the event''s owning shard at which some shard did not answer (NULL: none did not)';
