-- pay_capture_claim takes the PSP's settings (p_psp_conf, migration 119)
-- and the PSP's unit (p_unit) together: fourteen arguments.  Two
-- thirteen-argument forms, each with one of them, existed only between
-- those two changes of this release; dropped where a database has one, so
-- that no call with a NULL thirteenth argument is ambiguous.  The twelve-
-- argument form the previous release's workers call stays (sql/functions).
SET client_min_messages = warning;

DROP FUNCTION IF EXISTS pay_capture_claim(text, text, text, integer, integer, text, text, bigint, text, text, jsonb, boolean, jsonb);
DROP FUNCTION IF EXISTS pay_capture_claim(text, text, text, integer, integer, text, text, bigint, text, text, jsonb, boolean, bigint);
