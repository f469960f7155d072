// Test harness: the real release binary on a fresh SQLite file, a fault-injecting proxy in
// front of it, and a fake LLM provider speaking OpenAI's and Anthropic's JSON and SSE.

import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
// build/test/ → clients/typescript → clients → repo root
const ROOT = resolve(here, "..", "..", "..", "..");
export const BIN = process.env.LIMITRY_BIN ?? join(ROOT, "target", "release", "limitry");

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createNetServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolvePort(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class LimitryServer {
  readonly dir = mkdtempSync(join(tmpdir(), "limitry-ts-"));
  readonly databaseUrl = `sqlite://${join(this.dir, "limitry.db")}`;
  port = 0;
  apiKey = "";
  private child: ChildProcess | undefined;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<LimitryServer> {
    if (!existsSync(BIN)) throw new Error(`${BIN} not found: cargo build --release --bin limitry`);
    const srv = new LimitryServer();
    srv.port = await freePort();
    srv.apiKey = srv.createKey("ts-suite");
    await srv.start();
    return srv;
  }

  createKey(name: string): string {
    return execFileSync(BIN, ["keys", "create", "--name", name, "--database-url", this.databaseUrl], { encoding: "utf8" }).trim();
  }

  async start(): Promise<void> {
    const log = openSync(join(this.dir, "server.log"), "a");
    this.child = spawn(BIN, ["serve", "--bind", `127.0.0.1:${this.port}`, "--database-url", this.databaseUrl], {
      stdio: ["ignore", log, log],
      // webhooks to the tests' own loopback receiver, delivered promptly
      env: { ...process.env, LIMITRY_WEBHOOK_ALLOW_PRIVATE: "true", LIMITRY_WEBHOOK_POLL_MS: "50" },
    });
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error(`limitry exited: see ${this.dir}/server.log`);
      try {
        const res = await fetch(`${this.url}/healthz`);
        if (res.ok) return;
      } catch {
        /* not yet */
      }
      await sleep(50);
    }
    throw new Error("limitry did not become healthy in 30 s");
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill(signal);
    await exited;
    this.child = undefined;
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((r) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => r(Buffer.concat(chunks)));
  });
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** "pass" | "forward_then_503" | "forward_then_drop" | "503" | "429:SECONDS" | "sleep:MS" */
export type Action = string;

export interface Seen {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  action: Action;
}

/** Forwards to the service, misbehaving on the requests its `actions` name. */
export class FaultProxy {
  actions: Action[] = [];
  readonly seen: Seen[] = [];
  url = "";
  private readonly server: Server;

  private constructor(private readonly upstreamPort: number) {
    this.server = createServer((req, res) => {
      // The upstream may be gone by the time a delayed request is forwarded (test over).
      this.handle(req, res).catch(() => res.destroy());
    });
  }

  static async start(upstreamPort: number): Promise<FaultProxy> {
    const proxy = new FaultProxy(upstreamPort);
    proxy.url = await listen(proxy.server);
    return proxy;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const action = this.actions.shift() ?? "pass";
    this.seen.push({ method: req.method!, path: req.url!, headers: req.headers, body: body.toString(), action });
    const reply = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "content-type": "application/json", ...headers });
      res.end(JSON.stringify(payload));
    };
    if (action.startsWith("429:")) {
      return reply(429, { error: { code: "rate_limit_exceeded", message: "slow down", status: 429 } }, { "retry-after": action.slice(4) });
    }
    if (action === "503") return reply(503, { error: { code: "internal_error", message: "unavailable", status: 503 } });
    if (action.startsWith("sleep:")) await sleep(Number(action.slice(6)));
    const upstream = await new Promise<{ status: number; headers: Record<string, any>; payload: Buffer }>((ok, fail) => {
      const headers = { ...req.headers };
      delete headers.host;
      delete headers.connection;
      const forward = httpRequest(
        { host: "127.0.0.1", port: this.upstreamPort, method: req.method, path: req.url, headers },
        async (r) => ok({ status: r.statusCode!, headers: r.headers, payload: await readBody(r) }),
      );
      forward.on("error", fail);
      forward.end(body);
    });
    if (action === "forward_then_503") return reply(503, { error: { code: "internal_error", message: "lost", status: 503 } });
    if (action === "forward_then_drop") {
      req.socket.destroy();
      return;
    }
    const headers = { ...upstream.headers };
    delete headers["transfer-encoding"];
    delete headers["connection"];
    res.writeHead(upstream.status, headers);
    res.end(upstream.payload);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** A fake LLM provider: OpenAI chat completions and Anthropic messages, JSON and SSE. */
export class FakeProvider {
  readonly requests: { path: string; body: any }[] = [];
  url = "";
  private readonly server: Server;

