// The shopper's journey in a real browser (Debian's Chromium, headless):
// demo shop -> Buy -> gateway pay link -> mock PSP hosted page -> Pay or
// Decline -> gateway return endpoint (-> pending page) -> the shop; and a
// manual capture: Buy now, ship later -> Pay -> the shop's authorized page
// -> its /orders -> Ship and capture -> captured; and a subscription:
// Subscribe -> Pay (the card saved at the PSP) -> the shop's /subscriptions
// with the card -> Charge next month (off-session, from the shop's server)
// -> SUCCESS -> Cancel subscription -> the method detached.
//
// Run by tests/browser/run.sh, which starts the services and the shop and
// sets the environment below.  `node --test journey.test.js`.
//
//   SHOP_URL             the demo shop's origin (https://127.0.0.1:PORT)
//   SHOP_MERCHANT_ID     its merchant id at the gateway
//   SHOP_API_KEY         its API key (to look the checkout up server-side)
//   PAY_TEST_GW          the gateway's origin
//   PAY_TEST_CA          the gateway's certificate (PEM)
//   PAY_TEST_MOCK        the mock PSP's origin (hosted page, control API)
//   PAY_TEST_PSP         the PSP's name at the gateway (stripe)
//   BROWSER_OUT          where screenshots go (default: PAY_TEST_RUN or /tmp)
//   CHROMIUM             the browser (default /usr/bin/chromium)
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const https = require('node:https');
const http = require('node:http');
const { chromium } = require('playwright-core');

function need(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: run tests/browser/run.sh`);
  }
  return v;
}

const SHOP = need('SHOP_URL').replace(/\/+$/, '');
const GW = need('PAY_TEST_GW').replace(/\/+$/, '');
const MOCK = need('PAY_TEST_MOCK').replace(/\/+$/, '');
const CA = fs.readFileSync(need('PAY_TEST_CA'));
const MERCHANT = need('SHOP_MERCHANT_ID');
const API_KEY = need('SHOP_API_KEY');
const PSP = process.env.PAY_TEST_PSP || 'stripe';
const OUT = process.env.BROWSER_OUT || process.env.PAY_TEST_RUN || os.tmpdir();
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// From Pay to the shop's /thanks, webhook delay and the pending page's
// polling (1 s, then 1.5 times longer each time) included.
const SETTLE_MS = 20000;
// The late webhook of (c): long enough for the browser to be back at the
// gateway well before it lands (that takes well under a second).
const LATE_MS = 4000;
// Chromium refuses to run as root with its sandbox: as root (CI's
// containers) it runs without one (--no-sandbox), only here, for this test.
// Otherwise with it, unless the machine has no usable sandbox.
const AS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;

let profileDir;
let context;

// --- small helpers -----------------------------------------------------------

function request(url, { method = 'GET', headers = {}, body } = {}) {
  const u = new URL(url);
  const lib = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(u, {
      method,
      headers,
      ca: u.protocol === 'https:' ? CA : undefined,
      timeout: 5000,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${u.pathname}: timed out`)));
    req.on('error', reject);
    if (body !== undefined) {
      req.write(body);
    }
    req.end();
  });
}

