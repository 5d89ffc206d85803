CREATE OR REPLACE FUNCTION recon_begin(p_psp text, p_dialect text, p_sha256 text, p_file text, p_rows integer, p_shard text)
 RETURNS bigint
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_id  bigint;
    v_r   recon_reports%ROWTYPE;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('payments-reconcile'));

    -- over shards (p_shard given) the tool asked every shard in its first
    -- phase: a shard that never saw the PSP may still own rows by nonce
    IF p_shard IS NULL AND NOT EXISTS (SELECT 1 FROM checkouts c WHERE c.psp = p_psp) THEN
        RAISE EXCEPTION 'unknown PSP "%": no checkout was ever registered with it', p_psp
            USING ERRCODE = 'PY011';
    END IF;

    SELECT * INTO v_r FROM recon_reports r WHERE r.sha256 = p_sha256;
    IF FOUND THEN
        IF v_r.psp <> p_psp OR v_r.dialect <> p_dialect THEN
            RAISE EXCEPTION 'this file was reconciled before as report % for PSP "%" (dialect %), not "%" (dialect %): nothing done',
                v_r.report_id, v_r.psp, v_r.dialect, p_psp, p_dialect
                USING ERRCODE = 'PY012';
        END IF;
        RETURN NULL;
    END IF;

    INSERT INTO recon_reports (psp, dialect, sha256, file_name, row_count, shard)
    VALUES (p_psp, p_dialect, p_sha256, left(coalesce(p_file, ''), 1000), p_rows, p_shard)
    RETURNING report_id INTO v_id;

    RETURN v_id;
END
$function$;
REVOKE ALL ON FUNCTION recon_begin(p_psp text, p_dialect text, p_sha256 text, p_file text, p_rows integer, p_shard text) FROM PUBLIC;
CREATE OR REPLACE FUNCTION recon_begin(p_psp text, p_dialect text, p_sha256 text, p_file text, p_rows integer)
 RETURNS bigint
 LANGUAGE sql
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT recon_begin(p_psp, p_dialect, p_sha256, p_file, p_rows, NULL);
$function$;
REVOKE ALL ON FUNCTION recon_begin(p_psp text, p_dialect text, p_sha256 text, p_file text, p_rows integer) FROM PUBLIC;
