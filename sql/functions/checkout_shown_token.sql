-- The psp_token GET /v1/checkouts/{id} and GET /v1/payments/{id} show:
-- the stored one (a hosted checkout's session, an off-session charge's
-- payment id from its answer: sealed, opened by the gateway), else, for an
-- off-session charge whose every answer was lost (the worker killed, the
-- connection dropped past the gateway's retries) and that its webhook
-- booked, the payment id the webhook named (psp_payment_ref), as the
-- charge's 201 would have said.  A hosted checkout's token is its
-- session, never the payment id.  A ref that reads as sealed ("v1.")
-- would be opened as one by the gateway: never given.
CREATE OR REPLACE FUNCTION checkout_shown_token(p_token text, p_method text, p_ref text)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
    SELECT coalesce(p_token,
                    CASE WHEN p_method IS NOT NULL AND p_ref NOT LIKE 'v1.%'
                         THEN p_ref END)
$function$;
REVOKE ALL ON FUNCTION checkout_shown_token(p_token text, p_method text, p_ref text) FROM PUBLIC;
