-- The schema every later migration builds on: types, tables, sequences,
-- constraints, indexes, comments, the gateway's role and the ledger's
-- accounts.  No functions and no triggers: each function, with the
-- triggers that run it and the CHECK that calls it, is defined in its
-- own file in sql/functions/, which payments-migrate applies after the
-- migrations.  The gateway's role reaches the tables only through those
-- functions (SECURITY DEFINER): it is granted nothing here.

SET client_min_messages = warning;

-- The gateway logs in (NOLOGIN would make the role useless); how it
-- authenticates (password, cert, peer) is pg_hba.conf's business.
-- Roles are per cluster while the migration lock is per database: two
-- databases of one cluster migrating at once may both try to create it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'payments_gateway') THEN
        BEGIN
            CREATE ROLE payments_gateway LOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;   -- the other database's migration made it first
        END;
    ELSIF NOT (SELECT rolcanlogin FROM pg_roles WHERE rolname = 'payments_gateway') THEN
        ALTER ROLE payments_gateway LOGIN;
    END IF;
END
$$;

CREATE TYPE public.pay_status AS ENUM (
    'NOT_STARTED',
    'EXECUTING',
    'SUCCESS',
    'FAILED'
);

CREATE TABLE public.api_keys (
    key_id text NOT NULL,
    merchant_id text NOT NULL,
    key_hash text NOT NULL,
    mode text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    revoked_at timestamp with time zone,
    CONSTRAINT api_keys_hash_format CHECK (((length(key_hash) = 64) AND (key_hash ~ '^[0-9a-f]*$'::text))),
    CONSTRAINT api_keys_id_format CHECK (((length(key_id) = 12) AND (key_id ~ '^[A-Za-z0-9]*$'::text))),
    CONSTRAINT api_keys_mode CHECK ((mode = ANY (ARRAY['test'::text, 'live'::text])))
);
ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (key_id);
CREATE INDEX api_keys_merchant ON public.api_keys USING btree (merchant_id);

CREATE TABLE public.audit_heads (
    merchant_id text NOT NULL,
    seq bigint NOT NULL,
    hash bytea NOT NULL,
    chain smallint DEFAULT 0 NOT NULL,
    prev_hash bytea
);
ALTER TABLE ONLY public.audit_heads
    ADD CONSTRAINT audit_heads_pkey PRIMARY KEY (merchant_id, chain);

CREATE TABLE public.audit_log (
    merchant_id text NOT NULL,
    seq bigint NOT NULL,
    at timestamp with time zone NOT NULL,
    checkout_id text,
    action text NOT NULL,
    detail jsonb NOT NULL,
    prev_hash bytea NOT NULL,
    hash bytea NOT NULL,
    chain smallint DEFAULT 0 NOT NULL
);
ALTER TABLE ONLY public.audit_log
    ADD CONSTRAINT audit_log_pkey PRIMARY KEY (merchant_id, chain, seq);

CREATE TABLE public.checkout_sweeps (
    merchant_id text NOT NULL,
    checkout_id text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    last_at timestamp with time zone,
    last_answer text,
    alerted_at timestamp with time zone,
    session_result text,
    CONSTRAINT checkout_sweeps_answer CHECK ((length(last_answer) <= 100)),
    CONSTRAINT checkout_sweeps_session_result CHECK (((length(session_result) BETWEEN 1 AND 4096) AND (session_result ~ '^[\x21-\x7e]+$'::text)))
);
ALTER TABLE ONLY public.checkout_sweeps
    ADD CONSTRAINT checkout_sweeps_pkey PRIMARY KEY (merchant_id, checkout_id);

CREATE TABLE public.checkouts (
    merchant_id text NOT NULL,
    checkout_id text NOT NULL,
    psp text NOT NULL,
    nonce text NOT NULL,
    currency text NOT NULL,
    amount_total bigint NOT NULL,
    success_url text NOT NULL,
    cancel_url text NOT NULL,
    buyer_email text,
    status public.pay_status NOT NULL,
    psp_request text NOT NULL,
    psp_token text,
    psp_url text,
    expires_at timestamp with time zone NOT NULL,
    failure text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    commission_bps integer,
    commission_fixed bigint,
    psp_payment_ref text
)
WITH (fillfactor='80');
COMMENT ON COLUMN public.checkouts.psp_token IS 'the PSP session token: "v1." sealed text (associated data: nonce), or legacy plaintext';
COMMENT ON COLUMN public.checkouts.psp_url IS 'the PSP hosted page: "v1." sealed text (associated data: ''psp_url:'' || nonce), or legacy plaintext';
ALTER TABLE ONLY public.checkouts
    ADD CONSTRAINT checkouts_pkey PRIMARY KEY (merchant_id, checkout_id);
