// Prism's upstream in the conformance run: forwards each request to the fake
// GitHub named by its `x-shipgate-fake` header (the fake's loopback port).
// Every test has its own fake, and one prism serves them all. The fake gets
// the path and query as shipgate sent them (`x-shipgate-path`): the front
// may have respelled the path for prism's router.
'use strict';
const http = require('http');

const server = http.createServer((req, res) => {
  const port = Number(req.headers['x-shipgate-fake']);
  const fail = message => {
    res.writeHead(502, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ message: `conformance dispatcher: ${message}` }));
  };
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    return fail('no x-shipgate-fake header');
  }
  const path = req.headers['x-shipgate-path'] || req.url;
  const headers = { ...req.headers };
  delete headers.host;
  delete headers['x-shipgate-fake'];
  delete headers['x-shipgate-path'];
  const upstream = http.request(
    { host: '127.0.0.1', port, method: req.method, path, headers },
    answer => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', e => fail(`fake on port ${port}: ${e.message}`));
  req.pipe(upstream);
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});
