'use strict';
/*
 * The receiver alone (no gateway): deliveries signed with standardwebhooks'
 * own sign(), over TLS to a certificate made here with the openssl CLI, and
 * every mode of the control API.
 *
 *   cd tests/notify_receiver && node --test selftest.test.js
 */

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const { spawn, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { Webhook } = require('standardwebhooks');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-receiver-'));
const cert = path.join(dir, 'tls.crt');
const key = path.join(dir, 'tls.key');
const secretA = `whsec_${crypto.randomBytes(32).toString('base64')}`;
const secretB = `whsec_${crypto.randomBytes(32).toString('base64')}`;
let child;
let port;
let control;
let ca;

function freePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const p = s.address().port;
            s.close(() => resolve(p));
        });
    });
}

function ctl(method, p, body) {
    return new Promise((resolve, reject) => {
        const data = body === undefined ? '' : JSON.stringify(body);
        const rq = http.request({ host: '127.0.0.1', port: control, method, path: p,
                                  headers: { 'content-type': 'application/json',
                                             'content-length': Buffer.byteLength(data) } },
        (res) => {
            let s = '';
            res.on('data', (c) => { s += c; });
            res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(s) }));
        });
        rq.on('error', reject);
        rq.end(data);
    });
}

let seq = 0;

/* A delivery as the gateway sends it, signed by the given secrets. */
function deliver(hook, secrets, opts = {}) {
    const id = opts.id || `msg_selftest_${++seq}`;
    const ts = new Date(opts.ts || Date.now());
    const body = JSON.stringify({
        type: 'checkout.succeeded', timestamp: ts.toISOString(),
        data: { merchant_id: 'shop1', checkout_id: 'co_1', sequence: opts.sequence || 1,
                status: 'SUCCESS', amount_total: 1500, currency: 'EUR' },
    });
    const sig = secrets.map((s) => new Webhook(s).sign(id, ts, body)).join(' ');
    return new Promise((resolve) => {
        const rq = https.request({
            host: '127.0.0.1', port, method: 'POST', path: `/hooks/${hook}`, ca,
            agent: false, timeout: opts.timeout || 2000,
            headers: { 'content-type': 'application/json', 'webhook-id': id,
                       'webhook-timestamp': String(Math.floor(ts.getTime() / 1000)),
                       'webhook-signature': opts.signature || sig,
                       'content-length': Buffer.byteLength(body) },
        }, (res) => {
            res.resume();
            res.on('end', () => resolve({ id, status: res.statusCode,
                                          location: res.headers.location }));
        });
        rq.on('timeout', () => { rq.destroy(new Error('timeout')); });
        rq.on('error', (e) => resolve({ id, status: 0, error: e.message }));
        rq.end(body);
    });
}

async function deliveries(hook) {
    const r = await ctl('GET', `/_control/deliveries?path=/hooks/${hook}`);
    assert.strictEqual(r.status, 200);
    return r.json.deliveries;
}

before(async () => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt',
        'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
        '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout', key, '-out', cert], { stdio: 'ignore' });
    ca = fs.readFileSync(cert);
    port = await freePort();
    control = await freePort();
    child = spawn(process.execPath, [path.join(__dirname, 'receiver.js'), '--port', String(port),
        '--control-port', String(control), '--cert', cert, '--key', key,
        '--secret', secretA], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.output = '';
    child.stdout.on('data', (c) => { child.output += c; });
    child.stderr.on('data', (c) => { child.output += c; });
    for (let i = 0; i < 100; i++) {
        try {
            if ((await ctl('GET', '/_control/health')).status === 200) {
                return;
            }
        } catch (e) { /* not yet */ }
        await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`the receiver did not come up: ${child.output}`);
});

after(() => {
    if (child) {
        child.kill('SIGTERM');
    }
    fs.rmSync(dir, { recursive: true, force: true });
});

test('a delivery signed with the --secret is verified and answered 204', async () => {
    const r = await deliver('a', [secretA], { sequence: 3 });
    assert.strictEqual(r.status, 204);
    const [d] = await deliveries('a');
    assert.strictEqual(d.webhook_id, r.id);
    assert.strictEqual(d.verified, true);
    assert.deepStrictEqual(d.verified_by, [0]);
    assert.strictEqual(d.type, 'checkout.succeeded');
    assert.strictEqual(d.sequence, 3);
    assert.strictEqual(d.checkout_id, 'co_1');
    assert.strictEqual(d.attempt, 1);
    assert.strictEqual(d.answer, '204');
});