  private constructor(readonly inputTokens: number, readonly outputTokens: number) {
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  static async start(inputTokens = 123, outputTokens = 45): Promise<FakeProvider> {
    const provider = new FakeProvider(inputTokens, outputTokens);
    provider.url = await listen(provider.server);
    return provider;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = JSON.parse((await readBody(req)).toString() || "{}");
    this.requests.push({ path: req.url!, body });
    const json = (payload: unknown, status = 200) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(payload));
    };
    const sse = (events: [string | null, unknown][]) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.end(events.map(([name, data]) => `${name ? `event: ${name}\n` : ""}data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`).join(""));
    };
    const usage = { prompt_tokens: this.inputTokens, completion_tokens: this.outputTokens, total_tokens: this.inputTokens + this.outputTokens };
    const created = Math.floor(Date.now() / 1000);
    const route = req.url!.split("?")[0];
    if (route.endsWith("/chat/completions")) {
      const model = body.model ?? "gpt-fake";
      if (!body.stream) {
        return json({
          id: "chatcmpl-fake", object: "chat.completion", created, model,
          choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: "Hello from the fake provider." } }],
          usage,
        });
      }
      const includeUsage = body.stream_options?.include_usage;
      const base = { id: "chatcmpl-fake", object: "chat.completion.chunk", created, model };
      const chunks: [null, unknown][] = ["Hello", " from", " the", " stream."].map((w) => [null, {
        ...base, choices: [{ index: 0, delta: { role: "assistant", content: w }, finish_reason: null }], ...(includeUsage ? { usage: null } : {}),
      }]);
      chunks.push([null, { ...base, choices: [{ index: 0, delta: {}, finish_reason: "stop" }], ...(includeUsage ? { usage: null } : {}) }]);
      if (includeUsage) chunks.push([null, { ...base, choices: [], usage }]);
      chunks.push([null, "[DONE]"]);
      return sse(chunks);
    }
    if (route.endsWith("/responses")) {
      const response = (status: string) => ({
        id: "resp_fake", object: "response", created_at: created, status, model: body.model ?? "gpt-fake",
        parallel_tool_calls: true, tool_choice: "auto", tools: [],
        output: status === "completed"
          ? [{ type: "message", id: "msg_fake", status: "completed", role: "assistant", content: [{ type: "output_text", text: "Hello from the fake provider.", annotations: [] }] }]
          : [],
        usage: status === "completed"
          ? { input_tokens: this.inputTokens, input_tokens_details: { cached_tokens: 0 }, output_tokens: this.outputTokens, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: this.inputTokens + this.outputTokens }
          : null,
      });
      if (!body.stream) return json(response("completed"));
      return sse([
        ["response.created", { type: "response.created", sequence_number: 0, response: response("in_progress") }],
        ...["Hello", " from", " the", " stream."].map((delta, i): [string, unknown] => ["response.output_text.delta", {
          type: "response.output_text.delta", item_id: "msg_fake", output_index: 0, content_index: 0, delta, sequence_number: i + 1,
        }]),
        ["response.completed", { type: "response.completed", sequence_number: 5, response: response("completed") }],
      ]);
    }
    if (route.endsWith("/messages")) {
      const model = body.model ?? "claude-fake";
      if (!body.stream) {
        return json({
          id: "msg_fake", type: "message", role: "assistant", model,
          content: [{ type: "text", text: "Hello from the fake provider." }],
          stop_reason: "end_turn", stop_sequence: null,
          usage: { input_tokens: this.inputTokens, output_tokens: this.outputTokens },
        });
      }
      return sse([
        ["message_start", { type: "message_start", message: { id: "msg_fake", type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: this.inputTokens, output_tokens: 1 } } }],
        ["content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }],
        ["content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Hello" } }],
        ["content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: " stream." } }],
        ["content_block_stop", { type: "content_block_stop", index: 0 }],
        ["message_delta", { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: this.outputTokens } }],
        ["message_stop", { type: "message_stop" }],
      ]);
    }
    json({ error: { message: "not found" } }, 404);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

let counter = 0;
/** A customer external id no other test uses. */
export function newCustomer(): string {
  return `cust-${Math.random().toString(16).slice(2, 10)}-${counter++}`;
}

/** Collects webhook deliveries on loopback. */
export class WebhookReceiver {
  readonly received: { headers: Record<string, string | string[] | undefined>; body: any }[] = [];
  url = "";
  private readonly server: Server;

  private constructor() {
    this.server = createServer(async (req, res) => {
      const body = await readBody(req);
      this.received.push({ headers: req.headers, body: JSON.parse(body.toString() || "{}") });
      res.writeHead(204);
      res.end();
    });
  }

  static async start(): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver();
    receiver.url = `${await listen(receiver.server)}/hook`;
    return receiver;
  }

  async waitFor(count: number, timeoutMs = 10_000) {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < count && Date.now() < deadline) await sleep(20);
    return this.received;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** Awaits a promise that must reject with an error of class `cls`, and returns that error. */
export async function rejects<E extends Error>(promise: Promise<unknown>, cls: new (...args: any[]) => E): Promise<E> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof cls, `expected ${cls.name}, got ${(error as Error)?.name}: ${(error as Error)?.message}`);
    return error as E;
  }
  assert.fail(`expected ${cls.name}`);
}
