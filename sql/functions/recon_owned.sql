-- payments-reconcile over shards, its first phase (read only, on every
-- shard): which of a report's rows this shard owns, so that each shard
-- reconciles its own.  p_rows: a JSON array of {record, reference,
-- payment_ref, object_ref} (the report's normalised rows).  A row is owned
-- when its reference is our nonce "<merchant>:<id>" of a merchant here
-- ('nonce'), else when this shard holds the PSP's payment or the refund,
-- dispute, pay-out or capture it names (pay_event_locate's found_by).
-- Returns the owned rows only, with their merchant; rows no shard owns
-- (fees, bank pay-outs, others' payments) are the home shard's.
CREATE OR REPLACE FUNCTION recon_owned(p_psp text, p_rows jsonb)
 RETURNS TABLE(record integer, merchant_id text, found_by text)
 LANGUAGE sql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT r.record, coalesce(m.merchant_id, l.merchant_id),
           CASE WHEN m.merchant_id IS NOT NULL THEN 'nonce' ELSE l.found_by END
      FROM jsonb_to_recordset(coalesce(p_rows, '[]')) AS r(record integer, reference text,
                                                           payment_ref text, object_ref text)
      LEFT JOIN merchants m ON m.merchant_id = (nonce_split(nullif(r.reference, ''))).merchant_id
      LEFT JOIN LATERAL (SELECT x.merchant_id, x.found_by
                           FROM pay_event_locate(p_psp, NULL, NULL, r.payment_ref,
                                                 r.object_ref) x
                          WHERE m.merchant_id IS NULL) l ON true
     WHERE m.merchant_id IS NOT NULL OR l.merchant_id IS NOT NULL
     ORDER BY r.record;
$function$;
REVOKE ALL ON FUNCTION recon_owned(p_psp text, p_rows jsonb) FROM PUBLIC;