CREATE INDEX checkouts_executing_since ON public.checkouts USING btree (created_at) WHERE (status = 'EXECUTING'::public.pay_status);

CREATE TABLE public.dispute_parts (
    merchant_id text NOT NULL,
    dispute_id text NOT NULL,
    checkout_id text NOT NULL,
    payment_order_id text NOT NULL,
    seller_account text NOT NULL,
    amount bigint NOT NULL,
    currency text NOT NULL,
    CONSTRAINT dispute_parts_amount CHECK ((amount >= 0))
);
ALTER TABLE ONLY public.dispute_parts
    ADD CONSTRAINT dispute_parts_pkey PRIMARY KEY (merchant_id, dispute_id, payment_order_id);
CREATE INDEX dispute_parts_order ON public.dispute_parts USING btree (merchant_id, payment_order_id);
CREATE INDEX dispute_parts_seller ON public.dispute_parts USING btree (merchant_id, seller_account, currency);

CREATE TABLE public.disputes (
    merchant_id text NOT NULL,
    dispute_id text NOT NULL,
    psp text NOT NULL,
    psp_dispute_ref text NOT NULL,
    checkout_id text NOT NULL,
    amount bigint NOT NULL,
    currency text NOT NULL,
    status text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT disputes_amount CHECK ((amount > 0)),
    CONSTRAINT disputes_currency CHECK ((currency ~ '^[A-Z]{3}$'::text)),
    CONSTRAINT disputes_id_format CHECK (((length(dispute_id) = 27) AND (dispute_id ~ '^dp_[0-9a-f]*$'::text))),
    CONSTRAINT disputes_ref CHECK (((length(psp_dispute_ref) >= 1) AND (length(psp_dispute_ref) <= 128))),
    CONSTRAINT disputes_status CHECK ((status = ANY (ARRAY['OPEN'::text, 'WON'::text, 'LOST'::text])))
);
ALTER TABLE ONLY public.disputes
    ADD CONSTRAINT disputes_pkey PRIMARY KEY (merchant_id, dispute_id);
CREATE UNIQUE INDEX disputes_psp_ref ON public.disputes USING btree (psp, psp_dispute_ref);

CREATE TABLE public.idempotency_keys (
    merchant_id text NOT NULL,
    idem_key text NOT NULL,
    fingerprint text NOT NULL,
    state text NOT NULL,
    lease bigint NOT NULL,
    lease_until timestamp with time zone,
    checkout_id text,
    response_status integer,
    response_body text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL
)
WITH (fillfactor='80');
ALTER TABLE ONLY public.idempotency_keys
    ADD CONSTRAINT idempotency_keys_pkey PRIMARY KEY (merchant_id, idem_key);
CREATE INDEX idempotency_keys_expiry ON public.idempotency_keys USING btree (expires_at);

CREATE TABLE public.ledger_accounts (
    account text NOT NULL,
    description text NOT NULL,
    CONSTRAINT ledger_accounts_name CHECK (((length(account) >= 1) AND (length(account) <= 200)))
);
ALTER TABLE ONLY public.ledger_accounts
    ADD CONSTRAINT ledger_accounts_pkey PRIMARY KEY (account);

CREATE TABLE public.ledger_entries (
    merchant_id text NOT NULL,
    txn_id bigint NOT NULL,
    entry_no integer NOT NULL,
    account text NOT NULL,
    amount bigint NOT NULL,
    currency text NOT NULL
);
ALTER TABLE ONLY public.ledger_entries
    ADD CONSTRAINT ledger_entries_pkey PRIMARY KEY (merchant_id, txn_id, entry_no);

CREATE TABLE public.ledger_transactions (
    merchant_id text NOT NULL,
    txn_id bigint NOT NULL,
    checkout_id text,
    payment_order_id text,
    source text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    kind text DEFAULT 'payment'::text NOT NULL,
    object_id text
);
CREATE SEQUENCE public.ledger_transactions_txn_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.ledger_transactions_txn_id_seq OWNED BY public.ledger_transactions.txn_id;
ALTER TABLE ONLY public.ledger_transactions ALTER COLUMN txn_id SET DEFAULT nextval('public.ledger_transactions_txn_id_seq'::regclass);
ALTER TABLE ONLY public.ledger_transactions
    ADD CONSTRAINT ledger_transactions_pkey PRIMARY KEY (merchant_id, txn_id);
