-- The first currency (by name) in which a ledger transaction's entries do
-- not sum to zero; NULL when each does.  For a transaction of more than
-- one currency: ledger_balanced and ledger_entries_balanced check one of a
-- single currency by its sum alone.
CREATE OR REPLACE FUNCTION ledger_off_currency(p_merchant text, p_txn bigint)
 RETURNS text
 LANGUAGE sql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT min(c.currency)
      FROM (SELECT e.currency, sum(e.amount) AS s
              FROM ledger_entries e
             WHERE e.merchant_id = p_merchant AND e.txn_id = p_txn
             GROUP BY e.currency) c
     WHERE c.s <> 0;
$function$;
REVOKE ALL ON FUNCTION ledger_off_currency(p_merchant text, p_txn bigint) FROM PUBLIC;