// Polls fn() until ok(value) holds; throws, with the last value, after ms.
// A condition with a deadline, never a fixed sleep.
async function until(what, fn, ok, ms) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (ok(last)) {
      return last;
    }
    if (Date.now() >= deadline) {
      throw new Error(`${what}: not within ${ms} ms; last: ${JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

// The checkout as the gateway's merchant API sees it (the source of truth).
async function checkout(id) {
  const r = await request(`${GW}/v1/checkouts/${encodeURIComponent(id)}`, {
    headers: { Authorization: `Bearer ${API_KEY}`, Accept: 'application/json' },
  });
  assert.equal(r.status, 200, `GET /v1/checkouts/${id}: ${r.status} ${r.text}`);
  return r.json;
}

async function addFault(rule) {
  const r = await request(`${MOCK}/_control/faults`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(rule),
  });
  return r;
}

function shot(page, name) {
  const file = path.join(OUT, `browser-${name}.png`);
  return page.screenshot({ path: file, fullPage: true }).then(() => file);
}

// Every main-frame navigation hop (redirects included) and every problem the
// page reports: a CSP violation would break the pending page's script.
function watch(page) {
  const log = { hops: [], responses: [], problems: [] };
  page.on('request', (req) => {
    if (req.isNavigationRequest() && req.frame() === page.mainFrame()) {
      log.hops.push(`${req.method()} ${req.url()}`);
    }
  });
  page.on('response', (res) => {
    const req = res.request();
    if (req.isNavigationRequest() && req.frame() === page.mainFrame()) {
      log.responses.push({ url: res.url(), status: res.status() });
    }
  });
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/favicon/.test(msg.text())) {
      log.problems.push(`console: ${msg.text()}`);
    }
  });
  page.on('pageerror', (err) => log.problems.push(`pageerror: ${err.message}`));
  return log;
}

// The hops as "METHOD origin-relative-path" with tokens cut, for messages.
function describe(log) {
  return log.hops.map((h) => h.replace(/([?&]t=)[^&]+/, '$1…')).join('\n    ');
}

function pathOf(hop) {
  const [method, url] = hop.split(' ');
  const u = new URL(url);
  return { method, origin: u.origin, pathname: u.pathname };
}

// shop / -> Buy -> (gateway pay link) -> the mock's hosted page.  Returns the
// checkout id, read from the gateway hop.
async function buyToHostedPage(page, log) {
  const home = await page.goto(`${SHOP}/`);
  assert.equal(home.status(), 200, 'the shop\'s product page');
  assert.match(home.headers()['content-security-policy'] || '', /default-src 'none'/,
    'the shop\'s pages carry a CSP');
  const buy = page.getByRole('button', { name: 'Buy', exact: true });
  await buy.waitFor();
  await Promise.all([
    page.waitForURL((u) => u.origin === MOCK && u.pathname.startsWith('/pay/'),
      { timeout: 15000 }),
    buy.click(),
  ]);

  const hops = log.hops.map(pathOf);
  const iBuy = hops.findIndex((h) => h.method === 'POST' && h.origin === SHOP
    && h.pathname === '/buy');
  const iPay = hops.findIndex((h) => h.origin === GW
    && /^\/v1\/checkouts\/[A-Za-z0-9_-]+\/pay$/.test(h.pathname));
  const iHosted = hops.findIndex((h) => h.origin === MOCK
    && /^\/pay\/[^/]+$/.test(h.pathname));
  assert.ok(iBuy >= 0 && iPay > iBuy && iHosted > iPay,
    `shop /buy -> gateway pay link -> hosted page, got:\n    ${describe(log)}`);
  const checkoutId = hops[iPay].pathname.split('/')[3];

  await page.getByRole('button', { name: 'Pay' }).waitFor();
  assert.match(await page.content(), /15\.00 USD/i, 'the hosted page shows the whole checkout');
  return checkoutId;
}

function assertThroughReturn(log, checkoutId) {
  const want = `/v1/return/${PSP}/${checkoutId}`;
  assert.ok(log.hops.map(pathOf).some((h) => h.origin === GW && h.pathname === want),
    `the browser came back through the gateway's ${want}, got:\n    ${describe(log)}`);
}

// Waits for the shop's /thanks; on a timeout says where the browser is stuck.
async function waitThanks(page, log, checkoutId, ms) {
  try {
    await page.waitForURL(`${SHOP}/thanks`, { timeout: ms });
  } catch (e) {
    let state = '?';
    try {
      const c = await checkout(checkoutId);
      state = `${c.status} (${(c.events || []).map((ev) => ev.source).join(', ')})`;
    } catch (e2) { state = `unknown: ${e2.message}`; }
    let title = '?';
    try { title = await page.title(); } catch { /* navigating */ }
    let file = '';
    try { file = `; screenshot ${await shot(page, `stuck-${checkoutId}`)}`; } catch { /* closed */ }
    throw new Error(`no /thanks within ${ms} ms: the browser is on "${title}" `
      + `(${page.url().replace(/([?&]t=)[^&]+/, '$1…')}); the gateway has the checkout `
      + `${state}.  No webhook reached the gateway?${file}  Hops:\n    ${describe(log)}`);
  }
}

function assertNoProblems(log) {
  assert.deepEqual(log.problems, [], 'no script errors or CSP violations');
}

// The payment order as the gateway's merchant API sees it.
async function paymentOrder(id) {
  const r = await request(`${GW}/v1/payments/${encodeURIComponent(id)}`, {
    headers: { Authorization: `Bearer ${API_KEY}`, Accept: 'application/json' },
  });
  assert.equal(r.status, 200, `GET /v1/payments/${id}: ${r.status} ${r.text}`);
  return r.json;
}

// shop / -> Buy now, ship later -> the hosted page -> Pay -> back at the
// shop's /held page, authorized.  Returns the checkout's and its one order's
// ids.
async function buyLaterPaid(page, log, name) {
  const home = await page.goto(`${SHOP}/`);
  assert.equal(home.status(), 200, 'the shop\'s product page');
  const later = page.getByRole('button', { name: 'Buy now, ship later', exact: true });
  await later.waitFor();
  if (name === 'd') {
    console.log(`# screenshot ${await shot(page, 'd-shop')}`);
  }
  await Promise.all([
    page.waitForURL((u) => u.origin === MOCK && u.pathname.startsWith('/pay/'),
      { timeout: 15000 }),
    later.click(),
  ]);
  const hops = log.hops.map(pathOf);
  const iBuy = hops.findIndex((h) => h.method === 'POST' && h.origin === SHOP
    && h.pathname === '/buy-later');
  const iPay = hops.findIndex((h) => h.origin === GW
    && /^\/v1\/checkouts\/[A-Za-z0-9_-]+\/pay$/.test(h.pathname));
  assert.ok(iBuy >= 0 && iPay > iBuy,
    `shop /buy-later -> gateway pay link -> hosted page, got:\n    ${describe(log)}`);
  const co = hops[iPay].pathname.split('/')[3];
  await page.getByRole('button', { name: 'Pay' }).waitFor();
  assert.match(await page.content(), /12\.00 USD/i, 'the hosted page shows the held amount');

  // Pay: the authorization's webhook, then back to the shop's success_url.
  await Promise.all([
    page.waitForURL((u) => u.origin === SHOP && u.pathname === '/held',
      { timeout: SETTLE_MS }),
    page.getByRole('button', { name: 'Pay' }).click(),
  ]);
  assertThroughReturn(log, co);
  assert.equal(new URL(page.url()).searchParams.get('order'), co,
    'the gateway put the checkout id into the success_url');
  await assert.doesNotReject(
    page.getByRole('heading', { name: 'Order authorized: held, not charged' }).waitFor());
  console.log(`# screenshot ${await shot(page, `${name}-held`)}`);

  const c = await checkout(co);
  assert.equal(c.capture, 'manual', `checkout ${co}: ${JSON.stringify(c)}`);
  assert.equal(c.status, 'AUTHORIZED', `checkout ${co}: ${JSON.stringify(c)}`);
  assert.equal(c.payment_orders.length, 1);
  const po = c.payment_orders[0].payment_order_id;
  assert.equal((await paymentOrder(po)).captured || '0.00', '0.00', 'nothing captured yet');

  return { co, po };
}

// --- the browser ---------------------------------------------------------------

function launch(sandbox) {
  const args = [
    '--disable-gpu', '--disable-dev-shm-usage',
    '--disable-background-networking', '--disable-component-update',
    '--no-first-run', '--ignore-certificate-errors',
  ];
  // chromiumSandbox false: Playwright adds --no-sandbox
  return chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: sandbox,
    args,
    ignoreHTTPSErrors: true,
    viewport: { width: 1024, height: 700 },
    timeout: 30000,
  });
}

