// Fail mode with the service stopped and restarted; the buffered recorder across a restart.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

import { Limitry } from "../src/index.js";
import { FaultProxy, freePort, LimitryServer, newCustomer } from "./harness.js";

let server: LimitryServer;
before(async () => {
  server = await LimitryServer.start();
});
after(async () => {
  await server.close();
});

const day = 86_400_000;
const around = () => ({ startDate: new Date(Date.now() - day).toISOString(), endDate: new Date(Date.now() + day).toISOString() });

describe("fail mode", () => {
  test("open and closed answers while the service is down; normal once it is back", async () => {
    const c = new Limitry({ apiKey: server.apiKey, baseUrl: server.url, maxRetries: 1, backoffBaseMs: 10, timeoutMs: 2000 });
    const meter = await c.meters.create({ name: "Tokens", aggregation: "sum", field: "values.tokens" });
    await c.limits.create({ name: "cap", meterId: meter.id, limitValue: 100, period: "day", customerId: "hard-capped", failMode: "closed" });
    await c.limits.create({ name: "soft", meterId: meter.id, limitValue: 100, period: "day", customerId: "soft-capped", failMode: "open" });
    assert.equal((await c.limits.check({ customerId: "hard-capped" })).allowed, true);
    assert.equal((await c.limits.check({ customerId: "soft-capped" })).allowed, true);

    await server.stop("SIGKILL");
    const hard = await c.limits.check({ customerId: "hard-capped" });
    assert.deepEqual([hard.allowed, hard.fallback, hard.failMode, hard.reason], [false, true, "closed", "service_unavailable"]);
    const soft = await c.limits.check({ customerId: "soft-capped" });
    assert.deepEqual([soft.allowed, soft.fallback, soft.failMode], [true, true, "open"]);
    const unknown = await c.limits.check({ customerId: "never-seen" });
    assert.deepEqual([unknown.allowed, unknown.fallback], [true, true]);
    assert.equal((await c.limits.check({ customerId: "soft-capped", failMode: "closed" })).allowed, false);
    assert.equal((await c.limits.check({ customerId: "hard-capped", failMode: "open" })).allowed, true);

    const strict = new Limitry({ apiKey: server.apiKey, baseUrl: server.url, maxRetries: 0, failMode: "closed" });
    assert.equal((await strict.limits.check({ customerId: "never-seen" })).allowed, false);

    await server.start();
    const back = await c.limits.check({ customerId: "hard-capped" });
    assert.equal(back.allowed, true);
    assert.equal(back.fallback, false);
    assert.equal((await strict.limits.check({ customerId: "never-seen" })).fallback, false);
  });

  test("a 5xx answer falls back too", async () => {
    const proxy = await FaultProxy.start(server.port);
    try {
      proxy.actions = ["503"];
      const c = new Limitry({ apiKey: server.apiKey, baseUrl: proxy.url, maxRetries: 0, failMode: "closed" });
      const answer = await c.limits.check({ customerId: "anyone" });
      assert.equal(answer.fallback, true);
      assert.equal(answer.allowed, false);
    } finally {
      await proxy.close();
    }
  });
});

test("a hung service falls back within the check timeout", async () => {
  const proxy = await FaultProxy.start(server.port);
  try {
    proxy.actions = ["sleep:3000", "sleep:3000"];
    const c = new Limitry({ apiKey: server.apiKey, baseUrl: proxy.url, checkTimeoutMs: 300, maxRetries: 1, backoffBaseMs: 10, failMode: "closed" });
    const started = Date.now();
    const answer = await c.limits.check({ customerId: "anyone" });
    assert.equal(answer.fallback, true);
    assert.equal(answer.allowed, false);
    assert.ok(Date.now() - started < 1500);
  } finally {
    await proxy.close();
  }
});

