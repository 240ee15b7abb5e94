// A minimal Probot 14 app for the ingress benchmark, run the way a Probot
// user runs one: `run(appFn)` is what `probot run ./app.js` calls, so the
// request goes through Probot's own Server (its HTTP logger and router) and
// its webhooks middleware (@octokit/webhooks: verify X-Hub-Signature-256,
// parse, emit, answer 200). The app registers no handlers: it verifies and
// acknowledges, and persists nothing.
//
// Environment (set by run.sh): APP_ID, PRIVATE_KEY_PATH, WEBHOOK_SECRET,
// PORT, HOST, LOG_LEVEL, LOG_FORMAT=json, NODE_ENV=production.
import { run } from "probot";

/** @param {import("probot").Probot} app */
const app = (app) => {
  // No handlers: verification and the 200 are all the work.
  void app;
};

await run(app);