before(async () => {
  profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ngx-payments-chromium-'));
  if (AS_ROOT) {
    context = await launch(false);
  } else {
    try {
      context = await launch(true);
    } catch (e) {
      // a container without user namespaces: no sandbox is possible
      if (!/sandbox/i.test(e.message)) {
        throw e;
      }
      console.log('# Chromium has no usable sandbox here: running it without');
      context = await launch(false);
    }
  }
  context.setDefaultTimeout(15000);
});

after(async () => {
  if (context) {
    await context.close().catch(() => {});
  }
  if (profileDir) {
    fs.rmSync(profileDir, { recursive: true, force: true });
  }
});

// --- the journeys --------------------------------------------------------------

test('(a) Buy, Pay: back through the gateway to the shop\'s /thanks', { timeout: 60000 }, async () => {
  const page = await context.newPage();
  const log = watch(page);
  try {
    const co = await buyToHostedPage(page, log);
    const t0 = Date.now();
    await page.getByRole('button', { name: 'Pay' }).click();
    // The webhook may land before the return (303 straight to /thanks) or
    // after it (the pending page, which must move on by itself).
    await waitThanks(page, log, co, SETTLE_MS);
    assertThroughReturn(log, co);
    await assert.doesNotReject(
      page.getByRole('heading', { name: 'Thank you, payment received' }).waitFor());
    const sawPending = log.responses.some((r) => r.status === 200
      && r.url.startsWith(`${GW}/v1/return/`));
    console.log(`# (a) ${co}: /thanks ${Date.now() - t0} ms after Pay`
      + `${sawPending ? ', through the pending page' : ', directly'}`);
    console.log(`# screenshot ${await shot(page, 'a-thanks')}`);

    // The shop's /thanks came from the gateway's 303, which it sends only
    // for a SUCCESS; the merchant API says so too.
    const c = await checkout(co);
    assert.equal(c.status, 'SUCCESS', `checkout ${co}: ${JSON.stringify(c)}`);
    assert.equal(c.is_payment_done, true, `the gateway says paid: ${JSON.stringify(c)}`);
    assert.deepEqual(c.payment_orders.map((o) => o.status), ['SUCCESS', 'SUCCESS']);
    assert.deepEqual(c.payment_orders.map((o) => o.seller_account).sort(),
      ['seller_42', 'seller_77']);
    assertNoProblems(log);
  } finally {
    await page.close();
  }
});

