// Every /v1 resource, auto-pagination and the typed errors, against the real service.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  APIConnectionError,
  APITimeoutError,
  AuthenticationError,
  ConflictError,
  InternalServerError,
  Limitry,
  NotFoundError,
  RateLimitError,
  ValidationError,
} from "../src/index.js";
import { FaultProxy, freePort, LimitryServer, newCustomer, rejects, WebhookReceiver } from "./harness.js";

let server: LimitryServer;
let client: Limitry;

before(async () => {
  server = await LimitryServer.start();
  client = new Limitry({ apiKey: server.apiKey, baseUrl: server.url, backoffBaseMs: 20 });
});
after(async () => {
  await server.close();
});

const hour = 3600_000;
const around = () => ({ startDate: new Date(Date.now() - hour).toISOString(), endDate: new Date(Date.now() + hour).toISOString() });

describe("resources", () => {
  test("project is the key's project", async () => {
    assert.match((await client.project.retrieve()).id, /^proj_/);
  });

  test("customers: create, get by either id, update, list, delete", async () => {
    const ext = newCustomer();
    const created = await client.customers.create({ externalId: ext, name: "Ada", email: "ada@example.com", metadata: { plan: "pro" } });
    assert.match(created.id, /^cust_/);
    assert.equal((await client.customers.retrieve(ext)).id, created.id);
    assert.equal((await client.customers.retrieve(created.id)).externalId, ext);
    const updated = await client.customers.update(ext, { name: "Ada L." });
    assert.equal(updated.name, "Ada L.");
    assert.equal(updated.email, "ada@example.com");
    assert.deepEqual((await client.customers.list({ search: ext }).toArray()).map((c) => c.externalId), [ext]);
    await client.customers.delete(ext);
    await rejects(client.customers.retrieve(ext), NotFoundError);
  });

  test("events: record, batch, list", async () => {
    const customerId = newCustomer();
    const one = await client.events.record({ customerId, eventType: "api.call", values: { n: 1 }, dimensions: { route: "/a" } });
    assert.equal(one.recorded, true);
    assert.equal(one.duplicate, false);
    const batch = await client.events.batch([
      { customerId, eventType: "api.call", values: { n: 2 } },
      { customerId, eventType: "api.call", values: { n: 3 } },
    ]);
    assert.equal(batch.count, 2);
    const listed = await client.events.list({ customerId }).toArray();
    assert.deepEqual(listed.map((e) => e.values.n).sort(), [1, 2, 3]);
  });

  test("meters: CRUD and query", async () => {
    const customerId = newCustomer();
    const meter = await client.meters.create({ name: "Calls", aggregation: "count", field: "*", eventFilter: { eventType: "meter.test", dimensions: { kind: "a" } } });
    assert.equal((await client.meters.retrieve(meter.id)).name, "Calls");
    assert.equal((await client.meters.update(meter.id, { description: "kind a" })).description, "kind a");
    assert.ok((await client.meters.list().toArray()).some((m) => m.id === meter.id));
    await client.events.batch(["a", "a", "b"].map((kind) => ({ customerId, eventType: "meter.test", dimensions: { kind } })));
    assert.equal((await client.meters.query(meter.id, { ...around(), customerId })).value, 2);
    await client.meters.delete(meter.id);
    await rejects(client.meters.retrieve(meter.id), NotFoundError);
  });

  test("limits: CRUD and check", async () => {
    const customerId = newCustomer();
    const meter = await client.meters.create({ name: "Tokens", aggregation: "sum", field: "values.tokens", eventFilter: { eventType: "limit.test" } });
    const limit = await client.limits.create({ name: "Daily", meterId: meter.id, limitValue: 1000, period: "day", customerId, failMode: "closed" });
    assert.equal((await client.limits.retrieve(limit.id)).limitValue, 1000);
    assert.deepEqual((await client.limits.list({ customerId }).toArray()).map((l) => l.id), [limit.id]);
    const check = await client.limits.check({ customerId });
    assert.equal(check.allowed, true);
    assert.equal(check.fallback, false);
    assert.equal(check.limits[0].failMode, "closed");
    await client.events.record({ customerId, eventType: "limit.test", values: { tokens: 600 } });
    assert.equal((await client.limits.check({ customerId })).limits[0].remaining, 400);
    const denied = await client.limits.check({ customerId, requested: 500 });
    assert.equal(denied.allowed, false);
    assert.equal(denied.reason, "limit_exceeded");
    await client.limits.update(limit.id, { limitValue: 2000 });
    assert.equal((await client.limits.check({ customerId, requested: 500 })).allowed, true);
    await client.limits.delete(limit.id);
    assert.deepEqual((await client.limits.check({ customerId })).limits, []);
  });

  test("limits: consume records only what fits", async () => {
    const customerId = newCustomer();
    const meter = await client.meters.create({ name: "Tokens", aggregation: "sum", field: "values.tokens", eventFilter: { eventType: "consume.test" } });
    const limit = await client.limits.create({ name: "Daily", meterId: meter.id, limitValue: 100, period: "day", customerId });
    const used = await client.limits.consume({ customerId, eventType: "consume.test", values: { tokens: 60 }, idempotencyKey: `${customerId}-job-1` });
    assert.equal(used.allowed, true);
    assert.ok(used.eventId);
    assert.equal(used.limits[0].used, 60);
    const again = await client.limits.consume({ customerId, eventType: "consume.test", values: { tokens: 60 }, idempotencyKey: `${customerId}-job-1` });
    assert.equal(again.duplicate, true);
    assert.equal(again.eventId, used.eventId);
    const refused = await client.limits.consume({ customerId, eventType: "consume.test", values: { tokens: 41 } });
    assert.equal(refused.allowed, false);
    assert.equal(refused.reason, "limit_exceeded");
    assert.equal(refused.eventId, undefined);
    assert.equal((await client.limits.check({ customerId })).limits[0].used, 60);
    const usage = await client.limits.usage(limit.id, { limit: 10 });
    assert.deepEqual(usage.data.map((e) => [e.customerExternalId, e.used, e.remaining]), [[customerId, 60, 40]]);
  });

  test("balances: credit, debit, reserve, commit, release, ledger", async () => {
    const customerId = newCustomer();
    const balance = await client.balances.create({ customerId, name: "credits", initialBalance: 1000 });
    assert.equal((await client.balances.retrieve(balance.id)).availableBalance, 1000);
    assert.equal((await client.balances.credit({ customerId, name: "credits", amount: 500, description: "top-up" })).balance.currentBalance, 1500);
    assert.equal((await client.balances.debit({ balanceId: balance.id, amount: 200 })).balance.currentBalance, 1300);
    const short = await client.balances.debit({ balanceId: balance.id, amount: 10_000 });
    assert.equal(short.success, false);
    assert.equal(short.error, "insufficient_balance");
    assert.equal((await client.balances.check({ balanceId: balance.id, amount: 1301 })).sufficient, false);
    const held = await client.balances.reserve({ balanceId: balance.id, amount: 300, ttlSeconds: 60 });
    assert.equal(held.balance.availableBalance, 1000);
    assert.equal((await client.balances.commit(held.reservation!.id, { amount: 250 })).balance.currentBalance, 1050);
    const held2 = await client.balances.reserve({ customerId, name: "credits", amount: 100 });
    assert.equal((await client.balances.release(held2.reservation!.id)).balance.availableBalance, 1050);
    const ledger = await client.balances.transactions(balance.id).toArray();
    assert.equal(ledger.reduce((sum, t) => sum + t.amount, 0), 1050);
    assert.deepEqual((await client.customers.balances(customerId).toArray()).map((b) => b.id), [balance.id]);
  });

  test("customer usage and usage summary", async () => {
    const customerId = newCustomer();
    const meter = await client.meters.create({ name: "Usage", aggregation: "sum", field: "values.tokens", eventFilter: { eventType: "usage.test" } });
    await client.events.record({ customerId, eventType: "usage.test", values: { tokens: 42 } });
    assert.ok((await client.customers.usage(customerId)).data.some((m) => m.meterId === meter.id));
    const today = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const summary = await client.usage.summary({ startDate: today, endDate: tomorrow, period: "total" });
    assert.deepEqual(summary.data.filter((r) => r.meterId === meter.id).map((r) => r.value), [42]);
    assert.ok((await client.usage.summaryCsv({ startDate: today, endDate: tomorrow })).includes(meter.id));
  });

  test("rotating a webhook secret keeps the old one signing for the grace hours asked", async () => {
    const hook = await client.webhooks.create({ url: "http://127.0.0.1:9/hook", enabled: false });
    try {
      const before = Date.now();
      const expiresIn = async (body?: { graceHours?: number }) => {
        const rotated = await client.webhooks.rotateSecret(hook.id, body);
        assert.notEqual(rotated.secret, hook.secret);
        return rotated.previousSecretExpiresAt ? Date.parse(rotated.previousSecretExpiresAt) - before : null;
      };
      const twoHours = await expiresIn({ graceHours: 2 });
      assert.ok(twoHours !== null && twoHours >= 2 * hour - 1000 && twoHours < 2 * hour + 60_000, String(twoHours));
      const byDefault = await expiresIn();
      assert.ok(byDefault !== null && byDefault >= 24 * hour - 1000 && byDefault < 24 * hour + 60_000, String(byDefault));
      assert.equal(await expiresIn({ graceHours: 0 }), null);
      const refused = await rejects(client.webhooks.rotateSecret(hook.id, { graceHours: 721 }), ValidationError);
      assert.equal(refused.field, "graceHours");
    } finally {
      await client.webhooks.delete(hook.id);
    }
  });

  test("webhooks: CRUD, rotate, test, deliveries, redeliver", async () => {
    const receiver = await WebhookReceiver.start();
    try {
      const hook = await client.webhooks.create({ url: receiver.url, eventTypes: ["limit.exceeded"], description: "sink" });
      assert.match(hook.secret, /^whsec_/);
      assert.equal((await client.webhooks.retrieve(hook.id)).description, "sink");
      assert.equal((await client.webhooks.update(hook.id, { description: "receiver" })).description, "receiver");
      assert.ok((await client.webhooks.list().toArray()).some((w) => w.id === hook.id));
      assert.notEqual((await client.webhooks.rotateSecret(hook.id)).secret, hook.secret);
      await client.webhooks.test(hook.id);
      const [first] = await receiver.waitFor(1);
      assert.equal(first.body.type, "webhook.test");
      const deliveries = await client.webhooks.deliveries(hook.id).toArray();
      assert.equal(deliveries.length, 1);
      await client.webhooks.redeliver(hook.id, deliveries[0].id);
      const again = (await receiver.waitFor(2))[1];
      assert.equal(again.headers["webhook-id"], first.headers["webhook-id"]);
      assert.equal((await client.webhooks.update(hook.id, { enabled: false })).enabled, false);
      await client.webhooks.delete(hook.id);
      await rejects(client.webhooks.retrieve(hook.id), NotFoundError);
    } finally {
      await receiver.close();
    }
  });
});

