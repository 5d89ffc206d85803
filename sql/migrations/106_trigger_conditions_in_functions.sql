-- checkouts_notify loses its WHEN (made again by
-- sql/functions/checkouts_notify.sql after this, without it; a constraint
-- trigger cannot be replaced in place): PostgreSQL reads a trigger's
-- condition back and prepares it at every statement that names one of its
-- columns, which costs more than the call it saves when the call is the
-- usual case (a webhook's status moves; bench/RESULTS.md).  The function
-- tests the same condition first.
SET LOCAL lock_timeout = '5s';

DROP TRIGGER IF EXISTS checkouts_notify ON checkouts;
