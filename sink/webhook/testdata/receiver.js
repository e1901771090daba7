// A webhook receiver built on the official Standard Webhooks package: every
// request is checked with Webhook.verify, exactly as a receiver following
// the package's README would.
//
// Usage: node receiver.js '<json options>'
//   secret     the secret to verify with, as the receiver holds it
//   failFirst  answer 503 to the first N requests that verify (default 0)
//   clock      optional URL answering the receiver's current time in unix
//              milliseconds; when set, the verifier's clock (Date.now) is
//              read from it before each request instead of the system clock
//
// It prints "listening <port>" once, then one JSON line per request:
// {"n", "verified", "error", "id", "timestamp", "signatures", "data"}, and
// answers 200 to a verified request (after failFirst), 401 otherwise.
"use strict";

const http = require("http");
const { Webhook } = require("standardwebhooks");

const opts = JSON.parse(process.argv[2]);
const wh = new Webhook(opts.secret);
const systemNow = Date.now;
let n = 0;
let passed = 0;

async function clockNow() {
  if (!opts.clock) return systemNow();
  const res = await fetch(opts.clock);
  return Number(await res.text());
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", async () => {
    n++;
    const body = Buffer.concat(chunks);
    const line = {
      n,
      id: req.headers["webhook-id"] || "",
      timestamp: req.headers["webhook-timestamp"] || "",
      signatures: (req.headers["webhook-signature"] || "").split(" ").length,
      verified: false,
    };
    try {
      const now = await clockNow();
      Date.now = () => now;
      try {
        line.data = wh.verify(body, req.headers);
      } finally {
        Date.now = systemNow;
      }
      line.verified = true;
    } catch (e) {
      line.error = e.message;
    }
    process.stdout.write(JSON.stringify(line) + "\n");
    if (!line.verified) {
      res.writeHead(401, { "content-type": "text/plain" });
      res.end(line.error);
      return;
    }
    passed++;
    if (passed <= (opts.failFirst || 0)) {
      res.writeHead(503);
      res.end("not yet");
      return;
    }
    res.writeHead(200);
    res.end("ok");
  });
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write("listening " + server.address().port + "\n");
});
