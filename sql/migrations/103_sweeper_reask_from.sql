-- Where a sweeper round's second walk resumes: the one that asks again
-- about open sessions asked about before.  A round takes the sessions
-- never asked about first, from walk_from on (093), and in a busy shard,
-- where every round finds a batch of those, it never came to the ones it
-- had asked about: a session the shopper paid after its first look-up,
-- whose webhook was lost, stayed EXECUTING until an alert and
-- reconciliation.  A quarter of each round's batch now goes to the open
-- sessions created before walk_from and asked about longest enough ago
-- (pay_sweeper_due), walked in creation order from this mark, which goes
-- round from the oldest.  NULL: from the oldest.  Adding the column reads
-- no row.
SET LOCAL lock_timeout = '5s';

ALTER TABLE sweeper_lease ADD COLUMN IF NOT EXISTS reask_from timestamptz;

COMMENT ON COLUMN sweeper_lease.reask_from IS
    'pay_sweeper_due: the creation time from which the next busy round walks the open sessions behind walk_from for those to ask about again; NULL: from the oldest';
