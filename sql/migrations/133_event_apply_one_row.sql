-- pay_event_apply and pay_webhook_apply_core answer one row (their OUT
-- parameters), no longer a set of one: pay_event_keep and pay_event_apply
-- call them in an expression, not a statement (an executor's start each,
-- at every webhook: bench/RESULTS.md).  Their arguments and columns are
-- as they were, and a SELECT ... FROM either reads the same one row (the
-- previous release's workers, pay_inbox_retry, the reconciliation).  A
-- function's result type cannot be replaced: the earlier definitions are
-- dropped here and the current ones, in sql/functions/, are created after
-- the migrations, in the same transaction.  On a new database there is
-- nothing to drop.

SET client_min_messages = warning;

DROP FUNCTION IF EXISTS pay_event_apply(text, text, text, text, text, text, bigint, text, text, text, text[]);
DROP FUNCTION IF EXISTS pay_webhook_apply_core(text, text, text, text, text, text, bigint, text, text, text[]);
