-- Give up the PENDING captures of p_checkout (p_capture: that one only)
-- that its PSP can never be sent: an amount that is not a multiple of
-- p_unit, the PSP's unit in p_currency (pay_psp_unit, passed by the
-- module: 100 where it counts whole rupiah).  The previous release
-- claimed all that was left of an order whole (6666.66 IDR at Adyen),
-- and such a capture's request can never be built (the dialect converts
-- an amount only exactly), so no attempt of it ever reached the PSP,
-- whatever its psp_contact says ('maybe' on a row from before that
-- column, or after a release that could not tell): no webhook of it will
-- ever come, it would stay PENDING for good and every void of the
-- checkout would be refused capture_in_progress.  Each is made FAILED,
-- psp_contact 'none', with a failure that says so (capture.failed queued
-- at commit, by captures_notify; its amount capturable again, nothing
-- was booked for it), audited 'capture:abandoned' (reason
-- not_expressible).  Only kind 'capture', still PENDING, without the
-- PSP's id, at the checkout's PSP (whose unit the caller passed), in
-- p_currency; a unit of 1 or NULL gives up nothing.  A capture whose
-- amount the PSP can be sent is never touched here: it may have been
-- sent.  Called by pay_capture_claim, in its transaction: on a resumed
-- capture (its own row; the claim then answers it from its row,
-- 'settled') and, under the checkout's and orders' locks, on every new
-- claim of the checkout (a void included, so that none is refused
-- capture_in_progress because of one); and by pay_holds_sweep, under the
-- same locks, for a hold past its end, so that it does not postpone the
-- release for ever.  The number given up.
CREATE OR REPLACE FUNCTION capture_unsendable_give_up(p_merchant text, p_checkout text, p_capture text, p_currency text, p_unit bigint)
 RETURNS integer
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    x  record;
    n  integer := 0;
BEGIN
    IF coalesce(p_unit, 1) <= 1 THEN
        RETURN 0;
    END IF;

    FOR x IN
        UPDATE captures cp
           SET status = 'FAILED', psp_contact = 'none',
               failure = left('never sent: ' || money_decimal(cp.amount, cp.currency)
                              || ' ' || cp.currency || ' is not an amount its PSP takes'
                              || ' (a multiple of ' || money_decimal(p_unit, cp.currency)
                              || ' ' || cp.currency || '), so no request of this capture'
                              || ' was ever made, and nothing moved; capture again with a'
                              || ' new Idempotency-Key, or void the rest', 1000)
         WHERE cp.merchant_id = p_merchant AND cp.checkout_id = p_checkout
           AND (p_capture IS NULL OR cp.capture_id = p_capture)
           AND cp.kind = 'capture' AND cp.status = 'PENDING' AND cp.psp_ref IS NULL
           AND cp.currency = p_currency AND cp.amount % p_unit <> 0
           AND cp.psp = (SELECT ck.psp FROM checkouts ck
                          WHERE ck.merchant_id = p_merchant AND ck.checkout_id = p_checkout)
        RETURNING cp.capture_id
    LOOP
        PERFORM audit_append(p_merchant, p_checkout, 'capture:abandoned',
            jsonb_build_object('capture_id', x.capture_id, 'reason', 'not_expressible'));
        n := n + 1;
    END LOOP;

    RETURN n;
END
$function$;
REVOKE ALL ON FUNCTION capture_unsendable_give_up(p_merchant text, p_checkout text, p_capture text, p_currency text, p_unit bigint) FROM PUBLIC;
