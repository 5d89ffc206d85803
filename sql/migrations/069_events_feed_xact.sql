-- The events feed in the order no open transaction can fill in later.
-- Its entries were ordered by (created_at, notification_id), created_at
-- being now(), the inserting transaction's start: a transaction that
-- began first and committed last put its event before one a reader had
-- already been shown, and a cursor taken there skipped it for good.
--
-- Each entry now keeps the id of the transaction that inserted it
-- (pg_current_xact_id(), an xid8: 64 bits, never wraps).  The feed is
-- ordered by it first, and lists only entries whose transaction is older
-- than the oldest transaction still in flight (below the reader's
-- snapshot's xmin): every transaction that can still commit has a larger
-- id, so nothing can ever appear before a position a reader was shown
-- (sql/functions/notifications_feed_page.sql).
--
-- Rows already stored take 0 (a constant default: no table rewrite) and
-- keep their order among themselves by (created_at, notification_id),
-- before every later one; rows written from now on, by any release's
-- notify_enqueue, take the column's default.

ALTER TABLE notifications ADD COLUMN IF NOT EXISTS feed_xact xid8 NOT NULL DEFAULT '0';
ALTER TABLE notifications ALTER COLUMN feed_xact SET DEFAULT pg_current_xact_id();

COMMENT ON COLUMN notifications.feed_xact IS
    'the id of the transaction that inserted the row (0: before it was kept): the events feed''s order, listed once every older transaction has ended';

DROP INDEX IF EXISTS notifications_feed;
CREATE INDEX notifications_feed
    ON notifications (merchant_id, feed_xact, created_at, notification_id) WHERE in_feed;
