-- The seller's share of refunds of p_refund of an order of which p_amount
-- is captured, with commission p_commission, after refunds of
-- p_refunded_before standing that booked p_booked_before of the
-- commission: the refund less its commission's part (commission_refund_share),
-- exactly what refund_event_apply takes from the wallet when p_refund is
-- one refund.  Of several PENDING refunds summed, never less than what they
-- take, whichever succeed and in whatever order (the commission's part of
-- each grows no faster than the refund).
CREATE OR REPLACE FUNCTION refund_seller_share(p_amount bigint, p_commission bigint, p_refunded_before bigint, p_booked_before bigint, p_refund bigint)
 RETURNS bigint
 LANGUAGE sql
 IMMUTABLE STRICT
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT p_refund - commission_refund_share(p_amount, p_commission, p_refunded_before,
                                              p_booked_before, p_refund);
$function$;
REVOKE ALL ON FUNCTION refund_seller_share(p_amount bigint, p_commission bigint, p_refunded_before bigint, p_booked_before bigint, p_refund bigint) FROM PUBLIC;

-- the form without the commission already booked: its hold fell a unit
-- short after a refund was undone
DROP FUNCTION IF EXISTS refund_seller_share(bigint, bigint, bigint, bigint);