test('(b) Buy, Decline: back through the gateway to the shop\'s /cart', { timeout: 60000 }, async () => {
  const page = await context.newPage();
  const log = watch(page);
  try {
    const co = await buyToHostedPage(page, log);
    await Promise.all([
      page.waitForURL(`${SHOP}/cart`, { timeout: SETTLE_MS }),
      page.getByRole('button', { name: 'Decline' }).click(),
    ]);
    assertThroughReturn(log, co);
    await assert.doesNotReject(
      page.getByRole('heading', { name: 'Payment cancelled' }).waitFor());
    console.log(`# screenshot ${await shot(page, 'b-cart')}`);

    // The mock's Decline expires the session and says so in a signed
    // webhook, which may land before or after the browser is back: wait
    // for the checkout to fail, and nothing to be booked.
    // (The gateway's cancel path sends the browser to the cancel page
    // whatever the status, so the page alone proves nothing.)
    const c = await until(`checkout ${co} FAILED after the decline webhook`,
      () => checkout(co), (v) => v.status === 'FAILED' || v.status === 'SUCCESS', SETTLE_MS);
    assert.equal(c.status, 'FAILED', `checkout ${co} after the decline webhook`);
    assert.equal(c.is_payment_done, false);
    assert.deepEqual(c.payment_orders.map((o) => o.status), ['FAILED', 'FAILED']);
    assertNoProblems(log);
  } finally {
    await page.close();
  }
});

