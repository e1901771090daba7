// Drives walrelay's pull API with Upstash's official client,
// @upstash/kafka, and asserts every call's result. Run by
// TestUpstashClientInterop (interop_test.go), which serves the API over
// kfake and passes, in the environment:
//
//   PULL_URL    the API (IdleTimeout: the default)
//   CRON_URL    the same topics, with a short IdleTimeout
//   HELPER_URL  a test-only helper producing records: POST /produce?topic=&partition=&n=&tag=
//   PULL_USER, PULL_PASS
//
// The topics: sequin.public.users (2 partitions; 5 records each at start,
// values "u<partition>-<i>"), sequin.public.orders (1 partition, empty at
// start) and "private" (outside the allow-list).
//
// Exits non-zero, naming the check, on the first mismatch.
"use strict";

const { Kafka, UpstashError } = require("@upstash/kafka");
const assert = require("node:assert/strict");
const { randomUUID } = require("node:crypto");

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const URL_ = env("PULL_URL");
const CRON_URL = env("CRON_URL");
const HELPER_URL = env("HELPER_URL");
const USER = env("PULL_USER");
const PASS = env("PULL_PASS");

const USERS = "sequin.public.users";
const ORDERS = "sequin.public.orders";

// The stock client, as an application would use it.
const kafka = new Kafka({ url: URL_, username: USER, password: PASS });

// A client that does not retry. The stock client retries every non-2xx
// answer five times with backoff (about 15.5 s per error); its request
// options carry a "retries" count, which this sets to 0 so the error cases
// below fail fast.
function noRetry(k) {
  const http = k.client;
  const request = http.request.bind(http);
  http.request = (method, req) => request(method, { ...req, retries: 0 });
  return k;
}
const strict = noRetry(new Kafka({ url: URL_, username: USER, password: PASS }));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// until calls f until it returns a truthy value, for at most 30 s.
async function until(what, f) {
  const deadline = Date.now() + 30000;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function produce(topic, partition, n, tag) {
  const res = await fetch(`${HELPER_URL}/produce?topic=${topic}&partition=${partition}&n=${n}&tag=${tag}`, { method: "POST" });
  assert.equal(res.status, 200, "helper produce");
  return res.json(); // the offsets
}

async function rejects(promise, status, mention) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof UpstashError, `want an UpstashError ${status}, got ${err}`);
  assert.equal(err.status, status, `status of "${err.message}"`);
  if (mention) assert.match(err.message, mention);
}

const values = (msgs) => msgs.map((m) => m.value);
const initial = (p) => [0, 1, 2, 3, 4].map((i) => `u${p}-${i}`);

// consumeAll consumes until n messages have arrived.
async function consumeAll(c, req, n) {
  const got = [];
  await until(`${n} messages for ${req.consumerGroupId}/${req.instanceId}`, async () => {
    got.push(...(await c.consume(req)));
    return got.length >= n;
  });
  return got;
}

