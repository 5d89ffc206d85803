-- The Idempotency-Key that registered a checkout held for review (or
-- approved since), or NULL: the one its review's verdict names
-- (checkout_risk.review_key, written under that key's lease), when that
-- key is still the one stored with the checkout, at its created_at (a key
-- expired and made again names the checkout too, younger; so does a
-- cancel's).  Each row read by its own key: nothing indexes the keys by
-- checkout.  No lock taken: pay_review_approve and pay_review_reject lock
-- the key it names first (doc/MONEY.md, "Lock order").  plpgsql, not sql:
-- its body names a column of migration 141, which a LANGUAGE sql body
-- would check when the functions are created over an older schema.
CREATE OR REPLACE FUNCTION review_key_of(p_merchant text, p_checkout_id text)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    RETURN (SELECT ik.idem_key
              FROM idempotency_keys ik
             WHERE ik.merchant_id = p_merchant
               AND ik.idem_key = (SELECT r.review_key FROM checkout_risk r
                                   WHERE r.merchant_id = p_merchant
                                     AND r.checkout_id = p_checkout_id)
               AND ik.checkout_id = p_checkout_id
               AND ik.created_at = (SELECT ck.created_at FROM checkouts ck
                                     WHERE ck.merchant_id = p_merchant
                                       AND ck.checkout_id = p_checkout_id));
END
$function$;
REVOKE ALL ON FUNCTION review_key_of(p_merchant text, p_checkout_id text) FROM PUBLIC;
