-- An amount in minor units as the API writes it: a decimal string with the
-- currency's ISO 4217 decimals (1500 USD -> "15.00", 1500 JPY -> "1500",
-- 1500 KWD -> "1.500", -300 EUR -> "-3.00").  The same table as the
-- gateway's own (src/money.c; an e2e test compares every currency).
CREATE OR REPLACE FUNCTION money_decimal(p_minor bigint, p_currency text)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
    SELECT round(p_minor::numeric / (10::numeric ^ e), e)::text
      FROM (SELECT CASE
                       WHEN p_currency IN ('BIF', 'CLP', 'DJF', 'GNF', 'ISK', 'JPY', 'KMF',
                                           'KRW', 'PYG', 'RWF', 'UGX', 'UYI', 'VND', 'VUV',
                                           'XAF', 'XOF', 'XPF') THEN 0
                       WHEN p_currency IN ('BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND') THEN 3
                       WHEN p_currency IN ('CLF', 'UYW') THEN 4
                       ELSE 2
                   END AS e) x
$function$;
REVOKE ALL ON FUNCTION money_decimal(p_minor bigint, p_currency text) FROM PUBLIC;
