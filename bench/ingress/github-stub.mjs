// A GitHub API stand-in for the shipgate worker during the ingress and drain
// benchmarks. Answers every request at once with 404 {"message":"Not Found"}
// (what GitHub answers for a repository without a shipgate config). Counts
// requests by method and path shape and writes the counts to the file named
// by STUB_COUNTS on SIGTERM.
//
// With STUB_CONFIG=FILE, every repository has that file as
// .github/shipgate.yml: its contents are served as GitHub does (base64, the
// blob sha, an ETag), and a request whose If-None-Match holds that ETag gets
// 304 Not Modified, as GitHub answers a conditional request.
//
//   PORT=... STUB_COUNTS=counts.json [STUB_CONFIG=shipgate.yml] node github-stub.mjs
import { createServer } from "node:http";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";

const counts = new Map();
let total = 0;
const body = JSON.stringify({
  message: "Not Found",
  documentation_url: "https://docs.github.com/rest",
  status: "404",
});

let config = null;
if (process.env.STUB_CONFIG) {
  const text = readFileSync(process.env.STUB_CONFIG);
  // A git blob's sha: sha1 of "blob <len>\0" and the bytes.
  const sha = createHash("sha1").update(`blob ${text.length}\0`).update(text).digest("hex");
  config = {
    etag: `"${sha}"`,
    body: JSON.stringify({
      type: "file",
      encoding: "base64",
      name: "shipgate.yml",
      path: ".github/shipgate.yml",
      sha,
      size: text.length,
      content: text.toString("base64"),
    }),
  };
}
const CONFIG_PATH = /^\/repos\/[^/]+\/[^/]+\/contents\/\.github(\/|%2F)shipgate\.yml$/;

const server = createServer((req, res) => {
  total++;
  const path = req.url.split("?")[0];
  const isConfig = config && req.method === "GET" && CONFIG_PATH.test(path);
  const notModified = isConfig && req.headers["if-none-match"] === config.etag;
  const key = `${req.method} ${path.replace(/\/\d+(?=\/|$)/g, "/N")}${notModified ? " (304)" : ""}`;
  counts.set(key, (counts.get(key) || 0) + 1);
  req.resume();
  req.on("end", () => {
    if (notModified) {
      res.writeHead(304, { etag: config.etag });
      res.end();
      return;
    }
    if (isConfig) {
      res.writeHead(200, {
        "content-type": "application/json; charset=utf-8",
        "content-length": Buffer.byteLength(config.body),
        etag: config.etag,
      });
      res.end(config.body);
      return;
    }
    res.writeHead(404, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(body),
    });
    res.end(body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.PORT || 0), "127.0.0.1", () => {
  console.log(`stub listening on ${server.address().port}`);
});
process.on("SIGTERM", () => {
  if (process.env.STUB_COUNTS) {
    writeFileSync(
      process.env.STUB_COUNTS,
      JSON.stringify({ total, by_route: Object.fromEntries(counts) }, null, 2),
    );
  }
  process.exit(0);
});
