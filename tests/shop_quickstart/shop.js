#!/usr/bin/env node
// A shop written from doc/QUICKSTART.md alone (and doc/openapi.yaml for
// the fields), with Node's built-ins only.  Run by the e2e suite
// (tests/e2e/test_storefront.c, storefront/the_quickstart_shop_*), which
// starts it with the gateway, a merchant and an endpoint of its own:
//
//   SHOP_GW          the gateway's origin as this machine reaches it
//   SHOP_PUBLIC      the gateway's public origin (pay_url is on it)
//   SHOP_CA          the CA the gateway's and this shop's certificates chain to
//   SHOP_CERT, SHOP_KEY   this shop's endpoint certificate
//   SHOP_PORT        where the endpoint listens (https://127.0.0.1:PORT/hooks)
//   SHOP_API_KEY     mk_test_...
//   SHOP_WHSEC       the endpoint's signing secret
//   SHOP_PSP         the PSP's name
//   SHOP_ORIGIN      the shop's registered return origin
//   SHOP_MOCK        the mock PSP: stands in for the shopper paying
//   SHOP_OUTAGE_MS   how long the endpoint answers 503 (default 120000)
//
// What it does: pays a checkout (a retried POST replayed by its key),
// follows the pay link, learns "paid" from a verified notification; then
// its endpoint is down for SHOP_OUTAGE_MS while a refund and another
// payment happen; afterwards everything arrives (the endpoint was not
// disabled); the state it built from notifications matches the API; it
// forgets it and rebuilds it from GET /v1/notifications and replays.
// Prints "shop: ok ..." and exits 0, or "shop: FAILED ..." and exits 1.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const https = require('node:https');

const env = (k, d) => {
  const v = process.env[k];
  if (v === undefined && d === undefined) throw new Error(`${k} is not set`);
  return v === undefined ? d : v;
};
const GW = env('SHOP_GW');
const PUBLIC = env('SHOP_PUBLIC');
const CA = fs.readFileSync(env('SHOP_CA'));
const KEY = env('SHOP_API_KEY');
const WHSEC = env('SHOP_WHSEC');
const PSP = env('SHOP_PSP');
const ORIGIN = env('SHOP_ORIGIN');
const MOCK = env('SHOP_MOCK');
const OUTAGE_MS = Number(env('SHOP_OUTAGE_MS', '120000'));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.log('shop:', ...a);

/* --- talking to the gateway ------------------------------------------------- */

