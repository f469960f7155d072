// The browser (and mobile) client: acts for one customer with a client token (`limitry_ct_…`)
// that your backend minted through `POST /v1/client-tokens`. It reaches only the `/v1/client/…`
// routes: read the token, check limits, record events, read a usage summary. An API key must
// never be shipped to a browser; a client token can do nothing beyond its customer, and expires.

import { Transport } from "./http.js";
import { withHeld, withIdempotencyKey } from "./resources.js";
import type * as T from "./types.js";

export interface BrowserClientOptions {
  /** The client token from your backend (`limitry_ct_…`). */
  token: string;
  /** The service's URL as the browser reaches it; its origin must be allowed by the service's
   * `--cors-allowed-origins` unless the page is served from the same origin. */
  baseUrl: string;
  /** Per attempt; default 10 000 ms. */
  timeoutMs?: number;
  /** Retries after the first attempt; default 2. */
  maxRetries?: number;
  fetch?: typeof fetch;
}

export type ClientCheckParams = Omit<T.ClientCheckRequest, "customerId">;
export type ClientEvent = Omit<T.ClientEventInput, "customerId"> & { eventType: string };

export class LimitryBrowserClient {
  readonly baseUrl: string;
  private readonly transport: Transport;

  constructor(options: BrowserClientOptions) {
    if (!options.token) throw new Error("No client token: pass the limitry_ct_… token your backend minted");
    if (options.token.startsWith("limitry_sk_")) {
      throw new Error("That is an API key: never ship it to a browser. Mint a client token on your backend instead.");
    }
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.transport = new Transport({
      apiKey: options.token,
      baseUrl: this.baseUrl,
      timeoutMs: options.timeoutMs ?? 10_000,
      maxRetries: options.maxRetries ?? 2,
      backoffBaseMs: 250,
      backoffCapMs: 8000,
      fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
    });
  }

  /** The token's project, customer, public context and expiry (never the server context). */
  token(): Promise<T.ClientTokenInfo> {
    return this.transport.json({ method: "GET", path: "/v1/client/token" });
  }

  /** Whether the token's customer is within its limits (with `requested`: would it stay so). */
  async check(params: ClientCheckParams = {}): Promise<Omit<T.CheckResponse, "limits"> & { limits: T.LimitStatus[] }> {
    const answer = await this.transport.json<T.CheckResponse>({ method: "POST", path: "/v1/client/limits/check", body: params });
    return { ...answer, limits: answer.limits.map(withHeld) };
  }

  /** Records one event for the token's customer. Without `idempotencyKey` one is generated,
   * so a retry counts once. */
  record(event: ClientEvent): Promise<T.RecordResponse> {
    const body = withIdempotencyKey(event as T.EventInput);
    return this.transport.json({ method: "POST", path: "/v1/client/events/record", body });
  }

  /** Every meter's value for the token's customer in its current windows. */
  summary(): Promise<T.UsageResponse> {
    return this.transport.json({ method: "GET", path: "/v1/client/events/summary" });
  }
}
