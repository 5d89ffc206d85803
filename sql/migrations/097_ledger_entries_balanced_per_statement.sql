-- The ledger's balance check on entries, once per statement instead of once
-- per row at commit: the deferred row trigger ledger_entries_balanced ran
-- the same sum for every entry of a transaction (six times a paid order of
-- two lines: 5% of a webhook's instructions, make bench-instructions).
-- Its statement-level successor of the same name is created by
-- sql/functions/ledger_entries_balanced.sql, after this;
-- ledger_transactions_balanced (deferred, once per transaction) stays.
DROP TRIGGER IF EXISTS ledger_entries_balanced ON ledger_entries;
