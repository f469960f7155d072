// The OpenAI, Anthropic and LangChain integrations through the official libraries, pointed at a
// fake provider on loopback: the usage recorded is what the provider reported, and a denied
// check means the provider sees no request.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";

import Anthropic from "@anthropic-ai/sdk";
import { ChatOpenAI } from "@langchain/openai";
import OpenAI, { AzureOpenAI } from "openai";

import { LimitExceededError, Limitry } from "../src/index.js";
import { wrapAnthropic } from "../src/integrations/anthropic.js";
import { LimitryCallbackHandler } from "../src/integrations/langchain.js";
import { wrapOpenAI } from "../src/integrations/openai.js";
import { FakeProvider, LimitryServer, newCustomer } from "./harness.js";

let server: LimitryServer;
let provider: FakeProvider;
let client: Limitry;

before(async () => {
  server = await LimitryServer.start();
  provider = await FakeProvider.start(123, 45);
  client = new Limitry({ apiKey: server.apiKey, baseUrl: server.url });
});
after(async () => {
  await provider.close();
  await server.close();
});
beforeEach(() => {
  provider.requests.length = 0;
});

const USAGE = { input_tokens: 123, output_tokens: 45, total_tokens: 168 };

async function recorded(customerId: string) {
  const events = await client.events.list({ customerId, eventType: "llm.completion" }).toArray();
  return events.map((e) => ({ values: e.values, dimensions: e.dimensions }));
}

async function deny(customerId: string): Promise<void> {
  const meter = await client.meters.create({ name: "Deny", aggregation: "count", field: "*", eventFilter: { eventType: `deny.${customerId}` } });
  await client.limits.create({ name: "deny", meterId: meter.id, limitValue: 1, period: "day", customerId });
  await client.events.record({ customerId, eventType: `deny.${customerId}` });
  assert.equal((await client.limits.check({ customerId })).allowed, false);
}

const openai = () => new OpenAI({ apiKey: "sk-fake", baseURL: `${provider.url}/v1`, maxRetries: 0 });
const anthropic = () => new Anthropic({ apiKey: "sk-ant-fake", baseURL: provider.url, maxRetries: 0 });

describe("openai", () => {
  test("a chat completion records the reported usage", async () => {
    const customerId = newCustomer();
    const ai = wrapOpenAI(openai(), client, { customerId });
    const { data: response, response: raw } = await ai.chat.completions
      .create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] })
      .withResponse();
    assert.equal(raw.status, 200);
    assert.match(response.choices[0].message.content ?? "", /^Hello/);
    assert.deepEqual(await recorded(customerId), [{ values: USAGE, dimensions: { model: "gpt-4o", provider: "openai" } }]);
  });

  test("a stream records the usage of its final chunk", async () => {
    const customerId = newCustomer();
    const ai = wrapOpenAI(openai(), client, { customerId });
    const stream = await ai.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    assert.equal(text, "Hello from the stream.");
    assert.deepEqual(provider.requests.at(-1)!.body.stream_options, { include_usage: true });
    assert.deepEqual(await recorded(customerId), [{ values: USAGE, dimensions: { model: "gpt-4o-mini", provider: "openai" } }]);
  });

  test("the Responses API records usage, streamed or not", async () => {
    const customerId = newCustomer();
    const ai = wrapOpenAI(openai(), client, { customerId });
    const response = await ai.responses.create({ model: "gpt-4.1", input: "hi" });
    assert.match(response.output_text, /^Hello/);
    const stream = await ai.responses.create({ model: "gpt-4.1", input: "hi", stream: true });
    let text = "";
    for await (const event of stream) if (event.type === "response.output_text.delta") text += event.delta;
    assert.equal(text, "Hello from the stream.");
    const expected = { values: USAGE, dimensions: { model: "gpt-4.1", provider: "openai" } };
    assert.deepEqual(await recorded(customerId), [expected, expected]);
    await deny(customerId);
    const before = provider.requests.length;
    await assert.rejects(ai.responses.create({ model: "gpt-4.1", input: "hi" }), LimitExceededError);
    assert.equal(provider.requests.length, before);
  });

  test("a denied check never reaches the provider; a fallback is returned when configured", async () => {
    const customerId = newCustomer();
    await deny(customerId);
    const ai = wrapOpenAI(openai(), client, { customerId });
    await assert.rejects(ai.chat.completions.create({ model: "gpt-4o", messages: [] }), LimitExceededError);
    const soft = wrapOpenAI(openai(), client, { customerId, fallback: "Upgrade your plan" });
    assert.equal(await soft.chat.completions.create({ model: "gpt-4o", messages: [] }), "Upgrade your plan");
    assert.equal(provider.requests.length, 0);
  });
});

