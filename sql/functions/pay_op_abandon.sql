-- Give up a refund, capture (or void) or pay-out that no attempt can have
-- reached its PSP: its holder (the key in progress under p_lease, naming
-- p_op_id) found it older than the PSP keeps its Idempotency-Key, so it is
-- never sent again, and no webhook of it will ever come.  In one
-- transaction: the operation FAILED with p_failure (1,000 characters at
-- most; its notification queued at commit, as for a refusal: the refund's
-- amount refundable again, the capture's capturable, the pay-out's
-- available), the key done with the answer, audit row 'refund:abandoned' /
-- 'capture:abandoned' / 'void:abandoned' / 'payout:abandoned'.  Nothing was
-- booked for it, so nothing is unbooked.  Only an operation still PENDING,
-- without the PSP's id, whose psp_contact is 'trying' (this lease's claim
-- found 'none': every earlier attempt said it sent nothing, and the holder
-- sent nothing yet); anything else returns no row and changes nothing (an
-- attempt may have reached the PSP: it waits for its webhook or a person).
-- Locks the key row, then the operation's.
CREATE OR REPLACE FUNCTION pay_op_abandon(p_merchant text, p_idem_key text, p_lease bigint, p_op_id text, p_failure text, p_response_status integer, p_response_body text)
 RETURNS TABLE(response_status integer, response_body text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    k         idempotency_keys%ROWTYPE;
    v_kind    text;
    v_co      text;
    v_action  text;
    v_open    boolean;
BEGIN
    SELECT * INTO k FROM idempotency_keys ik
     WHERE ik.merchant_id = p_merchant AND ik.idem_key = p_idem_key
       FOR UPDATE;
    IF NOT FOUND OR k.state <> 'in_progress' OR k.lease <> p_lease
       OR k.checkout_id IS DISTINCT FROM p_op_id THEN
        RETURN;
    END IF;

    SELECT ok.kind INTO v_kind FROM operation_keys ok
     WHERE ok.merchant_id = p_merchant AND ok.idem_key = p_idem_key
       AND ok.fingerprint = k.fingerprint AND ok.op_id = p_op_id;
    IF NOT FOUND THEN
        RETURN;
    END IF;

    -- a refund and a pay-out by their keys, their state told by the row:
    -- "status = 'PENDING'" in the WHERE is refunds_pending_seller's and
    -- payouts_seller's predicate, and a plan made on empty tables walked
    -- the merchant's operations in flight through them (pay_refund_claim)
    IF v_kind = 'refund' THEN
        SELECT x.status = 'PENDING' AND x.psp_refund_id IS NULL AND x.psp_contact = 'trying'
          INTO v_open
          FROM refunds x
         WHERE x.merchant_id = p_merchant AND x.refund_id = p_op_id
           FOR UPDATE;
        IF v_open THEN
            UPDATE refunds x
               SET status = 'FAILED', failure = left(p_failure, 1000), psp_contact = 'none'
             WHERE x.merchant_id = p_merchant AND x.refund_id = p_op_id
            RETURNING x.checkout_id, 'refund:abandoned' INTO v_co, v_action;
        END IF;
    ELSIF v_kind = 'capture' THEN
        UPDATE captures x
           SET status = 'FAILED', failure = left(p_failure, 1000), psp_contact = 'none'
         WHERE x.merchant_id = p_merchant AND x.capture_id = p_op_id
           AND x.status = 'PENDING' AND x.psp_ref IS NULL
           AND x.psp_contact = 'trying'
        RETURNING x.checkout_id, x.kind || ':abandoned' INTO v_co, v_action;
    ELSE
        SELECT x.status = 'PENDING' AND x.psp_payout_id IS NULL AND x.psp_contact = 'trying'
          INTO v_open
          FROM payouts x
         WHERE x.merchant_id = p_merchant AND x.payout_id = p_op_id
           FOR UPDATE;
        IF v_open THEN
            UPDATE payouts x
               SET status = 'FAILED', failure = left(p_failure, 1000), psp_contact = 'none'
             WHERE x.merchant_id = p_merchant AND x.payout_id = p_op_id
            RETURNING NULL::text, 'payout:abandoned' INTO v_co, v_action;
        END IF;
    END IF;
    IF v_action IS NULL THEN
        RETURN;
    END IF;

    PERFORM op_key_done(p_merchant, p_idem_key, p_lease, p_response_status, p_response_body);

    PERFORM audit_append(p_merchant, v_co, v_action,
        jsonb_build_object(CASE v_kind WHEN 'refund' THEN 'refund_id'
                                       WHEN 'capture' THEN 'capture_id'
                                       ELSE 'payout_id' END, p_op_id,
                           'reason', 'psp_never_reached'));

    RETURN QUERY SELECT p_response_status, p_response_body;
END
$function$;
REVOKE ALL ON FUNCTION pay_op_abandon(p_merchant text, p_idem_key text, p_lease bigint, p_op_id text, p_failure text, p_response_status integer, p_response_body text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pay_op_abandon(p_merchant text, p_idem_key text, p_lease bigint, p_op_id text, p_failure text, p_response_status integer, p_response_body text) TO payments_gateway;
