-- The token broker: a payment method the shopper saved on the PSP's
-- hosted page, charged later without the shopper (off-session).  The
-- PSP's reusable token is the PSP's, kept sealed at rest like the session
-- tokens (associated data "payment_method:<merchant>:<checkout>", the
-- checkout it was saved in) and found by its blind index; the merchant
-- only ever sees the gateway's own id, pm_ and 24 letters a-p (96 random
-- bits; no digits, so no id can ever look like a card number).  No card
-- data: brand, last four digits and expiry are what the PSP chose to
-- tell, for display.

CREATE TABLE IF NOT EXISTS payment_methods (
    merchant_id       text NOT NULL,
    method_id         text NOT NULL,
    customer          text NOT NULL,
    customer_ref      text NOT NULL,
    psp               text NOT NULL,
    psp_customer      text,
    token_sealed      text NOT NULL,
    token_index       text NOT NULL,
    usage             text NOT NULL,
    recurring         text NOT NULL,
    status            text NOT NULL DEFAULT 'active',
    brand             text,
    last4             text,
    exp_month         integer,
    exp_year          integer,
    checkout_id       text NOT NULL,
    event_id          text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    detached_at       timestamptz,
    PRIMARY KEY (merchant_id, method_id),
    -- what a charge's foreign key names: a saved method belongs to its
    -- merchant and to its PSP (no other PSP can charge its token)
    -- (the PSP first, and the token first below: a look-up by the
    -- primary key, or by this key, cannot start on the other one)
    CONSTRAINT payment_methods_psp_key UNIQUE (psp, method_id, merchant_id),
    -- one row per PSP token, one saved method per checkout
    CONSTRAINT payment_methods_token_key UNIQUE (token_index, psp),
    -- (the checkout first: a look-up by the method's key cannot start
    -- on it, and is planned on the primary key)
    CONSTRAINT payment_methods_checkout_key UNIQUE (checkout_id, merchant_id),
    CONSTRAINT payment_methods_checkout_fk FOREIGN KEY (merchant_id, checkout_id)
        REFERENCES checkouts (merchant_id, checkout_id),
    CONSTRAINT payment_methods_id CHECK (method_id ~ '^pm_[a-p]{24}$'),
    CONSTRAINT payment_methods_customer CHECK (customer ~ '^[A-Za-z0-9_.-]{1,64}$'),
    CONSTRAINT payment_methods_customer_ref CHECK (customer_ref ~ '^cu_[0-9a-f]{24}$'),
    -- sealed text, never a bare token; the index is a blind index's hex
    CONSTRAINT payment_methods_sealed CHECK (token_sealed LIKE 'v1.%'),
    CONSTRAINT payment_methods_index CHECK (token_index ~ '^[0-9a-f]{64}$'),
    CONSTRAINT payment_methods_usage CHECK (usage IN ('off_session', 'on_session')),
    CONSTRAINT payment_methods_recurring CHECK (recurring IN
        ('CardOnFile', 'Subscription', 'UnscheduledCardOnFile')),
    CONSTRAINT payment_methods_status CHECK (status IN ('active', 'detached')),
    CONSTRAINT payment_methods_detached CHECK ((status = 'detached') = (detached_at IS NOT NULL)),
    CONSTRAINT payment_methods_display CHECK (
        (last4 IS NULL OR last4 ~ '^[0-9]{4}$')
        AND (brand IS NULL OR brand ~ '^[a-z0-9_ -]{1,32}$')
        AND (exp_month IS NULL OR exp_month BETWEEN 1 AND 12)
        AND (exp_year IS NULL OR exp_year BETWEEN 2000 AND 2200)),
    CONSTRAINT payment_methods_psp_customer CHECK (
        psp_customer IS NULL OR psp_customer ~ '^[A-Za-z0-9_-]{1,128}$')
);

COMMENT ON TABLE payment_methods IS
    'Payment methods shoppers saved at a PSP (the token broker): the PSP''s reusable token sealed, the gateway''s pm_ id, the shop''s customer; charged off-session by checkouts naming them';
COMMENT ON COLUMN payment_methods.customer IS
    'the shop''s id for the shopper, as it sent it; never sent to a PSP';
COMMENT ON COLUMN payment_methods.customer_ref IS
    'the gateway''s reference for (merchant, customer), sent to the PSP instead (Adyen shopperReference): an HMAC, never personal data';
COMMENT ON COLUMN payment_methods.token_sealed IS
    'the PSP''s reusable token (Stripe pm_, Adyen storedPaymentMethodId, generic), sealed: associated data "payment_method:<merchant>:<checkout_id>"';
COMMENT ON COLUMN payment_methods.recurring IS
    'Adyen''s recurringProcessingModel for its charges: CardOnFile (on_session), Subscription or UnscheduledCardOnFile';

-- A customer's methods, newest first: the list's one index scan.  It
-- leads with the customer, the merchant second: a look-up by the key
-- (merchant, method), a charge's foreign-key check among them, cannot
-- start on it, and is planned on the key's own unique index.
CREATE INDEX IF NOT EXISTS payment_methods_customer_page
    ON payment_methods (customer, merchant_id, created_at DESC, method_id DESC);

-- A checkout that saves its method ({"customer", "customer_ref", "usage",
-- "recurring"}), or one that charges a saved method off-session; never
-- both.  The charge's method is the merchant's and its PSP's: the foreign
-- key says so for every row.  The shape of save_method is its one
-- writer's rule (pay_claim refuses any other), as checkouts keep their
-- CHECK rules in checkouts_row_checks() alone (one CHECK prepared per
-- statement on a busy table).
ALTER TABLE checkouts ADD COLUMN IF NOT EXISTS save_method jsonb;
ALTER TABLE checkouts ADD COLUMN IF NOT EXISTS payment_method_id text;

ALTER TABLE checkouts DROP CONSTRAINT IF EXISTS checkouts_payment_method_fk;
ALTER TABLE checkouts ADD CONSTRAINT checkouts_payment_method_fk
    FOREIGN KEY (merchant_id, payment_method_id, psp)
    REFERENCES payment_methods (merchant_id, method_id, psp);

COMMENT ON COLUMN checkouts.save_method IS
    'the shop asked to save the shopper''s method in this checkout: {customer, customer_ref, usage, recurring}; NULL otherwise';
COMMENT ON COLUMN checkouts.payment_method_id IS
    'an off-session charge of this saved method (no hosted page); NULL for a checkout the shopper pays';

CREATE INDEX IF NOT EXISTS checkouts_payment_method
    ON checkouts (merchant_id, payment_method_id)
    WHERE payment_method_id IS NOT NULL;

-- The PSP asked for the shopper to authenticate an off-session charge.
ALTER TYPE pay_failure_code ADD VALUE IF NOT EXISTS 'authentication_required';
