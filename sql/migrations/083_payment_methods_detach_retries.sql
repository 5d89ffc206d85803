-- A detached method whose PSP has not confirmed the detach (psp_detached_at
-- NULL) is sent its PSP's detach again by the sweeper, in the background,
-- until the PSP confirms: psp_detach_tries counts the sends that did not
-- confirm (the sweeper's), psp_detach_tried_at is
-- the last one (the sweeper waits its retry= after it).
ALTER TABLE payment_methods ADD COLUMN IF NOT EXISTS psp_detach_tries integer NOT NULL DEFAULT 0;
ALTER TABLE payment_methods ADD COLUMN IF NOT EXISTS psp_detach_tried_at timestamptz;

ALTER TABLE payment_methods DROP CONSTRAINT IF EXISTS payment_methods_psp_detach_tries;
ALTER TABLE payment_methods ADD CONSTRAINT payment_methods_psp_detach_tries
    CHECK (psp_detach_tries >= 0);

-- the sweeper's look-up: the unconfirmed detaches, oldest first
CREATE INDEX IF NOT EXISTS payment_methods_psp_detach_due
    ON payment_methods (psp, coalesce(psp_detach_tried_at, detached_at))
    WHERE status = 'detached' AND psp_detached_at IS NULL;

COMMENT ON COLUMN payment_methods.psp_detach_tries IS
    'the sweeper''s sends of the PSP''s detach that it did not confirm';
COMMENT ON COLUMN payment_methods.psp_detach_tried_at IS
    'the last send of the PSP''s detach that it did not confirm; NULL: none yet';
