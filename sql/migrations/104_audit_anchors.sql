-- The audit chains lose their hot row: a chain's head is now its last
-- audit_log row, found by the log's key (sql/functions/audit_log_link.sql),
-- and audit_heads keeps each chain's anchor, moved to every eighth row
-- (audit_heads_anchor), not the last row at every append.  An append no
-- longer updates a row that every move of money of its chain updated (in
-- the benchmark's one-merchant webhooks the update read 67 blocks for one
-- row: its dead versions; bench/RESULTS.md).  The rows stay as they are:
-- each head names the last row its chain had, which is an anchor.  The
-- functions and triggers that change the behaviour come with the
-- functions' step, in one transaction; this changes no row.
SET LOCAL lock_timeout = '5s';

COMMENT ON TABLE audit_heads IS $c$Each audit chain's anchor: a row of the chain (its number and hashes) the log must keep, moved forward to every eighth row as it is appended (audit_heads_anchor), and the chains a merchant has opened.  A chain's head is its last audit_log row.$c$;
