// Sums up the conformance run's request log (one JSON line per request the
// fakes answered through prism) and fails on any violation, or on none
// validated at all.
'use strict';
const fs = require('fs');

const lines = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean);
const requests = lines.map(l => JSON.parse(l));
// Tests that provoke violations on purpose check them themselves.
const expected = requests.filter(r => r.expected);
const violations = requests.filter(r => !r.expected && r.violations.length > 0);
const allowed = requests.reduce((n, r) => n + r.allowed.length, 0);
for (const r of violations) {
  for (const v of r.violations) {
    console.error(`conformance violation: ${r.method} ${r.path} -> ${r.status}: ${v}`);
  }
}
console.log(
  `conformance: ${requests.length} requests validated by prism, ` +
    `${violations.reduce((n, r) => n + r.violations.length, 0)} violations, ${allowed} allowlisted` +
    (expected.length > 0 ? ` (and ${expected.length} requests of tests that provoke violations on purpose)` : ''),
);
if (requests.length === 0) {
  console.error('conformance: no request went through prism (is SHIPGATE_CONFORMANCE_PRISM reaching the tests?)');
  process.exit(1);
}
process.exit(violations.length > 0 ? 1 : 0);
