// Every metric the shipped dashboard and alerting rules name exists in a
// /metrics body of the gateway, with every label their "by (...)" and
// "{...}" clauses name (Prometheus' own "instance" and a histogram's "le"
// aside).  A query on a metric the gateway does not serve would show an
// empty panel, or an alert that can never fire.
//
//   node ci/metric-names-check.js METRICS_FILE DASHBOARD.json RULES.yml
//
// Prints "metric names: N passed, N failed"; exits 1 on a failure.
'use strict';
const fs = require('node:fs');

const [metricsFile, dashFile, rulesFile] = process.argv.slice(2);
if (!rulesFile) {
    console.error('usage: node ci/metric-names-check.js METRICS DASHBOARD.json RULES.yml');
    process.exit(2);
}

// name -> set of label names seen on its samples
const served = new Map();
for (const line of fs.readFileSync(metricsFile, 'utf8').split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s/.exec(line);
    if (!m) continue;
    const labels = served.get(m[1]) || new Set();
    for (const l of (m[3] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(l[1]);
    served.set(m[1], labels);
}

const exprs = [];
const dash = JSON.parse(fs.readFileSync(dashFile, 'utf8'));
for (const p of dash.panels || []) {
    for (const t of p.targets || []) exprs.push({where: `dashboard "${p.title}"`, expr: t.expr});
}
// the rules' expr: values, on one line or as a folded block (expr: >)
let alert = '';
const rules = fs.readFileSync(rulesFile, 'utf8').split('\n');
for (let i = 0; i < rules.length; i++) {
    const a = /^\s*- alert:\s*(\S+)/.exec(rules[i]);
    if (a) alert = a[1];
    const e = /^(\s*)expr:\s*(.+)$/.exec(rules[i]);
    if (!e) continue;
    let expr = e[2];
    if (/^[>|][-+]?$/.test(expr)) {
        const block = [];
        while (i + 1 < rules.length
               && (rules[i + 1].trim() === ''
                   || rules[i + 1].search(/\S/) > e[1].length)) {
            block.push(rules[++i].trim());
        }
        expr = block.join(' ').trim();
    }
    exprs.push({where: `alert ${alert}`, expr});
}

// What a gateway serves only with payments_shard lines (doc/OPERATIONS.md,
// "Metrics"): a "shard" label on the database's series when there are
// several shards, and each shard's state and breaker.  A /metrics body of
// one payments_database shows none of it, yet rules that name them hold
// for both (a missing label groups as empty).
const shardOnly = {
    payments_db_queries_total: ['shard'],
    payments_db_rejected_total: ['shard'],
    payments_db_timeouts_total: ['shard'],
    payments_db_connection_failures_total: ['shard'],
    payments_db_pool_connections: ['shard'],
    payments_db_pool_waiting: ['shard'],
    payments_shard_up: ['shard'],
    payments_db_breaker_state: ['shard'],
    payments_db_breaker_opens_total: ['shard'],
    // each shard's background work's gauges (its sweeper, housekeeping
    // and notifier), labelled only with several shards
    payments_sweeper_leader: ['shard'],
    payments_checkouts_unresolved: ['shard'],
    payments_checkouts_unresolved_oldest_seconds: ['shard'],
    payments_authorizations_expiring: ['shard'],
    payments_payment_methods_detach_unconfirmed: ['shard'],
    payments_payment_methods_unsaved: ['shard'],
    payments_checkouts_executing: ['shard'],
    payments_checkouts_executing_oldest_seconds: ['shard'],
    payments_notify_queue_depth: ['shard'],
    payments_notify_oldest_pending_seconds: ['shard'],
    payments_notify_dead_letters: ['shard'],
    payments_notify_endpoints_disabled: ['shard'],
    payments_wallet_fold_last_success_timestamp_seconds: ['shard'],
    payments_shard_directory_entries: [],
    payments_shard_directory_conflicts_total: [],
    payments_shard_directory_lookups_total: ['result'],
    payments_webhook_events_routed_total: ['shard', 'by'],
};
for (const [name, labels] of Object.entries(shardOnly)) {
    const have = served.get(name) || new Set();
    for (const l of labels) have.add(l);
    served.set(name, have);
}

let passed = 0, failed = 0;
const ignored = new Set(['instance', 'job', 'le']);
for (const {where, expr} of exprs) {
    const problems = [];
    const names = [...new Set([...expr.matchAll(/\bpayments_[a-z0-9_]+/g)].map(m => m[0]))];
    if (names.length === 0) problems.push('names no payments_ metric');
    const grouped = [...expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)]
        .flatMap(m => m[1].split(',').map(s => s.trim()).filter(Boolean));
    const matched = [...expr.matchAll(/\{([^}]*)\}/g)]
        .flatMap(m => [...m[1].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map(x => x[1]));
    const labelsOf = new Set();
    for (const n of names) {
        if (!served.has(n)) { problems.push(`${n} is not served`); continue; }
        for (const l of served.get(n)) labelsOf.add(l);
    }
    for (const l of [...grouped, ...matched]) {
        if (!ignored.has(l) && !labelsOf.has(l)) problems.push(`no metric of it has the label "${l}"`);
    }
    if (problems.length) {
        failed++;
        console.log(`FAIL: ${where}: ${expr}: ${problems.join('; ')}`);
    } else {
        passed++;
    }
}
console.log(`metric names: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