CREATE INDEX ledger_transactions_checkout ON public.ledger_transactions USING btree (merchant_id, checkout_id);

CREATE TABLE public.merchant_commission_fixed (
    merchant_id text NOT NULL,
    currency text NOT NULL,
    amount bigint NOT NULL,
    CONSTRAINT merchant_commission_fixed_amount CHECK ((amount >= 0)),
    CONSTRAINT merchant_commission_fixed_currency CHECK ((currency ~ '^[A-Z]{3}$'::text))
);
ALTER TABLE ONLY public.merchant_commission_fixed
    ADD CONSTRAINT merchant_commission_fixed_pkey PRIMARY KEY (merchant_id, currency);

CREATE TABLE public.merchant_return_origins (
    merchant_id text NOT NULL,
    origin text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT merchant_return_origins_format CHECK (((origin ~ '^https://[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[1-9][0-9]{0,4})?$'::text) AND (length(origin) <= 300)))
);
ALTER TABLE ONLY public.merchant_return_origins
    ADD CONSTRAINT merchant_return_origins_pkey PRIMARY KEY (merchant_id, origin);

CREATE TABLE public.merchants (
    merchant_id text NOT NULL,
    name text DEFAULT ''::text NOT NULL,
    mode text NOT NULL,
    disabled boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    commission_bps integer DEFAULT 0 NOT NULL,
    CONSTRAINT merchants_commission_bps CHECK (((commission_bps >= 0) AND (commission_bps <= 10000))),
    CONSTRAINT merchants_id_format CHECK (((length(merchant_id) BETWEEN 1 AND 23) AND (merchant_id ~ '^[a-z0-9_]*$'::text))),
    CONSTRAINT merchants_mode CHECK ((mode = ANY (ARRAY['test'::text, 'live'::text]))),
    CONSTRAINT merchants_name_length CHECK ((length(name) <= 200))
);
ALTER TABLE ONLY public.merchants
    ADD CONSTRAINT merchants_pkey PRIMARY KEY (merchant_id);

CREATE TABLE public.notifications (
    merchant_id text NOT NULL,
    notification_id text NOT NULL,
    endpoint_id text NOT NULL,
    event_type text NOT NULL,
    checkout_id text,
    object_id text NOT NULL,
    sequence integer NOT NULL,
    payload text NOT NULL,
    status text DEFAULT 'PENDING'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    next_at timestamp with time zone DEFAULT now() NOT NULL,
    lease_owner text,
    lease_until timestamp with time zone,
    last_status integer,
    last_error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    delivered_at timestamp with time zone
);
ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_pkey PRIMARY KEY (merchant_id, notification_id);
CREATE INDEX notifications_delivered ON public.notifications USING btree (delivered_at) WHERE (status = 'DELIVERED'::text);
CREATE INDEX notifications_failed ON public.notifications USING btree (merchant_id, created_at DESC, notification_id DESC) WHERE (status = 'FAILED'::text);
CREATE INDEX notifications_leased ON public.notifications USING btree (merchant_id, endpoint_id) WHERE ((status = 'PENDING'::text) AND (lease_owner IS NOT NULL));
CREATE INDEX notifications_list ON public.notifications USING btree (merchant_id, created_at DESC);
CREATE INDEX notifications_pending_endpoint ON public.notifications USING btree (merchant_id, endpoint_id, next_at) WHERE (status = 'PENDING'::text);

CREATE TABLE public.notify_endpoints (
    merchant_id text NOT NULL,
    endpoint_id text NOT NULL,
    url text NOT NULL,
    host text NOT NULL,
    event_types text[] DEFAULT '{}'::text[] NOT NULL,
    secret_sealed text NOT NULL,
    prev_secret_sealed text,
    prev_until timestamp with time zone,
    disabled_at timestamp with time zone,
    disabled_reason text,
    failures integer DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT notify_endpoints_host CHECK (((host = lower(host)) AND ((length(host) >= 1) AND (length(host) <= 253)))),
    CONSTRAINT notify_endpoints_id_format CHECK (((length(endpoint_id) = 27) AND (endpoint_id ~ '^ep_[0-9a-f]*$'::text))),
    CONSTRAINT notify_endpoints_prev CHECK (((prev_secret_sealed IS NULL) = (prev_until IS NULL))),
    CONSTRAINT notify_endpoints_prev_secret CHECK ((prev_secret_sealed ~~ 'v1.%'::text)),
    CONSTRAINT notify_endpoints_reason CHECK ((length(disabled_reason) <= 200)),
    CONSTRAINT notify_endpoints_secret CHECK ((secret_sealed ~~ 'v1.%'::text)),
    CONSTRAINT notify_endpoints_url CHECK (((url ~ '^https://'::text) AND (length(url) <= 2048)))
);
ALTER TABLE ONLY public.notify_endpoints
    ADD CONSTRAINT notify_endpoints_pkey PRIMARY KEY (merchant_id, endpoint_id);

