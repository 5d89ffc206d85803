-- A report file is reconciled under the PSP it was first run for (review
-- of the operator tools, issue 14's stop).
--
-- 011/017 recognise a file run before by its sha256 alone and then do
-- nothing.  A file first run with the wrong --psp (another PSP's name, so
-- every row came out unclassified) could therefore never be run for the
-- right one: "reconciled before as report N: nothing done", exit 1, and its
-- checkouts' lost webhooks were never applied.  The same bytes under
-- another PSP or dialect are now refused with PY012 (exit 2, nothing
-- written), naming the report and the PSP they were run for, instead of a
-- "nothing done" that hid the mistake.  recon_begin is 017's otherwise.

CREATE OR REPLACE FUNCTION recon_begin(p_psp text, p_dialect text,
    p_sha256 text, p_file text, p_rows int)
RETURNS bigint
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_id  bigint;
    v_r   recon_reports%ROWTYPE;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('payments-reconcile'));

    IF NOT EXISTS (SELECT 1 FROM checkouts c WHERE c.psp = p_psp) THEN
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

    INSERT INTO recon_reports (psp, dialect, sha256, file_name, row_count)
    VALUES (p_psp, p_dialect, p_sha256, left(coalesce(p_file, ''), 1000), p_rows)
    RETURNING report_id INTO v_id;

    RETURN v_id;
END
$$;