describe("pagination", () => {
  test("for await walks every page", async () => {
    const customerId = newCustomer();
    await client.events.batch(Array.from({ length: 23 }, (_, i) => ({ customerId, eventType: "page.test", values: { i } })));
    const pager = client.events.list({ customerId, limit: 5 });
    const first = await pager.firstPage();
    assert.equal(first.data.length, 5);
    assert.equal(first.hasMore, true);
    const sizes: number[] = [];
    for await (const page of pager.pages()) sizes.push(page.data.length);
    assert.deepEqual(sizes, [5, 5, 5, 5, 3]);
    const seen: number[] = [];
    for await (const event of client.events.list({ customerId, limit: 5 })) seen.push(event.values.i);
    assert.deepEqual(seen.sort((a, b) => a - b), Array.from({ length: 23 }, (_, i) => i));
  });
});

describe("errors", () => {
  test("AuthenticationError", async () => {
    const bad = new Limitry({ apiKey: "limitry_sk_not_real", baseUrl: server.url });
    const error = await rejects(bad.project.retrieve(), AuthenticationError);
    assert.equal(error.status, 401);
    assert.equal(error.code, "invalid_api_key");
  });

  test("NotFoundError", async () => {
    assert.equal((await rejects(client.meters.retrieve("mtr_nope"), NotFoundError)).code, "meter_not_found");
  });

  test("ValidationError names the field", async () => {
    const customerId = newCustomer();
    const error = await rejects(client.events.batch([{ customerId, eventType: "ok" }, { customerId } as any]), ValidationError);
    assert.equal(error.field, "events[1].eventType");
  });

  test("ConflictError", async () => {
    const externalId = newCustomer();
    await client.customers.create({ externalId });
    assert.equal((await rejects(client.customers.create({ externalId }), ConflictError)).status, 409);
  });

  test("RateLimitError carries retryAfter; a short Retry-After is waited for", async () => {
    const proxy = await FaultProxy.start(server.port);
    try {
      const c = new Limitry({ apiKey: server.apiKey, baseUrl: proxy.url });
      proxy.actions = ["429:120"];
      assert.equal((await rejects(c.project.retrieve(), RateLimitError)).retryAfter, 120);
      proxy.actions = ["429:1"];
      const started = Date.now();
      assert.match((await c.project.retrieve()).id, /^proj_/);
      assert.ok(Date.now() - started >= 1000);
    } finally {
      await proxy.close();
    }
  });

  test("APIConnectionError and APITimeoutError", async () => {
    const nobody = new Limitry({ apiKey: "x", baseUrl: `http://127.0.0.1:${await freePort()}`, maxRetries: 1, backoffBaseMs: 5 });
    const error = await rejects(nobody.project.retrieve(), APIConnectionError);
    assert.ok(!(error instanceof APITimeoutError));
    const proxy = await FaultProxy.start(server.port);
    try {
      proxy.actions = ["sleep:1500"];
      const slow = new Limitry({ apiKey: server.apiKey, baseUrl: proxy.url, timeoutMs: 300, maxRetries: 0 });
      await rejects(slow.project.retrieve(), APITimeoutError);
    } finally {
      await proxy.close();
    }
  });

  test("configuration from LIMITRY_API_KEY and LIMITRY_BASE_URL", async () => {
    process.env.LIMITRY_API_KEY = server.apiKey;
    process.env.LIMITRY_BASE_URL = server.url;
    try {
      assert.match((await new Limitry().project.retrieve()).id, /^proj_/);
    } finally {
      delete process.env.LIMITRY_API_KEY;
      delete process.env.LIMITRY_BASE_URL;
    }
    assert.throws(() => new Limitry(), /LIMITRY_API_KEY/);
  });
});

