// Breaks the promise like the guide's own Express backend: no timeout on Redis calls. While the
// packets to Redis are dropped (break-nacl), every request that reaches Redis waits for it, so
// the API stops answering until the fault is gone.
"use strict";
const { RedisLink, serve } = require("./lib");

serve(new RedisLink({ timeoutMs: null, reconnect: true }));
