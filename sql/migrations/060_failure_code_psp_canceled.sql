-- A session the PSP canceled fails its checkout as psp_canceled: the shop
-- reads failure.code, and the PSP's cancel was spelt `cancelled`, one
-- letter from `canceled`, the shop's own cancel
-- (POST /v1/checkouts/{id}/cancel).  Renaming the label renames it in
-- every row that holds it.

ALTER TYPE pay_failure_code RENAME VALUE 'cancelled' TO 'psp_canceled';

COMMENT ON COLUMN checkouts.failure_code IS
    'why the checkout failed: declined, expired, psp_canceled (the PSP canceled the session), canceled (the merchant did, POST /v1/checkouts/{id}/cancel), registration_refused, risk_declined, risk_rejected, voided, authorization_expired (NULL: it never failed)';