CREATE TABLE public.notify_sequences (
    merchant_id text NOT NULL,
    subject text NOT NULL,
    last integer NOT NULL
);
ALTER TABLE ONLY public.notify_sequences
    ADD CONSTRAINT notify_sequences_pkey PRIMARY KEY (merchant_id, subject);

CREATE TABLE public.order_events (
    merchant_id text NOT NULL,
    event_id bigint NOT NULL,
    checkout_id text NOT NULL,
    payment_order_id text NOT NULL,
    from_status public.pay_status NOT NULL,
    to_status public.pay_status NOT NULL,
    source text NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT order_events_source CHECK (((length(source) >= 1) AND (length(source) <= 300)))
);
CREATE SEQUENCE public.order_events_event_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.order_events_event_id_seq OWNED BY public.order_events.event_id;
ALTER TABLE ONLY public.order_events ALTER COLUMN event_id SET DEFAULT nextval('public.order_events_event_id_seq'::regclass);
ALTER TABLE ONLY public.order_events
    ADD CONSTRAINT order_events_pkey PRIMARY KEY (merchant_id, checkout_id, event_id);

CREATE TABLE public.payment_orders (
    merchant_id text NOT NULL,
    payment_order_id text NOT NULL,
    checkout_id text NOT NULL,
    line_no integer NOT NULL,
    seller_account text NOT NULL,
    amount bigint NOT NULL,
    currency text NOT NULL,
    status public.pay_status NOT NULL,
    ledger_updated boolean DEFAULT false NOT NULL,
    wallet_updated boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    commission bigint
)
WITH (fillfactor='80');
ALTER TABLE ONLY public.payment_orders
    ADD CONSTRAINT payment_orders_checkout_order_key UNIQUE (merchant_id, checkout_id, payment_order_id);
ALTER TABLE ONLY public.payment_orders
    ADD CONSTRAINT payment_orders_pkey PRIMARY KEY (merchant_id, payment_order_id);

CREATE TABLE public.payouts (
    merchant_id text NOT NULL,
    payout_id text NOT NULL,
    seller_account text NOT NULL,
    psp text NOT NULL,
    destination text NOT NULL,
    nonce text NOT NULL,
    amount bigint NOT NULL,
    currency text NOT NULL,
    status text NOT NULL,
    psp_payout_id text,
    failure text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT payouts_amount CHECK ((amount > 0)),
    CONSTRAINT payouts_currency CHECK ((currency ~ '^[A-Z]{3}$'::text)),
    CONSTRAINT payouts_failure CHECK ((length(failure) <= 1000)),
    CONSTRAINT payouts_id_format CHECK (((length(payout_id) = 28) AND (payout_id ~ '^pyo_[0-9a-f]*$'::text))),
    CONSTRAINT payouts_nonce CHECK ((nonce = ((merchant_id || ':'::text) || payout_id))),
    CONSTRAINT payouts_psp_id CHECK (((length(psp_payout_id) >= 1) AND (length(psp_payout_id) <= 128))),
    CONSTRAINT payouts_status CHECK ((status = ANY (ARRAY['PENDING'::text, 'PAID'::text, 'FAILED'::text])))
);
ALTER TABLE ONLY public.payouts
    ADD CONSTRAINT payouts_pkey PRIMARY KEY (merchant_id, payout_id);
CREATE INDEX payouts_psp_created ON public.payouts USING btree (psp, created_at);
CREATE UNIQUE INDEX payouts_psp_id ON public.payouts USING btree (psp, psp_payout_id);
CREATE INDEX payouts_seller ON public.payouts USING btree (merchant_id, seller_account, currency) WHERE (status = 'PENDING'::text);

CREATE TABLE public.psp_payments (
    psp text NOT NULL,
    payment_ref text NOT NULL,
    merchant_id text NOT NULL,
    checkout_id text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);
