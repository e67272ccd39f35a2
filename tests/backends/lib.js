// The common part of the Node test backends: the guide's cache-aside on GET /api/products, a
// Redis client that speaks RESP over the built-in `net` module (no npm install), and the HTTP
// server. Each backend file (survivor.js, hangs.js, health_needs_redis.js) chooses how its Redis
// link behaves: a command timeout or none, reconnecting or not, a health check that asks Redis or
// not. The environment is the task's: PORT, REDIS_ENABLED, REDIS_HOST, REDIS_PORT, DB_DELAY_MS.
"use strict";

const http = require("http");
const net = require("net");

const KEY = "products:all";
const PRODUCTS = [
  { id: 1, name: "Laptop" },
  { id: 2, name: "Phone" },
];

function log(message) {
  console.log(`${new Date().toISOString()} ${message}`);
}

// One RESP reply from `buf` at `at`: [value, next offset], or null when incomplete.
function parse(buf, at) {
  const end = buf.indexOf("\r\n", at);
  if (end < 0) return null;
  const kind = String.fromCharCode(buf[at]);
  const line = buf.toString("utf8", at + 1, end);
  if (kind === "+") return [line, end + 2];
  if (kind === "-") return [new Error(line), end + 2];
  if (kind === ":") return [Number(line), end + 2];
  if (kind === "$") {
    const n = Number(line);
    if (n < 0) return [null, end + 2];
    if (buf.length < end + 2 + n + 2) return null;
    return [buf.toString("utf8", end + 2, end + 2 + n), end + 2 + n + 2];
  }
  throw new Error(`unexpected RESP reply ${JSON.stringify(kind)}`);
}

function encode(args) {
  let out = `*${args.length}\r\n`;
  for (const a of args) out += `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`;
  return out;
}

// A Redis link. `timeoutMs` null: a command waits as long as Redis takes (no timeout).
// `reconnect`: after an error the next command (at most every `retryMs`) opens a new connection;
// without it, the link is dead after its first error, as with node-redis' `reconnectStrategy:
// false`. `onError(err)` is told about every failure after it is logged.
class RedisLink {
  constructor({ timeoutMs = 300, reconnect = true, retryMs = 500, onError = () => {} } = {}) {
    this.enabled = process.env.REDIS_ENABLED === "true";
    this.host = process.env.REDIS_HOST || "127.0.0.1";
    this.port = Number(process.env.REDIS_PORT || 6379);
    this.timeoutMs = timeoutMs;
    this.reconnect = reconnect;
    this.retryMs = retryMs;
    this.onError = onError;
    this.socket = null;
    this.ready = null; // a promise of the connected socket
    this.pending = [];
    this.buf = Buffer.alloc(0);
    this.dead = false;
    this.lastFailure = 0;
  }

  fail(err) {
    log(`⚠️ Redis error (ignored): ${err.message}`);
    this.lastFailure = Date.now();
    if (this.socket) this.socket.destroy();
    this.socket = null;
    this.ready = null;
    for (const p of this.pending.splice(0)) p.reject(err);
    this.buf = Buffer.alloc(0);
    if (!this.reconnect) this.dead = true;
    this.onError(err);
  }

  connect() {
    if (this.ready) return this.ready;
    this.ready = new Promise((resolve, reject) => {
      const socket = net.createConnection({ host: this.host, port: this.port });
      this.socket = socket;
      socket.on("data", (chunk) => this.receive(chunk));
      socket.on("error", (err) => {
        if (this.socket === socket) this.fail(err);
        reject(err);
      });
      socket.on("close", () => {
        if (this.socket === socket) this.fail(new Error("connection closed"));
        reject(new Error("connection closed"));
      });
      socket.on("connect", () => {
        this.send(["PING"], socket).then(() => {
          log("✅ Redis ready");
          resolve(socket);
        }, reject);
      });
    });
    this.ready.catch(() => {});
    return this.ready;
  }

  receive(chunk) {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      const got = parse(this.buf, 0);
      if (!got) return;
      this.buf = this.buf.subarray(got[1]);
      const p = this.pending.shift();
      if (!p) continue;
      if (got[0] instanceof Error) p.reject(got[0]);
      else p.resolve(got[0]);
    }
  }

  send(args, socket) {
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      socket.write(encode(args));
    });
  }

  // A command; rejects (and the link fails) on any error or after `timeoutMs`.
  async command(...args) {
    if (!this.enabled) throw new Error("Redis disabled");
    if (this.dead) throw new Error("Redis link closed for good (no reconnect)");
    if (!this.ready && Date.now() - this.lastFailure < this.retryMs) {
      throw new Error("Redis unavailable (retrying later)");
    }
    const work = this.connect().then((socket) => this.send(args, socket));
    if (this.timeoutMs === null) return work;
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout after ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    try {
      return await Promise.race([work, timeout]);
    } catch (err) {
      if (this.socket || this.ready) this.fail(err);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }
}

async function products(link) {
  if (link.enabled && !link.dead) {
    try {
      const cached = await link.command("GET", KEY);
      if (cached) return { source: "cache", data: JSON.parse(cached) };
    } catch (err) {
      // logged by the link; answer from the database
    }
  }
  await new Promise((r) => setTimeout(r, Number(process.env.DB_DELAY_MS || 300)));
  if (link.enabled && !link.dead) {
    try {
      await link.command("SET", KEY, JSON.stringify(PRODUCTS), "EX", "60");
    } catch (err) {
      // logged by the link
    }
  }
  return { source: "db", data: PRODUCTS };
}

// Serve GET /api/products (cache-aside through `link`) and GET /health (`health()` gives the
// status code) on 127.0.0.1:$PORT.
function serve(link, health = async () => 200) {
  const server = http.createServer(async (req, res) => {
    const send = (status, body) => {
      res.writeHead(status, { "Content-Type": "application/json" });
      res.end(JSON.stringify(body));
    };
    try {
      if (req.url === "/health") {
        const status = await health();
        return send(status, { ok: status === 200 });
      }
      if (req.url === "/api/products") return send(200, await products(link));
      return send(404, { error: "not found" });
    } catch (err) {
      return send(500, { error: err.message });
    }
  });
  server.listen(Number(process.env.PORT || 3000), "127.0.0.1", () => log("listening"));
  process.on("SIGTERM", () => process.exit(0));
  if (link.enabled) link.connect().catch(() => {});
}

module.exports = { RedisLink, serve, log };
