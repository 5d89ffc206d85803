#!/usr/bin/env node
// Validates doc/openapi.yaml as an OpenAPI 3.1 document, then every answer
// the e2e suite recorded (tests/e2e/harness_http.c, PAY_TEST_RECORD: one JSON
// line per answer of the gateway's listeners) against it:
//   - the path and method are documented (an undocumented path must be a
//     404 problem, an undocumented method a 404 or 405 problem);
//   - the status is one of the operation's responses;
//   - the documented required headers are there;
//   - the Content-Type is one the response documents, and a JSON body
//     matches its schema (JSON Schema 2020-12, as OpenAPI 3.1 has it).
// With a third argument, every notification body the e2e receiver verified
// (tests/notify_receiver --record: one JSON line each, {path, webhook_id,
// body}) is checked against the schema of its type's entry in the
// document's webhooks: section; a type the section lacks is a failure.
// Usage: node validate.js doc/openapi.yaml RUN/logs/responses.jsonl
//            [RUN/logs/notifications.jsonl]
// Prints "openapi: N passed, N failed"; exits 1 on any failure.
'use strict';

const fs = require('fs');
const YAML = require('yaml');
const { Validator } = require('@seriousme/openapi-schema-validator');
const Ajv2020 = require('ajv/dist/2020').default;
const addFormats = require('ajv-formats').default;

function pointer(parts) {
  return '#/' + parts.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
}

