-- Whether a kept event is an inquiry's end that an earlier release kept
-- here for want of an owner, whose dispute lives on another shard: read
-- as IGNORED (Stripe's charge.dispute.closed, Adyen's
-- ISSUER_RESPONSE_TIMEFRAME_EXPIRED; or this release's
-- DISPUTE_INQUIRY_CLOSED), recorded with no merchant, something another
-- shard finds it by (Stripe's payment or dispute id; Adyen's our nonce),
-- and nothing here its own: neither what pay_event_locate finds nor its
-- nonce's merchant (with several shards, kept on the home shard, where
-- the home sweeper forwards it once it is pending: pay_inbox_homeless).
-- Not one whose dispute's withdrawal (Stripe's
-- charge.dispute.funds_withdrawn, Adyen's CHARGEBACK) is kept here: the
-- PSP took that money, and the shard that owns the dispute, which would
-- give it back for the inquiry's end (dispute_inquiry_closed), would not
-- see that it did.  Reads only (the withdrawal over the whole inbox);
-- pay_inbox_replay's (inquiry_ends_applied_again has its own query, a
-- month at a time, for those kept before the upgrade).
CREATE OR REPLACE FUNCTION pay_inbox_inquiry_end_elsewhere(p_psp text, p_kind text, p_type text, p_token text, p_tokens text[], p_reference text, p_payment_ref text, p_object_ref text, p_merchant_id text)
 RETURNS boolean
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    IF p_kind NOT IN ('IGNORED', 'DISPUTE_INQUIRY_CLOSED')
       OR p_type NOT IN ('charge.dispute.closed', 'ISSUER_RESPONSE_TIMEFRAME_EXPIRED')
       OR p_merchant_id IS NOT NULL THEN
        RETURN false;
    END IF;

    -- something another shard finds it by
    IF NOT ((p_type = 'charge.dispute.closed'
             AND (coalesce(p_payment_ref, '') <> '' OR coalesce(p_object_ref, '') <> ''))
            OR coalesce(p_reference, '') ~ '^[A-Za-z0-9_-]{1,64}:[A-Za-z0-9_-]{1,64}$') THEN
        RETURN false;
    END IF;

    -- nothing here is its own
    IF EXISTS (SELECT 1 FROM pay_event_locate(p_psp, p_token, p_tokens, p_payment_ref,
                                              p_object_ref))
       OR EXISTS (SELECT 1 FROM merchants m
                   WHERE m.merchant_id = (nonce_split(p_reference)).merchant_id) THEN
        RETURN false;
    END IF;

    -- its dispute's money withdrawn, as kept here
    RETURN coalesce(p_object_ref, '') = ''
        OR NOT EXISTS (SELECT 1 FROM psp_events w
                        WHERE w.psp = p_psp AND w.object_ref = p_object_ref
                          AND w.type IN ('charge.dispute.funds_withdrawn', 'CHARGEBACK'));
END
$function$;
REVOKE ALL ON FUNCTION pay_inbox_inquiry_end_elsewhere(p_psp text, p_kind text, p_type text, p_token text, p_tokens text[], p_reference text, p_payment_ref text, p_object_ref text, p_merchant_id text) FROM PUBLIC;
