-- payments-reconcile over shards (--shards): each shard reconciles its own
-- part of a report in its own transaction, and its recon_reports row names
-- the shard that part is (NULL: a run without --shards, the whole file).
-- A report stays known on each database by the file's sha256: a re-run
-- after some shards failed finds the others done and does only the missing
-- ones, and no database ever books a second part of the same file.
ALTER TABLE recon_reports ADD COLUMN IF NOT EXISTS shard text;

ALTER TABLE recon_reports DROP CONSTRAINT IF EXISTS recon_reports_shard;
ALTER TABLE recon_reports ADD CONSTRAINT recon_reports_shard
    CHECK (shard ~ '^[a-z0-9_]{1,16}$');
