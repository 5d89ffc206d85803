-- The coarsest unit, in ISO minor units, in which any dialect counts this
-- currency (the largest of the dialects' pay_psp_unit, src/psp.c): 100 for
-- CLF, CVE, IDR, MGA and UYW (Adyen's whole rupiah and escudos, Stripe's
-- whole ariary and its hundredths of CLF and UYW), 10 for BHD, IQD, JOD,
-- KWD, LYD, OMR and TND (Stripe's), 1 for every other currency.  The
-- database does not know which dialect a PSP speaks: a capture made at the
-- PSP's dashboard is split over a checkout's orders in the unit its own
-- amount shows, at most this one (capture_event_apply).  The e2e test
-- sql::the_coarsest_psp_unit_is_the_dialects checks it against the
-- dialects' tables.
CREATE OR REPLACE FUNCTION psp_unit_coarsest(p_currency text)
 RETURNS bigint
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
    SELECT CASE
               WHEN p_currency IN ('CLF', 'CVE', 'IDR', 'MGA', 'UYW') THEN 100
               WHEN p_currency IN ('BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND') THEN 10
               ELSE 1
           END::bigint
$function$;
REVOKE ALL ON FUNCTION psp_unit_coarsest(p_currency text) FROM PUBLIC;
