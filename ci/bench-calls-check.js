// The benchmarks' pgbench scripts call the pay_* functions with as many
// arguments as the gateway sends them.  A function that gains an argument
// keeps its old signature as a wrapper for the previous release's module
// (a SQL function, parsed and planned on every call); a script left on the
// old signature measures the wrapper, not what the gateway runs
// (bench/registration.pgbench did so from the saved methods' p_options
// until 2026-11-28, 15-20% of the claim's time).
//
//   node ci/bench-calls-check.js [MODULE_DIR] [PGBENCH_FILE...]
//
// The gateway's calls are read from the C string literals of MODULE_DIR
// (default ngx_payments_module), adjacent literals joined: "pay_x($1, $2)"
// is pay_x with 2 arguments.  A script's call is "pay_x(" outside a comment,
// its arguments counted at the call's own depth, quotes respected.
// Prints "benchcalls: N passed, N failed"; exits 1 on a failure.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const args = process.argv.slice(2);
const moduleDir = args[0] || 'ngx_payments_module';
const scripts = args.length > 1 ? args.slice(1)
    : fs.readdirSync('bench').filter((f) => f.endsWith('.pgbench')).map((f) => path.join('bench', f));

// name -> set of argument counts the gateway sends
const sent = new Map();
for (const f of fs.readdirSync(moduleDir).filter((x) => x.endsWith('.c'))) {
    const c = fs.readFileSync(path.join(moduleDir, f), 'utf8').replace(/"\s*\n\s*"/g, '');
    for (const lit of c.matchAll(/"((?:[^"\\\n]|\\.)*)"/g)) {
        for (const m of lit[1].matchAll(/\b(pay_[a-z0-9_]+)\(([^()]*)\)/g)) {
            if (m[2].trim() !== '' && !m[2].includes('$')) continue;
            const n = (m[2].match(/\$\d+/g) || []).length;
            if (!sent.has(m[1])) sent.set(m[1], new Set());
            sent.get(m[1]).add(n);
        }
    }
}

// the arguments of the call whose "(" is at s[open]: how many, at its depth
function countArgs(s, open) {
    let depth = 0, n = 0, any = false;
    for (let i = open; i < s.length; i++) {
        const ch = s[i];
        if (ch === "'") {
            // a literal: '' is a quote inside it; E'' strings escape with \
            const e = i > 0 && /[eE]/.test(s[i - 1]);
            for (i++; i < s.length; i++) {
                if (e && s[i] === '\\') { i++; continue; }
                if (s[i] === "'") { if (s[i + 1] === "'") { i++; continue; } break; }
            }
            any = true;
            continue;
        }
        if (ch === '(') { depth++; if (depth > 1) any = true; continue; }
        if (ch === ')') { depth--; if (depth === 0) return any ? n + 1 : 0; continue; }
        if (ch === ',' && depth === 1) { n++; continue; }
        if (!/\s/.test(ch)) any = true;
    }
    return -1;
}

let passed = 0, failed = 0;
for (const file of scripts) {
    const text = fs.readFileSync(file, 'utf8').split('\n')
        .map((l) => (/^\s*--/.test(l) ? '' : l)).join('\n');
    for (const m of text.matchAll(/\b(pay_[a-z0-9_]+)\(/g)) {
        const n = countArgs(text, m.index + m[0].length - 1);
        const want = sent.get(m[1]);
        const line = text.slice(0, m.index).split('\n').length;
        if (want === undefined) {
            console.log(`FAIL ${file}:${line}: ${m[1]} is not called by the gateway (${moduleDir})`);
            failed++;
        } else if (!want.has(n)) {
            console.log(`FAIL ${file}:${line}: ${m[1]} with ${n} arguments; the gateway sends ${[...want].join(' or ')}`);
            failed++;
        } else {
            passed++;
        }
    }
}
console.log(`benchcalls: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