ALTER TABLE ONLY public.psp_payments
    ADD CONSTRAINT psp_payments_pkey PRIMARY KEY (psp, payment_ref);

CREATE TABLE public.psp_tokens (
    psp text NOT NULL,
    psp_token text NOT NULL,
    merchant_id text NOT NULL,
    checkout_id text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);
COMMENT ON COLUMN public.psp_tokens.psp_token IS 'the blind index of the PSP token (64 hex, domain ''psp_token:'' || psp), or a legacy plaintext token';
ALTER TABLE ONLY public.psp_tokens
    ADD CONSTRAINT psp_tokens_pkey PRIMARY KEY (psp, psp_token);

CREATE TABLE public.recon_mismatches (
    mismatch_id bigint NOT NULL,
    report_id bigint NOT NULL,
    record integer,
    psp text NOT NULL,
    class text NOT NULL,
    kind text NOT NULL,
    merchant_id text,
    checkout_id text,
    currency text,
    amount bigint,
    evidence jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    resolved_at timestamp with time zone,
    resolution text,
    object_id text,
    CONSTRAINT recon_mismatches_class CHECK ((class = ANY (ARRAY['auto_fixed'::text, 'needs_person'::text, 'unclassified'::text]))),
    CONSTRAINT recon_mismatches_currency CHECK ((currency ~ '^[A-Z]{3}$'::text)),
    CONSTRAINT recon_mismatches_kind CHECK (((length(kind) BETWEEN 1 AND 60) AND (kind ~ '^[a-z_]*$'::text))),
    CONSTRAINT recon_mismatches_resolution CHECK ((length(resolution) <= 1000))
);
CREATE SEQUENCE public.recon_mismatches_mismatch_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.recon_mismatches_mismatch_id_seq OWNED BY public.recon_mismatches.mismatch_id;
ALTER TABLE ONLY public.recon_mismatches ALTER COLUMN mismatch_id SET DEFAULT nextval('public.recon_mismatches_mismatch_id_seq'::regclass);
ALTER TABLE ONLY public.recon_mismatches
    ADD CONSTRAINT recon_mismatches_pkey PRIMARY KEY (mismatch_id);
CREATE INDEX recon_mismatches_open ON public.recon_mismatches USING btree (psp, kind, merchant_id, checkout_id) WHERE (resolved_at IS NULL);
CREATE INDEX recon_mismatches_report ON public.recon_mismatches USING btree (report_id, class);

CREATE TABLE public.recon_reports (
    report_id bigint NOT NULL,
    psp text NOT NULL,
    dialect text NOT NULL,
    sha256 text NOT NULL,
    file_name text NOT NULL,
    row_count integer NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone,
    CONSTRAINT recon_reports_dialect CHECK ((dialect = ANY (ARRAY['stripe'::text, 'adyen'::text, 'generic'::text]))),
    CONSTRAINT recon_reports_file CHECK ((length(file_name) <= 1000)),
    CONSTRAINT recon_reports_psp CHECK (((length(psp) BETWEEN 1 AND 32) AND (psp ~ '^[A-Za-z0-9_.-]*$'::text))),
    CONSTRAINT recon_reports_rows CHECK ((row_count >= 0)),
    CONSTRAINT recon_reports_sha256 CHECK (((length(sha256) = 64) AND (sha256 ~ '^[0-9a-f]*$'::text)))
);
CREATE SEQUENCE public.recon_reports_report_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE public.recon_reports_report_id_seq OWNED BY public.recon_reports.report_id;
ALTER TABLE ONLY public.recon_reports ALTER COLUMN report_id SET DEFAULT nextval('public.recon_reports_report_id_seq'::regclass);
ALTER TABLE ONLY public.recon_reports
    ADD CONSTRAINT recon_reports_pkey PRIMARY KEY (report_id);
ALTER TABLE ONLY public.recon_reports
    ADD CONSTRAINT recon_reports_sha256_key UNIQUE (sha256);

