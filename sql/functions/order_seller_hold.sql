-- What an order's PENDING refunds and OPEN chargebacks' parts, with
-- p_extra more (a refund being claimed; 0 for none), will take from its
-- seller's wallet at most: their sum P taken as one refund of P would take
-- it (refund_seller_share: P less the commission's part refund_event_apply
-- would book, against what the order gave back for good and the
-- commission's parts of it, order_given_back_for_good).  Exactly that for
-- one, and never less for several, whichever of them succeed or are lost
-- and in whatever order (a chargeback lost is booked as a refund of its
-- part would be: dispute_event_apply).  seller_available sums it over the
-- seller's orders; a refund's claim checks what it grows by with its
-- amount (order_seller_hold_parts, read once for both).  Without a
-- commission it is P itself.
CREATE OR REPLACE FUNCTION order_seller_hold(p_merchant text, p_order_id text, p_extra bigint)
 RETURNS bigint
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    h  record;
BEGIN
    SELECT * INTO h FROM order_seller_hold_parts(p_merchant, p_order_id);
    RETURN refund_seller_share(h.captured, h.commission, h.given_back,
                               h.commission_back, h.held + p_extra);
END;
$function$;
REVOKE ALL ON FUNCTION order_seller_hold(p_merchant text, p_order_id text, p_extra bigint) FROM PUBLIC;