const checks = {
  async fetch() {
    const c = kafka.consumer();
    const p0 = await c.fetch({ topic: USERS, partition: 0, offset: 0 });
    assert.deepEqual(values(p0), initial(0));
    const m = p0[1];
    assert.equal(m.topic, USERS);
    assert.equal(m.partition, 0);
    assert.equal(m.offset, 1);
    assert.equal(typeof m.timestamp, "number");
    assert.ok(Math.abs(Date.now() - m.timestamp) < 3600e3, `timestamp ${m.timestamp} is epoch ms`);
    assert.equal(m.key, "k0-1");
    assert.deepEqual(m.headers, [
      { key: "action", value: "insert" },
      { key: "trace", value: "a" },
      { key: "trace", value: "b" },
    ]);
    assert.equal(p0[0].key, "", "a record without a key has key \"\"");

    // Several partitions, the client's parallel way and in one request.
    const req = {
      topicPartitionOffsets: [
        { topic: USERS, partition: 0, offset: 3 },
        { topic: USERS, partition: 1, offset: 2 },
      ],
      timeout: 500,
    };
    const parallel = await c.fetch(req);
    assert.deepEqual(values(parallel), ["u0-3", "u0-4", "u1-2", "u1-3", "u1-4"]);
    const single = await c.fetch(req, { parallel: false });
    assert.deepEqual(values(single), ["u0-3", "u0-4", "u1-2", "u1-3", "u1-4"]);
    // The end of a partition: an empty page after the timeout.
    assert.deepEqual(await c.fetch({ topic: USERS, partition: 1, offset: 5, timeout: 100 }), []);
  },

  async consumeOneInstance() {
    const c = kafka.consumer();
    const g = randomUUID();
    const req = { consumerGroupId: g, instanceId: "i1", topics: [USERS], autoOffsetReset: "earliest", timeout: 3000 };
    const got = await consumeAll(c, req, 10);
    assert.deepEqual(values(got).sort(), [...initial(0), ...initial(1)].sort());
    assert.deepEqual(await c.consume({ ...req, timeout: 200 }), [], "nothing more");
    await kafka.admin().removeConsumerInstance(g, "i1");
    // Auto-commit (the default) committed everything at removal.
    const committed = await kafka.admin().committedOffsets({
      consumerGroupId: g, instanceId: "i1",
      topicPartitions: [{ topic: USERS, partition: 0 }, { topic: USERS, partition: 1 }],
    });
    assert.deepEqual(committed, [
      { topic: USERS, partition: 0, offset: 5 },
      { topic: USERS, partition: 1, offset: 5 },
    ]);
    // A new instance of the group has nothing left to read.
    assert.deepEqual(await c.consume({ ...req, instanceId: "i2", timeout: 500 }), []);
    await kafka.admin().removeConsumerInstance(g, "i2");
    await rejects(strict.admin().removeConsumerInstance(g, "i2"), 404, /does not exist/);
  },

  async autoCommitOffCommitAndCommitted() {
    const c = kafka.consumer();
    const g = randomUUID();
    const req = { consumerGroupId: g, instanceId: "i", topics: [USERS], autoCommit: false, autoOffsetReset: "earliest", timeout: 3000 };
    const first = await consumeAll(c, req, 1);
    const tps = [{ topic: USERS, partition: 0 }, { topic: USERS, partition: 1 }];
    const none = await c.committed({ consumerGroupId: g, instanceId: "i", topicPartitions: tps });
    assert.deepEqual(none.map((o) => o.offset), [-1, -1]);

    // committed() returns exactly the offset given to commit().
    const { topic, partition, offset } = first[0];
    await c.commit({ consumerGroupId: g, instanceId: "i", offset: { topic, partition, offset } });
    const post = await c.committed({ consumerGroupId: g, instanceId: "i", topicPartitions: [{ topic, partition }] });
    assert.deepEqual(post, [{ topic, partition, offset }]);
    await c.commit({ consumerGroupId: g, instanceId: "i", offset: [{ topic: USERS, partition: 0, offset: 2 }, { topic: USERS, partition: 1, offset: 1 }] });
    const both = await c.committed({ consumerGroupId: g, instanceId: "i", topicPartitions: tps });
    assert.deepEqual(both.map((o) => o.offset), [2, 1]);

    // Without offsets: everything this instance returned.
    await c.commit({ consumerGroupId: g, instanceId: "i" });
    const last = {};
    for (const m of first) last[m.partition] = m.offset + 1;
    const after = await c.committed({ consumerGroupId: g, instanceId: "i", topicPartitions: tps });
    for (const o of after) {
      if (o.partition in last) assert.equal(o.offset, last[o.partition], `partition ${o.partition}`);
    }

    // With auto-commit off, removing the instance commits nothing more:
    // the records after the commit come again to the next instance.
    const got = first.length;
    assert.ok(got === 10 || (await consumeAll(c, req, 10 - got)), "the rest of the initial records");
    await c.commit({ consumerGroupId: g, instanceId: "i" });
    const tag = randomUUID().slice(0, 8);
    await produce(USERS, 0, 2, tag);
    const more = await consumeAll(c, req, 2);
    assert.deepEqual(values(more), [`${tag}-0`, `${tag}-1`]);
    await kafka.admin().removeConsumerInstance(g, "i");
    const again = await consumeAll(c, { ...req, instanceId: "j" }, 2);
    assert.deepEqual(values(again), values(more), "the uncommitted records are redelivered");
    await kafka.admin().removeConsumerInstance(g, "j");
  },

  async autoCommitInterval() {
    const c = kafka.consumer();
    const g = randomUUID();
    // Interval 0: every call commits what the previous calls returned.
    const req = { consumerGroupId: g, instanceId: "i", topics: [USERS], autoCommitInterval: 0, autoOffsetReset: "earliest", timeout: 3000 };
    const ends = await kafka.admin().topicPartitionOffsets({ timestamp: "latest", topicPartitions: [{ topic: USERS, partition: 0 }, { topic: USERS, partition: 1 }] });
    const total = ends[0].offset + ends[1].offset;
    const got = await consumeAll(c, req, total);
    assert.equal(got.length, total);
    await c.consume({ ...req, timeout: 100 });
    const committed = await c.committed({ consumerGroupId: g, instanceId: "i", topicPartitions: [{ topic: USERS, partition: 0 }, { topic: USERS, partition: 1 }] });
    assert.deepEqual(committed, ends, `after ${got.length} records`);
    await kafka.admin().removeConsumerInstance(g, "i");
  },

  async severalInstances() {
    const c = kafka.consumer();
    const admin = kafka.admin();
    const g = randomUUID();
    const req = (i) => ({ consumerGroupId: g, instanceId: i, topics: [USERS], autoOffsetReset: "latest", timeout: 200 });
    // Join both, then wait for Kafka to give each one partition.
    await until("two instances with one partition each", async () => {
      await c.consume(req("a"));
      await c.consume(req("b"));
      const group = (await admin.consumers()).find((x) => x.name === g);
      return group && group.instances.length === 2 &&
        group.instances.every((i) => i.topics.length === 1 && i.topics[0].partitions.length === 1);
    });
    const group = (await admin.consumers()).find((x) => x.name === g);
    const owner = {};
    for (const i of group.instances) owner[i.topics[0].partitions[0]] = i.name;
    assert.deepEqual(Object.values(owner).sort(), ["a", "b"]);

    const tag = randomUUID().slice(0, 8);
    const got = { a: [], b: [] };
    // "latest": keep producing one record per partition until both
    // instances see one, then everything after that must arrive once, on
    // the partition's owner.
    await until("records on both instances", async () => {
      await produce(USERS, 0, 1, tag);
      await produce(USERS, 1, 1, tag);
      got.a.push(...(await c.consume(req("a"))));
      got.b.push(...(await c.consume(req("b"))));
      return got.a.length > 0 && got.b.length > 0;
    });
    await produce(USERS, 0, 3, tag + "x");
    await produce(USERS, 1, 3, tag + "x");
    await until("the 6 later records", async () => {
      got.a.push(...(await c.consume(req("a"))));
      got.b.push(...(await c.consume(req("b"))));
      return [...got.a, ...got.b].filter((m) => m.value.startsWith(tag + "x")).length >= 6;
    });
    for (const name of ["a", "b"]) {
      for (const m of got[name]) {
        assert.equal(owner[m.partition], name, `${m.value} from partition ${m.partition} went to ${name}`);
        assert.ok(m.value.startsWith(tag), `old record ${m.value} under latest`);
      }
    }
    const later = [...got.a, ...got.b].filter((m) => m.value.startsWith(tag + "x")).map((m) => `${m.partition}:${m.value}`);
    assert.equal(new Set(later).size, 6, `duplicates in ${later}`);
    await admin.removeConsumerInstance(g, "a");
    await admin.removeConsumerInstance(g, "b");
  },

  async offsetReset() {
    const c = kafka.consumer();
    const g = randomUUID();
    // none: a group without committed offsets is refused...
    await rejects(
      strict.consumer().consume({ consumerGroupId: g, instanceId: "i", topics: [ORDERS], autoOffsetReset: "none" }),
      409, /no committed offset/,
    );
    // ...until it has one.
    const [o] = await produce(ORDERS, 0, 3, "ord");
    await c.commit({ consumerGroupId: g, instanceId: "i", offset: { topic: ORDERS, partition: 0, offset: o + 1 } });
    const got = await consumeAll(c, { consumerGroupId: g, instanceId: "i", topics: [ORDERS], autoOffsetReset: "none", timeout: 3000 }, 2);
    assert.deepEqual(got.map((m) => m.offset), [o + 1, o + 2]);
    await kafka.admin().removeConsumerInstance(g, "i");
    await rejects(
      strict.consumer().consume({ consumerGroupId: g, instanceId: "i", topics: [ORDERS], autoOffsetReset: "sometimes" }),
      400, /Kafka-Auto-Offset-Reset/,
    );
  },

  async topicChange() {
    const c = kafka.consumer();
    const g = randomUUID();
    const base = { consumerGroupId: g, instanceId: "i", autoOffsetReset: "earliest", timeout: 3000 };
    await consumeAll(c, { ...base, topics: [USERS] }, 10);
    // The same instance asked for other topics moves to them.
    const [o] = await produce(ORDERS, 0, 1, "moved");
    const got = await consumeAll(c, { ...base, topics: [ORDERS] }, 1);
    assert.ok(got.every((m) => m.topic === ORDERS), `records of ${got.map((m) => m.topic)}`);
    assert.ok(got.some((m) => m.offset === o));
    await kafka.admin().removeConsumerInstance(g, "i");
    await rejects(strict.consumer().consume({ ...base, topics: ["sequin.public.nope"] }), 404, /does not exist/);
    await rejects(strict.consumer().consume({ ...base, topics: ["private"] }), 403, /not served/);
  },

  async admin() {
    const admin = kafka.admin();
    const topics = await admin.topics();
    assert.equal(topics[USERS], 2);
    assert.equal(topics[ORDERS], 1);
    assert.equal(topics.private, undefined, "a topic outside the allow-list is listed");

    const tp = { topic: USERS, partition: 1 };
    assert.deepEqual(await admin.topicPartitionOffsets({ timestamp: "earliest", topicPartition: tp }), [{ ...tp, offset: 0 }]);
    const [latest] = await admin.topicPartitionOffsets({ timestamp: "latest", topicPartition: tp });
    assert.ok(latest.offset >= 5, `latest ${latest.offset}`);
    const [fromStart] = await admin.topicPartitionOffsets({ timestamp: 1, topicPartitions: [tp] });
    assert.equal(fromStart.offset, 0);
    const [future] = await admin.topicPartitionOffsets({ timestamp: Date.now() + 3600e3, topicPartitions: [tp] });
    assert.equal(future.offset, -1);

    const g = randomUUID();
    await kafka.consumer().consume({ consumerGroupId: g, instanceId: "solo", topics: [USERS], timeout: 100 });
    const group = await until("the instance in /consumers", async () => {
      const x = (await admin.consumers()).find((c) => c.name === g);
      return x && x.instances[0]?.topics.length ? x : null;
    });
    assert.deepEqual(group, {
      name: g,
      instances: [{ name: "solo", topics: [{ topic: USERS, partitions: [0, 1] }] }],
    });
    await admin.removeConsumerInstance(g, "solo");
    assert.equal((await admin.consumers()).find((c) => c.name === g), undefined);
  },

  async wrongCredentials() {
    const bad = noRetry(new Kafka({ url: URL_, username: USER, password: "wrong" }));
    await rejects(bad.admin().topics(), 401, /authentication required/);
    await rejects(bad.consumer().fetch({ topic: USERS, partition: 0, offset: 0 }), 401);
  },

  async produceIsRefused() {
    await rejects(strict.producer().produce(USERS, "hello"), 403, /producing/);
  },

  // A consumer calling less often than IdleTimeout (a cron job): its
  // instance is reaped between calls, and every call still continues
  // where the previous one stopped — nothing repeated, nothing skipped.
  async rareConsumerAdvances() {
    const cron = new Kafka({ url: CRON_URL, username: USER, password: PASS });
    const admin = cron.admin();
    const g = randomUUID();
    const [o] = await produce(ORDERS, 0, 1, "before");
    // Start the group after everything already in the topic.
    await cron.consumer().commit({ consumerGroupId: g, instanceId: "job", offset: { topic: ORDERS, partition: 0, offset: o + 1 } });
    const got = [];
    let calls = 0;
    for (let round = 0; round < 4; round++) {
      const offsets = await produce(ORDERS, 0, 3, `cron${round}`);
      const want = got.length + 3;
      while (got.length < want) {
        assert.ok(++calls < 20, `after ${calls} calls only ${got.length} records`);
        const page = await cron.consumer().consume({ consumerGroupId: g, instanceId: "job", topics: [ORDERS], timeout: 5000 });
        if (page.length > 0) {
          const next = got.length ? got[got.length - 1].offset + 1 : o + 1;
          assert.equal(page[0].offset, next, `call ${calls} started at ${page[0].offset}, want ${next}`);
          got.push(...page);
        }
        // Wait out IdleTimeout: the instance is gone before the next call.
        await until("the instance to be reaped", async () => !(await admin.consumers()).some((c) => c.name === g));
      }
      assert.deepEqual(got.slice(-3).map((m) => m.offset), offsets, `round ${round}`);
    }
    assert.equal(got.length, 12);
  },
};

(async () => {
  const only = process.argv.slice(2);
  for (const [name, check] of Object.entries(checks)) {
    if (only.length && !only.includes(name)) continue;
    const start = Date.now();
    try {
      await check();
    } catch (e) {
      console.error(`FAIL ${name}: ${e.stack || e}`);
      process.exit(1);
    }
    console.log(`ok   ${name} (${Date.now() - start} ms)`);
  }
})();