test("Azure OpenAI works through the same wrapper", async () => {
  const customerId = newCustomer();
  const azure = new AzureOpenAI({ apiKey: "azure-fake", endpoint: provider.url, apiVersion: "2024-10-21", maxRetries: 0 });
  const ai = wrapOpenAI(azure, client, { customerId });
  await ai.chat.completions.create({ model: "my-gpt4o-deployment", messages: [{ role: "user", content: "hi" }] });
  assert.ok(provider.requests.at(-1)!.path.startsWith("/openai/deployments/my-gpt4o-deployment/chat/completions"));
  assert.deepEqual(await recorded(customerId), [{ values: USAGE, dimensions: { model: "my-gpt4o-deployment", provider: "openai" } }]);
});

describe("anthropic", () => {
  test("a message records the reported usage", async () => {
    const customerId = newCustomer();
    const claude = wrapAnthropic(anthropic(), client, { customerId });
    const message = await claude.messages.create({ model: "claude-test-large", max_tokens: 100, messages: [{ role: "user", content: "hi" }] });
    assert.equal(message.content[0].type, "text");
    assert.deepEqual(await recorded(customerId), [{ values: USAGE, dimensions: { model: "claude-test-large", provider: "anthropic" } }]);
  });

  test("a stream records the usage of message_start and the final message_delta", async () => {
    const customerId = newCustomer();
    const claude = wrapAnthropic(anthropic(), client, { customerId });
    const stream = await claude.messages.create({ model: "claude-test-small", max_tokens: 100, stream: true, messages: [{ role: "user", content: "hi" }] });
    let text = "";
    for await (const event of stream) if (event.type === "content_block_delta" && event.delta.type === "text_delta") text += event.delta.text;
    assert.equal(text, "Hello stream.");
    assert.deepEqual((await recorded(customerId)).map((r) => r.values), [USAGE]);
  });

  test("the SDK's messages.stream helper is guarded and recorded", async () => {
    const customerId = newCustomer();
    const claude = wrapAnthropic(anthropic(), client, { customerId });
    const stream = claude.messages.stream({ model: "claude-test-small", max_tokens: 100, messages: [{ role: "user", content: "hi" }] });
    let text = "";
    stream.on("text", (delta) => (text += delta));
    const final = await stream.finalMessage();
    assert.equal(text, "Hello stream.");
    assert.equal(final.usage.output_tokens, 45);
    assert.deepEqual((await recorded(customerId)).map((r) => r.values), [USAGE]);

    await deny(customerId);
    const denied = claude.messages.stream({ model: "claude-test-small", max_tokens: 100, messages: [] });
    await assert.rejects(denied.finalMessage(), (error: any) => error instanceof LimitExceededError || error?.cause instanceof LimitExceededError);
    assert.equal(provider.requests.length, 1);
  });

  test("a denied check never reaches the provider", async () => {
    const customerId = newCustomer();
    await deny(customerId);
    const claude = wrapAnthropic(anthropic(), client, { customerId });
    await assert.rejects(claude.messages.create({ model: "claude-test-large", max_tokens: 10, messages: [] }), LimitExceededError);
    assert.equal(provider.requests.length, 0);
  });
});

describe("langchain", () => {
  test("the callback handler checks before and records after, for invoke and stream", async () => {
    const customerId = newCustomer();
    const handler = new LimitryCallbackHandler(client, { customerId });
    const model = new ChatOpenAI({ model: "gpt-4o", apiKey: "sk-fake", configuration: { baseURL: `${provider.url}/v1` }, maxRetries: 0, streamUsage: true });
    const reply = await model.invoke("hi", { callbacks: [handler] });
    assert.match(String(reply.content), /^Hello/);
    let text = "";
    for await (const chunk of await model.stream("hi", { callbacks: [handler] })) text += String(chunk.content);
    assert.equal(text, "Hello from the stream.");
    const events = await recorded(customerId);
    assert.deepEqual(events.map((e) => e.values), [USAGE, USAGE]);
    assert.deepEqual(events[0].dimensions, { model: "gpt-4o", provider: "langchain" });

    await deny(customerId);
    const before = provider.requests.length;
    await assert.rejects(model.invoke("hi", { callbacks: [handler] }), LimitExceededError);
    assert.equal(provider.requests.length, before);
  });
});

describe("guard", () => {
  test("runs the function only when allowed and records what it returns", async () => {
    const customerId = newCustomer();
    const meter = await client.meters.create({ name: "Guard", aggregation: "sum", field: "values.units", eventFilter: { eventType: "guarded" } });
    await client.limits.create({ name: "g", meterId: meter.id, limitValue: 10, period: "day", customerId });
    let calls = 0;
    const work = async () => {
      calls++;
      return { units: 6 };
    };
    assert.deepEqual(await client.guard(customerId, work, { eventType: "guarded", requested: 6 }), { units: 6 });
    await assert.rejects(client.guard(customerId, work, { eventType: "guarded", requested: 6 }), LimitExceededError);
    assert.equal(calls, 1);
    const now = Date.now();
    const used = await client.meters.query(meter.id, { startDate: new Date(now - 3600_000).toISOString(), endDate: new Date(now + 3600_000).toISOString(), customerId });
    assert.equal(used.value, 6);
  });
});
