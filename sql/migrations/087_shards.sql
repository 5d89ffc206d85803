-- Merchant shards: several databases, each with this whole schema and its
-- own merchants.  What a shard needs of its tables:
--
-- - merchants.placed_at: when the merchant was placed on this shard (its
--   creation here, backfilled from created_at).  The gateways' directory
--   of merchant -> shard reads the merchants placed since its last look
--   (pay_directory), with api_keys.created_at for the keys: an index on
--   each, the keys' partial on the active ones, which alone it reads.
-- - psp_events.forwarded_to: an event the home shard kept because no shard
--   was known to own it, handed later to the shard that owns it
--   (pay_inbox_homeless, then pay_event_keep there, then
--   pay_inbox_forwarded here): its state 'forwarded', the owner's name
--   kept.  forward_tried_at: the home shard's last try to place it (tries
--   are spaced by the sweeper's retry=).
--
-- Safe while gateways run: merchants and api_keys are small (a row per
-- merchant or key), their indexes built in moments; psp_events, the big
-- one, gains nullable columns (no rewrite) and CHECKs added NOT VALID (no
-- scan: the rows there satisfied the narrower state CHECK, and have no
-- forwarded_to).  Each ALTER waits at most 5 s for its lock instead of
-- queueing every webhook and authentication behind a long transaction:
-- past that the migration fails, nothing of it applied, and is run again.
SET LOCAL lock_timeout = '5s';

ALTER TABLE merchants ADD COLUMN placed_at timestamptz NOT NULL DEFAULT now();
UPDATE merchants SET placed_at = created_at;
CREATE INDEX merchants_placed ON merchants (placed_at);
CREATE INDEX api_keys_created ON api_keys (created_at) WHERE revoked_at IS NULL;

COMMENT ON COLUMN merchants.placed_at IS
    'when the merchant was placed on this shard (created here, or moved here): the gateways'' directory reads the merchants placed since its last look';

ALTER TABLE psp_events ADD COLUMN forwarded_to text;
ALTER TABLE psp_events ADD COLUMN forward_tried_at timestamptz;

ALTER TABLE psp_events DROP CONSTRAINT psp_events_state;
ALTER TABLE psp_events ADD CONSTRAINT psp_events_state
    CHECK (state IN ('applied', 'pending', 'foreign', 'unmatched', 'forwarded')) NOT VALID;
ALTER TABLE psp_events ADD CONSTRAINT psp_events_forwarded
    CHECK ((state = 'forwarded') = (forwarded_to IS NOT NULL)
           AND (forwarded_to IS NULL OR forwarded_to ~ '^[a-z0-9_]{1,16}$')) NOT VALID;

COMMENT ON TABLE psp_events IS 'Every verified PSP event as received (signed bytes, the verification''s header values, the verifying key''s id), partitioned by month, with its state: applied, pending, foreign, unmatched, or forwarded (to the shard that owns it).';
COMMENT ON COLUMN psp_events.forwarded_to IS
    'forwarded: the shard (payments_shard name) whose own inbox now keeps and applies the event; NULL otherwise';
COMMENT ON COLUMN psp_events.forward_tried_at IS
    'the home shard''s last try to find the event''s owning shard (NULL: none)';