CREATE TABLE public.recon_rows (
    report_id bigint NOT NULL,
    record integer NOT NULL,
    row_id text NOT NULL,
    type text NOT NULL,
    psp_type text DEFAULT ''::text NOT NULL,
    payment_ref text DEFAULT ''::text NOT NULL,
    object_ref text DEFAULT ''::text NOT NULL,
    reference text DEFAULT ''::text NOT NULL,
    currency text NOT NULL,
    gross bigint NOT NULL,
    fee bigint NOT NULL,
    net bigint NOT NULL,
    net_currency text NOT NULL,
    booked_on text DEFAULT ''::text NOT NULL,
    outcome text,
    merchant_id text,
    checkout_id text,
    CONSTRAINT recon_rows_currency CHECK ((currency ~ '^[A-Z]{3}$'::text)),
    CONSTRAINT recon_rows_net_currency CHECK ((net_currency ~ '^[A-Z]{3}$'::text)),
    CONSTRAINT recon_rows_outcome CHECK ((outcome = ANY (ARRAY['matched'::text, 'auto_fixed'::text, 'needs_person'::text, 'unclassified'::text, 'seen_before'::text, 'not_ours'::text]))),
    CONSTRAINT recon_rows_record CHECK ((record >= 2)),
    CONSTRAINT recon_rows_row_id CHECK (((length(row_id) >= 1) AND (length(row_id) <= 255))),
    CONSTRAINT recon_rows_type CHECK ((type = ANY (ARRAY['payment'::text, 'refund'::text, 'refund_failure'::text, 'dispute'::text, 'dispute_won'::text, 'payout'::text, 'payout_failure'::text, 'fee'::text, 'bank_payout'::text, 'other'::text])))
);
ALTER TABLE ONLY public.recon_rows
    ADD CONSTRAINT recon_rows_pkey PRIMARY KEY (report_id, record);
CREATE INDEX recon_rows_failures ON public.recon_rows USING btree (report_id) WHERE (type = ANY (ARRAY['refund_failure'::text, 'payout_failure'::text]));

CREATE TABLE public.recon_seen (
    psp text NOT NULL,
    row_id text NOT NULL,
    report_id bigint NOT NULL,
    record integer NOT NULL,
    merchant_id text,
    checkout_id text,
    object_id text
);
ALTER TABLE ONLY public.recon_seen
    ADD CONSTRAINT recon_seen_pkey PRIMARY KEY (psp, row_id);
CREATE INDEX recon_seen_checkout ON public.recon_seen USING btree (merchant_id, checkout_id);
CREATE INDEX recon_seen_object ON public.recon_seen USING btree (merchant_id, object_id) WHERE (object_id IS NOT NULL);

CREATE TABLE public.refunds (
    merchant_id text NOT NULL,
    refund_id text NOT NULL,
    checkout_id text NOT NULL,
    payment_order_id text NOT NULL,
    psp text NOT NULL,
    nonce text NOT NULL,
    amount bigint NOT NULL,
    currency text NOT NULL,
    reason text,
    status text NOT NULL,
    psp_refund_id text,
    commission_part bigint,
    failure text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT refunds_amount CHECK ((amount > 0)),
    CONSTRAINT refunds_booked_iff_succeeded CHECK (((status = 'SUCCEEDED'::text) = (commission_part IS NOT NULL))),
    CONSTRAINT refunds_commission_part CHECK ((commission_part >= 0)),
    CONSTRAINT refunds_currency CHECK ((currency ~ '^[A-Z]{3}$'::text)),
    CONSTRAINT refunds_failure CHECK ((length(failure) <= 1000)),
    CONSTRAINT refunds_id_format CHECK (((length(refund_id) = 27) AND (refund_id ~ '^rf_[0-9a-f]*$'::text))),
    CONSTRAINT refunds_nonce CHECK ((nonce = ((merchant_id || ':'::text) || refund_id))),
    CONSTRAINT refunds_psp_id CHECK (((length(psp_refund_id) >= 1) AND (length(psp_refund_id) <= 128))),
    CONSTRAINT refunds_reason CHECK ((length(reason) <= 200)),
    CONSTRAINT refunds_status CHECK ((status = ANY (ARRAY['PENDING'::text, 'SUCCEEDED'::text, 'FAILED'::text])))
);
ALTER TABLE ONLY public.refunds
    ADD CONSTRAINT refunds_pkey PRIMARY KEY (merchant_id, refund_id);
CREATE INDEX refunds_order ON public.refunds USING btree (merchant_id, payment_order_id);
CREATE INDEX refunds_pending ON public.refunds USING btree (merchant_id) WHERE (status = 'PENDING'::text);
CREATE INDEX refunds_psp_created ON public.refunds USING btree (psp, created_at);
CREATE UNIQUE INDEX refunds_psp_id ON public.refunds USING btree (psp, psp_refund_id);

