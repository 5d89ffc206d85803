-- Whether a dispute holds money the PSP never withdrew: OPEN, opened by an
-- inquiry, and nothing of it withdrawn since.  Earlier releases read an
-- inquiry's first news as the dispute opened (Stripe's
-- charge.dispute.created with a warning_* status, Adyen's
-- NOTIFICATION_OF_CHARGEBACK) and booked it psp_clearing -> disputes,
-- although the PSP withdraws nothing for an inquiry; this release records
-- it pending and books nothing (doc/MONEY.md, "An inquiry moves nothing").
-- What the inbox (psp_events) kept says which disputes those are:
--   opened by an inquiry  the event that opened it (DISPUTE_OPENED,
--                         applied or dispute_excess, about the dispute) is
--                         Adyen's NOTIFICATION_OF_CHARGEBACK, or Stripe's
--                         charge.dispute.created whose signed body says
--                         status warning_*;
--   nothing withdrawn     no event of its withdrawal is kept (Stripe's
--                         charge.dispute.funds_withdrawn, which releases
--                         before this one recorded as ignored about the
--                         dispute and this one as the dispute opened, or
--                         Adyen's CHARGEBACK), from 31 days before the
--                         opening event on (a PSP's retries of it, or
--                         ours, never reorder two events further apart).
-- A dispute whose opening event is no longer kept (the inbox keeps
-- payments_sweeper inbox_months= months) is not one: nothing is known of
-- it.  Reads only; the caller holds the dispute's locks
-- (dispute_inquiry_closed), or lists them for a person
-- (doc/OPERATIONS.md, "Upgrading").
CREATE OR REPLACE FUNCTION dispute_inquiry_held(p_merchant text, p_dispute_id text)
 RETURNS boolean
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    d            disputes%ROWTYPE;
    o            record;
    v_status     text;
    v_withdrawn  boolean;
BEGIN
    SELECT * INTO d FROM disputes dd
     WHERE dd.merchant_id = p_merchant AND dd.dispute_id = p_dispute_id;
    IF d.dispute_id IS NULL OR d.status <> 'OPEN' THEN
        RETURN false;
    END IF;

    -- the event that opened it, by the checkout's index
    SELECT pe.type, pe.body, pe.received_at INTO o
      FROM psp_events pe
     WHERE pe.checkout_id = d.checkout_id AND pe.merchant_id = d.merchant_id
       AND pe.psp = d.psp AND pe.object_ref = d.psp_dispute_ref
       AND pe.kind = 'DISPUTE_OPENED' AND pe.outcome IN ('applied', 'dispute_excess')
     ORDER BY pe.received_at
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN false;
    END IF;

    IF o.type = 'charge.dispute.created' THEN
        -- the bytes were verified and read as JSON when kept; bytes jsonb
        -- refuses (a \u0000) say nothing of an inquiry
        BEGIN
            v_status := convert_from(o.body, 'UTF8')::jsonb #>> '{data,object,status}';
        EXCEPTION WHEN OTHERS THEN
            v_status := NULL;
        END;
        IF v_status IS NULL OR v_status NOT LIKE 'warning\_%' THEN
            RETURN false;
        END IF;
    ELSIF o.type <> 'NOTIFICATION_OF_CHARGEBACK' THEN
        RETURN false;
    END IF;

    -- its withdrawal, kept with or without the checkout (the months from
    -- the opening on: planned with the bound, so no older month is read)
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM psp_events pe'
            ' WHERE pe.received_at >= $1 AND pe.psp = $2 AND pe.object_ref = $3'
            ' AND pe.type IN (''charge.dispute.funds_withdrawn'', ''CHARGEBACK''))'
       INTO v_withdrawn USING o.received_at - interval '31 days', d.psp, d.psp_dispute_ref;
    RETURN NOT v_withdrawn;
END
$function$;
REVOKE ALL ON FUNCTION dispute_inquiry_held(p_merchant text, p_dispute_id text) FROM PUBLIC;
