#!/usr/bin/env node
'use strict';
/*
 * The merchant's endpoint of the e2e suite (doc/NOTIFICATIONS.md): an HTTPS
 * server on loopback that checks every delivery with the standardwebhooks
 * package (a verifier the gateway's code has nothing in common with), records
 * it, and answers as the test told it to.
 *
 *   node receiver.js --port P --cert C --key K --control-port Q
 *                    [--listen 127.0.0.1] [--secret whsec_... ...]
 *
 * Deliveries: POST /hooks/<name>.  The signature is checked against the
 * path's secrets (set through the control API; else the --secret ones): one
 * Webhook(secret).verify(payload, headers) per secret, and the delivery is
 * verified when any of them succeeds (a rotation's grace period signs with
 * two).  An unverified delivery answers 400 whatever the mode.  A verified
 * one answers per its path's mode:
 *   ok            204
 *   status N      N (e.g. "status 500")
 *   hang          never answers; the client gives up (its time-out)
 *   drop          the connection is destroyed without an answer
 *   redirect [U]  302 to U (default: this receiver, the path + "/redirected",
 *                 so that a client that followed it would be seen there)
 *   slow N        204 after N ms
 *   stream        200, then a body that never ends (16 KiB every 10 ms)
 *                 until the client closes
 * A path's "script" (a list of modes) is used first, one per verified
 * delivery, then its mode (default ok).
 *
 * Control API, plain HTTP on --control-port (loopback), JSON:
 *   GET  /_control/health
 *   POST /_control/mode        {"path":"/hooks/a","mode":"status 500",
 *                               "script":["hang","drop"]}
 *   POST /_control/secrets     {"path":"/hooks/a","secrets":["whsec_..."]}
 *                              (replaces them; "add":true appends; path "*"
 *                              is the default for paths without their own)
 *   GET  /_control/deliveries[?path=/hooks/a]
 *                              {"deliveries":[...], "stats":{...}}
 *   GET  /_control/stats       connections, TLS handshakes and errors, requests,
 *                              verified, unverified, delivered (2xx answers),
 *                              delivered_ids (distinct path + webhook-id),
 *                              first_delivered_ms, last_delivered_ms, hung
 *   POST /_control/reset       {} everything, or {"path":"/hooks/a"} one path
 *
 * A delivery's record: path, webhook_id, type, sequence, checkout_id,
 * object_id, merchant_id, data (the payload's data member), verified,
 * verified_by (indices into the path's secrets that verified it), secret_fp
 * (the first 12 hex digits of SHA-256 of those secrets), signatures (how
 * many the header carried), attempt (the how-manieth arrival of this
 * webhook-id on this path), arrived_ms (its body read), started_ms (the
 * earliest the client can have been sending it: its TCP connection
 * accepted, or, on a kept-alive one, the previous answer on it sent; so a
 * client's time-out counted from the attempt's start ends no sooner than
 * that plus the time-out, whatever its connect and TLS handshake took),
 * answer ("204", "500", "hang", "drop", "302", "400"), gave_up_ms (hang:
 * when the client closed), error.
 *
 * Quiet: one line when it listens, and errors.  It never prints a secret, a
 * signature or a body.
 */

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
/*
 * The standardwebhooks package when it is installed: the e2e suite's
 * verifier, which shares nothing with the gateway's code (ci/receiver.sh
 * insists on it).  Without it (the test environment's endpoint, shipped by
 * payments-testenv with no npm package), the same checks with node:crypto
 * alone: the three headers, a timestamp within 5 minutes either way, and
 * one "v1," signature of the list equal to HMAC-SHA256 over
 * "id.timestamp.body" with the secret's base64-decoded key.
 */
