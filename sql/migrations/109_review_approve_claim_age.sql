-- pay_review_approve answers a resumed approval's age (claim_age: since the
-- first approval sent the request to the PSP), so that the gateway never
-- sends it again once the PSP may have forgotten its idempotency key.  A
-- function's result type cannot be replaced: the earlier definition is
-- dropped here and the current one, in sql/functions/, is created after
-- the migrations (the workers of the previous release read its columns by
-- name, all of which it still has).  On a new database there is nothing to
-- drop.

SET client_min_messages = warning;

DROP FUNCTION IF EXISTS pay_review_approve(text, text, text, bigint, integer);
