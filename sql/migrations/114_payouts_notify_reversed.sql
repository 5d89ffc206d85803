-- payouts_notify also runs when a paid pay-out's amount_reversed moves (a
-- partial reversal, notified as payout.reversed): its trigger is made again
-- by sql/functions/payouts_notify.sql after this, on UPDATE OF status,
-- amount_reversed (a constraint trigger cannot be replaced in place).
SET LOCAL lock_timeout = '5s';

DROP TRIGGER IF EXISTS payouts_notify ON payouts;