test(`(c) a webhook ${LATE_MS / 1000} s late: the pending page, then /thanks by itself`, { timeout: 60000 }, async () => {
  const page = await context.newPage();
  const log = watch(page);
  const polls = [];
  page.on('request', (req) => {
    if (!req.isNavigationRequest() && req.url().startsWith(`${GW}/v1/checkouts/`)
        && new URL(req.url()).pathname.endsWith('/status')) {
      polls.push(Date.now());
    }
  });
  try {
    const co = await buyToHostedPage(page, log);
    const session = new URL(page.url()).pathname.split('/')[2];

    // The mock picks a rule when the shopper pays, by the session's key,
    // which is the gateway's nonce "merchant:checkout": this checkout only.
    const rule = { match: `${MERCHANT}:${co}`, webhook_delay_ms: LATE_MS };
    const fr = await addFault(rule);
    assert.equal(fr.status, 200, `the mock PSP refused ${JSON.stringify(rule)}: ${fr.status} `
      + `${fr.text.trim()}`);

    const t0 = Date.now();
    await Promise.all([
      page.waitForURL((u) => u.origin === GW
        && u.pathname === `/v1/return/${PSP}/${co}`, { timeout: SETTLE_MS }),
      page.getByRole('button', { name: 'Pay' }).click(),
    ]);
    // The gateway has no webhook yet: its pending page, served by the return
    // endpoint itself (no redirect), polling the status with pending.js.
    await assert.doesNotReject(
      page.getByRole('heading', { name: 'Confirming your payment' }).waitFor());
    assert.equal(await page.title(), 'Confirming your payment');
    const pendingAt = Date.now() - t0;
    console.log(`# (c) ${co}: pending page ${pendingAt} ms after Pay; `
      + `screenshot ${await shot(page, 'c-pending')}`);
    const wh = await request(`${MOCK}/_control/webhooks?session=${encodeURIComponent(session)}`);
    assert.equal(wh.status, 200, `the mock's webhook list: ${wh.status} ${wh.text}`);
    const notYet = (wh.json.events || []).filter((ev) => ev.delivered);
    const early = await checkout(co);
    if (Date.now() - t0 < LATE_MS) {
      assert.deepEqual(notYet, [], 'no webhook delivered while the delay runs');
      assert.equal(early.status, 'EXECUTING', 'not paid yet while the page is pending');
    }

    await waitThanks(page, log, co, Math.max(1000, SETTLE_MS - (Date.now() - t0)));
    await assert.doesNotReject(
      page.getByRole('heading', { name: 'Thank you, payment received' }).waitFor());
    const took = Date.now() - t0;
    console.log(`# (c) ${co}: /thanks ${took} ms after Pay, after ${polls.length} polls; `
      + `screenshot ${await shot(page, 'c-thanks')}`);
    assert.ok(took >= LATE_MS, `/thanks only after the delayed webhook (${took} ms)`);
    assert.ok(polls.length >= 1, 'the pending page polled the status');
    const ret = log.responses.filter((r) => r.url.startsWith(`${GW}/v1/return/`));
    assert.ok(ret.length >= 2 && ret[0].status === 200 && ret[ret.length - 1].status === 303,
      `the return endpoint answered the pending page, then 303: ${JSON.stringify(ret
        .map((r) => r.status))}`);

    const c = await checkout(co);
    assert.equal(c.status, 'SUCCESS');
    assert.equal(c.is_payment_done, true);
    assert.deepEqual(c.payment_orders.map((o) => o.status), ['SUCCESS', 'SUCCESS']);
    assertNoProblems(log);
  } finally {
    await page.close();
  }
});

