-- What an order gave back for good, and the commission's parts of it: its
-- SUCCEEDED refunds, and its lost chargebacks' parts as far as it bore them
-- (dispute_parts.borne; a part lost before migration 139 counts whole, with
-- no commission's part, as it was booked).  The commission's share of the
-- next refund or chargeback is taken against these (commission_refund_share:
-- R and B), so that whatever the order gives back, and in whatever pieces,
-- the commission gives back no more than it took, and exactly that once the
-- order has given back all it captured.  plpgsql, not sql: its body names
-- columns of migration 139, which a LANGUAGE sql body would check when the
-- functions are created over an older schema (an upgrade's functions are
-- created after every migration, but sql::migrate_upgrade_* stop earlier).
CREATE OR REPLACE FUNCTION order_given_back_for_good(p_merchant text, p_order_id text, OUT given_back bigint, OUT commission_back bigint)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    SELECT (r.amount + d.amount)::bigint, (r.commission + d.commission)::bigint
      INTO given_back, commission_back
      FROM (SELECT coalesce(sum(rf.amount), 0) AS amount,
                   coalesce(sum(rf.commission_part), 0) AS commission
              FROM refunds rf
             WHERE rf.merchant_id = p_merchant AND rf.payment_order_id = p_order_id
               AND rf.status = 'SUCCEEDED') r,
           (SELECT coalesce(sum(coalesce(dp.borne, dp.amount)), 0) AS amount,
                   coalesce(sum(dp.commission_part), 0) AS commission
              FROM dispute_parts dp
             WHERE dp.merchant_id = p_merchant AND dp.payment_order_id = p_order_id
               AND (SELECT ds.status FROM disputes ds
                     WHERE ds.merchant_id = dp.merchant_id
                       AND ds.dispute_id = dp.dispute_id) = 'LOST') d;
END;
$function$;
REVOKE ALL ON FUNCTION order_given_back_for_good(p_merchant text, p_order_id text, OUT given_back bigint, OUT commission_back bigint) FROM PUBLIC;
