-- A failed checkout's `failure` as the API, checkout.failed and
-- checkout.canceled show it:
-- {"code", "message"}; the message of a refusal at registration is the
-- PSP's reason as the gateway stored it (cleaned of anything secret);
-- a risk check's names its reason code, an off-session charge's decline
-- the PSP's decline code.
-- NULL when there is no code.
CREATE OR REPLACE FUNCTION checkout_failure(p_code pay_failure_code, p_failure text)
 RETURNS jsonb
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
    SELECT CASE WHEN p_code IS NOT NULL THEN
           jsonb_build_object(
               'code', p_code::text,
               'message', CASE p_code
                   -- an off-session charge's decline names the PSP's code
                   WHEN 'declined' THEN 'the PSP declined the payment'
                                        || coalesce(' (' || nullif(p_failure, '') || ')', '')
                   WHEN 'authentication_required' THEN
                       'the card''s issuer asked for the shopper to authenticate the '
                       || 'off-session charge'
                   WHEN 'expired' THEN 'the payment session expired before the shopper paid'
                   WHEN 'psp_canceled' THEN 'the PSP canceled the payment session'
                   WHEN 'canceled' THEN 'the merchant canceled the checkout before it was paid'
                   WHEN 'risk_declined' THEN 'the risk check declined the checkout ('
                                             || coalesce(nullif(p_failure, ''), 'declined') || ')'
                   WHEN 'risk_rejected' THEN 'the checkout was rejected in review ('
                                             || coalesce(nullif(p_failure, ''), 'rejected') || ')'
                   WHEN 'voided' THEN 'the authorization was released before anything was captured'
                   WHEN 'authorization_expired' THEN 'the authorization expired before anything was captured'
                   ELSE coalesce(nullif(p_failure, ''), 'the PSP refused the checkout')
               END)
           END
$function$;
REVOKE ALL ON FUNCTION checkout_failure(p_code pay_failure_code, p_failure text) FROM PUBLIC;
