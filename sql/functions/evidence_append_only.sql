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
-- Made, or made anew, only when missing or other than written here
-- (trigger_ensure.sql).
SELECT trigger_ensure(
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
    'CREATE TRIGGER operation_keys_no_truncate BEFORE TRUNCATE ON public.operation_keys FOR EACH STATEMENT EXECUTE FUNCTION public.evidence_append_only()');
