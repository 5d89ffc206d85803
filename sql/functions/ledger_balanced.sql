-- A ledger transaction balances: at least two entries, and zero in each
-- currency.  One query (it runs at commit for every ledger row: three or
-- four times per paid order).
CREATE OR REPLACE FUNCTION ledger_balanced()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_entries  int;
    v_bad      text;
BEGIN
    SELECT coalesce(sum(x.n), 0), min(x.currency) FILTER (WHERE x.s <> 0)
      INTO v_entries, v_bad
      FROM (SELECT e.currency, count(*) AS n, sum(e.amount) AS s
              FROM ledger_entries e
             WHERE e.merchant_id = NEW.merchant_id AND e.txn_id = NEW.txn_id
             GROUP BY e.currency) x;

    IF v_entries < 2 OR v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'ledger transaction %/% is not balanced (% entries, % off)',
            NEW.merchant_id, NEW.txn_id, v_entries, coalesce(v_bad, '-')
            USING ERRCODE = 'PY006';
    END IF;
    RETURN NULL;
END
$function$;
REVOKE ALL ON FUNCTION ledger_balanced() FROM PUBLIC;
