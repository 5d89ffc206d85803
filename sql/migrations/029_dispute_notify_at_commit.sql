-- A dispute's notification at commit, as a checkout's is (013): a deadlock
-- with a refund of one of its orders goes.
--
-- dispute_event_apply locks the checkout, writes the dispute (whose
-- disputes_notify trigger, run at once, took the checkout's row in
-- notify_sequences for a merchant with a subscribed endpoint), and only then
-- writes its parts and ledger rows, which take a key-share lock on each
-- order.  refund_event_apply locks the refunded order first and then, through
-- refunds_notify, that same notify_sequences row.  A chargeback opened (or
-- decided) while a refund of one of its checkout's orders was being applied
-- made each wait for the other: PostgreSQL broke the cycle by failing one of
-- the two webhooks (40P01), which its PSP had to deliver again.
--
-- Deferred to the commit, the dispute's notification takes the sequence row
-- after every lock dispute_event_apply takes, so the dispute waits for the
-- refund's order and holds nothing the refund needs.  Each event keeps its
-- own row version (an opened-and-lost dispute written in one transaction
-- still notifies dispute.opened, then dispute.lost), and the function is
-- already SECURITY DEFINER, as a deferred trigger's must be (it runs after
-- the gateway's function has returned, as the gateway's role).

DROP TRIGGER IF EXISTS disputes_notify ON disputes;
CREATE CONSTRAINT TRIGGER disputes_notify
    AFTER INSERT OR UPDATE OF status ON disputes
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    EXECUTE FUNCTION disputes_notify();