async function main() {
  const [docPath, recPath, notePath] = process.argv.slice(2);
  if (!docPath || !recPath) {
    console.error('usage: validate.js OPENAPI.yaml RESPONSES.jsonl');
    process.exit(2);
  }

  const doc = YAML.parse(fs.readFileSync(docPath, 'utf8'));
  const checked = await new Validator().validate(doc);
  if (!checked.valid) {
    console.error('openapi: the document is not valid OpenAPI:');
    console.error(JSON.stringify(checked.errors, null, 2));
    console.log('openapi: 0 passed, 1 failed');
    process.exit(1);
  }

  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(doc, 'openapi');
  const compiled = new Map();

  // templates with fewer parameters first, so a literal path wins
  const routes = Object.keys(doc.paths).map((t) => {
    const names = [];
    const re = new RegExp('^' + t.replace(/[.*+?^$()|[\]\\]/g, '\\$&')
      .replace(/\{([^}]+)\}/g, (_, n) => { names.push(n); return '([^/]+)'; }) + '$');
    return { t, re, n: names.length };
  }).sort((a, b) => a.n - b.n);

  const lines = fs.existsSync(recPath)
    ? fs.readFileSync(recPath, 'utf8').split('\n').filter(Boolean) : [];
  let passed = 0;
  const failures = new Map();

  function fail(key, example) {
    if (!failures.has(key)) failures.set(key, { count: 0, example });
    failures.get(key).count++;
  }

  function isProblem(rec) {
    return (rec.headers['content-type'] || '').startsWith('application/problem+json');
  }

  for (const line of lines) {
    const rec = JSON.parse(line);
    const url = new URL(rec.url);
    const method = rec.method.toLowerCase() === 'head' ? 'get' : rec.method.toLowerCase();
    const status = String(rec.status);
    const route = routes.find((r) => r.re.test(url.pathname));
    const where = `${rec.method} ${route ? route.t : url.pathname} -> ${status}`;

    if (!route) {
      if (status === '404' && isProblem(rec)) { passed++; continue; }
      // the plain listener redirects pages and refuses the rest before routing
      fail(`undocumented path: ${where}`, rec);
      continue;
    }

    const item = doc.paths[route.t];
    const op = item[method];
    if (!op) {
      if ((status === '405' || status === '404') && isProblem(rec)) { passed++; continue; }
      fail(`undocumented method: ${where}`, rec);
      continue;
    }

    const responses = op.responses || {};
    const key = responses[status] ? status
      : responses[`${status[0]}XX`] ? `${status[0]}XX` : (responses.default ? 'default' : null);
    if (!key) {
      fail(`undocumented status: ${where}`, rec);
      continue;
    }

    let resp = responses[key];
    let base = ['paths', route.t, method, 'responses', key];
    if (resp.$ref) {
      const name = resp.$ref.split('/').pop();
      resp = doc.components.responses[name];
      base = ['components', 'responses', name];
    }

    // nginx's own error page, from a directive the operator put in front
    // of the module (limit_req, allow/deny, auth_basic) or nginx's request
    // parser: documented as text/html, without the module's headers
    const nginxOwn = /<hr><center>nginx<\/center>/.test(rec.body || '');

    let ok = true;
    for (const [name, h] of Object.entries(nginxOwn ? {} : resp.headers || {})) {
      const spec = h.$ref ? doc.components.headers[h.$ref.split('/').pop()] : h;
      if (spec.required && rec.headers[name.toLowerCase()] === undefined) {
        fail(`missing header ${name}: ${where}`, rec);
        ok = false;
      }
    }

    if (resp.content) {
      const ct = (rec.headers['content-type'] || '').split(';')[0].trim();
      const media = resp.content[ct];
      if (!media) {
        fail(`undocumented content type ${ct || '(none)'}: ${where}`, rec);
        continue;
      }
      if (media.schema && /json$/.test(ct) && !rec.truncated) {
        const ref = pointer([...base, 'content', ct, 'schema']).slice(1);
        let validate = compiled.get(ref);
        if (!validate) {
          validate = ajv.compile({ $ref: 'openapi' + '#' + ref.slice(0) });
          compiled.set(ref, validate);
        }
        let body;
        try { body = JSON.parse(rec.body); } catch (e) { body = undefined; }
        if (body === undefined || !validate(body)) {
          fail(`body does not match its schema: ${where}: ${ajv.errorsText(validate.errors)}`, rec);
          continue;
        }
      }
    }

    if (ok) passed++;
  }

  // the notifications the receiver verified, each against its webhook
  let notes = 0;
  const seen = new Map();
  if (notePath) {
    const nlines = fs.existsSync(notePath)
      ? fs.readFileSync(notePath, 'utf8').split('\n').filter(Boolean) : [];
    for (const line of nlines) {
      const rec = JSON.parse(line);
      const where = { url: `notification ${rec.webhook_id} to ${rec.path}`, body: rec.body };
      let body;
      try { body = JSON.parse(rec.body); } catch (e) { body = undefined; }
      const type = body && typeof body.type === 'string' ? body.type : '(none)';
      const hook = (doc.webhooks || {})[type];
      const media = hook && hook.post && hook.post.requestBody
        && hook.post.requestBody.content && hook.post.requestBody.content['application/json'];
      notes++;
      if (!media || !media.schema) {
        fail(`notification type not in webhooks: ${type}`, where);
        continue;
      }
      const ref = pointer(['webhooks', type, 'post', 'requestBody', 'content',
                           'application/json', 'schema']).slice(1);
      let validate = compiled.get(ref);
      if (!validate) {
        validate = ajv.compile({ $ref: 'openapi' + '#' + ref });
        compiled.set(ref, validate);
      }
      if (!validate(body)) {
        fail(`notification does not match its schema: ${type}: ${ajv.errorsText(validate.errors)}`, where);
        continue;
      }
      seen.set(type, (seen.get(type) || 0) + 1);
      passed++;
    }
    console.log(`openapi: ${notes} notifications checked against their webhooks (`
      + [...seen.entries()].sort().map(([t, n]) => `${t} ${n}`).join(', ') + ')');
  }

  let failed = 0;
  for (const [key, f] of failures) {
    failed += f.count;
    console.error(`openapi: ${key} (${f.count}x), e.g. ${f.example.url}: ${String(f.example.body).slice(0, 200)}`);
  }
  console.log(`openapi: ${lines.length} answers checked against ${docPath}`);
  console.log(`openapi: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && lines.length > 0 ? 0 : 1);
}

main().catch((e) => { console.error(e); process.exit(1); });