let Webhook;
try {
    ({ Webhook } = require('standardwebhooks'));
} catch (e) {
    Webhook = class {
        constructor(secret) {
            const b64 = secret.startsWith('whsec_') ? secret.slice(6) : secret;
            if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) {
                throw new Error('malformed secret');
            }
            this.key = Buffer.from(b64, 'base64');
        }

        verify(body, headers) {
            const id = headers['webhook-id'];
            const ts = headers['webhook-timestamp'];
            const sig = headers['webhook-signature'];
            if (!id || !ts || !sig) {
                throw new Error('Missing required headers');
            }
            const now = Math.floor(Date.now() / 1000);
            if (!/^[0-9]{1,12}$/.test(ts) || Math.abs(now - Number(ts)) > 300) {
                throw new Error('Message timestamp out of tolerance');
            }
            const mac = crypto.createHmac('sha256', this.key)
                .update(`${id}.${ts}.`).update(body).digest();
            const ok = String(sig).split(' ').some((s) => {
                const comma = s.indexOf(',');
                if (s.slice(0, comma) !== 'v1') {
                    return false;
                }
                const got = Buffer.from(s.slice(comma + 1), 'base64');
                return got.length === mac.length && crypto.timingSafeEqual(got, mac);
            });
            if (!ok) {
                throw new Error('No matching signature found');
            }
            return JSON.parse(body.toString('utf8'));
        }
    };
}

const MAX_BODY = 1 << 20;

function usage(msg) {
    if (msg) {
        process.stderr.write(`notify-receiver: ${msg}\n`);
    }
    process.stderr.write('usage: node receiver.js --port P --cert C --key K '
        + '--control-port Q [--listen ADDR] [--secret whsec_...]... '
        + '[--record FILE]\n');
    process.exit(2);
}

function parseArgs(argv) {
    const o = { listen: '127.0.0.1', secrets: [] };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const v = argv[i + 1];
        switch (a) {
        case '--port': o.port = Number(v); i++; break;
        case '--control-port': o.controlPort = Number(v); i++; break;
        case '--cert': o.cert = v; i++; break;
        case '--key': o.key = v; i++; break;
        case '--listen': o.listen = v; i++; break;
        case '--secret': o.secrets.push(v); i++; break;
        case '--record': o.record = v; i++; break;
        case '-h': case '--help': usage(); break;
        default: usage(`unknown argument ${a}`);
        }
    }
    if (!Number.isInteger(o.port) || !Number.isInteger(o.controlPort)
        || !o.cert || !o.key) {
        usage('--port, --control-port, --cert and --key are required');
    }
    return o;
}

/* --- state ------------------------------------------------------------------ */

const state = {
    paths: new Map(),          /* path -> {mode, script, secrets} */
    deliveries: [],
    attempts: new Map(),       /* path + " " + webhook-id -> count */
    hung: new Set(),           /* responses never answered */
    delivered: new Set(),      /* path + " " + webhook-id answered 2xx */
    stats: freshStats(),
};

function freshStats() {
    return { connections: 0, tls_handshakes: 0, tls_errors: 0, requests: 0,
             control_requests: 0, verified: 0, unverified: 0, delivered: 0,
             first_delivered_ms: null, last_delivered_ms: null };
}

function statsNow() {
    return { ...state.stats, hung: state.hung.size,
             delivered_ids: state.delivered.size };
}

/* --record FILE: every verified body, one JSON line each, for the
 * OpenAPI check of the notifications (tests/openapi/validate.js). */
function record(path, id, body) {
    if (!opts.record) {
        return;
    }
    fs.appendFileSync(opts.record, JSON.stringify({
        path, webhook_id: id, body: body.toString('utf8'),
    }) + '\n');
}

/* A verified delivery answered 2xx. */
function delivered(rec) {
    const now = Date.now();
    state.stats.delivered++;
    state.delivered.add(`${rec.path} ${rec.webhook_id}`);
    if (state.stats.first_delivered_ms === null) {
        state.stats.first_delivered_ms = now;
    }
    state.stats.last_delivered_ms = now;
}

function pathState(p) {
    let s = state.paths.get(p);
    if (!s) {
        s = { mode: 'ok', script: [], secrets: null };
        state.paths.set(p, s);
    }
    return s;
}

function parseMode(m) {
    if (typeof m !== 'string') {
        return null;
    }
    const [word, arg, ...rest] = m.trim().split(/\s+/);
    if (rest.length) {
        return null;
    }
    switch (word) {
    case 'ok': case 'hang': case 'drop': case 'stream':
        return arg === undefined ? { kind: word } : null;
    case 'status': {
        const n = Number(arg);
        return Number.isInteger(n) && n >= 100 && n <= 599
            ? { kind: 'status', status: n } : null;
    }
    case 'slow': {
        const n = Number(arg);
        return Number.isInteger(n) && n >= 0 ? { kind: 'slow', ms: n } : null;
    }
    case 'redirect':
        return { kind: 'redirect', location: arg };
    default:
        return null;
    }
}

