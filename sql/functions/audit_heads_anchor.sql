-- Moves a chain's anchor (its audit_heads row) to every eighth row of the
-- chain, in the transaction that appends it: the row's number and hashes.
-- pay_audit_verify holds the log to its anchors, so a row up to a chain's
-- anchor cannot be removed unseen; the last seven rows at most of a chain
-- are held by the log's append-only triggers alone.  Every eighth row, not
-- every row: a row updated at every append is the hottest of the schema
-- (its dead versions read at each update: bench/RESULTS.md).  Runs under
-- the chain's advisory lock, which audit_log_link took for the row.
CREATE OR REPLACE FUNCTION audit_heads_anchor()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
 SET enable_seqscan TO 'off'
AS $function$
BEGIN
    UPDATE audit_heads h
       SET seq = NEW.seq, prev_hash = NEW.prev_hash, hash = NEW.hash
     WHERE h.merchant_id = NEW.merchant_id AND h.chain = NEW.chain;
    RETURN NULL;
END
$function$;
REVOKE ALL ON FUNCTION audit_heads_anchor() FROM PUBLIC;

-- The trigger that runs it: only for every eighth row of a chain (the WHEN
-- is evaluated without calling the function).
CREATE OR REPLACE TRIGGER audit_heads_anchor AFTER INSERT
    ON audit_log FOR EACH ROW
    WHEN (NEW.seq % 8 = 0)
    EXECUTE FUNCTION audit_heads_anchor();
