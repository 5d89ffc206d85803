-- Why a checkout failed, as a shop reads it (doc/API.md, "failure"):
-- declined (the PSP says the payment failed), expired (the session's time
-- ran out), cancelled (the session was cancelled at the PSP) or
-- registration_refused (the PSP refused the checkout when it was
-- registered; its reason is in `failure`).  Set with the move to FAILED, by
-- the function that makes it, and kept when a payment arrives after it.

-- An enum rather than a CHECK: checkouts keeps its rules in
-- checkouts_row_checks, and a type costs nothing per statement.
CREATE TYPE pay_failure_code AS ENUM
    ('declined', 'expired', 'cancelled', 'registration_refused');

ALTER TABLE checkouts ADD COLUMN failure_code pay_failure_code;

COMMENT ON COLUMN checkouts.failure_code IS
    'why the checkout failed: declined, expired, cancelled, registration_refused (NULL: it never failed)';

-- the checkouts that failed before: a refusal at registration left its
-- reason; otherwise the type of the failure event on record says which
UPDATE checkouts c
   SET failure_code = (CASE
           WHEN c.failure IS NOT NULL THEN 'registration_refused'
           WHEN ev.type ILIKE '%expire%' THEN 'expired'
           WHEN ev.type ILIKE '%cancel%' THEN 'cancelled'
           ELSE 'declined' END)::pay_failure_code
  FROM checkouts c2
  LEFT JOIN LATERAL (
        SELECT we.type FROM webhook_events we
         WHERE we.merchant_id = c2.merchant_id AND we.checkout_id = c2.checkout_id
           AND we.kind = 'FAILED'
         ORDER BY we.received_at LIMIT 1) ev ON true
 WHERE c.merchant_id = c2.merchant_id AND c.checkout_id = c2.checkout_id
   AND c.failure_code IS NULL
   AND EXISTS (SELECT 1 FROM order_events oe
                WHERE oe.merchant_id = c.merchant_id AND oe.checkout_id = c.checkout_id
                  AND oe.to_status = 'FAILED');