test('(d) Buy now, ship later, Pay: authorized at the shop, then Ship and capture on its /orders', { timeout: 90000 }, async () => {
  const page = await context.newPage();
  const log = watch(page);
  try {
    const { co, po } = await buyLaterPaid(page, log, 'd');

    // The shop's orders page, from the gateway through the shop's server.
    await Promise.all([
      page.waitForURL(`${SHOP}/orders`),
      page.getByRole('link', { name: 'Your orders' }).click(),
    ]);
    const row = page.locator(`tr[data-order="${po}"]`);
    await row.waitFor();
    assert.equal((await row.locator('td.status').textContent()).trim(), 'AUTHORIZED');
    assert.equal((await row.locator('td.captured').textContent()).trim(), '0.00 USD');
    console.log(`# screenshot ${await shot(page, 'd-orders-authorized')}`);

    await Promise.all([
      page.waitForURL(`${SHOP}/orders`),
      row.getByRole('button', { name: 'Ship and capture', exact: true }).click(),
    ]);
    // The PSP's capture webhook settles it; the page refreshes itself while
    // the capture is pending.
    await row.locator('td.status', { hasText: 'SUCCESS' }).waitFor({ timeout: SETTLE_MS });
    assert.equal((await row.locator('td.captured').textContent()).trim(), '12.00 USD');
    assert.equal(await row.getByRole('button', { name: 'Ship and capture' }).count(), 0,
      'a captured order offers no capture');
    console.log(`# screenshot ${await shot(page, 'd-orders-captured')}`);

    const o = await paymentOrder(po);
    assert.equal(o.status, 'SUCCESS', `order ${po}: ${JSON.stringify(o)}`);
    assert.equal(o.captured, '12.00');
    assert.deepEqual(o.captures.map((x) => [x.kind, x.status, x.amount]),
      [['capture', 'SUCCEEDED', '12.00']]);
    assert.ok(!(await page.content()).includes(API_KEY), 'the API key stays on the shop\'s server');
    assertNoProblems(log);
  } finally {
    await page.close();
  }
});

test('(e) Buy now, ship later, Pay, then Release on the shop\'s /orders: nothing charged', { timeout: 90000 }, async () => {
  const page = await context.newPage();
  const log = watch(page);
  try {
    const { co, po } = await buyLaterPaid(page, log, 'e');
    await Promise.all([
      page.waitForURL(`${SHOP}/orders`),
      page.getByRole('link', { name: 'Your orders' }).click(),
    ]);
    const row = page.locator(`tr[data-order="${po}"]`);
    await Promise.all([
      page.waitForURL(`${SHOP}/orders`),
      row.getByRole('button', { name: 'Release', exact: true }).click(),
    ]);
    // The PSP's void webhook releases the hold: the order FAILED, nothing
    // captured, no button left.
    await row.locator('td.status', { hasText: 'FAILED' }).waitFor({ timeout: SETTLE_MS });
    assert.equal((await row.locator('td.captured').textContent()).trim(), '0.00 USD');
    assert.match(await row.textContent(), /released/);
    assert.equal(await row.getByRole('button').count(), 0, 'a released order offers nothing');
    console.log(`# screenshot ${await shot(page, 'e-orders-released')}`);

    const c = await checkout(co);
    assert.equal(c.status, 'FAILED', `checkout ${co}: ${JSON.stringify(c)}`);
    assert.equal(c.failure && c.failure.code, 'voided');
    const o = await paymentOrder(po);
    assert.equal(o.captured || '0.00', '0.00');
    assert.deepEqual(o.captures.map((x) => [x.kind, x.status]), [['void', 'SUCCEEDED']]);
    assertNoProblems(log);
  } finally {
    await page.close();
  }
});

// The customer's saved methods as the gateway's merchant API lists them.
async function methodsOf(customer) {
  const r = await request(`${GW}/v1/payment_methods?customer=${encodeURIComponent(customer)}`, {
    headers: { Authorization: `Bearer ${API_KEY}`, Accept: 'application/json' },
  });
  assert.equal(r.status, 200, `GET /v1/payment_methods: ${r.status} ${r.text}`);
  return r.json.data;
}

