-- A checkout's cancel (POST /v1/checkouts/{id}/cancel): the shop stops a
-- hosted session before it is paid.  The cancel's claim notes when it was
-- asked for, until the cancel is decided, so that the session's end,
-- however it reaches the gateway (the cancel's own answer, or the PSP's
-- expiry webhook that the expire call causes), fails the checkout as
-- `canceled`; a payment the PSP took first stands.  `canceled` is the
-- shop's doing, `cancelled` the PSP's.

ALTER TYPE pay_failure_code ADD VALUE IF NOT EXISTS 'canceled';

ALTER TABLE checkouts ADD COLUMN IF NOT EXISTS cancel_requested_at timestamptz;

COMMENT ON COLUMN checkouts.cancel_requested_at IS
    'when the merchant asked to cancel it (POST /v1/checkouts/{id}/cancel), while that cancel is undecided; NULL: none, or decided (canceled, or the PSP answered that it was paid)';
COMMENT ON COLUMN checkouts.failure_code IS
    'why the checkout failed: declined, expired, cancelled (at the PSP), canceled (by the merchant), registration_refused (NULL: it never failed)';