describe("retries", () => {
  test("the same event sent twice counts once", async () => {
    const customerId = newCustomer();
    const first = await client.events.record({ customerId, eventType: "dup", idempotencyKey: "req-1" });
    const second = await client.events.record({ customerId, eventType: "dup", idempotencyKey: "req-1" });
    assert.equal(second.duplicate, true);
    assert.equal(second.id, first.id);
    assert.equal((await client.events.list({ customerId }).toArray()).length, 1);
  });

  test("a record whose answer was lost is resent with the same key and counts once", async () => {
    const proxy = await FaultProxy.start(server.port);
    try {
      const customerId = newCustomer();
      const c = new Limitry({ apiKey: server.apiKey, baseUrl: proxy.url, backoffBaseMs: 10 });
      proxy.actions = ["forward_then_503"];
      assert.equal((await c.events.record({ customerId, eventType: "retry" })).duplicate, true);
      assert.equal(proxy.seen.length, 2);
      assert.equal(proxy.seen[0].body, proxy.seen[1].body);
      proxy.actions = ["forward_then_drop"];
      const batch = await c.events.batch(Array.from({ length: 5 }, () => ({ customerId, eventType: "retry" })));
      assert.equal(batch.duplicates, 5);
      assert.equal((await client.events.list({ customerId }).toArray()).length, 6);
    } finally {
      await proxy.close();
    }
  });

  test("a debit retried after a timeout moves money once", async () => {
    const proxy = await FaultProxy.start(server.port);
    try {
      const customerId = newCustomer();
      const balance = await client.balances.create({ customerId, name: "credits", initialBalance: 100 });
      const c = new Limitry({ apiKey: server.apiKey, baseUrl: proxy.url, timeoutMs: 500, backoffBaseMs: 10 });
      proxy.actions = ["sleep:1000"];
      await c.balances.debit({ balanceId: balance.id, amount: 30 });
      const debits = proxy.seen.filter((s) => s.path === "/v1/balances/debit");
      assert.equal(debits.length, 2);
      assert.equal(debits[0].headers["idempotency-key"], debits[1].headers["idempotency-key"]);
      await new Promise((r) => setTimeout(r, 800));
      assert.equal((await client.balances.retrieve(balance.id)).currentBalance, 70);
    } finally {
      await proxy.close();
    }
  });

  test("5xx is retried, then thrown; a create is not resent after an ambiguous failure", async () => {
    const proxy = await FaultProxy.start(server.port);
    try {
      const c = new Limitry({ apiKey: server.apiKey, baseUrl: proxy.url, maxRetries: 2, backoffBaseMs: 5 });
      proxy.actions = ["503", "503", "503"];
      await rejects(c.project.retrieve(), InternalServerError);
      assert.equal(proxy.seen.length, 3);
      proxy.actions = ["forward_then_503"];
      await rejects(c.meters.create({ name: "once", aggregation: "count", field: "*" }), InternalServerError);
      assert.equal(proxy.seen.length, 4);
    } finally {
      await proxy.close();
    }
  });
});
