-- A look-up by a table's key (merchant, id) must be planned on the key's
-- own unique index.  Secondary indexes that also start with the merchant
-- could serve it, reading every entry of the merchant, and a plan made
-- while the table was nearly empty (a connection's first statements, a
-- foreign-key check) costs them alike and may keep that choice for the
-- connection's life, each look-up then growing with the merchant's rows.
-- Seen by tests/e2e/test_plans.c on captures, refunds, dispute parts,
-- notifications and checkout routes.  So:
-- - the indexes that find a checkout's or an order's rows lead with that
--   checkout or order, the merchant second: an equality on both still
--   reads one entry, and a look-up by the key cannot start there;
-- - the notifications' list index is partial on created_at IS NOT NULL
--   (every row), as the other lists' are: only the list page, which says
--   so, can use it;
-- - one PSP per checkout's route leads with the PSP: it is there for its
--   uniqueness, and the route's rows are read through the primary key.
-- Each index is built anew, reading its table once.

DROP INDEX IF EXISTS captures_checkout;
CREATE INDEX captures_checkout ON captures (checkout_id, merchant_id);
DROP INDEX IF EXISTS captures_order;
CREATE INDEX captures_order ON captures (payment_order_id, merchant_id);

DROP INDEX IF EXISTS refunds_order;
CREATE INDEX refunds_order ON refunds (payment_order_id, merchant_id);

-- (a dispute's part is one per order: with every key column in it, the
-- order's index is as unique as the key, either serves the key's look-up)
DROP INDEX IF EXISTS dispute_parts_order;
CREATE UNIQUE INDEX dispute_parts_order
    ON dispute_parts (payment_order_id, merchant_id, dispute_id);

DROP INDEX IF EXISTS notifications_list;
CREATE INDEX notifications_list
    ON notifications (merchant_id, created_at DESC) WHERE created_at IS NOT NULL;

ALTER TABLE checkout_routes
    DROP CONSTRAINT checkout_routes_psp_once,
    ADD CONSTRAINT checkout_routes_psp_once UNIQUE (psp, merchant_id, checkout_id);
