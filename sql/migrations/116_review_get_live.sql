-- pay_review_get answers its merchant's mode (live), so that an approval
-- sends a held checkout to a PSP of that mode only: a PSP's name may have
-- been given the other mode= since the checkout was held.  A function's
-- result type cannot be replaced: the earlier definition is dropped here
-- and the current one, in sql/functions/, is created after the migrations
-- (the workers of the previous release read its columns by position, the
-- first four of which it keeps).  On a new database there is nothing to
-- drop.

SET client_min_messages = warning;

DROP FUNCTION IF EXISTS pay_review_get(text, text);
