// The client. Configuration comes from the options, else LIMITRY_API_KEY and LIMITRY_BASE_URL
// (in Node). Works in Node >= 18 and browsers through the global `fetch`.

import { LimitExceededError } from "./errors.js";
import { FailModeMemory } from "./failmode.js";
import { Transport } from "./http.js";
import { BufferedRecorder, type RecorderOptions } from "./recorder.js";
import {
  BalancesResource,
  ClientTokensResource,
  CustomersResource,
  EventsResource,
  LimitsResource,
  MetersResource,
  ProjectResource,
  UsageResource,
  WebhooksResource,
} from "./resources.js";
import type { FailMode } from "./types.js";

export const DEFAULT_BASE_URL = "http://127.0.0.1:3000";

export interface ClientOptions {
  /** Default: LIMITRY_API_KEY. */
  apiKey?: string;
  /** Default: LIMITRY_BASE_URL, else http://127.0.0.1:3000. */
  baseUrl?: string;
  /** Per attempt; default 10 000 ms. */
  timeoutMs?: number;
  /** Per attempt of `limits.check`; default 3 000 ms, so a hung service turns into a
   * fail-mode answer quickly instead of stalling the caller. */
  checkTimeoutMs?: number;
  /** Retries after the first attempt; default 2. */
  maxRetries?: number;
  /** What `limits.check` answers when the service cannot be asked and neither the call nor the
   * customer's last successful check says otherwise; default `open`. */
  failMode?: FailMode;
  backoffBaseMs?: number;
  backoffCapMs?: number;
  fetch?: typeof fetch;
}

function env(name: string): string | undefined {
  return (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name];
}

export interface GuardOptions<R> {
  eventType: string;
  /** The values to record from the function's result; default: the result itself. */
  usage?: (result: R) => Record<string, number>;
  requested?: number;
  dimensions?: Record<string, string>;
  failMode?: FailMode;
  properties?: Record<string, unknown>;
  /** Record through this recorder instead of one direct request. */
  recorder?: BufferedRecorder;
}

export class Limitry {
  readonly project: ProjectResource;
  readonly customers: CustomersResource;
  readonly events: EventsResource;
  readonly meters: MetersResource;
  readonly limits: LimitsResource;
  readonly balances: BalancesResource;
  readonly usage: UsageResource;
  readonly webhooks: WebhooksResource;
  readonly clientTokens: ClientTokensResource;
  readonly failMode: FailMode;
  readonly baseUrl: string;
  /** @internal */
  readonly transport: Transport;

  constructor(options: ClientOptions = {}) {
    const apiKey = options.apiKey ?? env("LIMITRY_API_KEY");
    if (!apiKey) throw new Error("No API key: pass apiKey or set LIMITRY_API_KEY");
    this.baseUrl = (options.baseUrl ?? env("LIMITRY_BASE_URL") ?? DEFAULT_BASE_URL).replace(/\/+$/, "");
    const failMode = options.failMode ?? "open";
    if (failMode !== "open" && failMode !== "closed") throw new Error(`failMode must be "open" or "closed"`);
    this.failMode = failMode;
    const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.transport = new Transport({
      apiKey,
      baseUrl: this.baseUrl,
      timeoutMs: options.timeoutMs ?? 10_000,
      maxRetries: options.maxRetries ?? 2,
      backoffBaseMs: options.backoffBaseMs ?? 250,
      backoffCapMs: options.backoffCapMs ?? 8000,
      fetch: fetchImpl,
    });
    const failModes = new FailModeMemory();
    this.project = new ProjectResource(this.transport);
    this.customers = new CustomersResource(this.transport);
    this.events = new EventsResource(this.transport);
    this.meters = new MetersResource(this.transport);
    this.limits = new LimitsResource(this.transport, failModes, () => this.failMode, options.checkTimeoutMs ?? 3000);
    this.balances = new BalancesResource(this.transport);
    this.usage = new UsageResource(this.transport);
    this.webhooks = new WebhooksResource(this.transport);
    this.clientTokens = new ClientTokensResource(this.transport);
  }

  /** A background recorder sending through `/v1/events/batch`; see `BufferedRecorder`. */
  recorder(options: RecorderOptions = {}): BufferedRecorder {
    return new BufferedRecorder(this.transport, options);
  }

  /**
   * Check → call → record in one call. Checks the customer's limits (with `requested` when
   * given); if denied throws `LimitExceededError` and `fn` never runs. Otherwise runs `fn` and
   * records one `eventType` event whose values are `usage(result)` (or the result itself).
   */
  async guard<R>(customerId: string, fn: () => R | Promise<R>, options: GuardOptions<R>): Promise<R> {
    const check = await this.limits.check({
      customerId,
      dimensions: options.dimensions,
      requested: options.requested,
      failMode: options.failMode,
    });
    if (!check.allowed) throw new LimitExceededError(check);
    const result = await fn();
    const values = options.usage ? options.usage(result) : (result as unknown as Record<string, number>);
    if (!values || typeof values !== "object") throw new TypeError("guard: pass usage to say which values to record");
    const event = { customerId, eventType: options.eventType, values, dimensions: options.dimensions, properties: options.properties };
    if (options.recorder) options.recorder.record(event);
    else await this.events.record(event);
    return result;
  }
}
