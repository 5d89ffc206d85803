-- Every ledger row of a checkout, for the evidence.
CREATE OR REPLACE FUNCTION recon_ledger_json(p_merchant text, p_checkout text)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'txn_id', t.txn_id, 'payment_order_id', t.payment_order_id,
               'source', t.source, 'entry_no', e.entry_no, 'account', e.account,
               'amount', e.amount, 'currency', e.currency)
             ORDER BY t.txn_id, e.entry_no), '[]'::jsonb)
      FROM ledger_transactions t
      JOIN ledger_entries e ON e.merchant_id = t.merchant_id AND e.txn_id = t.txn_id
     WHERE t.merchant_id = p_merchant AND t.checkout_id = p_checkout;
$function$;
REVOKE ALL ON FUNCTION recon_ledger_json(p_merchant text, p_checkout text) FROM PUBLIC;
