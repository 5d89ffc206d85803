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

-- The same for the alerts (pay_sweeper_overdue): a round alerts the
-- checkouts EXECUTING past alert= not alerted yet, oldest first, and
-- walked past every one alerted already to reach them: with sessions that
-- live up to a day, every abandoned one past alert=.
ALTER TABLE sweeper_lease ADD COLUMN IF NOT EXISTS alert_from timestamptz;

COMMENT ON COLUMN sweeper_lease.alert_from IS
    'pay_sweeper_overdue: the creation time from which the next round walks the checkouts past alert= for those not alerted yet; NULL: from the oldest';

-- The first rounds after this migration start at the oldest open session
-- never asked about, and at the oldest not alerted about (of any PSP: a
-- round passes over the others), not at the oldest open one: one read of
-- the open sessions here, rather than rounds that each walk 10,000 of
-- those done already and do none until they reach the first.  Five
-- minutes back at the latest: a registration that began before this read
-- and commits after it is walked too.
UPDATE sweeper_lease l
   SET walk_from = least(o.never_asked, now() - interval '5 minutes'),
       alert_from = least(o.never_alerted, now() - interval '5 minutes')
  FROM (SELECT min(c.created_at) FILTER (WHERE s.last_at IS NULL) AS never_asked,
               min(c.created_at) FILTER (WHERE s.alerted_at IS NULL) AS never_alerted
          FROM checkouts c
          LEFT JOIN checkout_sweeps s
            ON s.merchant_id = c.merchant_id AND s.checkout_id = c.checkout_id
         WHERE c.status = 'EXECUTING') o
 WHERE l.id = 1 AND l.walk_from IS NULL AND l.alert_from IS NULL;
