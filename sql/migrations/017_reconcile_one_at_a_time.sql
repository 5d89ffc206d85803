-- One reconciliation at a time, whatever its PSP (issue 14).  011 let one
-- run per PSP at a time; since 015 a run appends to a merchant's chain 0
-- (pay-outs, the fees row) and to its checkouts' chains in the order of the
-- report, so a Stripe report and an Adyen report of one merchant, run at
-- once, could each hold the chain the other wants next: PostgreSQL would
-- abort one of them with a deadlock.  Runs are batch jobs: the second now
-- waits for the first, and a second run of the same file then finds the
-- first's report, as before.  recon_begin is 011's otherwise.

CREATE OR REPLACE FUNCTION recon_begin(p_psp text, p_dialect text,
    p_sha256 text, p_file text, p_rows int)
RETURNS bigint
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    v_id  bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('payments-reconcile'));

    IF NOT EXISTS (SELECT 1 FROM checkouts c WHERE c.psp = p_psp) THEN
        RAISE EXCEPTION 'unknown PSP "%": no checkout was ever registered with it', p_psp
            USING ERRCODE = 'PY011';
    END IF;

    SELECT r.report_id INTO v_id FROM recon_reports r WHERE r.sha256 = p_sha256;
    IF FOUND THEN
        RETURN NULL;
    END IF;

    INSERT INTO recon_reports (psp, dialect, sha256, file_name, row_count)
    VALUES (p_psp, p_dialect, p_sha256, left(coalesce(p_file, ''), 1000), p_rows)
    RETURNING report_id INTO v_id;

    RETURN v_id;
END
$$;
