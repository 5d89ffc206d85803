-- Books one ledger transaction and its entries in one statement (entry_no
-- counts the non-zero amounts in their order).
CREATE OR REPLACE FUNCTION ledger_book(p_merchant text, p_checkout text, p_order text, p_kind text, p_object text, p_source text, p_currency text, p_accounts text[], p_amounts bigint[])
 RETURNS bigint
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_txn  bigint;
BEGIN
    INSERT INTO ledger_transactions (merchant_id, checkout_id, payment_order_id, source,
                                     kind, object_id)
    VALUES (p_merchant, p_checkout, p_order, p_source, p_kind, p_object)
    RETURNING txn_id INTO v_txn;
    INSERT INTO ledger_entries (merchant_id, txn_id, entry_no, account, amount, currency)
    SELECT p_merchant, v_txn, row_number() OVER (ORDER BY a.i), a.account, a.amount,
           p_currency
      FROM unnest(p_accounts, p_amounts) WITH ORDINALITY AS a (account, amount, i)
     WHERE a.amount <> 0;
    RETURN v_txn;
END
$function$;
REVOKE ALL ON FUNCTION ledger_book(p_merchant text, p_checkout text, p_order text, p_kind text, p_object text, p_source text, p_currency text, p_accounts text[], p_amounts bigint[]) FROM PUBLIC;