function request(url, method, headers, body) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const lib = u.protocol === 'https:' ? https : require('node:http');
    const req = lib.request(u, { method, headers, ca: CA, timeout: 30000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try { json = JSON.parse(text); } catch (e) { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// One call with the quickstart's retry table: the same key and body again
// after Retry-After (409 idempotency_key_in_use, 429, 503) or a back-off
// (500, 502, 504); anything else is the answer.
async function api(method, path, body, key) {
  const headers = { authorization: `Bearer ${KEY}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method === 'POST') headers['idempotency-key'] = key || crypto.randomUUID();
  const text = body === undefined ? undefined : JSON.stringify(body);
  let wait = 1000;
  for (let attempt = 1; ; attempt++) {
    let r;
    try {
      r = await request(GW + path, method, headers, text);
    } catch (e) {
      r = { status: 0, headers: {}, json: null, text: String(e) };
    }
    const code = r.json && r.json.code;
    const again = r.status === 429 || r.status === 503 || r.status === 0
      || r.status === 500 || r.status === 502 || r.status === 504
      || (r.status === 409 && code === 'idempotency_key_in_use');
    if (!again || attempt >= 8) return r;
    const after = Number(r.headers['retry-after']);
    await sleep(Number.isFinite(after) && after > 0 ? after * 1000 : wait);
    wait = Math.min(wait * 2, 60000);
  }
}

/* --- the endpoint: verify, deduplicate, apply by sequence ------------------ */

const state = new Map();        // "checkout:<id>" -> {sequence, type, data}
const seen = new Set();         // webhook-ids applied
let down = false;
const count = { received: 0, refused_while_down: 0, bad_signature: 0 };

function verify(secret, headers, body) {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const mac = crypto.createHmac('sha256', key).update(
    `${headers['webhook-id']}.${headers['webhook-timestamp']}.${body}`).digest('base64');
  const ts = Number(headers['webhook-timestamp']);
  return Math.abs(Date.now() / 1000 - ts) < 300
    && String(headers['webhook-signature'] || '').split(' ').some((s) => s === `v1,${mac}`);
}

function objectKey(n) {
  const kind = n.type.split('.')[0];
  const d = n.data;
  const id = { checkout: d.checkout_id, refund: d.refund_id,
               dispute: d.dispute_id, payout: d.payout_id }[kind];
  return `${kind}:${id}`;
}

function apply(n) {
  const k = objectKey(n);
  const had = state.get(k);
  if (had && had.sequence >= n.data.sequence) return;   // older: ignored
  state.set(k, { sequence: n.data.sequence, type: n.type, data: n.data });
}

function endpoint(req, res) {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    count.received++;
    if (!verify(WHSEC, req.headers, body)) {
      count.bad_signature++;
      res.writeHead(400).end();
      return;
    }
    if (down) {                                  // deploying: not now
      count.refused_while_down++;
      res.writeHead(503).end();
      return;
    }
    const id = req.headers['webhook-id'];
    if (!seen.has(id)) {
      seen.add(id);
      apply(JSON.parse(body));
    }
    res.writeHead(204).end();
  });
}

/* --- the shop --------------------------------------------------------------- */

function check(cond, what) {
  if (!cond) throw new Error(what);
}

async function until(what, pred, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function checkout(id) {
  const body = {
    checkout_id: id,
    payment_orders: [
      { payment_order_id: `${id}-1`, seller_account: 'seller_42', amount: '10.00', currency: 'USD' },
      { payment_order_id: `${id}-2`, seller_account: 'seller_77', amount: '5.50', currency: 'USD' },
    ],
    success_url: `${ORIGIN}/thanks?order={CHECKOUT_ID}`,
    cancel_url: `${ORIGIN}/cart`,
    psp: PSP,
  };
  const key = `${id}-attempt-1`;
  const a = await api('POST', '/v1/payments', body, key);
  check(a.status === 201 && a.json.status === 'EXECUTING', `create ${id}: ${a.status} ${a.text}`);
  // the network dropped the answer: the same key and body again
  const b = await api('POST', '/v1/payments', body, key);
  check(b.status === 201 && b.headers['idempotent-replayed'] === 'true' && b.text === a.text,
        `a retry is the stored answer: ${b.status} ${b.text}`);
  return a.json;
}

async function shopperPays(co) {
  // the browser follows pay_url to the PSP's page...
  const pay = co.pay_url.replace(PUBLIC, GW);
  const r = await request(pay, 'GET', {});
  check(r.status === 303 && r.headers.location, `pay_url: ${r.status}`);
  // ...and pays there (the mock PSP's control API stands in for it)
  const p = await request(`${MOCK}/_control/sessions/${co.psp_token}/pay`, 'POST', {}, '');
  check(p.status >= 200 && p.status < 300, `mock pay: ${p.status} ${p.text}`);
}

function snapshot() {
  return JSON.stringify([...state.entries()].sort()
    .map(([k, v]) => [k, v.sequence, v.type, v.data.status]));
}

async function main() {
  const server = https.createServer({ cert: fs.readFileSync(env('SHOP_CERT')),
                                      key: fs.readFileSync(env('SHOP_KEY')) }, endpoint);
  await new Promise((r) => server.listen(Number(env('SHOP_PORT')), '127.0.0.1', r));

  const run = crypto.randomBytes(4).toString('hex');
  const first = `qs-${run}-a`;
  const second = `qs-${run}-b`;

  // 1-3: pay, and learn it from a verified notification
  const co = await checkout(first);
  await shopperPays(co);
  await until('checkout.succeeded', () =>
    (state.get(`checkout:${first}`) || {}).type === 'checkout.succeeded', 20000);
  const paid = state.get(`checkout:${first}`).data;
  check(paid.amount_total === '15.50' && paid.amount_total_minor === 1550,
        `the amounts, decimal and minor: ${JSON.stringify(paid)}`);
  log('paid', first);

  // the endpoint is down (a deploy): a refund and another payment meanwhile
  down = true;
  const outageStarted = Date.now();
  const rf = await api('POST', `/v1/payments/${first}-1/refunds`,
                       { amount: '4.00', reason: 'returned' }, `refund-${first}-1`);
  check(rf.status === 201, `refund: ${rf.status} ${rf.text}`);
  const co2 = await checkout(second);
  await shopperPays(co2);
  await sleep(Math.max(0, OUTAGE_MS - (Date.now() - outageStarted)));
  down = false;
  log(`endpoint down ${Date.now() - outageStarted} ms, ${count.refused_while_down} deliveries refused`);
  check(count.refused_while_down > 0, 'nothing was delivered during the outage');

  // everything arrives afterwards: the endpoint was not disabled
  await until('refund.succeeded and the second checkout', () =>
    (state.get(`refund:${rf.json.refund_id}`) || {}).type === 'refund.succeeded'
    && (state.get(`checkout:${second}`) || {}).type === 'checkout.succeeded', 60000);
  log('after the outage: refund', rf.json.refund_id, 'and', second, 'arrived');

  // what the notifications said is what the API says
  for (const id of [first, second]) {
    const g = await api('GET', `/v1/checkouts/${id}`);
    check(g.status === 200 && g.json.status === state.get(`checkout:${id}`).data.status,
          `GET /v1/checkouts/${id}: ${g.text}`);
  }
  const po = await api('GET', `/v1/payments/${first}-1`);
  check(po.status === 200 && po.json.refunds.length === 1
        && po.json.refunds[0].status === 'SUCCEEDED', `GET /v1/payments: ${po.text}`);

  // the shop lost its state: rebuilt from the gateway's list and replays
  const before = snapshot();
  state.clear();
  seen.clear();
  const list = await api('GET', '/v1/notifications?status=delivered&limit=100');
  check(list.status === 200 && Array.isArray(list.json), `list: ${list.status} ${list.text}`);
  for (const n of list.json) {
    const r = await api('POST', `/v1/notifications/${n.id}/replay`);
    check(r.status === 202, `replay ${n.id}: ${r.status} ${r.text}`);
  }
  await until('the state rebuilt from replays', () => snapshot() === before, 30000);
  log(`state rebuilt from ${list.json.length} notifications: ${state.size} objects`);

  check(count.bad_signature === 0, `${count.bad_signature} deliveries did not verify`);
  server.close();
  log('ok', JSON.stringify(count));
}

main().then(() => process.exit(0), (e) => {
  console.log('shop: FAILED', e.message);
  process.exit(1);
});
