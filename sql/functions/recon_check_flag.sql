CREATE OR REPLACE FUNCTION recon_check_flag(p_report bigint, p_kind text, p_merchant text, p_checkout text, p_currency text, p_amount bigint, p_ours jsonb)
 RETURNS void
 LANGUAGE sql
 SET search_path TO 'public', 'pg_temp'
AS $function$
    INSERT INTO recon_mismatches (report_id, record, psp, class, kind, merchant_id,
                                  checkout_id, currency, amount, evidence)
    SELECT p_report, NULL, rp.psp, 'needs_person', p_kind, p_merchant, p_checkout,
           p_currency, p_amount,
           jsonb_build_object('report_row', NULL, 'ours', p_ours,
               'ledger', CASE WHEN p_checkout IS NULL THEN '[]'::jsonb
                              ELSE recon_ledger_json(p_merchant, p_checkout) END)
      FROM recon_reports rp WHERE rp.report_id = p_report;
$function$;
REVOKE ALL ON FUNCTION recon_check_flag(p_report bigint, p_kind text, p_merchant text, p_checkout text, p_currency text, p_amount bigint, p_ours jsonb) FROM PUBLIC;
