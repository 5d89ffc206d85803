-- Authorize now, capture later.  A checkout registered with
-- "capture": "manual" is only authorized by the shopper's payment: the PSP
-- holds the money on the card, and its authorization webhook moves the
-- checkout and its orders EXECUTING -> AUTHORIZED.  Nothing is booked for
-- a hold (payment_orders_booked_iff_success already says so: ledger and
-- wallet are updated for SUCCESS only).
--

ALTER TYPE pay_status ADD VALUE IF NOT EXISTS 'AUTHORIZED' AFTER 'EXECUTING';

-- checkouts and payment_orders keep their rules in their *_row_checks()
-- functions (one CHECK prepared per statement on a busy table), whose
-- signatures a migration cannot change without creating a function: the
-- new columns' rules are their writers' (pay_claim refuses any other
-- capture method; capture_event_apply never books a capture beyond the
-- authorized amount), and the captures table keeps its own.
ALTER TABLE checkouts ADD COLUMN IF NOT EXISTS capture_method text NOT NULL
    DEFAULT 'automatic';

COMMENT ON COLUMN checkouts.capture_method IS
    'automatic: the PSP captures with the payment; manual: the payment is an authorization (a hold), captured or released later';

-- checkout.authorized beside checkout.succeeded and checkout.failed: the
-- notification trigger is made anew, with AUTHORIZED in its WHEN, by its
-- function's file (sql/functions/checkouts_notify.sql), applied after the
-- migrations; a constraint trigger cannot be replaced, so it goes here.
DROP TRIGGER IF EXISTS checkouts_notify ON checkouts;

-- What a manual-capture order has captured so far (NULL: an automatic
-- order, captured whole with its payment).  Captured never exceeds what
-- was authorized, the order's amount.
ALTER TABLE payment_orders ADD COLUMN IF NOT EXISTS amount_captured bigint;

COMMENT ON COLUMN payment_orders.amount_captured IS
    'manual capture: the part captured so far (at most amount, the authorized); NULL for an automatic order';

-- The authorization's end: released (voided, or by the PSP) or expired;
-- no capture after it.
ALTER TABLE checkouts ADD COLUMN IF NOT EXISTS hold_closed_at timestamptz;

COMMENT ON COLUMN checkouts.hold_closed_at IS
    'manual capture: when the rest of the authorization was released (void, the PSP''s final capture, expiry); NULL while it may still be captured';

-- A capture or a void of a manual-capture order, registered with the PSP
-- under its own nonce "<merchant>:<capture_id>" as refunds are, settled by
-- the PSP's webhook.  Only a SUCCEEDED capture is booked.
CREATE TABLE IF NOT EXISTS captures (
    merchant_id       text NOT NULL,
    capture_id        text NOT NULL,
    kind              text NOT NULL,
    checkout_id       text NOT NULL,
    payment_order_id  text NOT NULL,
    psp               text NOT NULL,
    nonce             text NOT NULL,
    amount            bigint NOT NULL,
    currency          text NOT NULL,
    final             boolean NOT NULL,
    status            text NOT NULL,
    psp_ref           text,
    commission_part   bigint,
    failure           text,
    metadata          jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, capture_id),
    FOREIGN KEY (merchant_id, payment_order_id)
        REFERENCES payment_orders (merchant_id, payment_order_id),
    CONSTRAINT captures_kind CHECK (kind IN ('capture', 'void')),
    CONSTRAINT captures_id_format
        CHECK (capture_id ~ '^(cp|vd)_[0-9a-f]{24}$'
               AND (kind = 'capture') = (capture_id LIKE 'cp\_%')),
    CONSTRAINT captures_nonce CHECK (nonce = merchant_id || ':' || capture_id),
    CONSTRAINT captures_amount CHECK (amount > 0),
    CONSTRAINT captures_currency CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT captures_status CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED')),
    CONSTRAINT captures_psp_ref CHECK (length(psp_ref) BETWEEN 1 AND 128),
    CONSTRAINT captures_booked_iff_captured
        CHECK ((kind = 'capture' AND status = 'SUCCEEDED') = (commission_part IS NOT NULL)),
    CONSTRAINT captures_commission_part CHECK (commission_part >= 0 AND commission_part <= amount),
    CONSTRAINT captures_failure CHECK (length(failure) <= 1000),
    CONSTRAINT captures_metadata_object CHECK (jsonb_typeof(metadata) = 'object')
);

CREATE INDEX IF NOT EXISTS captures_order
    ON captures (merchant_id, payment_order_id);
CREATE INDEX IF NOT EXISTS captures_checkout
    ON captures (merchant_id, checkout_id);

-- a capture moves PENDING -> SUCCEEDED | FAILED once, and is never
-- deleted: the trigger captures_forward, in its function's file
-- (sql/functions/money_status_forward.sql)

COMMENT ON TABLE captures IS
    'captures and voids of manual-capture orders: each a PSP call under its own nonce, settled by the PSP''s webhook; a SUCCEEDED capture is booked (commission_part), nothing else is';

-- why a manual-capture checkout failed: the merchant released the whole
-- authorization, or it expired before anything was captured
ALTER TYPE pay_failure_code ADD VALUE IF NOT EXISTS 'voided';
ALTER TYPE pay_failure_code ADD VALUE IF NOT EXISTS 'authorization_expired';

-- Authorizations expire at the card network (the dialect table's
-- auth_window): the sweeper warns before, and releases one that expired
-- (never booked).  When it was authorized, and when its warning went out.
ALTER TABLE checkouts ADD COLUMN IF NOT EXISTS authorized_at timestamptz;
ALTER TABLE checkouts ADD COLUMN IF NOT EXISTS hold_warned_at timestamptz;

CREATE INDEX IF NOT EXISTS checkouts_holds_open
    ON checkouts (authorized_at)
 WHERE authorized_at IS NOT NULL AND hold_closed_at IS NULL;

COMMENT ON COLUMN checkouts.authorized_at IS
    'manual capture: when the PSP''s authorization came (NULL: none)';
COMMENT ON COLUMN checkouts.hold_warned_at IS
    'manual capture: when the sweeper warned that the authorization expires soon';
