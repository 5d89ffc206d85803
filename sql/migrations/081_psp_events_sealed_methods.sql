-- A saved payment method's reusable PSP token (Stripe pm_…, Adyen's
-- recurringDetailReference / storedPaymentMethodId, the generic
-- payment_method) is kept sealed at rest, in the inbox too.  The body of
-- an event that carries one stays the PSP's exact bytes, sealed whole
-- (AES-256-GCM under payments_encryption_key, associated data
-- "psp_event:<psp>:<event_id>"): the body column then holds the sealed
-- text "v1.<kid>.<base64url>" as bytes, which payments-events verify opens
-- before it verifies the signature.  A METHOD_SAVED event is always such
-- an event: its row refuses a body that is not sealed.
--
-- method: what re-applying a METHOD_SAVED event needs and its bytes,
-- sealed, cannot give the database (payments-events replay): the token
-- as the gateway sealed it for payment_methods ("payment_method:<nonce>"),
-- its blind index, the PSP's customer and what the PSP told for display.

ALTER TABLE psp_events ADD COLUMN method jsonb;

-- NOT VALID: the rows a gateway kept before (a METHOD_SAVED body in
-- clear, from the release that brought saved methods) cannot be sealed in
-- SQL and are left as they are; every row written from now on, in every
-- partition, is checked.
ALTER TABLE psp_events ADD CONSTRAINT psp_events_method_sealed
    CHECK (kind <> 'METHOD_SAVED'
           OR (substring(body FROM 1 FOR 3) = '\x76312e'::bytea
               AND (method IS NULL OR method ->> 'token_sealed' LIKE 'v1.%')))
    NOT VALID;

COMMENT ON COLUMN psp_events.body IS 'the bytes the PSP signed; sealed ("v1." text as bytes, associated data psp_event:<psp>:<event_id>) when they carry a reusable payment-method token';
COMMENT ON COLUMN psp_events.method IS 'METHOD_SAVED: {token_sealed, token_index, psp_customer, display}, what replaying it needs; the token only sealed';
