// Sending one request with a timeout and retries (connection failures, timeouts, 429 honouring
// `Retry-After`, 5xx). The body is encoded once and the same bytes, with the same
// `Idempotency-Key`, go out on every attempt, so the service counts a retried write once.

import {
  APIConnectionError,
  APIError,
  APITimeoutError,
  RateLimitError,
  statusError,
} from "./errors.js";

/** How a request may be retried: `always` when repeating it is harmless (reads, checks,
 * writes deduplicated by an idempotency key); `unsent` for a write the service does not
 * deduplicate: retried only when it surely never arrived or was refused unprocessed (429). */
export type RetryPolicy = "always" | "unsent";

export interface RequestSpec {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  query?: Record<string, string | number | boolean | undefined | null>;
  body?: unknown;
  retry?: RetryPolicy;
  idempotencyKey?: string;
  accept?: string;
  timeoutMs?: number;
}

export interface TransportOptions {
  apiKey: string;
  baseUrl: string;
  timeoutMs: number;
  maxRetries: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  fetch: typeof fetch;
}

/** Longest `Retry-After` the client waits for by itself; longer ones throw `RateLimitError`. */
export const MAX_RETRY_AFTER_SECONDS = 60;

export function newIdempotencyKey(): string {
  const crypto = (globalThis as { crypto?: { randomUUID?: () => string; getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
  if (crypto?.randomUUID) return `lmtcli_${crypto.randomUUID().replace(/-/g, "")}`;
  // Node 18 has no global Web Crypto: uniqueness, not secrecy, is what a key needs.
  const bytes = new Uint8Array(16);
  if (crypto?.getRandomValues) crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return `lmtcli_${Date.now().toString(36)}${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

export function retryDelayMs(attempt: number, retryAfterSeconds: number | undefined, baseMs: number, capMs: number): number {
  const backoff = Math.min(capMs, baseMs * 2 ** attempt) * (0.75 + Math.random() / 4);
  if (retryAfterSeconds !== undefined) return Math.max(retryAfterSeconds * 1000, retryAfterSeconds === 0 ? backoff : 0);
  return backoff;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function isConnectRefused(error: unknown): boolean {
  // undici reports ECONNREFUSED as `TypeError: fetch failed` with the cause carrying the code.
  const cause = (error as { cause?: { code?: string } })?.cause;
  return cause?.code === "ECONNREFUSED" || cause?.code === "ENOTFOUND";
}

export class Transport {
  constructor(readonly options: TransportOptions) {}

  url(spec: RequestSpec): string {
    const url = new URL(this.options.baseUrl + spec.path);
    for (const [key, value] of Object.entries(spec.query ?? {})) {
      if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
    }
    return url.toString();
  }

  async send(spec: RequestSpec): Promise<Response> {
    const body = spec.body === undefined ? undefined : JSON.stringify(spec.body);
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.options.apiKey}`,
      accept: spec.accept ?? "application/json",
    };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (spec.idempotencyKey) headers["idempotency-key"] = spec.idempotencyKey;
    const url = this.url(spec);
    const timeoutMs = spec.timeoutMs ?? this.options.timeoutMs;
    const { maxRetries, backoffBaseMs, backoffCapMs } = this.options;
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.options.fetch(url, {
          method: spec.method,
          headers,
          body,
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (error) {
        const timedOut = (error as Error)?.name === "TimeoutError" || (error as Error)?.name === "AbortError";
        const failure: APIError = timedOut
          ? new APITimeoutError(`The Limitry service did not answer within ${timeoutMs} ms`, { cause: error })
          : new APIConnectionError(`Could not reach the Limitry service: ${(error as Error)?.message}`, { cause: error });
        const retryable = spec.retry !== "unsent" || (!timedOut && isConnectRefused(error));
        if (attempt >= maxRetries || !retryable) throw failure;
        await sleep(retryDelayMs(attempt, undefined, backoffBaseMs, backoffCapMs));
        continue;
      }
      if (response.status < 400) return response;
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        /* not JSON: keep the text */
      }
      const failure = statusError(response.status, parsed, response.headers);
      const retryAfter = failure instanceof RateLimitError ? failure.retryAfter : undefined;
      const retryable =
        response.status === 429 || (response.status >= 500 && spec.retry !== "unsent");
      if (attempt >= maxRetries || !retryable || (retryAfter !== undefined && retryAfter > MAX_RETRY_AFTER_SECONDS)) {
        throw failure;
      }
      await sleep(retryDelayMs(attempt, retryAfter, backoffBaseMs, backoffCapMs));
    }
  }

  async json<T>(spec: RequestSpec): Promise<T> {
    const response = await this.send(spec);
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }
}