CREATE TABLE public.sellers (
    merchant_id text NOT NULL,
    seller_account text NOT NULL,
    psp text NOT NULL,
    destination text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT sellers_account_format CHECK (((length(seller_account) BETWEEN 1 AND 64) AND (seller_account ~ '^[A-Za-z0-9_.-]*$'::text))),
    CONSTRAINT sellers_destination_format CHECK (((length(destination) BETWEEN 1 AND 128) AND (destination ~ '^[A-Za-z0-9_.:-]*$'::text))),
    CONSTRAINT sellers_psp_format CHECK (((length(psp) BETWEEN 1 AND 32) AND (psp ~ '^[A-Za-z0-9_.-]*$'::text)))
);
ALTER TABLE ONLY public.sellers
    ADD CONSTRAINT sellers_pkey PRIMARY KEY (merchant_id, seller_account, psp);

CREATE TABLE public.sweeper_lease (
    id integer NOT NULL,
    owner text NOT NULL,
    taken timestamp with time zone DEFAULT now() NOT NULL,
    until timestamp with time zone NOT NULL,
    CONSTRAINT sweeper_lease_one CHECK ((id = 1)),
    CONSTRAINT sweeper_lease_owner CHECK (((length(owner) >= 1) AND (length(owner) <= 200)))
);
ALTER TABLE ONLY public.sweeper_lease
    ADD CONSTRAINT sweeper_lease_pkey PRIMARY KEY (id);

CREATE TABLE public.wallet_credits (
    merchant_id text NOT NULL,
    seller_account text NOT NULL,
    currency text NOT NULL,
    amount bigint NOT NULL,
    booked_at timestamp with time zone DEFAULT now() NOT NULL
)
WITH (autovacuum_vacuum_scale_factor='0', autovacuum_vacuum_threshold='20000');
CREATE INDEX wallet_credits_seller ON public.wallet_credits USING btree (merchant_id, seller_account, currency);

CREATE TABLE public.wallets_folded (
    merchant_id text NOT NULL,
    seller_account text NOT NULL,
    currency text NOT NULL,
    balance bigint NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT wallets_folded_currency CHECK ((currency ~ '^[A-Z]{3}$'::text))
);
ALTER TABLE ONLY public.wallets_folded
    ADD CONSTRAINT wallets_folded_pkey PRIMARY KEY (merchant_id, seller_account, currency);

CREATE TABLE public.webhook_events (
    psp text NOT NULL,
    event_id text NOT NULL,
    kind text NOT NULL,
    type text NOT NULL,
    outcome text NOT NULL,
    merchant_id text,
    checkout_id text,
    received_at timestamp with time zone DEFAULT now() NOT NULL,
    source text DEFAULT COALESCE(NULLIF(current_setting('payments.event_source'::text, true), ''::text), 'webhook'::text) NOT NULL
);
ALTER TABLE ONLY public.webhook_events
    ADD CONSTRAINT webhook_events_pkey PRIMARY KEY (psp, event_id);

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_merchant_id_fkey FOREIGN KEY (merchant_id) REFERENCES public.merchants(merchant_id);
ALTER TABLE ONLY public.checkout_sweeps
    ADD CONSTRAINT checkout_sweeps_merchant_id_checkout_id_fkey FOREIGN KEY (merchant_id, checkout_id) REFERENCES public.checkouts(merchant_id, checkout_id);
ALTER TABLE ONLY public.dispute_parts
    ADD CONSTRAINT dispute_parts_merchant_id_checkout_id_payment_order_id_fkey FOREIGN KEY (merchant_id, checkout_id, payment_order_id) REFERENCES public.payment_orders(merchant_id, checkout_id, payment_order_id);
ALTER TABLE ONLY public.dispute_parts
    ADD CONSTRAINT dispute_parts_merchant_id_dispute_id_fkey FOREIGN KEY (merchant_id, dispute_id) REFERENCES public.disputes(merchant_id, dispute_id);
ALTER TABLE ONLY public.disputes
    ADD CONSTRAINT disputes_merchant_id_checkout_id_fkey FOREIGN KEY (merchant_id, checkout_id) REFERENCES public.checkouts(merchant_id, checkout_id);
ALTER TABLE ONLY public.ledger_entries
    ADD CONSTRAINT ledger_entries_merchant_id_txn_id_fkey FOREIGN KEY (merchant_id, txn_id) REFERENCES public.ledger_transactions(merchant_id, txn_id);
