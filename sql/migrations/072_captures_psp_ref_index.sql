-- A capture the PSP names by its own id (Adyen's CAPTURE and
-- CAPTURE_FAILED by pspReference, the generic capture events, a capture
-- made at the PSP's dashboard and booked from an event) is found by
-- (psp, psp_ref) in capture_event_apply, on every delivery of such an
-- event: without an index that look-up read every capture of every
-- merchant.  Not unique: a capture made outside the gateway is booked as
-- one row per order under the PSP's one id, and a reversed capture's rows
-- keep theirs.  Partial on psp_ref IS NOT NULL (a capture not yet known to
-- the PSP has none), which an equality on psp_ref implies.
CREATE INDEX captures_psp_ref ON captures (psp, psp_ref) WHERE psp_ref IS NOT NULL;
