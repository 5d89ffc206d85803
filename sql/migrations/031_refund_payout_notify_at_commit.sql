-- A refund's and a pay-out's notifications at commit too, as a checkout's
-- (013) and a dispute's (029) are: every writer now takes a checkout's (or
-- a merchant's) notify_sequences row last, after every other lock.
--
-- 029 deferred disputes_notify, so that a dispute no longer took that row
-- before the orders a refund locks first.  But a dispute also takes its
-- checkout's audit chain head (pay_event_apply's audit_append) before its
-- commit, while refunds_notify, run at once, took the sequence row before
-- the refund's own audit_append took that same head.  So a refund refused
-- by the PSP (pay_refund_finish's refusal, which locks no order), or a
-- refund event of an order the dispute has no part of, still made a cycle
-- with a chargeback of the same checkout: the refund held the sequence row
-- and waited for the chain head; the dispute held the head and, at its
-- commit, waited for the row.  PostgreSQL aborted one of the two with
-- 40P01 and its PSP had to send the webhook again.
--
-- Deferred, each event keeps its own row version (a refund inserted and
-- decided in one transaction still notifies its final state once, as the
-- WHEN clause allows), and the functions are already SECURITY DEFINER, as
-- a deferred trigger's must be.  payouts_notify takes the merchant's row
-- (no checkout); deferring it keeps the one rule for every writer.

DROP TRIGGER IF EXISTS refunds_notify ON refunds;
CREATE CONSTRAINT TRIGGER refunds_notify
    AFTER INSERT OR UPDATE OF status ON refunds
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (NEW.status IN ('SUCCEEDED', 'FAILED'))
    EXECUTE FUNCTION refunds_notify();

DROP TRIGGER IF EXISTS payouts_notify ON payouts;
CREATE CONSTRAINT TRIGGER payouts_notify
    AFTER INSERT OR UPDATE OF status ON payouts
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (NEW.status IN ('PAID', 'FAILED'))
    EXECUTE FUNCTION payouts_notify();