test('(f) Subscribe, Pay: the card saved, next month charged without the browser, then Cancel', { timeout: 90000 }, async () => {
  const page = await context.newPage();
  const log = watch(page);
  try {
    const home = await page.goto(`${SHOP}/`);
    assert.equal(home.status(), 200, 'the shop\'s product page');
    const subscribe = page.getByRole('button', { name: 'Subscribe', exact: true });
    await Promise.all([
      page.waitForURL((u) => u.origin === MOCK && u.pathname.startsWith('/pay/'),
        { timeout: 15000 }),
      subscribe.click(),
    ]);
    const hops = log.hops.map(pathOf);
    const iSub = hops.findIndex((h) => h.method === 'POST' && h.origin === SHOP
      && h.pathname === '/subscribe');
    const iPay = hops.findIndex((h) => h.origin === GW
      && /^\/v1\/checkouts\/[A-Za-z0-9_-]+\/pay$/.test(h.pathname));
    assert.ok(iSub >= 0 && iPay > iSub,
      `shop /subscribe -> gateway pay link -> hosted page, got:\n    ${describe(log)}`);
    const co = hops[iPay].pathname.split('/')[3];
    const letters = co.slice(3);
    const sub = `sub_${letters}`;
    const customer = `cust_${letters}`;
    await page.getByRole('button', { name: 'Pay' }).waitFor();
    assert.match(await page.content(), /9\.90 USD/i, 'the hosted page shows the first month');

    // The first month, the shopper present: back to the shop's
    // subscriptions page, which shows the card once the PSP's event saved it.
    const t0 = Date.now();
    await Promise.all([
      page.waitForURL(`${SHOP}/subscriptions`, { timeout: SETTLE_MS }),
      page.getByRole('button', { name: 'Pay' }).click(),
    ]);
    const c = await checkout(co);
    assert.equal(c.status, 'SUCCESS', `checkout ${co}: ${JSON.stringify(c)}`);
    const row = page.locator(`tr[data-subscription="${sub}"]`);
    await row.locator('td.method', { hasText: 'active' }).waitFor({ timeout: SETTLE_MS });
    const methods = await methodsOf(customer);
    assert.equal(methods.length, 1, JSON.stringify(methods));
    const pm = methods[0];
    assert.equal(pm.status, 'active');
    assert.equal(pm.usage, 'off_session');
    assert.equal(pm.checkout_id, co);
    assert.ok(pm.card && pm.card.brand && pm.card.last4, `the PSP told the card: ${JSON.stringify(pm)}`);
    const shown = (await row.locator('td.card').textContent()).trim();
    assert.ok(shown.startsWith(`${pm.card.brand} •••• ${pm.card.last4}`),
      `the shop shows the gateway's ${pm.card.brand}/${pm.card.last4}: "${shown}"`);
    console.log(`# (f) ${sub}: ${pm.id} saved ${Date.now() - t0} ms after Pay; `
      + `screenshot ${await shot(page, 'f-subscribed')}`);

    // Next month, without the shopper: the shop's server charges the saved
    // method off-session; the browser never goes to the PSP.
    const hopsBefore = log.hops.length;
    const t1 = Date.now();
    await Promise.all([
      page.waitForURL(`${SHOP}/subscriptions`),
      row.getByRole('button', { name: 'Charge next month', exact: true }).click(),
    ]);
    const renewal = page.locator(`tr[data-renewal="${co}_m2"]`);
    await renewal.locator('td.status', { hasText: 'SUCCESS' }).waitFor({ timeout: SETTLE_MS });
    assert.ok(log.hops.slice(hopsBefore).every((h) => pathOf(h).origin === SHOP),
      `the renewal took the browser nowhere but the shop: ${log.hops.slice(hopsBefore).join(', ')}`);
    const r2 = await checkout(`${co}_m2`);
    assert.equal(r2.status, 'SUCCESS', JSON.stringify(r2));
    assert.deepEqual(r2.payment_orders.map((o) => [o.status, o.amount]), [['SUCCESS', '9.90']]);
    console.log(`# (f) ${co}_m2 charged off-session, SUCCESS ${Date.now() - t1} ms after the click; `
      + `screenshot ${await shot(page, 'f-renewed')}`);

    // Cancel: the method detached; nothing left to charge.
    await Promise.all([
      page.waitForURL(`${SHOP}/subscriptions`),
      row.getByRole('button', { name: 'Cancel subscription', exact: true }).click(),
    ]);
    await row.locator('td.method', { hasText: 'detached' }).waitFor();
    assert.equal(await row.getByRole('button').count(), 0, 'a cancelled subscription offers nothing');
    const after = await methodsOf(customer);
    assert.deepEqual(after.map((m) => [m.id, m.status]), [[pm.id, 'detached']]);
    console.log(`# screenshot ${await shot(page, 'f-cancelled')}`);
    assert.ok(!(await page.content()).includes(API_KEY), 'the API key stays on the shop\'s server');
    assertNoProblems(log);
  } finally {
    await page.close();
  }
});
