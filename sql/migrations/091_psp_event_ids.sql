-- The inbox's event ids, unpartitioned: one row per PSP and event id kept
-- in psp_events, with the month's key (received_at) of the row that keeps
-- it.  psp_events is partitioned by received_at, so its own keys hold
-- received_at and a look-up by event id alone visited every monthly
-- partition (a year's inbox: 15 index scans and as many relations locked
-- per webhook, past the 16 fast-path lock slots).  This table's primary
-- key is the one index a webhook's duplicate check reads, and it keeps an
-- event once in the database, whoever writes: psp_events' trigger
-- (psp_event_ids_keep) claims the id here in the row's own insert, and a
-- second row of the same event fails on this key (23505), committed or
-- not.  Its rows go with their month's partition (pay_inbox_drop_old).
--
-- Backfilled from the inbox as it is (the first row of an event, if ever
-- there were two); the trigger comes with the functions' step, whose file
-- also gives their ids to the events kept meanwhile by the previous
-- release's functions.  Safe while gateways run: a new table, the inbox
-- only read.

SET LOCAL lock_timeout = '5s';

CREATE TABLE psp_event_ids (
    psp          text        NOT NULL,
    event_id     text        NOT NULL,
    received_at  timestamptz NOT NULL,
    CONSTRAINT psp_event_ids_pkey PRIMARY KEY (psp, event_id)
);

INSERT INTO psp_event_ids (psp, event_id, received_at)
SELECT DISTINCT ON (e.psp, e.event_id) e.psp, e.event_id, e.received_at
  FROM psp_events e
 ORDER BY e.psp, e.event_id, e.received_at;

COMMENT ON TABLE psp_event_ids IS 'One row per event kept in psp_events (its trigger writes it): the PSP''s event id, unique, and the received_at (partition key) of the row that keeps it';

REVOKE ALL ON psp_event_ids FROM PUBLIC;