/* "whsec_" and standard base64 of the key, which Webhook() then decodes. */
function secretValid(s) {
    if (typeof s !== 'string' || !/^whsec_[A-Za-z0-9+/]+={0,2}$/.test(s)) {
        return false;
    }
    try {
        new Webhook(s);                     /* eslint-disable-line no-new */
        return true;
    } catch (e) {
        return false;
    }
}

function fingerprint(secret) {
    return crypto.createHash('sha256').update(secret).digest('hex').slice(0, 12);
}

/* The secrets for a path: its own, else the default ("*"), else --secret. */
function secretsFor(p) {
    const own = state.paths.get(p);
    if (own && own.secrets) {
        return own.secrets;
    }
    const dflt = state.paths.get('*');
    if (dflt && dflt.secrets) {
        return dflt.secrets;
    }
    return opts.secrets;
}

/* --- deliveries ----------------------------------------------------------------- */

function readBody(req, cb) {
    const chunks = [];
    let len = 0;
    let over = false;
    req.on('data', (c) => {
        len += c.length;
        if (len > MAX_BODY) {
            over = true;
        } else {
            chunks.push(c);
        }
    });
    req.on('end', () => cb(over ? null : Buffer.concat(chunks)));
    req.on('error', () => cb(null));
}

function verify(secrets, body, headers) {
    const ok = [];
    let error = null;
    let payload = null;
    secrets.forEach((secret, i) => {
        let wh;
        try {
            wh = new Webhook(secret);
        } catch (e) {
            error = 'a configured secret is malformed';
            return;
        }
        try {
            const p = wh.verify(body, headers);
            ok.push(i);
            payload = p;
        } catch (e) {
            /* WebhookVerificationError's messages name no secret */
            error = e && e.message ? String(e.message).slice(0, 100)
                : 'verification failed';
        }
    });
    if (secrets.length === 0) {
        error = 'no secret configured for this path';
    }
    return { ok, error: ok.length ? null : error, payload };
}

function onDelivery(req, res) {
    state.stats.requests++;
    const url = new URL(req.url, 'https://receiver.invalid');
    const p = url.pathname;

    if (req.method !== 'POST' || !p.startsWith('/hooks/')) {
        readBody(req, () => {
            res.writeHead(404, { 'content-type': 'text/plain' });
            res.end('not a hook\n');
        });
        return;
    }

    /* the connection's last moment idle (socket: the TCP one under TLS) */
    const sock = req.socket._parent || req.socket;
    const started = sock.readyMs;
    res.on('finish', () => { sock.readyMs = Date.now(); });

    readBody(req, (body) => {
        const arrived = Date.now();
        const id = req.headers['webhook-id'] || null;
        const key = `${p} ${id}`;
        const attempt = (state.attempts.get(key) || 0) + 1;
        state.attempts.set(key, attempt);

        const rec = {
            path: p,
            webhook_id: id,
            type: null,
            sequence: null,
            checkout_id: null,
            object_id: null,
            merchant_id: null,
            data: null,
            verified: false,
            verified_by: [],
            secret_fp: [],
            signatures: String(req.headers['webhook-signature'] || '')
                .split(' ').filter((s) => s.length > 0).length,
            webhook_timestamp: req.headers['webhook-timestamp'] || null,
            content_type: req.headers['content-type'] || null,
            user_agent: req.headers['user-agent'] || null,
            attempt,
            arrived_ms: arrived,
            started_ms: started === undefined ? arrived : started,
            answer: null,
            gave_up_ms: null,
            error: null,
        };
        state.deliveries.push(rec);

        if (body === null) {
            rec.error = 'body unreadable or over 1 MiB';
            rec.answer = '413';
            res.writeHead(413);
            res.end();
            return;
        }

        const secrets = secretsFor(p);
        const v = verify(secrets, body, req.headers);
        if (!v.ok.length) {
            state.stats.unverified++;
            rec.error = v.error;
            rec.answer = '400';
            res.writeHead(400, { 'content-type': 'text/plain' });
            res.end('unverified\n');
            return;
        }

        state.stats.verified++;
        rec.verified = true;
        record(p, id, body);
        rec.verified_by = v.ok;
        rec.secret_fp = v.ok.map((i) => fingerprint(secrets[i]));
        const j = v.payload || {};
        const d = j.data && typeof j.data === 'object' ? j.data : {};
        rec.type = typeof j.type === 'string' ? j.type : null;
        rec.data = d;
        rec.sequence = Number.isInteger(d.sequence) ? d.sequence : null;
        rec.checkout_id = d.checkout_id || null;
        rec.merchant_id = d.merchant_id || null;
        rec.object_id = d.object_id || d.refund_id || d.dispute_id
            || d.payout_id || d.checkout_id || null;

        const ps = pathState(p);
        const mode = ps.script.length ? ps.script.shift() : parseMode(ps.mode);
        answer(req, res, rec, mode || { kind: 'ok' });
    });
}

