-- The risk check after the payment (payments_risk after_payment=on,
-- doc/RISK.md) gets a due list: the paid checkouts the check asked about
-- before their PSP and not yet after.  The sweeper's round
-- (pay_risk_after_due) walked every first check of the last week in its
-- order (checkout_risk_decided) and read each one's checkout and its
-- after-payment verdict, to pass over the unpaid and the already asked:
-- it read what a week of checkouts holds to take a batch, at every round,
-- and planned while the tables' statistics said they held no live row, it
-- read 8.1 million rows to take 50 of 4,000
-- (plans_background::the_risk_after_round_reads_what_is_due).
--
-- A row here is written when a checkout with a checkout_risk row becomes
-- SUCCESS (checkouts_notify, at the payment's commit) and deleted when its
-- after-payment verdict is recorded (pay_risk_after_record); pay_purge
-- deletes those past the round's horizon (a gateway with after_payment off
-- never takes them).
--
-- The paid checkouts of the last week that were not asked after yet are
-- listed here too.  The checkouts table is held off writes (SHARE) from
-- the list's read until the upgrade's commit, when checkouts_notify writes
-- the list: a payment committed meanwhile by a worker still running would
-- be on neither.  The lock is waited for at most 5 s (as 136's); past
-- that the migration fails, nothing of it applied, and is run again.
SET LOCAL lock_timeout = '5s';

CREATE TABLE IF NOT EXISTS checkout_risk_after_due (
    merchant_id    text        NOT NULL,
    checkout_id    text        NOT NULL,
    -- the first check's, which the round's horizon and order are of
    decided_at     timestamptz NOT NULL,
    PRIMARY KEY (merchant_id, checkout_id),
    FOREIGN KEY (merchant_id, checkout_id)
        REFERENCES checkout_risk (merchant_id, checkout_id) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS checkout_risk_after_due_decided
    ON checkout_risk_after_due (decided_at);

REVOKE ALL ON checkout_risk_after_due FROM PUBLIC;

COMMENT ON TABLE checkout_risk_after_due IS
    'the paid checkouts the risk check asked about before their PSP and not yet after (after_payment=on, doc/RISK.md): the sweeper''s round reads these alone';

LOCK TABLE checkouts IN SHARE MODE;

INSERT INTO checkout_risk_after_due (merchant_id, checkout_id, decided_at)
SELECT rk.merchant_id, rk.checkout_id, rk.decided_at
  FROM checkout_risk rk
  JOIN checkouts c ON c.merchant_id = rk.merchant_id
                  AND c.checkout_id = rk.checkout_id
 WHERE c.status = 'SUCCESS'
   AND rk.decided_at > now() - interval '7 days'
   AND NOT EXISTS (SELECT 1 FROM checkout_risk_after a
                    WHERE a.merchant_id = rk.merchant_id
                      AND a.checkout_id = rk.checkout_id)
ON CONFLICT DO NOTHING;
