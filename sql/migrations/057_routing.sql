-- Routing across PSPs (payments_route, doc/DESIGN.md "Routing"): the PSPs a
-- merchant may use (payments-merchant set-psps; NULL: any), and the record
-- of every PSP a routed checkout was bound to, in order, with why it moved
-- on.  A PSP appears once per checkout: it sees the nonce at most once.

ALTER TABLE merchants ADD COLUMN IF NOT EXISTS psps text[];

COMMENT ON COLUMN merchants.psps IS
    'the payments_psp names the merchant''s checkouts may use (payments-merchant set-psps); NULL: any';

CREATE TABLE IF NOT EXISTS checkout_routes (
    merchant_id  text NOT NULL,
    checkout_id  text NOT NULL,
    seq          integer NOT NULL,
    route        text NOT NULL,
    psp          text NOT NULL,
    moved_on     text,
    at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, checkout_id, seq),
    CONSTRAINT checkout_routes_psp_once UNIQUE (merchant_id, checkout_id, psp),
    CONSTRAINT checkout_routes_checkout FOREIGN KEY (merchant_id, checkout_id)
        REFERENCES checkouts (merchant_id, checkout_id) ON DELETE CASCADE,
    CONSTRAINT checkout_routes_seq CHECK (seq >= 1),
    CONSTRAINT checkout_routes_moved_on CHECK (moved_on IS NULL OR moved_on IN
        ('circuit_open', 'connect_refused', 'refused', 'throttled',
         'psp_5xx_nothing_made', 'psp_not_allowed'))
);

COMMENT ON TABLE checkout_routes IS
    'the PSPs a routed checkout was bound to, in order: moved_on says why it left one (an outcome proving no session was made); the row without it is the PSP that holds or may hold the session (checkouts.psp)';

REVOKE ALL ON checkout_routes FROM PUBLIC;
