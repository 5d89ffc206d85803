-- ---------------------------------------------------------------------------
-- Give the key back after a PSP failure: nothing final is stored, and the
-- lease ends now so that the client's retry resumes at once.  p_sent says
-- whether this request's attempts may have reached the PSP the checkout is
-- bound to (NULL: they may have): false only when not a byte of any of its
-- requests was sent there (no connection made, the circuit open, no
-- request built).  The checkout then keeps psp_contact 'none' if no
-- earlier attempt may have reached the PSP ('trying' -> 'none'); any
-- other release makes it 'maybe'.  A key of another lease or a done key:
-- nothing changes.
CREATE OR REPLACE FUNCTION pay_release(p_merchant text, p_idem_key text, p_lease bigint, p_sent boolean)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_co  text;
BEGIN
    UPDATE idempotency_keys ik
       SET lease_until = now()
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       AND ik.state = 'in_progress' AND ik.lease = p_lease
    RETURNING ik.checkout_id INTO v_co;
    IF v_co IS NULL THEN
        RETURN;
    END IF;

    -- sent nothing: what the claim made 'trying' is 'none' again (never a
    -- 'maybe': an earlier attempt may have); else 'maybe'
    IF p_sent IS NOT DISTINCT FROM false THEN
        UPDATE checkouts ck SET psp_contact = 'none'
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = v_co
           AND ck.psp_contact = 'trying';
    ELSE
        UPDATE checkouts ck SET psp_contact = 'maybe'
         WHERE ck.merchant_id = p_merchant AND ck.checkout_id = v_co
           AND ck.psp_contact <> 'maybe';
    END IF;
END
$function$;
REVOKE ALL ON FUNCTION pay_release(p_merchant text, p_idem_key text, p_lease bigint, p_sent boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_release(p_merchant text, p_idem_key text, p_lease bigint, p_sent boolean) TO payments_gateway;

-- The signature without p_sent, which the previous release's module calls
-- during an upgrade: its attempts may have reached the PSP.
CREATE OR REPLACE FUNCTION pay_release(p_merchant text, p_idem_key text, p_lease bigint)
 RETURNS void
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT pay_release(p_merchant, p_idem_key, p_lease, NULL::boolean);
$function$;
REVOKE ALL ON FUNCTION pay_release(p_merchant text, p_idem_key text, p_lease bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_release(p_merchant text, p_idem_key text, p_lease bigint) TO payments_gateway;
