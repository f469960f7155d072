// Reservations on limits (`mode: "reserve"`) and `withReservation`, against the real service.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";

import { ConflictError, InternalServerError, LimitExceededError, Limitry, type HeldReservation } from "../src/index.js";
import { FaultProxy, LimitryServer, newCustomer, rejects } from "./harness.js";

let server: LimitryServer;
let client: Limitry;

before(async () => {
  server = await LimitryServer.start();
  client = new Limitry({ apiKey: server.apiKey, baseUrl: server.url, backoffBaseMs: 20 });
});
after(async () => {
  await server.close();
});

async function tokensLimit(customerId: string, limitValue: number): Promise<string> {
  const eventType = `reserve.${randomUUID().slice(0, 8)}`;
  const meter = await client.meters.create({ name: "Tokens", aggregation: "sum", field: "values.tokens", eventFilter: { eventType } });
  await client.limits.create({ name: "Tokens", meterId: meter.id, limitValue, period: "day", customerId });
  return eventType;
}

async function concurrencyLimit(customerId: string, limitValue: number): Promise<void> {
  const meter = await client.meters.create({ name: "Agents", aggregation: "count", field: "*", eventFilter: { eventType: `agent.${randomUUID().slice(0, 8)}` } });
  await client.limits.create({ name: "Agents at once", meterId: meter.id, limitValue, period: "concurrent", customerId });
}

/** The customer's one limit as a check sees it. */
async function status(customerId: string) {
  const [only] = (await client.limits.check({ customerId })).limits;
  return only;
}