function answer(req, res, rec, mode) {
    switch (mode.kind) {
    case 'ok':
        rec.answer = '204';
        delivered(rec);
        res.writeHead(204);
        res.end();
        break;
    case 'status':
        rec.answer = String(mode.status);
        if (mode.status >= 200 && mode.status < 300) {
            delivered(rec);
        }
        res.writeHead(mode.status, { 'content-type': 'text/plain' });
        res.end(mode.status === 204 || mode.status === 304 ? undefined
            : 'as told\n');
        break;
    case 'slow':
        rec.answer = 'slow';
        setTimeout(() => {
            if (!res.destroyed && !res.writableEnded) {
                rec.answer = '204';
                delivered(rec);
                res.writeHead(204);
                res.end();
            }
        }, mode.ms);
        break;
    case 'redirect': {
        const loc = mode.location
            || `https://${req.headers.host || `127.0.0.1:${opts.port}`}`
               + `${rec.path}/redirected`;
        rec.answer = '302';
        res.writeHead(302, { location: loc, 'content-type': 'text/plain' });
        res.end('elsewhere\n');
        break;
    }
    case 'drop':
        rec.answer = 'drop';
        req.socket.destroy();
        break;
    case 'stream': {
        const chunk = Buffer.alloc(16384, 'x');
        const timer = setInterval(() => {
            if (res.destroyed || res.writableEnded) {
                clearInterval(timer);
                return;
            }
            res.write(chunk);
        }, 10);
        rec.answer = '200';
        delivered(rec);
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write(chunk);
        res.once('close', () => {
            clearInterval(timer);
            rec.gave_up_ms = Date.now();
        });
        break;
    }
    case 'hang':
    default:
        rec.answer = 'hang';
        state.hung.add(res);
        req.socket.setTimeout(0);
        req.socket.once('close', () => {
            state.hung.delete(res);
            rec.gave_up_ms = Date.now();
        });
        break;
    }
}

/* --- the control API ---------------------------------------------------------- */

function send(res, status, obj) {
    const s = JSON.stringify(obj);
    res.writeHead(status, { 'content-type': 'application/json',
                            'content-length': Buffer.byteLength(s) });
    res.end(s);
}

