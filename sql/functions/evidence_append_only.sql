-- Evidence is append-only: no UPDATE, DELETE or TRUNCATE, except the one
-- write of a webhook event's outcome, checked on webhook_events alone (the
-- only guarded table with an outcome).
CREATE OR REPLACE FUNCTION evidence_append_only()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'webhook_events' THEN
        IF OLD.outcome = 'received' AND NEW.outcome <> 'received'
           AND NEW.psp = OLD.psp AND NEW.event_id = OLD.event_id
           AND NEW.kind = OLD.kind AND NEW.type = OLD.type
           AND NEW.received_at = OLD.received_at THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'PY002';
END
$function$;
REVOKE ALL ON FUNCTION evidence_append_only() FROM PUBLIC;

-- The triggers that run it, on the evidence tables: the audit log, the ledger
-- and the webhook events.
-- Made, or made anew, only when missing or other than written here (as
-- pg_get_triggerdef writes it): CREATE OR REPLACE TRIGGER locks its table
-- against every write until the upgrade commits (CONTRIBUTING.md, "SQL").
DO $$
DECLARE
    v_path  text := current_setting('search_path');
    v_def   text;
BEGIN
    PERFORM set_config('search_path', '', true);
    FOREACH v_def IN ARRAY ARRAY[
        'CREATE TRIGGER audit_log_no_change BEFORE DELETE OR UPDATE ON public.audit_log FOR EACH ROW EXECUTE FUNCTION public.evidence_append_only()',
        'CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON public.audit_log FOR EACH STATEMENT EXECUTE FUNCTION public.evidence_append_only()',
        'CREATE TRIGGER ledger_entries_no_change BEFORE DELETE OR UPDATE ON public.ledger_entries FOR EACH ROW EXECUTE FUNCTION public.evidence_append_only()',
        'CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON public.ledger_entries FOR EACH STATEMENT EXECUTE FUNCTION public.evidence_append_only()',
        'CREATE TRIGGER ledger_transactions_no_change BEFORE DELETE OR UPDATE ON public.ledger_transactions FOR EACH ROW EXECUTE FUNCTION public.evidence_append_only()',
        'CREATE TRIGGER ledger_transactions_no_truncate BEFORE TRUNCATE ON public.ledger_transactions FOR EACH STATEMENT EXECUTE FUNCTION public.evidence_append_only()',
        'CREATE TRIGGER webhook_events_no_change BEFORE DELETE OR UPDATE ON public.webhook_events FOR EACH ROW EXECUTE FUNCTION public.evidence_append_only()',
        'CREATE TRIGGER webhook_events_no_truncate BEFORE TRUNCATE ON public.webhook_events FOR EACH STATEMENT EXECUTE FUNCTION public.evidence_append_only()',
        -- and the requests that made each refund, capture and pay-out, which a
        -- retry long after its key was purged finds its operation by
        'CREATE TRIGGER operation_keys_no_change BEFORE DELETE OR UPDATE ON public.operation_keys FOR EACH ROW EXECUTE FUNCTION public.evidence_append_only()',
        'CREATE TRIGGER operation_keys_no_truncate BEFORE TRUNCATE ON public.operation_keys FOR EACH STATEMENT EXECUTE FUNCTION public.evidence_append_only()'
    ] LOOP
        IF NOT EXISTS (SELECT FROM pg_trigger
                        WHERE tgname = split_part(v_def, ' ', 3)
                          AND pg_get_triggerdef(oid) = v_def) THEN
            EXECUTE regexp_replace(v_def, '^CREATE TRIGGER', 'CREATE OR REPLACE TRIGGER');
        END IF;
    END LOOP;
    PERFORM set_config('search_path', v_path, true);
END
$$;
