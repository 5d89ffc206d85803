-- The format checks without counted repetition in their patterns (issue 14).
--
-- PostgreSQL's regular expressions unroll a counted repetition: '{1,255}'
-- becomes 255 copies of the character class, and the matcher builds its
-- states afresh at every evaluation.  Measured on the bench machine, per row
-- inserted into a table with only that check:
--
--   idem_key ~ '^[ -~]{1,255}$'   a 30-character key     43 µs
--                                 a UUID (36 characters)  95 µs
--                                 255 characters         270 µs
--   the same with '*' and length(idem_key) compared apart  1.2-5.6 µs
--
-- and 2-4 µs against 0.1-0.4 µs for the 40- and 64-character ids and the
-- 64-digit fingerprint.  A table's CHECK constraints are evaluated on every
-- INSERT and every UPDATE of a row, whatever columns change, so a
-- registration paid for the key's pattern twice (pay_claim inserts the key,
-- pay_finish updates it): 0.19 ms with a UUID key, about a seventh of the
-- registration's database CPU.
--
-- Each constraint below keeps its name and accepts exactly the same values:
-- '^C{m,n}$' is 'length(x) BETWEEN m AND n AND x ~ ^C*$' (length() counts
-- characters, as the pattern does), '^P C{n}$' with a literal prefix P is
-- 'length(x) = length(P) + n AND x ~ ^P C*$'.  The three-letter currency
-- patterns cost no more than their replacement would and are left alone.

ALTER TABLE merchants
    DROP CONSTRAINT merchants_id_format,
    ADD CONSTRAINT merchants_id_format
        CHECK (length(merchant_id) BETWEEN 1 AND 23 AND merchant_id ~ '^[a-z0-9_]*$');

ALTER TABLE api_keys
    DROP CONSTRAINT api_keys_hash_format,
    ADD CONSTRAINT api_keys_hash_format
        CHECK (length(key_hash) = 64 AND key_hash ~ '^[0-9a-f]*$'),
    DROP CONSTRAINT api_keys_id_format,
    ADD CONSTRAINT api_keys_id_format
        CHECK (length(key_id) = 12 AND key_id ~ '^[A-Za-z0-9]*$');

ALTER TABLE idempotency_keys
    DROP CONSTRAINT idempotency_keys_fingerprint_format,
    ADD CONSTRAINT idempotency_keys_fingerprint_format
        CHECK (length(fingerprint) = 64 AND fingerprint ~ '^[0-9a-f]*$'),
    DROP CONSTRAINT idempotency_keys_key_format,
    ADD CONSTRAINT idempotency_keys_key_format
        CHECK (length(idem_key) BETWEEN 1 AND 255 AND idem_key ~ '^[ -~]*$');

ALTER TABLE checkouts
    DROP CONSTRAINT checkouts_id_format,
    ADD CONSTRAINT checkouts_id_format
        CHECK (length(checkout_id) BETWEEN 1 AND 40 AND checkout_id ~ '^[A-Za-z0-9_-]*$'),
    DROP CONSTRAINT checkouts_psp_format,
    ADD CONSTRAINT checkouts_psp_format
        CHECK (length(psp) BETWEEN 1 AND 32 AND psp ~ '^[A-Za-z0-9_.-]*$');

ALTER TABLE payment_orders
    DROP CONSTRAINT payment_orders_seller_format,
    ADD CONSTRAINT payment_orders_seller_format
        CHECK (length(seller_account) BETWEEN 1 AND 64
               AND seller_account ~ '^[A-Za-z0-9_.-]*$'),
    DROP CONSTRAINT payment_orders_id_format,
    ADD CONSTRAINT payment_orders_id_format
        CHECK (length(payment_order_id) BETWEEN 1 AND 40
               AND payment_order_id ~ '^[A-Za-z0-9_-]*$');

ALTER TABLE sellers
    DROP CONSTRAINT sellers_psp_format,
    ADD CONSTRAINT sellers_psp_format
        CHECK (length(psp) BETWEEN 1 AND 32 AND psp ~ '^[A-Za-z0-9_.-]*$'),
    DROP CONSTRAINT sellers_account_format,
    ADD CONSTRAINT sellers_account_format
        CHECK (length(seller_account) BETWEEN 1 AND 64
               AND seller_account ~ '^[A-Za-z0-9_.-]*$'),
    DROP CONSTRAINT sellers_destination_format,
    ADD CONSTRAINT sellers_destination_format
        CHECK (length(destination) BETWEEN 1 AND 128
               AND destination ~ '^[A-Za-z0-9_.:-]*$');

ALTER TABLE refunds
    DROP CONSTRAINT refunds_id_format,
    ADD CONSTRAINT refunds_id_format
        CHECK (length(refund_id) = 27 AND refund_id ~ '^rf_[0-9a-f]*$');

ALTER TABLE disputes
    DROP CONSTRAINT disputes_id_format,
    ADD CONSTRAINT disputes_id_format
        CHECK (length(dispute_id) = 27 AND dispute_id ~ '^dp_[0-9a-f]*$');

ALTER TABLE payouts
    DROP CONSTRAINT payouts_id_format,
    ADD CONSTRAINT payouts_id_format
        CHECK (length(payout_id) = 28 AND payout_id ~ '^pyo_[0-9a-f]*$');

ALTER TABLE recon_reports
    DROP CONSTRAINT recon_reports_psp,
    ADD CONSTRAINT recon_reports_psp
        CHECK (length(psp) BETWEEN 1 AND 32 AND psp ~ '^[A-Za-z0-9_.-]*$'),
    DROP CONSTRAINT recon_reports_sha256,
    ADD CONSTRAINT recon_reports_sha256
        CHECK (length(sha256) = 64 AND sha256 ~ '^[0-9a-f]*$');

ALTER TABLE recon_mismatches
    DROP CONSTRAINT recon_mismatches_kind,
    ADD CONSTRAINT recon_mismatches_kind
        CHECK (length(kind) BETWEEN 1 AND 60 AND kind ~ '^[a-z_]*$');

ALTER TABLE notify_endpoints
    DROP CONSTRAINT notify_endpoints_id_format,
    ADD CONSTRAINT notify_endpoints_id_format
        CHECK (length(endpoint_id) = 27 AND endpoint_id ~ '^ep_[0-9a-f]*$');

ALTER TABLE notifications
    DROP CONSTRAINT notifications_id_format,
    ADD CONSTRAINT notifications_id_format
        CHECK (length(notification_id) = 28 AND notification_id ~ '^msg_[0-9a-f]*$');