function onControl(req, res) {
    state.stats.control_requests++;
    const url = new URL(req.url, 'http://control.invalid');
    readBody(req, (body) => {
        let j = {};
        if (req.method === 'POST') {
            try {
                j = body && body.length ? JSON.parse(body.toString()) : {};
            } catch (e) {
                send(res, 400, { error: 'not JSON' });
                return;
            }
            if (j === null || typeof j !== 'object' || Array.isArray(j)) {
                send(res, 400, { error: 'not a JSON object' });
                return;
            }
        }
        const route = `${req.method} ${url.pathname}`;
        switch (route) {
        case 'GET /_control/health':
            send(res, 200, { ok: true });
            return;
        case 'GET /_control/stats':
            send(res, 200, statsNow());
            return;
        case 'GET /_control/deliveries': {
            const p = url.searchParams.get('path');
            const list = p ? state.deliveries.filter((d) => d.path === p)
                : state.deliveries;
            send(res, 200, { deliveries: list, stats: statsNow() });
            return;
        }
        case 'POST /_control/mode': {
            if (typeof j.path !== 'string' || !j.path.startsWith('/')) {
                send(res, 400, { error: 'path: /hooks/<name>' });
                return;
            }
            const mode = j.mode === undefined ? 'ok' : j.mode;
            if (!parseMode(mode)) {
                send(res, 400, { error: `mode ${mode}` });
                return;
            }
            const script = [];
            for (const m of Array.isArray(j.script) ? j.script : []) {
                const pm = parseMode(m);
                if (!pm) {
                    send(res, 400, { error: `script mode ${m}` });
                    return;
                }
                script.push(pm);
            }
            const ps = pathState(j.path);
            ps.mode = mode;
            ps.script = script;
            send(res, 200, { path: j.path, mode, script: j.script || [] });
            return;
        }
        case 'POST /_control/secrets': {
            if (typeof j.path !== 'string'
                || !(j.path === '*' || j.path.startsWith('/'))
                || !Array.isArray(j.secrets)
                || !j.secrets.every((s) => typeof s === 'string')) {
                send(res, 400, { error: '{"path":..., "secrets":[...]}' });
                return;
            }
            if (!j.secrets.every(secretValid)) {
                send(res, 400, { error: 'a secret is not whsec_<base64>' });
                return;
            }
            const ps = pathState(j.path);
            ps.secrets = j.add && ps.secrets ? ps.secrets.concat(j.secrets)
                : j.secrets.slice();
            send(res, 200, { path: j.path, secrets: ps.secrets.length,
                             secret_fp: ps.secrets.map(fingerprint) });
            return;
        }
        case 'POST /_control/reset': {
            if (typeof j.path === 'string') {
                state.paths.delete(j.path);
                state.deliveries = state.deliveries.filter(
                    (d) => d.path !== j.path);
                for (const k of [...state.delivered]) {
                    if (k.startsWith(`${j.path} `)) {
                        state.delivered.delete(k);
                    }
                }
                for (const k of [...state.attempts.keys()]) {
                    if (k.startsWith(`${j.path} `)) {
                        state.attempts.delete(k);
                    }
                }
            } else {
                state.paths.clear();
                state.deliveries = [];
                state.attempts.clear();
                for (const r of state.hung) {
                    r.socket && r.socket.destroy();
                }
                state.hung.clear();
                state.delivered.clear();
                state.stats = freshStats();
            }
            send(res, 200, { ok: true });
            return;
        }
        default:
            send(res, 404, { error: `no ${route}` });
        }
    });
}

/* --- main --------------------------------------------------------------------- */

const opts = parseArgs(process.argv.slice(2));

if (!opts.secrets.every(secretValid)) {
    usage('a --secret is not whsec_<base64>');
}

const tlsServer = https.createServer({
    cert: fs.readFileSync(opts.cert),
    key: fs.readFileSync(opts.key),
    /* the gateway's deliveries may take their time; hangs are on purpose */
    requestTimeout: 0,
    headersTimeout: 60000,
    keepAliveTimeout: 5000,
}, onDelivery);

tlsServer.on('connection', (sock) => {
    state.stats.connections++;
    sock.readyMs = Date.now();
});
tlsServer.on('secureConnection', () => { state.stats.tls_handshakes++; });
tlsServer.on('tlsClientError', () => { state.stats.tls_errors++; });
tlsServer.on('clientError', (err, socket) => { socket.destroy(); });

const controlServer = http.createServer(onControl);

let up = 0;
function listening() {
    if (++up === 2) {
        process.stdout.write(`notify-receiver: https://${opts.listen}:${opts.port}`
            + ` (control http://${opts.listen}:${opts.controlPort})\n`);
    }
}

for (const [srv, port, what] of [[tlsServer, opts.port, 'port'],
                                 [controlServer, opts.controlPort, 'control port']]) {
    srv.on('error', (e) => {
        process.stderr.write(`notify-receiver: ${what} ${port}: ${e.code || e.message}\n`);
        process.exit(1);
    });
    srv.listen(port, opts.listen, listening);
}

function shutdown() {
    for (const r of state.hung) {
        r.socket && r.socket.destroy();
    }
    tlsServer.close();
    controlServer.close();
    setTimeout(() => process.exit(0), 200).unref();
    tlsServer.closeAllConnections && tlsServer.closeAllConnections();
    controlServer.closeAllConnections && controlServer.closeAllConnections();
}

process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
