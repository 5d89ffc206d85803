-- Where a sweeper round's walk of the open sessions resumes.  A round
-- (pay_sweeper_due) takes the EXECUTING checkouts never asked about, oldest
-- first, from the index of open sessions (checkouts_executing_since).  It
-- walked that index from its oldest entry, past every session already
-- asked about and still open, to reach the ones never asked: with the
-- oldest 299,000 of 300,000 open sessions asked, 0.6 s a round, and in
-- proportion beyond (hour-long sessions at a thousand registrations a
-- second keep millions open).  The round now starts from the creation time
-- it recorded here: every open session created before it was asked about,
-- or was not one this sweeper could ask about then.
ALTER TABLE sweeper_lease ADD COLUMN IF NOT EXISTS walk_from timestamptz;

COMMENT ON COLUMN sweeper_lease.walk_from IS
    'pay_sweeper_due: the creation time from which the next round walks the open sessions for those never asked about; NULL: from the oldest';

-- The first round after this migration starts at the oldest open session
-- never asked about (of any PSP: a round passes over the others), not at
-- the oldest open one: one read of the open sessions here, rather than
-- rounds that each walk 10,000 of those asked about and ask none until
-- they reach it.  Five minutes back at the latest: a registration that
-- began before this read and commits after it is walked too.
UPDATE sweeper_lease l
   SET walk_from = least(
           (SELECT min(c.created_at)
              FROM checkouts c
              LEFT JOIN checkout_sweeps s
                ON s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
             WHERE c.status = 'EXECUTING'
               AND s.last_at IS NULL),
           now() - interval '5 minutes')
 WHERE l.id = 1 AND l.walk_from IS NULL;