ALTER TABLE ONLY public.ledger_transactions
    ADD CONSTRAINT ledger_transactions_merchant_id_checkout_id_payment_order__fkey FOREIGN KEY (merchant_id, checkout_id, payment_order_id) REFERENCES public.payment_orders(merchant_id, checkout_id, payment_order_id);
ALTER TABLE ONLY public.merchant_commission_fixed
    ADD CONSTRAINT merchant_commission_fixed_merchant_id_fkey FOREIGN KEY (merchant_id) REFERENCES public.merchants(merchant_id);
ALTER TABLE ONLY public.merchant_return_origins
    ADD CONSTRAINT merchant_return_origins_merchant_id_fkey FOREIGN KEY (merchant_id) REFERENCES public.merchants(merchant_id);
ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_merchant_id_endpoint_id_fkey FOREIGN KEY (merchant_id, endpoint_id) REFERENCES public.notify_endpoints(merchant_id, endpoint_id);
ALTER TABLE ONLY public.order_events
    ADD CONSTRAINT order_events_merchant_id_checkout_id_payment_order_id_fkey FOREIGN KEY (merchant_id, checkout_id, payment_order_id) REFERENCES public.payment_orders(merchant_id, checkout_id, payment_order_id);
ALTER TABLE ONLY public.payment_orders
    ADD CONSTRAINT payment_orders_merchant_id_checkout_id_fkey FOREIGN KEY (merchant_id, checkout_id) REFERENCES public.checkouts(merchant_id, checkout_id);
ALTER TABLE ONLY public.payouts
    ADD CONSTRAINT payouts_merchant_id_seller_account_psp_fkey FOREIGN KEY (merchant_id, seller_account, psp) REFERENCES public.sellers(merchant_id, seller_account, psp);
ALTER TABLE ONLY public.psp_payments
    ADD CONSTRAINT psp_payments_merchant_id_checkout_id_fkey FOREIGN KEY (merchant_id, checkout_id) REFERENCES public.checkouts(merchant_id, checkout_id);
ALTER TABLE ONLY public.psp_tokens
    ADD CONSTRAINT psp_tokens_merchant_id_checkout_id_fkey FOREIGN KEY (merchant_id, checkout_id) REFERENCES public.checkouts(merchant_id, checkout_id);
ALTER TABLE ONLY public.recon_mismatches
    ADD CONSTRAINT recon_mismatches_report_id_fkey FOREIGN KEY (report_id) REFERENCES public.recon_reports(report_id);
ALTER TABLE ONLY public.recon_rows
    ADD CONSTRAINT recon_rows_report_id_fkey FOREIGN KEY (report_id) REFERENCES public.recon_reports(report_id);
ALTER TABLE ONLY public.recon_seen
    ADD CONSTRAINT recon_seen_report_id_fkey FOREIGN KEY (report_id) REFERENCES public.recon_reports(report_id);
ALTER TABLE ONLY public.refunds
    ADD CONSTRAINT refunds_merchant_id_checkout_id_payment_order_id_fkey FOREIGN KEY (merchant_id, checkout_id, payment_order_id) REFERENCES public.payment_orders(merchant_id, checkout_id, payment_order_id);
ALTER TABLE ONLY public.sellers
    ADD CONSTRAINT sellers_merchant_id_fkey FOREIGN KEY (merchant_id) REFERENCES public.merchants(merchant_id);

CREATE VIEW public.wallets AS
 SELECT f.merchant_id,
    f.seller_account,
    f.currency,
    (f.balance + (COALESCE(( SELECT sum(c.amount) AS sum
           FROM public.wallet_credits c
          WHERE ((c.merchant_id = f.merchant_id) AND (c.seller_account = f.seller_account) AND (c.currency = f.currency))), (0)::numeric))::bigint) AS balance,
    f.updated_at
   FROM public.wallets_folded f;

-- The ledger's account kinds: "<kind>:*" stands for one account per PSP
-- ("psp_clearing:stripe") or per seller.
INSERT INTO public.ledger_accounts (account, description) VALUES
    ('psp_clearing:*', 'money the PSP holds for us (debit: captured, credit: fees, refunds, pay-outs)'),
    ('seller_payable:*', 'what we owe a seller; the wallets mirror it'),
    ('psp_fees:*', 'fees the PSP charged, booked by payments-reconcile from its settlement reports'),
    ('psp_rounding:*', 'rounding remainders of one minor unit between a PSP''s settled '
                       'gross and ours, booked by payments-reconcile');
