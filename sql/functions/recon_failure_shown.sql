-- Whether the PSP showed the failure (p_type: refund_failure or
-- payout_failure) of our object: a row of this report naming it by the
-- PSP's id or our nonce, or a row of an earlier report matched to it.
CREATE OR REPLACE FUNCTION recon_failure_shown(p_report bigint, p_type text, p_psp_id text, p_nonce text, p_merchant text, p_object text)
 RETURNS boolean
 LANGUAGE sql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT EXISTS (SELECT 1 FROM recon_rows rr
                    WHERE rr.report_id = p_report
                      AND rr.type IN ('refund_failure', 'payout_failure')
                      AND rr.type = p_type
                      AND ((p_psp_id <> '' AND rr.object_ref = p_psp_id)
                           OR (p_nonce <> '' AND rr.reference = p_nonce)))
        OR EXISTS (SELECT 1 FROM recon_seen s
                     JOIN recon_rows rr ON rr.report_id = s.report_id
                                       AND rr.record = s.record
                    WHERE s.merchant_id = p_merchant AND s.object_id = p_object
                      AND rr.type = p_type)
$function$;
REVOKE ALL ON FUNCTION recon_failure_shown(p_report bigint, p_type text, p_psp_id text, p_nonce text, p_merchant text, p_object text) FROM PUBLIC;