test('a wrong secret, a stale timestamp, a tampered signature: 400, recorded', async () => {
    assert.strictEqual((await deliver('b', [secretB])).status, 400);
    assert.strictEqual((await deliver('b', [secretA], { ts: Date.now() - 3600e3 })).status, 400);
    assert.strictEqual((await deliver('b', [secretA], { signature: 'v1,AAAA' })).status, 400);
    const ds = await deliveries('b');
    assert.strictEqual(ds.length, 3);
    for (const d of ds) {
        assert.strictEqual(d.verified, false);
        assert.strictEqual(d.answer, '400');
        assert.ok(d.error);
    }
});

test('per-path secrets replace the default; during a rotation either verifies', async () => {
    let r = await ctl('POST', '/_control/secrets', { path: '/hooks/c', secrets: [secretB] });
    assert.strictEqual(r.status, 200);
    assert.strictEqual((await deliver('c', [secretA])).status, 400);
    assert.strictEqual((await deliver('c', [secretB])).status, 204);
    r = await ctl('POST', '/_control/secrets', { path: '/hooks/c', secrets: [secretA],
                                                  add: true });
    assert.strictEqual(r.json.secrets, 2);
    assert.strictEqual((await deliver('c', [secretA])).status, 204);
    assert.strictEqual((await deliver('c', [secretB, secretA])).status, 204);
    const ds = await deliveries('c');
    assert.deepStrictEqual(ds.map((d) => d.verified_by),
                           [[], [0], [1], [0, 1]]);
    assert.strictEqual(ds[3].signatures, 2);
    assert.ok((await ctl('POST', '/_control/secrets',
                         { path: '/hooks/c', secrets: ['nope'] })).status === 400);
});

test('status, redirect, drop, hang, slow, and a script before the mode', async () => {
    await ctl('POST', '/_control/mode', { path: '/hooks/d', mode: 'ok',
        script: ['status 500', 'redirect', 'drop', 'hang', 'slow 300'] });
    const r1 = await deliver('d', [secretA], { id: 'msg_same' });
    assert.strictEqual(r1.status, 500);
    const r2 = await deliver('d', [secretA], { id: 'msg_same' });
    assert.strictEqual(r2.status, 302);
    assert.ok(r2.location.endsWith('/hooks/d/redirected'));
    const r3 = await deliver('d', [secretA], { id: 'msg_same' });
    assert.strictEqual(r3.status, 0);
    const t0 = Date.now();
    const r4 = await deliver('d', [secretA], { id: 'msg_same', timeout: 500 });
    assert.strictEqual(r4.status, 0);
    assert.ok(Date.now() - t0 >= 450);
    const t1 = Date.now();
    const r5 = await deliver('d', [secretA], { id: 'msg_same' });
    assert.strictEqual(r5.status, 204);
    assert.ok(Date.now() - t1 >= 280);
    const r6 = await deliver('d', [secretA], { id: 'msg_same' });
    assert.strictEqual(r6.status, 204);
    await new Promise((r) => setTimeout(r, 100));
    const ds = await deliveries('d');
    assert.deepStrictEqual(ds.map((d) => d.answer), ['500', '302', 'drop', 'hang', '204', '204']);
    assert.deepStrictEqual(ds.map((d) => d.attempt), [1, 2, 3, 4, 5, 6]);
    assert.ok(ds[3].gave_up_ms >= ds[3].arrived_ms);
    assert.ok(ds[3].started_ms <= ds[3].arrived_ms);
    assert.strictEqual((await deliveries('d/redirected')).length, 0);
    await ctl('POST', '/_control/mode', { path: '/hooks/d', mode: 'status 503' });
    assert.strictEqual((await deliver('d', [secretA])).status, 503);
    assert.strictEqual((await ctl('POST', '/_control/mode', { path: '/hooks/d',
                                                              mode: 'sideways' })).status, 400);
});

test('reset of one path, stats, and nothing secret in the output', async () => {
    await ctl('POST', '/_control/reset', { path: '/hooks/a' });
    assert.strictEqual((await deliveries('a')).length, 0);
    assert.ok((await deliveries('c')).length > 0);
    const s = await ctl('GET', '/_control/stats');
    assert.ok(s.json.connections >= 10);
    assert.ok(s.json.tls_handshakes >= 10);
    assert.ok(s.json.delivered >= 6);
    assert.ok(s.json.unverified >= 4);
    assert.ok(s.json.delivered_ids >= 3);
    assert.ok(s.json.last_delivered_ms >= s.json.first_delivered_ms);
    assert.ok(!child.output.includes(secretA.slice(6, 20)));
    assert.ok(!child.output.includes(secretB.slice(6, 20)));
    assert.ok(!child.output.includes('checkout.succeeded'));
    assert.ok(child.output.split('\n').filter((l) => l).length <= 1, child.output);
});
