CREATE OR REPLACE FUNCTION recon_flag(p_report bigint, r recon_rows, p_class text, p_kind text, p_merchant text, p_checkout text, p_currency text, p_amount bigint, p_ours jsonb)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    INSERT INTO recon_mismatches (report_id, record, psp, class, kind, merchant_id,
                                  checkout_id, currency, amount, evidence)
    SELECT p_report, r.record, rp.psp, p_class, p_kind, p_merchant, p_checkout,
           p_currency, p_amount,
           jsonb_build_object(
               'report_row', CASE WHEN r.record IS NULL THEN NULL ELSE recon_row_json(r) END,
               'ours', p_ours,
               'ledger', CASE WHEN p_checkout IS NULL THEN '[]'::jsonb
                              ELSE recon_ledger_json(p_merchant, p_checkout) END)
      FROM recon_reports rp WHERE rp.report_id = p_report;
END
$function$;
REVOKE ALL ON FUNCTION recon_flag(p_report bigint, r recon_rows, p_class text, p_kind text, p_merchant text, p_checkout text, p_currency text, p_amount bigint, p_ours jsonb) FROM PUBLIC;
