-- Counts and amounts per class, kind and currency, for the terminal.
CREATE OR REPLACE FUNCTION recon_summary(p_report bigint)
 RETURNS TABLE(class text, kind text, currency text, n bigint, amount numeric)
 LANGUAGE sql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT m.class, m.kind, coalesce(m.currency, '-'), count(*), coalesce(sum(m.amount), 0)
      FROM recon_mismatches m
     WHERE m.report_id = p_report
     GROUP BY 1, 2, 3
     ORDER BY CASE m.class WHEN 'needs_person' THEN 1 WHEN 'unclassified' THEN 2 ELSE 3 END,
              2, 3;
$function$;
REVOKE ALL ON FUNCTION recon_summary(p_report bigint) FROM PUBLIC;
