CREATE OR REPLACE FUNCTION checkouts_notify()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    -- money the PSP took after the checkout had failed here (its signed
    -- success after an expiry, a decline or the sweeper's inference) has a
    -- type of its own: the shop was told it failed
    v_type  text := CASE WHEN NEW.status = 'SUCCESS' AND OLD.status = 'FAILED'
                         THEN 'checkout.paid_after_failure'
                         WHEN NEW.status = 'SUCCESS' THEN 'checkout.succeeded'
                         -- a hold: the money is not the merchant's yet,
                         -- held all the same after a cancel (the PSP's
                         -- authorization came after it) for the shop to
                         -- capture or release
                         WHEN NEW.status = 'AUTHORIZED' THEN 'checkout.authorized'
                         -- the merchant's own cancel (POST .../cancel)
                         WHEN NEW.failure_code::text = 'canceled'
                         THEN 'checkout.canceled'
                         ELSE 'checkout.failed' END;
    -- checkout.authorized tells the hold as its authorization made it:
    -- every order of the checkout AUTHORIZED, nothing captured (both
    -- paths that hold a checkout hold all its orders, pay_webhook_apply_core
    -- and capture_event_apply).  Its orders are not read as they stand at
    -- commit: a capture made at the PSP's dashboard whose event comes
    -- before the authorization's holds the checkout and captures it in
    -- one transaction, and this notification would carry the orders
    -- SUCCESS and captured; the capture is told by the checkout.succeeded
    -- that follows it (the next sequence), as when the events come in order
    v_hold  boolean := NEW.status = 'AUTHORIZED';
BEGIN
    -- a status that became final or AUTHORIZED: the trigger has no WHEN,
    -- which PostgreSQL would read back and prepare at every statement
    -- that names the status (bench/RESULTS.md); every status move but one
    -- to REVIEW and back is such a one
    IF NOT (NEW.status IN ('SUCCESS', 'FAILED', 'AUTHORIZED') AND OLD.status <> NEW.status) THEN
        RETURN NULL;
    END IF;
    -- paid: on the due list of the risk check after the payment
    -- (pay_risk_after_due) when the check asked about it before its PSP
    -- and not yet after; here rather than in a trigger of its own, whose
    -- WHEN would be prepared at every statement that names the status.
    -- The INSERT only for a checkout the check asked about: one that
    -- inserts nothing still opens the table and its indexes
    -- A setup (amount 0, a method saved, no money) is not listed: the
    -- check after the payment is about money taken
    IF NEW.status = 'SUCCESS' AND NEW.amount_total > 0
       AND EXISTS (SELECT 1 FROM checkout_risk rk
                    WHERE rk.merchant_id = NEW.merchant_id
                      AND rk.checkout_id = NEW.checkout_id) THEN
        INSERT INTO checkout_risk_after_due (merchant_id, checkout_id, decided_at)
        SELECT rk.merchant_id, rk.checkout_id, rk.decided_at
          FROM checkout_risk rk
         WHERE rk.merchant_id = NEW.merchant_id
           AND rk.checkout_id = NEW.checkout_id
           AND NOT EXISTS (SELECT 1 FROM checkout_risk_after a
                            WHERE a.merchant_id = NEW.merchant_id
                              AND a.checkout_id = NEW.checkout_id)
        ON CONFLICT DO NOTHING;
    END IF;
    -- notify_enqueue's own test of the endpoints, before the payload is made
    PERFORM 1 FROM notify_endpoints e
     WHERE e.merchant_id = NEW.merchant_id
       AND (e.event_types = '{}' OR v_type = ANY (e.event_types))
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    PERFORM notify_enqueue(
        NEW.merchant_id, v_type, NEW.checkout_id, NEW.checkout_id,
        jsonb_build_object(
            'checkout_id', NEW.checkout_id,
            'status', NEW.status,
            'amount_total_minor', NEW.amount_total,
            'amount_total', money_decimal(NEW.amount_total, NEW.currency),
            'currency', NEW.currency,
            'metadata', NEW.metadata,
            'capture', NEW.capture_method,
            'payment_orders', coalesce((
                SELECT jsonb_agg(jsonb_build_object(
                           'payment_order_id', o.payment_order_id,
                           'status', CASE WHEN v_hold THEN 'AUTHORIZED'::pay_status
                                          ELSE o.status END,
                           'amount_minor', o.amount,
                           'amount', money_decimal(o.amount, o.currency),
                           'currency', o.currency)
                       || CASE WHEN NEW.capture_method = 'manual'
                               THEN jsonb_build_object(
                                        'amount_captured_minor', o.captured,
                                        'amount_captured',
                                        money_decimal(o.captured, o.currency))
                               ELSE '{}'::jsonb END
                       ORDER BY o.line_no)
                  FROM (SELECT po.*,
                               -- what is captured of the order: a manual
                               -- capture's part so far (a final capture of
                               -- part of it: that part, the rest released);
                               -- none recorded, all of a paid order (the
                               -- PSP captured it with the payment,
                               -- captured_for_manual), nothing of another;
                               -- nothing of a hold as it was made
                               CASE WHEN v_hold THEN 0
                                    ELSE coalesce(po.amount_captured,
                                                  CASE WHEN po.status = 'SUCCESS' THEN po.amount
                                                       ELSE 0 END)
                               END AS captured
                          FROM payment_orders po
                         WHERE po.merchant_id = NEW.merchant_id
                           AND po.checkout_id = NEW.checkout_id) o), '[]'::jsonb))
        -- a manual capture's checkout: what its orders captured, in all
        || CASE WHEN NEW.capture_method = 'manual' THEN (
               SELECT jsonb_build_object('amount_captured_minor', x.captured,
                                         'amount_captured',
                                         money_decimal(x.captured, NEW.currency))
                 FROM (SELECT CASE WHEN v_hold THEN 0
                                   ELSE coalesce(sum(coalesce(po.amount_captured,
                                                              CASE WHEN po.status = 'SUCCESS'
                                                                   THEN po.amount ELSE 0 END)), 0)
                              END::bigint AS captured
                         FROM payment_orders po
                        WHERE po.merchant_id = NEW.merchant_id
                          AND po.checkout_id = NEW.checkout_id) x)
                ELSE '{}'::jsonb END
        -- why it failed, on checkout.failed and checkout.canceled; the
        -- failure it came after, on checkout.paid_after_failure
        || CASE WHEN NEW.failure_code IS NULL THEN '{}'::jsonb
                WHEN NEW.status = 'FAILED'
                THEN jsonb_build_object('failure',
                         checkout_failure(NEW.failure_code, NEW.failure))
                WHEN OLD.status = 'FAILED'
                THEN jsonb_build_object('after_failure',
                         checkout_failure(NEW.failure_code, NEW.failure))
                ELSE '{}'::jsonb END);
    RETURN NULL;
END
$function$;
REVOKE ALL ON FUNCTION checkouts_notify() FROM PUBLIC;

-- The trigger that runs it at commit, for every change of a checkout's
-- status (the function keeps those that became final, or AUTHORIZED: a
-- manual capture's hold).  A constraint trigger
-- cannot be replaced: it is created when absent (a migration that changes
-- it drops it first).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                    WHERE tgrelid = 'public.checkouts'::regclass AND tgname = 'checkouts_notify') THEN
        CREATE CONSTRAINT TRIGGER checkouts_notify AFTER UPDATE OF status
            ON checkouts DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW
            EXECUTE FUNCTION checkouts_notify();
    END IF;
END
$$;
