-- Whether any attempt of a checkout's registration may have reached the
-- PSP it is bound to (psp_contact), so that a registration that no
-- attempt can have reached, resumed past its PSP's key window, is sent
-- then (the PSP never saw its Idempotency-Key: the request is the first
-- under it) instead of answering 502 for ever.  Written by the claims
-- (pay_claim, pay_review_approve: 'trying' while an attempt holds the
-- key's lease) and by pay_release (an attempt that surely sent nothing:
-- 'trying' -> 'none'; any other: 'maybe'); a claim that finds 'trying'
-- finds an attempt that never said, and counts it as 'maybe'.  And since
-- when one may have (psp_contact_since: when a claim found 'none' and made
-- it 'trying'; NULL: since the checkout was made), from which the PSP's
-- key window is counted.  The rows there are already are 'maybe' since
-- they were made: as before.  Its rule (none, trying or maybe) is
-- checkouts_psp_contact in checkouts_row_checks, the one CHECK of the
-- table, which reads no row here: it holds for every row written from now
-- on, and every row there is holds the default.
SET LOCAL lock_timeout = '5s';
SET client_min_messages = warning;

ALTER TABLE checkouts ADD COLUMN IF NOT EXISTS psp_contact text DEFAULT 'maybe' NOT NULL;
ALTER TABLE checkouts ADD COLUMN IF NOT EXISTS psp_contact_since timestamptz;
COMMENT ON COLUMN checkouts.psp_contact IS
    'of the registration at the PSP the checkout is bound to: none: no attempt can have reached it; trying: an attempt holds the key''s lease, none before it can have; maybe: one may have (a byte sent, or a holder that never said)';
COMMENT ON COLUMN checkouts.psp_contact_since IS
    'when the earliest attempt that may have reached the PSP was claimed (a claim that found psp_contact none); NULL: when the checkout was made';