describe("reservations", () => {
  test("reserve holds, then commit records the actual usage", async () => {
    const customerId = newCustomer();
    const eventType = await tokensLimit(customerId, 10_000);
    const reserved = await client.limits.reserve({ customerId, requested: 2000, ttlSeconds: 120 });
    assert.equal(reserved.allowed, true);
    assert.match(reserved.reservationId ?? "", /^lres_/);
    assert.ok(reserved.expiresAt);
    const held = await status(customerId);
    assert.deepEqual([held.used, held.held], [2000, 2000]);

    const committed = await client.limits.commitReservation(reserved.reservationId!, { event: { eventType, values: { tokens: 1234 } } });
    assert.equal(committed.status, "committed");
    assert.ok(committed.eventId);
    const afterCommit = await status(customerId);
    assert.deepEqual([afterCommit.used, afterCommit.held, afterCommit.remaining], [1234, 0, 10_000 - 1234]);
    assert.deepEqual((await client.events.list({ customerId }).toArray()).map((e) => e.id), [committed.eventId]);

    const fetched = await client.limits.getReservation(reserved.reservationId!);
    assert.equal(fetched.status, "committed");
    assert.deepEqual(fetched.entries.map((e) => e.kind), ["reserved", "committed"]);
    await rejects(client.limits.releaseReservation(reserved.reservationId!), ConflictError);
  });

  test("release frees the capacity a reserve held; extend keeps it longer", async () => {
    const customerId = newCustomer();
    await tokensLimit(customerId, 1000);
    const reserved = await client.limits.reserve({ customerId, requested: 800 });
    assert.equal(reserved.allowed, true);
    assert.equal((await client.limits.check({ customerId, requested: 300 })).allowed, false);
    const refused = await client.limits.reserve({ customerId, requested: 300 });
    assert.equal(refused.allowed, false);
    assert.equal(refused.reason, "limit_exceeded");
    assert.equal(refused.reservationId, undefined);

    const extended = await client.limits.extendReservation(reserved.reservationId!, 900);
    assert.equal(extended.status, "held");
    assert.ok(Date.parse(extended.expiresAt) > Date.parse(reserved.expiresAt!));

    const released = await client.limits.releaseReservation(reserved.reservationId!);
    assert.equal(released.status, "released");
    assert.equal((await client.limits.check({ customerId, requested: 300 })).allowed, true);
    const now = await status(customerId);
    assert.deepEqual([now.used, now.held], [0, 0]);
    assert.deepEqual(await client.events.list({ customerId }).toArray(), []);
  });

  test("a retried reserve with one idempotency key holds once", async () => {
    const customerId = newCustomer();
    await tokensLimit(customerId, 1000);
    const first = await client.limits.reserve({ customerId, requested: 400, idempotencyKey: `${customerId}-job-7` });
    const again = await client.limits.reserve({ customerId, requested: 400, idempotencyKey: `${customerId}-job-7` });
    assert.equal(again.reservationId, first.reservationId);
    assert.equal((await status(customerId)).held, 400);
  });

  test("a reserve retried after a lost answer holds once", async () => {
    const customerId = newCustomer();
    await tokensLimit(customerId, 1000);
    const proxy = await FaultProxy.start(server.port);
    try {
      const c = new Limitry({ apiKey: server.apiKey, baseUrl: proxy.url, backoffBaseMs: 10 });
      proxy.actions = ["forward_then_503"];
      const reserved = await c.limits.reserve({ customerId, requested: 400 });
      assert.equal(reserved.allowed, true);
      assert.equal(reserved.fallback, false);
      const keys = new Set(proxy.seen.map((s) => s.headers["idempotency-key"]));
      assert.equal(proxy.seen.length, 2);
      assert.equal(keys.size, 1);
      assert.ok(!keys.has(undefined));
    } finally {
      await proxy.close();
    }
    assert.equal((await status(customerId)).held, 400);
  });

  test("a reservation decided by the fail mode holds nothing and commits as an event", async () => {
    const customerId = newCustomer();
    const eventType = await tokensLimit(customerId, 1000);
    const proxy = await FaultProxy.start(server.port);
    try {
      const c = new Limitry({ apiKey: server.apiKey, baseUrl: proxy.url, maxRetries: 0 });
      proxy.actions = ["503"];
      const denied = await rejects(c.limits.withReservation({ customerId, requested: 10, failMode: "closed" }, () => "ran"), LimitExceededError);
      assert.equal(denied.reason, "service_unavailable");
      proxy.actions = ["503"];
      await c.limits.withReservation({ customerId, requested: 10, failMode: "open" }, async (held) => {
        assert.equal(held.check.fallback, true);
        assert.equal(held.id, undefined);
        await held.commit({ eventType, values: { tokens: 12 } });
      });
    } finally {
      await proxy.close();
    }
    const now = await status(customerId);
    assert.deepEqual([now.used, now.held], [12, 0]);
  });

  test("withReservation commits the actual usage and returns the callback's result", async () => {
    const customerId = newCustomer();
    const eventType = await tokensLimit(customerId, 10_000);
    let seen: HeldReservation | undefined;
    const reply = await client.limits.withReservation({ customerId, requested: 2000 }, async (held) => {
      seen = held;
      assert.match(held.id ?? "", /^lres_/);
      assert.equal((await status(customerId)).held, 2000);
      await held.commit({ eventType, values: { tokens: 1500 } });
      return "the model's reply";
    });
    assert.equal(reply, "the model's reply");
    assert.equal(seen?.reservation?.status, "committed");
    const now = await status(customerId);
    assert.deepEqual([now.used, now.held], [1500, 0]);
  });

  test("withReservation releases when the callback returns without committing", async () => {
    const customerId = newCustomer();
    await tokensLimit(customerId, 1000);
    const id = await client.limits.withReservation({ customerId, requested: 1000 }, async (held) => {
      assert.equal((await client.limits.check({ customerId })).allowed, false);
      return held.id;
    });
    assert.equal((await client.limits.getReservation(id!)).status, "released");
    assert.equal((await client.limits.check({ customerId, requested: 1000 })).allowed, true);
  });

  test("withReservation releases when the callback throws, and rethrows", async () => {
    const customerId = newCustomer();
    await tokensLimit(customerId, 1000);
    let id: string | undefined;
    const thrown = await rejects(
      client.limits.withReservation({ customerId, requested: 700 }, async (held) => {
        id = held.id;
        assert.equal((await status(customerId)).held, 700);
        throw new RangeError("model call failed");
      }),
      RangeError,
    );
    assert.equal(thrown.message, "model call failed");
    assert.equal((await client.limits.getReservation(id!)).status, "released");
    const now = await status(customerId);
    assert.deepEqual([now.used, now.held, now.remaining], [0, 0, 1000]);
    assert.deepEqual(await client.events.list({ customerId }).toArray(), []);
  });

  test("a refused reserve throws LimitExceededError and the callback never runs", async () => {
    const customerId = newCustomer();
    await tokensLimit(customerId, 1000);
    let ran = false;
    const denied = await rejects(
      client.limits.withReservation({ customerId, requested: 1001 }, () => {
        ran = true;
      }),
      LimitExceededError,
    );
    assert.equal(ran, false);
    assert.equal(denied.reason, "limit_exceeded");
    assert.equal((await status(customerId)).held, 0);
  });

  test("a concurrency limit of 2 lets only 2 of 5 callbacks in at once", async () => {
    const customerId = newCustomer();
    await concurrencyLimit(customerId, 2);
    let attempted = 0;
    let inFlight = 0;
    let mostInFlight = 0;
    let everyoneTried!: () => void;
    const allTried = new Promise<void>((resolve) => (everyoneTried = resolve));
    const tried = () => {
      attempted += 1;
      if (attempted === 5) everyoneTried();
    };
    const agent = async (): Promise<boolean> => {
      try {
        return await client.limits.withReservation({ customerId, ttlSeconds: 60 }, async () => {
          inFlight += 1;
          mostInFlight = Math.max(mostInFlight, inFlight);
          tried();
          await allTried; // hold the slot until every agent has tried
          inFlight -= 1;
          return true;
        });
      } catch (error) {
        if (!(error instanceof LimitExceededError)) throw error;
        tried();
        return false;
      }
    };
    const admitted = await Promise.all(Array.from({ length: 5 }, agent));
    assert.deepEqual(admitted.filter(Boolean).length, 2);
    assert.equal(mostInFlight, 2);
    assert.equal((await status(customerId)).held, 0);
    // Every slot is free again.
    const again = await Promise.all([1, 2].map(() => client.limits.withReservation({ customerId }, (held) => held.id)));
    assert.equal(new Set(again).size, 2);
  });
  test("a failed release after the callback throws goes to onReleaseError, and the callback's error is rethrown", async () => {
    const customerId = newCustomer();
    await tokensLimit(customerId, 1000);
    const proxy = await FaultProxy.start(server.port);
    try {
      const c = new Limitry({ apiKey: server.apiKey, baseUrl: proxy.url, maxRetries: 0 });
      const failures: [unknown, string | undefined][] = [];
      let id: string | undefined;
      const thrown = await rejects(
        c.limits.withReservation(
          { customerId, requested: 700, onReleaseError: (error, held) => failures.push([error, held.id]) },
          (held) => {
            id = held.id;
            proxy.actions = ["503"]; // the release, on the way out
            throw new RangeError("model call failed");
          },
        ),
        RangeError,
      );
      assert.equal(thrown.message, "model call failed");
      assert.equal(failures.length, 1);
      assert.ok(failures[0][0] instanceof InternalServerError, String(failures[0][0]));
      assert.equal(failures[0][1], id);
      assert.equal((await client.limits.getReservation(id!)).status, "held");
    } finally {
      await proxy.close();
    }
  });

  test("a failed release after the callback returns is written with console.warn by default", async (t) => {
    const customerId = newCustomer();
    await tokensLimit(customerId, 1000);
    const warn = t.mock.method(console, "warn", () => undefined);
    const proxy = await FaultProxy.start(server.port);
    try {
      const c = new Limitry({ apiKey: server.apiKey, baseUrl: proxy.url, maxRetries: 0 });
      const id = await c.limits.withReservation({ customerId, requested: 300 }, (held) => {
        proxy.actions = ["503"];
        return held.id;
      });
      assert.equal(warn.mock.callCount(), 1);
      assert.ok(String(warn.mock.calls[0].arguments[0]).includes(id!), String(warn.mock.calls[0].arguments[0]));
      assert.ok(warn.mock.calls[0].arguments[1] instanceof InternalServerError);
      assert.equal((await client.limits.getReservation(id!)).status, "held");
    } finally {
      await proxy.close();
    }
  });
});
