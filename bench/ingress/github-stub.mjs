// A GitHub API stand-in for the shipgate worker during the ingress benchmark.
// Answers every request at once with 404 {"message":"Not Found"} (what GitHub
// answers for a repository without a shipgate config). Counts requests by
// method and path shape and writes the counts to the file named by
// STUB_COUNTS on SIGTERM.
//
//   PORT=... STUB_COUNTS=counts.json node github-stub.mjs
import { createServer } from "node:http";
import { writeFileSync } from "node:fs";

const counts = new Map();
let total = 0;
const body = JSON.stringify({
  message: "Not Found",
  documentation_url: "https://docs.github.com/rest",
  status: "404",
});

const server = createServer((req, res) => {
  total++;
  const key = `${req.method} ${req.url.split("?")[0].replace(/\/\d+(?=\/|$)/g, "/N")}`;
  counts.set(key, (counts.get(key) || 0) + 1);
  req.resume();
  req.on("end", () => {
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
