-- pay_method_detach_start and pay_sweeper_detaches also return the
-- merchant account the method's checkout was registered under (the
-- detach names it): a changed result type is dropped here and made again
-- by its file.  The previous release's workers name the columns they
-- read, so the added last one changes nothing for them.
SET client_min_messages = warning;

DROP FUNCTION IF EXISTS pay_method_detach_start(text, text, text[]);
DROP FUNCTION IF EXISTS pay_sweeper_detaches(text, text[], integer, integer, integer, integer);
