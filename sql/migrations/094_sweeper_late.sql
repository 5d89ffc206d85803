-- Open sessions that became ones for the sweeper after its walk passed
-- them.  A round walks the open sessions from where the last one stopped
-- (sweeper_lease.walk_from, .alert_from, 093), so a session created before
-- that mark is never walked again.  Three kinds become due only later:
--   - its PSP token stored long after its claim (a claim resumed by the
--     shop's retry, an approved review registered at its PSP): asked about
--     only from then on;
--   - a checkout held for review and approved: EXECUTING, and so one to
--     alert past alert=, only from then on;
--   - a PSP added to the sweeper's list.
-- A round that walked to the end with fewer than its batch read every
-- candidate and found the first two; in a busy shard no round does, and
-- they waited, past alert= counted and not logged.  The first two are
-- recorded here as they happen (checkouts_sweep_late, in the transaction
-- that made them due: no round can miss one that commits after it), and
-- each round takes them first; the third starts the walk again from the
-- oldest (the lists below).
CREATE TABLE IF NOT EXISTS sweeper_late (
    merchant_id  text NOT NULL,
    checkout_id  text NOT NULL,
    ask          boolean NOT NULL,
    alert        boolean NOT NULL,
    since        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, checkout_id),
    FOREIGN KEY (merchant_id, checkout_id) REFERENCES checkouts (merchant_id, checkout_id)
);

COMMENT ON TABLE sweeper_late IS
    'Open sessions that became ones to ask about (ask) or to alert about (alert) after a sweeper round''s walk had passed them (checkouts_sweep_late); rounds take them first and delete them once done or no longer open';

-- The PSP lists the last rounds walked for: a round whose list holds a PSP
-- the last one's did not walks again from the oldest.
ALTER TABLE sweeper_lease ADD COLUMN IF NOT EXISTS walk_psps text[];
ALTER TABLE sweeper_lease ADD COLUMN IF NOT EXISTS walk_payment_psps text[];
ALTER TABLE sweeper_lease ADD COLUMN IF NOT EXISTS alert_psps text[];

COMMENT ON COLUMN sweeper_lease.walk_psps IS
    'pay_sweeper_due: the p_psps of the round that set walk_from; a round with a PSP not in it walks from the oldest';
COMMENT ON COLUMN sweeper_lease.walk_payment_psps IS
    'pay_sweeper_due: the p_payment_psps of the round that set walk_from; as walk_psps';
COMMENT ON COLUMN sweeper_lease.alert_psps IS
    'pay_sweeper_overdue: the p_psps of the round that set alert_from; as walk_psps';
