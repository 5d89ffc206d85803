-- pay_op_key_answer also answers a retry whose key is past its TTL, or
-- purged, from the operation its request made (operation_keys): its
-- result gains the operation's columns.  A function's result type cannot
-- be replaced: the earlier definition is dropped here and the current
-- one, in sql/functions/, is created after the migrations, in the same
-- transaction.  The previous release's workers name the first five
-- columns, which are as they were; one of them that meets the new outcome
-- 'settled' answers 503 (an alert: "unexpected outcome") and the shop's
-- retry is answered by a worker of this release.  On a new database there
-- is nothing to drop.

SET client_min_messages = warning;

DROP FUNCTION IF EXISTS pay_op_key_answer(text, text, text);
