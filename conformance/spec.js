// Writes the description prism validates against: GitHub's, from the pinned
// @octokit/openapi, with one mechanical rewrite. GitHub's description has
// schemas that say `nullable: true` without a `type` (e.g. `commit.author`,
// `issue.milestone`, `{nullable, allOf: [...]}`); prism's JSON Schema
// compiler (ajv) refuses those ("nullable" cannot be used without "type"),
// and prism then validates that whole body against nothing, silently: the
// answers of GET /repos/{o}/{r}/issues, /commits/{ref}, /compare/{basehead}
// and both sides of POST /repos/{o}/{r}/issues went unchecked. Each such
// schema becomes `anyOf: [<it, without nullable>, {enum: [null]}]`, which is
// what `nullable` means.
//
//   node spec.js OUT.json
'use strict';
const fs = require('fs');
const path = require('path');

const source = path.join(__dirname, 'node_modules/@octokit/openapi/generated/api.github.com.json');
const doc = JSON.parse(fs.readFileSync(source, 'utf8'));
let rewritten = 0;

const KEEP = ['description', 'title', 'readOnly', 'writeOnly', 'deprecated', 'example', 'examples'];
function fix(node) {
  if (Array.isArray(node)) return node.map(fix);
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) out[k] = fix(v);
  if (out.nullable === true && out.type === undefined && out.$ref === undefined) {
    delete out.nullable;
    const outer = {};
    const inner = {};
    for (const [k, v] of Object.entries(out)) (KEEP.includes(k) ? outer : inner)[k] = v;
    rewritten += 1;
    if (Object.keys(inner).length === 0) return outer; // nullable anything: anything
    return { ...outer, anyOf: [inner, { enum: [null] }] };
  }
  return out;
}

const fixed = fix(doc);
fs.writeFileSync(process.argv[2], JSON.stringify(fixed));
console.log(`conformance: description from @octokit/openapi ${require('./node_modules/@octokit/openapi/package.json').version}, ${rewritten} typeless nullable schemas rewritten`);
