-- Refuses a ledger transaction that does not balance: fewer than two
-- entries, or a currency whose entries do not sum to zero (the first by
-- name is named).  Called by ledger_balanced and ledger_entries_balanced
-- only for a transaction their one aggregate flagged (fewer than two
-- entries, more than one currency, or a sum other than zero): a
-- transaction of two currencies each summing to zero passes here.
-- Its read is by the transaction's key, with the sequential scan off as
-- in ledger_entries_balanced, which calls it: a connection keeps the plan
-- of whichever call came first, and ledger_balanced's would otherwise
-- run the one made under the other's settings (ci/sql-check.sh, check 14).
CREATE OR REPLACE FUNCTION ledger_balance_check(p_merchant text, p_txn bigint)
 RETURNS void
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'public', 'pg_temp'
 SET jit TO 'off'
 SET enable_seqscan TO 'off'
AS $function$
DECLARE
    v_entries  bigint;
    v_bad      text;
BEGIN
    SELECT coalesce(sum(c.n), 0), min(c.currency) FILTER (WHERE c.s <> 0)
      INTO v_entries, v_bad
      FROM (SELECT e.currency, count(*) AS n, sum(e.amount) AS s
              FROM ledger_entries e
             WHERE e.merchant_id = p_merchant AND e.txn_id = p_txn
             GROUP BY e.currency) c;
    IF v_entries < 2 OR v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'ledger transaction %/% is not balanced (% entries, % off)',
            p_merchant, p_txn, v_entries, coalesce(v_bad, '-')
            USING ERRCODE = 'PY006';
    END IF;
END
$function$;
REVOKE ALL ON FUNCTION ledger_balance_check(p_merchant text, p_txn bigint) FROM PUBLIC;
