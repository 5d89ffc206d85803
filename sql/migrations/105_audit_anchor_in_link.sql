-- The chain's anchor is moved by the log's own link (audit_log_link, made
-- by sql/functions after this, as every trigger), when the row after an
-- eighth row comes: the AFTER INSERT trigger that moved it on the eighth
-- row itself had a WHEN, read back and prepared in every statement that
-- inserts into the log (about 17,000 instructions an append,
-- bench/RESULTS.md).  No row changes: an anchor at an eighth row, or at
-- the last row an older release left, is where the link moves it from.
SET LOCAL lock_timeout = '5s';

DROP TRIGGER IF EXISTS audit_heads_anchor ON audit_log;
DROP FUNCTION IF EXISTS audit_heads_anchor();

COMMENT ON TABLE audit_heads IS $c$Each audit chain's anchor: a row of the chain (its number and hashes) the log must keep, moved forward to every eighth row when the row after it is appended (audit_log_link), and the chains a merchant has opened.  A chain's head is its last audit_log row.$c$;
