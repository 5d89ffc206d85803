-- Gives every new audit_log row its place in its chain: the next number,
-- the hash of the chain's last row, and its own hash (audit_row_hash for
-- chain 0, audit_chain_hash for chains 1..64).  A BEFORE INSERT trigger,
-- so that no row enters the log unlinked, whoever inserts it; a row that
-- comes with a number or a hash is refused (PY002).
--
-- It also moves the chain's anchor (audit_heads) to every eighth row, when
-- the row after it comes: pay_audit_verify holds the log to its anchors,
-- so a row up to a chain's anchor cannot be removed unseen; the last eight
-- rows at most of a chain are held by the log's append-only triggers
-- alone.  Every eighth row, not every row: a row updated at every append
-- is the hottest of the schema (its dead versions read at each update:
-- bench/RESULTS.md).  Here and not in an AFTER INSERT trigger on the
-- eighth row itself: a trigger's WHEN is read back and prepared in every
-- statement that inserts, about 17,000 instructions an append
-- (bench/RESULTS.md); the row before this one is in the log already, as
-- the anchor's guard (audit_heads_forward) wants it.
--
-- The chain's head is its last row, found by the log's primary key
-- (merchant, chain, seq) read backwards: the log is insert-only, so the
-- read meets no dead versions, however long the chain.  Appends to one
-- chain are serialised by a transaction-scoped advisory lock on (1437,
-- merchant and chain), held to commit; each statement of a PL/pgSQL
-- function at READ COMMITTED takes its own snapshot, so the read after the
-- lock sees the last holder's row (committed before its lock is
-- released).  Two appends that raced past a lock would collide on the
-- primary key, never fork the chain.
--
-- A chain's first row: chain 0's makes the chain's audit_heads row; a
-- row of chain 1..64 whose chain has no audit_heads row opens the
-- merchant's 64 chains first (audit_open_chains, under chain 0's lock,
-- taken after this chain's: the one cycle that order allows, while a
-- merchant's chains are being opened, is in audit_open_chains.sql).
--
-- No SET search_path (a change of the path and its restore at every
-- call, bench/RESULTS.md): every name outside pg_catalog is
-- schema-qualified.  enable_seqscan off: on a small analysed log the
-- planner, which counts pages, reads the whole table and sorts it rather
-- than walk the key backwards (tests/e2e/test_plans.c: 16 sequential
-- scans in 16 appends without it), and a connection keeps that plan as
-- the log grows until it plans again.
CREATE OR REPLACE FUNCTION audit_log_link()
 RETURNS trigger
 LANGUAGE plpgsql
 SET jit TO 'off'
 SET enable_seqscan TO 'off'
AS $function$
DECLARE
    v_seq   bigint;
    v_prev  bytea;
    v_prev2 bytea;
BEGIN
    IF NEW.seq IS NOT NULL OR NEW.prev_hash IS NOT NULL OR NEW.hash IS NOT NULL THEN
        RAISE EXCEPTION 'audit_log: a row''s number and hashes are the database''s to give'
            USING ERRCODE = 'PY002';
    END IF;
    -- the chain's lock, taken in an expression: a PERFORM would be a
    -- query of its own (13,000 instructions an append, bench/RESULTS.md)
    IF pg_catalog.pg_advisory_xact_lock(1437, pg_catalog.hashtext(NEW.merchant_id || ' '
                                                                   || NEW.chain)) IS NULL THEN
        RAISE EXCEPTION 'audit_log_link: no lock';
    END IF;
    -- from the chain's anchor on: a scan of the key backwards checks every
    -- entry of its chain on the index page before it returns the first
    -- (PostgreSQL 15 reads a leaf page whole), about a hundred of them on
    -- a long chain; the anchor is at most eight rows back and bounds it
    SELECT a.seq, a.hash, a.prev_hash INTO v_seq, v_prev, v_prev2
      FROM public.audit_log a
     WHERE a.merchant_id = NEW.merchant_id AND a.chain = NEW.chain
       AND a.seq >= COALESCE((SELECT h.seq FROM public.audit_heads h
                               WHERE h.merchant_id = NEW.merchant_id
                                 AND h.chain = NEW.chain), 0)
     ORDER BY a.seq DESC
     LIMIT 1;
    IF NOT FOUND THEN
        v_seq := 0;
        v_prev := '\x'::bytea;
        IF NEW.chain = 0 THEN
            INSERT INTO public.audit_heads AS h (merchant_id, chain, seq, hash)
            VALUES (NEW.merchant_id, 0, 0, '\x'::bytea)
            ON CONFLICT (merchant_id, chain) DO NOTHING;
        ELSIF NEW.chain BETWEEN 1 AND 64
              AND NOT EXISTS (SELECT 1 FROM public.audit_heads h
                               WHERE h.merchant_id = NEW.merchant_id AND h.chain = NEW.chain) THEN
            PERFORM public.audit_open_chains(NEW.merchant_id);
        END IF;
    END IF;
    -- the anchor to the last row when it is an eighth (not back to where
    -- an older release left it: those heads named their chain's last row)
    IF v_seq % 8 = 0 AND v_seq > 0 THEN
        UPDATE public.audit_heads h
           SET seq = v_seq, prev_hash = v_prev2, hash = v_prev
         WHERE h.merchant_id = NEW.merchant_id AND h.chain = NEW.chain AND h.seq < v_seq;
    END IF;
    NEW.seq := v_seq + 1;
    NEW.prev_hash := v_prev;
    IF NEW.chain = 0 THEN
        NEW.hash := public.audit_row_hash(v_prev, NEW.merchant_id, NEW.seq, NEW.at,
                                          NEW.checkout_id, NEW.action, NEW.detail);
    ELSE
        NEW.hash := public.audit_chain_hash(v_prev, NEW.merchant_id, NEW.chain, NEW.seq,
                                            NEW.at, NEW.checkout_id, NEW.action,
                                            NEW.detail);
    END IF;
    RETURN NEW;
END
$function$;
REVOKE ALL ON FUNCTION audit_log_link() FROM PUBLIC;

-- The trigger that runs it, before every row's insert (and before the
-- row's CHECKs, which see its number and hashes).
-- Made, or made anew, only when missing or other than written here
-- (trigger_ensure.sql).
SELECT trigger_ensure(
    'CREATE TRIGGER audit_log_link BEFORE INSERT ON public.audit_log FOR EACH ROW EXECUTE FUNCTION public.audit_log_link()');
