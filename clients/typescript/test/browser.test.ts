// The browser client against the real service: a backend mints a token, the browser client
// acts for that customer only, until the token is revoked; CORS for an allowed origin.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { AuthenticationError, Limitry, LimitryBrowserClient, PermissionDeniedError, ValidationError } from "../src/index.js";
import { LimitryServer, newCustomer, rejects } from "./harness.js";

const ORIGIN = "https://app.example.com";
let server: LimitryServer;
let backend: Limitry;

before(async () => {
  // This file's process only: the service lets the app's origin call /v1/client/….
  process.env.LIMITRY_CORS_ALLOWED_ORIGINS = ORIGIN;
  server = await LimitryServer.start();
  backend = new Limitry({ apiKey: server.apiKey, baseUrl: server.url, backoffBaseMs: 20 });
});
after(async () => {
  await server.close();
});

describe("LimitryBrowserClient", () => {
  test("checks, records and reads usage for the token's customer", async () => {
    const customerId = newCustomer();
    const meter = await backend.meters.create({ name: "Tokens", aggregation: "sum", field: "values.tokens", eventFilter: { eventType: "browser.test" } });
    await backend.limits.create({ name: "Daily", meterId: meter.id, limitValue: 100, period: "day", customerId });
    const minted = await backend.clientTokens.create({ customerId, context: { plan: "pro" }, serverContext: { secret: 1 }, ttlSeconds: 600 });
    assert.ok(minted.token.startsWith("limitry_ct_"));
    const browser = new LimitryBrowserClient({ token: minted.token, baseUrl: server.url });

    const info = await browser.token();
    assert.equal(info.customerId, customerId);
    assert.deepEqual(info.context, { plan: "pro" });
    assert.equal((info as Record<string, unknown>).serverContext, undefined);
    assert.deepEqual((await backend.clientTokens.retrieve(minted.id)).serverContext, { secret: 1 });

    await browser.record({ eventType: "browser.test", values: { tokens: 60 } });
    const check = await browser.check();
    assert.equal(check.allowed, true);
    assert.equal(check.limits[0].used, 60);
    assert.equal((await browser.check({ requested: 50 })).allowed, false);
    const summary = await browser.summary();
    assert.ok(summary.data.some((row) => row.meterId === meter.id && row.period === "day" && row.value === 60));
    // The backend sees the same usage.
    assert.equal((await backend.limits.check({ customerId })).limits[0].used, 60);
  });

  test("refuses another customer, API routes, and a revoked token", async () => {
    const minted = await backend.clientTokens.create({ customerId: newCustomer() });
    const browser = new LimitryBrowserClient({ token: minted.token, baseUrl: server.url });
    const refused = await rejects(browser.check({ customerId: "someone-else" } as never), ValidationError);
    assert.equal(refused.field, "customerId");
    const asBackend = new Limitry({ apiKey: minted.token, baseUrl: server.url, maxRetries: 0 });
    await rejects(asBackend.project.retrieve(), PermissionDeniedError);
    assert.throws(() => new LimitryBrowserClient({ token: server.apiKey, baseUrl: server.url }), /never ship/);
    await backend.clientTokens.revoke(minted.id);
    await rejects(browser.token(), AuthenticationError);
    assert.equal((await backend.clientTokens.retrieve(minted.id)).status, "revoked");
  });

  test("an allowed origin gets CORS answers, others none", async () => {
    const minted = await backend.clientTokens.create({ customerId: newCustomer() });
    const preflight = await fetch(`${server.url}/v1/client/limits/check`, {
      method: "OPTIONS",
      headers: { origin: ORIGIN, "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" },
    });
    assert.ok(preflight.ok);
    assert.equal(preflight.headers.get("access-control-allow-origin"), ORIGIN);
    const other = await fetch(`${server.url}/v1/client/token`, {
      headers: { origin: "https://evil.example.com", authorization: `Bearer ${minted.token}` },
    });
    assert.equal(other.status, 200);
    assert.equal(other.headers.get("access-control-allow-origin"), null);
  });
});