describe("buffered recorder", () => {
  test("10,000 events across a restart are stored exactly once", async () => {
    const n = 10_000;
    const customerId = "bulk";
    const c = new Limitry({ apiKey: server.apiKey, baseUrl: server.url, maxRetries: 0 });
    const counter = await c.meters.create({ name: "n", aggregation: "count", field: "*", eventFilter: { eventType: "bulk" } });
    const summer = await c.meters.create({ name: "sum", aggregation: "sum", field: "values.i", eventFilter: { eventType: "bulk" } });
    const recorder = c.recorder({ batchSize: 250, flushIntervalMs: 200, retryBaseMs: 50, retryCapMs: 500 });

    const restart = (async () => {
      while (recorder.stats.sent < n / 3) await new Promise((r) => setTimeout(r, 5));
      await server.stop("SIGKILL");
      await new Promise((r) => setTimeout(r, 1000));
      await server.start();
    })();
    for (let i = 0; i < n; i++) {
      assert.equal(recorder.record({ customerId, eventType: "bulk", values: { i } }), true);
      if (i % 500 === 0) await new Promise((r) => setImmediate(r)); // let sends run, as an app would
    }
    await restart;
    await recorder.close(60_000);

    assert.ok(recorder.stats.retries > 0, "the restart was felt");
    assert.equal(recorder.stats.lost, 0);
    assert.equal(recorder.stats.sent + recorder.stats.duplicates, n);
    assert.equal((await c.meters.query(counter.id, { ...around(), customerId })).value, n);
    assert.equal((await c.meters.query(summer.id, { ...around(), customerId })).value, (n * (n - 1)) / 2);
  });

  test("a batch goes out by time", async () => {
    const c = new Limitry({ apiKey: server.apiKey, baseUrl: server.url });
    const recorder = c.recorder({ batchSize: 1000, flushIntervalMs: 200 });
    recorder.record({ customerId: newCustomer(), eventType: "timed" });
    const deadline = Date.now() + 5000;
    while (recorder.stats.sent < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(recorder.stats.sent, 1);
    await recorder.close();
  });

  test("a full queue drops the newest and reports it", async () => {
    const c = new Limitry({ apiKey: server.apiKey, baseUrl: `http://127.0.0.1:${await freePort()}`, maxRetries: 0 });
    const dropped: unknown[] = [];
    const recorder = c.recorder({ maxQueue: 3, batchSize: 1000, flushIntervalMs: 60_000, onDrop: (e) => dropped.push(e.values?.i) });
    const accepted = [0, 1, 2, 3, 4].map((i) => recorder.record({ customerId: "q", eventType: "x", values: { i } }));
    assert.deepEqual(accepted, [true, true, true, false, false]);
    assert.deepEqual(dropped, [3, 4]);
    await recorder.close(300);
    assert.equal(recorder.stats.lost, 3);
  });

  test("an invalid event is reported and the rest recorded", async () => {
    const c = new Limitry({ apiKey: server.apiKey, baseUrl: server.url });
    const customerId = newCustomer();
    const errors: { field?: string }[] = [];
    const recorder = c.recorder({ batchSize: 10, flushIntervalMs: 100, onError: (e) => errors.push(e as { field?: string }) });
    recorder.record({ customerId, eventType: "ok", values: { i: 1 } });
    recorder.record({ customerId, eventType: "ok", timestamp: "not a date" });
    recorder.record({ customerId, eventType: "ok", values: { i: 3 } });
    await recorder.close();
    assert.equal(recorder.stats.sent, 2);
    assert.equal(recorder.stats.rejected, 1);
    assert.equal(errors[0].field, "events[1].timestamp");
  });

  test("queued events are flushed when the process's event loop empties", async () => {
    const customerId = newCustomer();
    const entry = fileURLToPath(new URL("../src/index.js", import.meta.url));
    const script = `
      import { Limitry } from ${JSON.stringify(entry)};
      const recorder = new Limitry({ apiKey: ${JSON.stringify(server.apiKey)}, baseUrl: ${JSON.stringify(server.url)} })
        .recorder({ flushIntervalMs: 60000 });
      for (let i = 0; i < 25; i++) recorder.record({ customerId: ${JSON.stringify(customerId)}, eventType: "exit.test", values: { i } });
      // no close(): the beforeExit hook sends what is queued
    `;
    execFileSync(process.execPath, ["--input-type=module", "-e", script], { timeout: 60_000 });
    const c = new Limitry({ apiKey: server.apiKey, baseUrl: server.url });
    assert.equal((await c.events.list({ customerId }).toArray()).length, 25);
  });
});
