-- The event inbox: every PSP event that verified, kept raw (the bytes that
-- were signed, the header values the verification read, the id of the key
-- that verified it) in the transaction that applies it, or alone while what
-- it refers to is not here yet.  Partitioned by the month it was received,
-- so that retention drops a month's partition instead of deleting rows one
-- by one; the partitions are made ahead by pay_inbox_partitions
-- (the sweeper's round, and the first event of a month that finds none).
-- Its key holds received_at because a partitioned table's unique keys must
-- hold the partition key; one row per PSP and event id is kept by the
-- event's advisory lock (pay_event_apply's), under which it is looked up.

CREATE TABLE psp_events (
    psp           text        NOT NULL,
    event_id      text        NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    state         text        NOT NULL,
    body          bytea       NOT NULL,
    headers       jsonb       NOT NULL DEFAULT '{}',
    key_id        text,
    kind          text        NOT NULL,
    type          text        NOT NULL DEFAULT '',
    token         text,
    reference     text,
    amount        bigint,
    currency      text,
    payment_ref   text,
    object_ref    text,
    tokens        text[],
    outcome       text,
    merchant_id   text,
    checkout_id   text,
    applied_at    timestamptz,
    unmatched_at  timestamptz,
    CONSTRAINT psp_events_pkey PRIMARY KEY (psp, event_id, received_at),
    CONSTRAINT psp_events_state
        CHECK (state IN ('applied', 'pending', 'foreign', 'unmatched')),
    CONSTRAINT psp_events_sizes
        CHECK (length(psp) BETWEEN 1 AND 64 AND length(event_id) BETWEEN 1 AND 255
               AND length(type) <= 100 AND length(coalesce(key_id, '')) <= 128
               AND octet_length(body) <= 1048576),
    CONSTRAINT psp_events_applied
        CHECK ((state = 'applied') = (applied_at IS NOT NULL)),
    CONSTRAINT psp_events_unmatched
        CHECK (state <> 'unmatched' OR unmatched_at IS NOT NULL)
) PARTITION BY RANGE (received_at);

-- the sweeper's retry: the pending events, oldest first
CREATE INDEX psp_events_pending ON psp_events (received_at)
    WHERE state = 'pending';
-- an operator's list by checkout
CREATE INDEX psp_events_checkout ON psp_events (checkout_id, merchant_id)
    WHERE checkout_id IS NOT NULL;

COMMENT ON TABLE psp_events IS 'Every verified PSP event as received (signed bytes, the verification''s header values, the verifying key''s id), partitioned by month, with its state: applied, pending, foreign or unmatched.';

REVOKE ALL ON psp_events FROM PUBLIC;
