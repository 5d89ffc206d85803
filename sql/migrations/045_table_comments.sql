-- What each table is for, kept in the database (\d+ shows it) and in
-- sql/schema.sql, where a reader finds the tables.

COMMENT ON TABLE api_keys IS $c$Only the key id (public, the lookup) and SHA-256 of the whole key string are stored: a dump of this table does not let anyone call the API.$c$;
COMMENT ON TABLE audit_heads IS $c$The head of each audit chain: its last row's sequence number and hash, so that an append reads one row and a verifier knows where a chain ends.$c$;
COMMENT ON TABLE audit_log IS $c$The hash-chained audit log, append-only: each row's hash covers the previous row's hash, so a changed or removed row breaks its chain (pay_audit_verify).$c$;
COMMENT ON TABLE checkout_sweeps IS $c$What the sweeper did with each checkout it asked about: when it last asked, how often, and whether the "still unresolved" alert was raised.$c$;
COMMENT ON TABLE checkouts IS $c$One checkout = one PSP session.  psp_request is the exact request body sent to the PSP, fixed at claim time, so a resumed registration is byte-identical.$c$;
COMMENT ON TABLE dispute_parts IS $c$A dispute's amount split over its checkout's payment orders (dispute_split), so each order's seller bears its part.$c$;
COMMENT ON TABLE disputes IS $c$Disputes: one per PSP dispute; split over the checkout's orders.$c$;
COMMENT ON TABLE idempotency_keys IS $c$Idempotency keys.  lease is a fencing counter per key (1 on the first claim, +1 on every take-over): a holder whose lease was taken over cannot finish. fillfactor leaves room on the page so that pay_finish's update of the row (no indexed column changes) stays a HOT update. checkout_id has no foreign key on purpose: the key row is inserted first (it is what concurrent requests serialise on) and the checkout after it, and a 'duplicate' key points at no checkout of its own. merchant_id has no foreign key either, here and in checkouts: a foreign key check takes a KEY SHARE lock on the merchant's one row, and concurrent registrations of a merchant would turn it into MultiXacts (about five per registration with 8 clients: SLRU traffic on the hot path, wraparound vacuums within a day at payment volumes). pay_claim checks that the merchant exists with a plain read, and merchants are never deleted (merchants_keep), which together give the same guarantee.$c$;
COMMENT ON TABLE ledger_accounts IS $c$The fees account: ledger account names are 'psp_fees:<psp>' (debited with the PSP's fee, psp_clearing:<psp> credited).  This table names the accounts the reconciliation may post to, for the reports' readers.$c$;
COMMENT ON TABLE ledger_entries IS $c$Signed amounts: a debit is positive, a credit negative.$c$;
COMMENT ON TABLE ledger_transactions IS $c$Double-entry ledger transactions, append-only; their entries (ledger_entries) sum to zero in each currency (ledger_balanced, at commit).$c$;
COMMENT ON TABLE merchant_commission_fixed IS $c$A merchant's fixed commission per currency, in that currency's minor units, beside its rate in merchants.$c$;
COMMENT ON TABLE merchant_return_origins IS $c$Origins in the canonical form the CLI writes: https, lower-case host without a trailing dot, the port only when it is not 443, nothing after it.  The adapter parses them with pay_origin_parse and compares by component.$c$;
COMMENT ON TABLE merchants IS $c$merchant_id is at most 23 characters so that the PSP nonce "<merchant_id>:<checkout_id>" (checkout ids are at most 40) fits in 64.$c$;
COMMENT ON TABLE notifications IS $c$One row per notification and endpoint.$c$;
COMMENT ON TABLE notify_endpoints IS $c$The merchants' endpoints, written by the operator (payments-merchant).$c$;
COMMENT ON TABLE notify_sequences IS $c$The sequence of each checkout (its refunds and disputes count under it) and of each pay-out: the row lock of the upsert orders concurrent changes of one subject.$c$;
COMMENT ON TABLE order_events IS $c$Every status move of an order, append-only.  event_id orders the events of one checkout: moves of one checkout's orders are serialised by the orders' row locks, so a later move always draws a larger event_id.$c$;
COMMENT ON TABLE payment_orders IS $c$A payment order belongs to exactly one checkout; the primary key makes one registration per order.  line_no keeps the request's order of the line items (the PSP sees them in that order, and the GET views list them the same way). The (merchant, checkout, order) unique key serves "orders of a checkout" and is what order_events references, so an event can never name an order of another checkout.$c$;
COMMENT ON TABLE payouts IS $c$Pay-outs from a seller's wallet to its PSP destination.$c$;
COMMENT ON TABLE psp_payments IS $c$The narrow PSP-facing look-up of a paid checkout by the PSP's payment id: disputes and refunds name the payment, not the session.$c$;
COMMENT ON TABLE psp_tokens IS $c$The narrow PSP-facing lookup: a webhook names a PSP token, not a merchant.$c$;
COMMENT ON TABLE recon_mismatches IS $c$Every difference a reconciliation run found between a settlement report and the ledger, with its class and what was done.$c$;
COMMENT ON TABLE recon_reports IS $c$One row per settlement report reconciled: the file's hash, its PSP and its totals; a file is reconciled once.$c$;
COMMENT ON TABLE recon_rows IS $c$One row per data row of a report, as the parser normalised it (amounts in ISO minor units).  outcome: what the run made of it.$c$;
COMMENT ON TABLE recon_seen IS $c$The first report that reconciled each PSP row.$c$;
COMMENT ON TABLE refunds IS $c$Refunds: one row per refund request, PENDING until the PSP's webhook.$c$;
COMMENT ON TABLE sellers IS $c$Sellers and their PSP destinations (bin/payments-merchant add-seller).$c$;
COMMENT ON TABLE sweeper_lease IS $c$One row: who sweeps, until when.  A gateway takes it when it is free or expired and keeps it by renewing it each round; another gateway's worker finds it held and does nothing.$c$;
COMMENT ON TABLE wallet_credits IS $c$Credits to sellers' wallets, appended without locking the wallet row and folded into wallets by pay_wallets_fold.$c$;
COMMENT ON TABLE wallets_folded IS $c$A seller's wallet as of the last fold, from its first credit; its row lock orders a seller's pay-outs and refunds.$c$;
COMMENT ON VIEW wallets IS $c$A seller's balance: its folded row plus the credits not folded yet.$c$;
COMMENT ON TABLE webhook_events IS $c$Every verified PSP event, once per PSP and event id, with the outcome of applying it; append-only but for that outcome's one write.$c$;
