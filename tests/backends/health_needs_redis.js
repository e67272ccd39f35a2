// Breaks the promise with its health check: GET /health answers 200 only when Redis answers a
// PING. The API itself falls back to the database, but under a cache outage the load balancer's
// health checks fail and ECS replaces every task.
"use strict";
const { RedisLink, serve } = require("./lib");

const link = new RedisLink({ timeoutMs: 300, reconnect: true });
serve(link, async () => {
  if (!link.enabled) return 200;
  try {
    await link.command("PING");
    return 200;
  } catch (err) {
    return 503;
  }
});
