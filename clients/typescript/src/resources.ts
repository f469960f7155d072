// One class per `/v1` resource, each method one endpoint. Request bodies are the wire shapes
// (camelCase), typed by the generated `components["schemas"]`.

import { APIConnectionError, ConflictError, InternalServerError, LimitExceededError, LimitryError } from "./errors.js";
import { newIdempotencyKey, type RequestSpec, type Transport } from "./http.js";
import { Pager } from "./pagination.js";
import type * as T from "./types.js";
import type { FailModeMemory } from "./failmode.js";

const q = encodeURIComponent;

export interface PageQuery {
  limit?: number;
  cursor?: string;
}

abstract class Resource {
  constructor(protected readonly transport: Transport) {}
  protected call<R>(spec: RequestSpec): Promise<R> {
    return this.transport.json<R>(spec);
  }
  protected pager<R>(path: string, query: RequestSpec["query"]): Pager<R> {
    return new Pager<R>(this.transport, { method: "GET", path, query });
  }
}

export class ClientTokensResource extends Resource {
  /** Mints a token for one customer, to hand to a browser (`LimitryBrowserClient`). The
   * `token` is in this answer only. */
  create(body: T.ClientTokenRequest & { customerId: string }): Promise<T.ClientTokenCreated> {
    return this.call({ method: "POST", path: "/v1/client-tokens", body, retry: "unsent" });
  }
  /** A token's customer, contexts (the server context included) and status. */
  retrieve(id: string): Promise<T.ClientTokenDetails> {
    return this.call({ method: "GET", path: `/v1/client-tokens/${q(id)}` });
  }
  /** Revokes a token: it is refused from now on. */
  async revoke(id: string): Promise<void> {
    await this.transport.send({ method: "DELETE", path: `/v1/client-tokens/${q(id)}` });
  }
}

export class ProjectResource extends Resource {
  /** The key's project; also a credentials check. */
  retrieve(): Promise<T.Project> {
    return this.call({ method: "GET", path: "/v1/project" });
  }
}

export class CustomersResource extends Resource {
  create(body: T.CustomerRequest & { externalId: string }): Promise<T.Customer> {
    return this.call({ method: "POST", path: "/v1/customers", body, retry: "unsent" });
  }
  list(query: PageQuery & { search?: string } = {}): Pager<T.Customer> {
    return this.pager("/v1/customers", { ...query });
  }
  /** By internal `cust_…` id or by externalId. */
  retrieve(customerId: string): Promise<T.Customer> {
    return this.call({ method: "GET", path: `/v1/customers/${q(customerId)}` });
  }
  /** Changes only the fields given. */
  update(customerId: string, body: T.CustomerRequest): Promise<T.Customer> {
    return this.call({ method: "PUT", path: `/v1/customers/${q(customerId)}`, body });
  }
  /** Deletes the customer with its events and own limits. */
  async delete(customerId: string): Promise<void> {
    await this.transport.send({ method: "DELETE", path: `/v1/customers/${q(customerId)}` });
  }
  /** Every meter's value in the customer's current windows. */
  usage(customerId: string): Promise<T.UsageResponse> {
    return this.call({ method: "GET", path: `/v1/customers/${q(customerId)}/usage` });
  }
  balances(customerId: string, query: PageQuery = {}): Pager<T.Balance> {
    return this.pager(`/v1/customers/${q(customerId)}/balances`, { ...query });
  }
}

/** An event as the wire wants it, with an idempotency key (generated when not given) so every
 * retry of it counts once. */
export function withIdempotencyKey(event: T.EventInput): T.EventInput {
  return event.idempotencyKey ? event : { ...event, idempotencyKey: newIdempotencyKey() };
}

export class EventsResource extends Resource {
  /** Records one event. Without `idempotencyKey` one is generated, so retries count once. */
  record(event: T.EventInput & { customerId: string; eventType: string }): Promise<T.RecordResponse> {
    return this.call({ method: "POST", path: "/v1/events/record", body: withIdempotencyKey(event) });
  }
  /** Records up to 1,000 events in one transaction; each without `idempotencyKey` gets one. */
  batch(events: T.EventInput[]): Promise<T.BatchResponse> {
    return this.call({ method: "POST", path: "/v1/events/batch", body: { events: events.map(withIdempotencyKey) } });
  }
  /** Newest first; `startDate` inclusive, `endDate` exclusive. */
  list(query: PageQuery & { customerId?: string; eventType?: string; startDate?: string; endDate?: string } = {}): Pager<T.Event> {
    return this.pager("/v1/events", { ...query });
  }
}

export class MetersResource extends Resource {
  create(body: T.MeterRequest & { name: string; aggregation: string }): Promise<T.Meter> {
    return this.call({ method: "POST", path: "/v1/meters", body, retry: "unsent" });
  }
  list(query: PageQuery = {}): Pager<T.Meter> {
    return this.pager("/v1/meters", { ...query });
  }
  retrieve(meterId: string): Promise<T.Meter> {
    return this.call({ method: "GET", path: `/v1/meters/${q(meterId)}` });
  }
  update(meterId: string, body: T.MeterRequest): Promise<T.Meter> {
    return this.call({ method: "PUT", path: `/v1/meters/${q(meterId)}`, body });
  }
  async delete(meterId: string): Promise<void> {
    await this.transport.send({ method: "DELETE", path: `/v1/meters/${q(meterId)}` });
  }
  /** `startDate` and `endDate` default to the current month's bounds. */
  query(meterId: string, body: T.MeterQueryRequest = {}): Promise<T.MeterQueryResult> {
    return this.call({ method: "POST", path: `/v1/meters/${q(meterId)}/query`, body });
  }
}

/** A check's answer. `fallback` is true when the fail mode decided it because the service
 * could not be reached or failed; `failMode` then says which mode and `error` what went wrong. */
export type CheckResult = Omit<T.CheckResponse, "limits"> & {
  limits: T.LimitStatus[];
  fallback: boolean;
  failMode?: T.FailMode;
  error?: string;
};

export interface CheckParams extends T.CheckRequest {
  customerId: string;
  /** What to answer when the service cannot be asked; overrides the remembered and the default mode. */
  failMode?: T.FailMode;
  timeoutMs?: number;
}

/** A consume: the event to record if it fits, for one customer. */
export interface ConsumeParams extends T.ConsumeEvent {
  customerId: string;
  eventType: string;
  failMode?: T.FailMode;
  timeoutMs?: number;
}

/** The service leaves `held` out when nothing is held. */
export function withHeld(status: T.CheckResponse["limits"][number]): T.LimitStatus {
  return { ...status, held: status.held ?? 0 };
}

/** What `withReservation` does beyond a reserve. */
export interface WithReservationOptions {
  /**
   * Called when the release that ends an uncommitted reservation fails (the service
   * unreachable): the hold then lapses at its expiry, and an error thrown by the callback is
   * still the one rethrown. By default the failure is written with `console.warn`.
   */
  onReleaseError?: (error: unknown, held: HeldReservation) => void;
}

/** A reserve: what to hold for one customer, and for how long. */
export interface ReserveParams {
  customerId: string;
  /** Held on every limit that applies, in its meter's units; default 1. */
  requested?: number;
  /** Seconds until the holds lapse unless committed, released or extended; default 300, at most 3600. */
  ttlSeconds?: number;
  dimensions?: Record<string, string>;
  /** Balances to hold too, all or nothing. */
  balances?: T.BalanceAmount[];
  /** Generated when not given, so the client's retries hold once. */
  idempotencyKey?: string;
  failMode?: T.FailMode;
  timeoutMs?: number;
}

/** The actual usage a reservation is committed with; its customer is the reservation's. */
export interface CommitParams {
  eventType: string;
  values?: Record<string, number>;
  dimensions?: Record<string, string>;
  properties?: unknown;
  idempotencyKey?: string;
  /** The actual amounts taken from the held balances; a held balance not named is taken at what it holds. */
  balances?: T.BalanceAmount[];
}

/**
 * The capacity `limits.withReservation` holds while its callback runs. `commit` records the
 * actual usage and ends the holds; a callback that returns without committing, or throws, has
 * them released. When the service could not be asked and the fail mode allowed the work,
 * nothing is held (`check.fallback` is true, `id` undefined): `commit` records the usage as a
 * plain event and nothing is released.
 */
export class HeldReservation {
  /** The reservation as the last commit, release or extend answered it. */
  reservation?: T.LimitReservation;
  settled = false;

  constructor(
    private readonly limits: LimitsResource,
    private readonly recordEvent: (event: T.EventInput & { customerId: string; eventType: string }) => Promise<unknown>,
    readonly customerId: string,
    /** The reserve's answer. */
    readonly check: CheckResult,
    private readonly dimensions?: Record<string, string>,
  ) {}

  /** The `lres_…` id; undefined when nothing is held (a fallback). */
  get id(): string | undefined {
    return this.check.reservationId ?? undefined;
  }

  /** Records the actual usage (above or below what was held) and ends the holds. */
  async commit(params: CommitParams): Promise<T.LimitReservation | undefined> {
    const { balances, ...event } = params;
    const id = this.id;
    if (id === undefined) {
      await this.recordEvent({ ...event, customerId: this.customerId, dimensions: event.dimensions ?? this.dimensions } as T.EventInput & { customerId: string; eventType: string });
      this.settled = true;
      return undefined;
    }
    this.reservation = await this.limits.commitReservation(id, { event: event as T.ConsumeEvent, balances });
    this.settled = true;
    return this.reservation;
  }

  /** Ends the holds without recording anything. A hold that expired meanwhile is already free: not an error here. */
  async release(): Promise<T.LimitReservation | undefined> {
    this.settled = true;
    const id = this.id;
    if (id === undefined) return undefined;
    try {
      this.reservation = await this.limits.releaseReservation(id);
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      this.reservation = await this.limits.getReservation(id);
    }
    return this.reservation;
  }

  /** Keeps the holds for `ttlSeconds` from now. */
  async extend(ttlSeconds: number): Promise<T.LimitReservation> {
    const id = this.id;
    if (id === undefined) throw new Error("nothing is held to extend");
    this.reservation = await this.limits.extendReservation(id, ttlSeconds);
    return this.reservation;
  }
}

export class LimitsResource extends Resource {
  constructor(
    transport: Transport,
    private readonly failModes: FailModeMemory,
    private readonly defaultFailMode: () => T.FailMode,
    private readonly checkTimeoutMs: number,
  ) {
    super(transport);
  }
  create(body: T.LimitRequest & { name: string; meterId: string; limitValue: number; period: string }): Promise<T.Limit> {
    return this.call({ method: "POST", path: "/v1/limits", body, retry: "unsent" });
  }
  list(query: PageQuery & { customerId?: string } = {}): Pager<T.Limit> {
    return this.pager("/v1/limits", { ...query });
  }
  retrieve(limitId: string): Promise<T.Limit> {
    return this.call({ method: "GET", path: `/v1/limits/${q(limitId)}` });
  }
  update(limitId: string, body: T.LimitRequest): Promise<T.Limit> {
    return this.call({ method: "PUT", path: `/v1/limits/${q(limitId)}`, body });
  }
  async delete(limitId: string): Promise<void> {
    await this.transport.send({ method: "DELETE", path: `/v1/limits/${q(limitId)}` });
  }
  /** Usage by customer in the current window, closest to the limit first (at most `limit` customers, default 50). */
  usage(limitId: string, params: { limit?: number } = {}): Promise<T.LimitUsageResponse> {
    return this.call({ method: "GET", path: `/v1/limits/${q(limitId)}/usage`, query: params });
  }
  /**
   * Is the customer within every limit that applies? A refusal is `allowed: false`.
   *
   * When the service cannot be reached or answers 5xx (after retries), the answer is a
   * fallback (`fallback: true`): allowed for fail mode `open`, denied for `closed`. The mode is
   * `failMode` if given, else the one the customer's limits asked for at their last successful
   * check, else the client's default.
   */
  check(params: CheckParams): Promise<CheckResult> {
    const { failMode, timeoutMs, ...body } = params;
    return this.judge(params.customerId, body, failMode, timeoutMs);
  }
  /**
   * Checks and records in one atomic step (`mode: "consume"`): the event is recorded if and
   * only if, with it, every limit that governs it stays within its value; then `allowed` is
   * true and `eventId` names it. Concurrent consumes never take a limit past its value.
   *
   * Without `idempotencyKey` one is generated, so the client's retries record once. When the
   * service cannot be asked, the fail mode decides as for `check` and nothing is recorded
   * (`fallback: true`).
   */
  consume(params: ConsumeParams): Promise<CheckResult> {
    const { customerId, failMode, timeoutMs, ...event } = params;
    const body = { customerId, mode: "consume" as const, event: event.idempotencyKey ? event : { ...event, idempotencyKey: newIdempotencyKey() } };
    return this.judge(customerId, body, failMode, timeoutMs);
  }
  /**
   * Checks and, when allowed, holds `requested` (default 1) on every limit that applies
   * (`mode: "reserve"`), and each of `balances`, for `ttlSeconds` (default 300, at most 3600).
   * `reservationId` names the hold: settle it with `commitReservation` (the actual usage) or
   * `releaseReservation`, or let it expire. A refusal is `allowed: false` and holds nothing.
   *
   * Without `idempotencyKey` one is generated, so the client's retries hold once. When the
   * service cannot be asked, the fail mode decides as for `check` and nothing is held
   * (`fallback: true`, no `reservationId`). `withReservation` wraps this around a callback.
   */
  reserve(params: ReserveParams): Promise<CheckResult> {
    const { customerId, failMode, timeoutMs, idempotencyKey, ...rest } = params;
    const body: T.CheckRequest = { customerId, mode: "reserve", ...rest };
    return this.judge(customerId, body, failMode, timeoutMs, idempotencyKey ?? newIdempotencyKey());
  }
  /**
   * Records the actual usage as an event of the reservation's customer (above or below the
   * hold) and ends the holds; `balances` are the actual amounts taken from the held balances.
   * `ConflictError` when no longer held.
   */
  commitReservation(reservationId: string, body: T.CommitReservationRequest & { event: T.ConsumeEvent }, options: { idempotencyKey?: string } = {}): Promise<T.LimitReservation> {
    return this.settle(reservationId, "commit", body, options.idempotencyKey);
  }
  /** Ends the holds without recording anything. `ConflictError` when no longer held. */
  releaseReservation(reservationId: string, options: { idempotencyKey?: string } = {}): Promise<T.LimitReservation> {
    return this.settle(reservationId, "release", undefined, options.idempotencyKey);
  }
  /** Keeps the holds for `ttlSeconds` from now. `ConflictError` when no longer held. */
  extendReservation(reservationId: string, ttlSeconds: number, options: { idempotencyKey?: string } = {}): Promise<T.LimitReservation> {
    return this.settle(reservationId, "extend", { ttlSeconds }, options.idempotencyKey);
  }
  /** A reservation: its `status` (held, committed, released, expired) and audit trail. */
  getReservation(reservationId: string): Promise<T.LimitReservation> {
    return this.call({ method: "GET", path: `/v1/limits/reservations/${q(reservationId)}` });
  }
  /**
   * Reserves, runs `fn` with the held reservation, and settles it: `held.commit({ eventType,
   * values })` records the actual usage; when `fn` returns without committing, or throws, the
   * holds are released (and the error rethrown). A failed release is not thrown over the
   * callback's outcome: it goes to `onReleaseError` (by default `console.warn`) and the hold
   * lapses at its expiry. A refused reserve throws `LimitExceededError` and `fn` never runs.
   *
   *     const reply = await limitry.limits.withReservation({ customerId: "acme", requested: 2000 }, async (held) => {
   *       const reply = await callModel();
   *       await held.commit({ eventType: "llm.completion", values: { tokens: reply.tokens } });
   *       return reply;
   *     });
   */
  async withReservation<R>(params: ReserveParams & WithReservationOptions, fn: (held: HeldReservation) => R | Promise<R>): Promise<R> {
    const { onReleaseError = warnReleaseFailed, ...reserveParams } = params;
    const check = await this.reserve(reserveParams);
    if (!check.allowed) throw new LimitExceededError(check);
    const recordEvent = (event: T.EventInput) => this.call({ method: "POST", path: "/v1/events/record", body: withIdempotencyKey(event) });
    const held = new HeldReservation(this, recordEvent, params.customerId, check, params.dimensions);
    const release = async (afterThrow: boolean) => {
      if (held.settled) return;
      try {
        await held.release();
      } catch (error) {
        // After a throw, the callback's error is the one to see; otherwise only our own errors are reported.
        if (!afterThrow && !(error instanceof LimitryError)) throw error;
        onReleaseError(error, held);
      }
    };
    let result: R;
    try {
      result = await fn(held);
    } catch (error) {
      await release(true);
      throw error;
    }
    await release(false);
    return result;
  }
  private settle(reservationId: string, action: "commit" | "release" | "extend", body: object | undefined, idempotencyKey?: string): Promise<T.LimitReservation> {
    return this.call({ method: "POST", path: `/v1/limits/reservations/${q(reservationId)}/${action}`, body, idempotencyKey: idempotencyKey ?? newIdempotencyKey() });
  }
  private async judge(customerId: string, body: T.CheckRequest, failMode?: T.FailMode, timeoutMs?: number, idempotencyKey?: string): Promise<CheckResult> {
    let answer: T.CheckResponse;
    try {
      answer = await this.call<T.CheckResponse>({ method: "POST", path: "/v1/limits/check", body, idempotencyKey, timeoutMs: timeoutMs ?? this.checkTimeoutMs });
    } catch (error) {
      if (!(error instanceof APIConnectionError || error instanceof InternalServerError)) throw error;
      const mode = failMode ?? this.failModes.recall(customerId) ?? this.defaultFailMode();
      const allowed = mode === "open";
      return {
        allowed,
        reason: allowed ? undefined : "service_unavailable",
        customerId,
        limits: [],
        fallback: true,
        failMode: mode,
        error: String((error as Error).message),
      } as unknown as CheckResult;
    }
    this.failModes.remember(customerId, answer.limits);
    return { ...answer, limits: answer.limits.map(withHeld), fallback: false };
  }
}

function warnReleaseFailed(error: unknown, held: HeldReservation): void {
  console.warn(`limitry: releasing reservation ${held.id} failed, its hold lapses at its expiry:`, error);
}

type BalanceTarget = { balanceId: string } | { customerId: string; name?: string };

export class BalancesResource extends Resource {
  create(body: T.CreateBalanceRequest & { customerId: string }): Promise<T.Balance> {
    return this.call({ method: "POST", path: "/v1/balances", body, retry: "unsent" });
  }
  retrieve(balanceId: string): Promise<T.Balance> {
    return this.call({ method: "GET", path: `/v1/balances/${q(balanceId)}` });
  }
  /** Would `amount` fit? Changes nothing. */
  check(body: BalanceTarget & { amount: number }): Promise<T.BalanceCheckResponse> {
    return this.call({ method: "POST", path: "/v1/balances/check", body });
  }
  private move(path: string, body: object, idempotencyKey?: string): Promise<T.OperationResponse> {
    return this.call({ method: "POST", path, body, idempotencyKey: idempotencyKey ?? newIdempotencyKey() });
  }
  credit(body: BalanceTarget & { amount: number; description: string; reference?: string }, options: { idempotencyKey?: string } = {}): Promise<T.OperationResponse> {
    return this.move("/v1/balances/credit", body, options.idempotencyKey);
  }
  /** Atomic: when short, `success` is false with `error: "insufficient_balance"`. */
  debit(body: BalanceTarget & { amount: number; description?: string; reference?: string }, options: { idempotencyKey?: string } = {}): Promise<T.OperationResponse> {
    return this.move("/v1/balances/debit", body, options.idempotencyKey);
  }
  reserve(body: BalanceTarget & { amount: number; ttlSeconds?: number; description?: string; reference?: string }, options: { idempotencyKey?: string } = {}): Promise<T.OperationResponse> {
    return this.move("/v1/balances/reserve", body, options.idempotencyKey);
  }
  /** Settles a reservation with the actual amount. */
  commit(reservationId: string, body: { amount: number; description?: string }, options: { idempotencyKey?: string } = {}): Promise<T.OperationResponse> {
    return this.move(`/v1/reservations/${q(reservationId)}/commit`, body, options.idempotencyKey);
  }
  release(reservationId: string, options: { idempotencyKey?: string } = {}): Promise<T.OperationResponse> {
    return this.move(`/v1/reservations/${q(reservationId)}/release`, {}, options.idempotencyKey);
  }
  /** The ledger, newest first. */
  transactions(balanceId: string, query: PageQuery = {}): Pager<T.LedgerTransaction> {
    return this.pager(`/v1/balances/${q(balanceId)}/transactions`, { ...query });
  }
}

export interface SummaryQuery {
  startDate: string;
  endDate: string;
  period?: "day" | "week" | "month" | "total";
}

export class UsageResource extends Resource {
  /** Totals per customer × meter. */
  summary(query: SummaryQuery): Promise<T.UsageSummary> {
    return this.call({ method: "GET", path: "/v1/usage/summary", query: { ...query } });
  }
  async summaryCsv(query: SummaryQuery): Promise<string> {
    const response = await this.transport.send({ method: "GET", path: "/v1/usage/summary", query: { ...query }, accept: "text/csv" });
    return response.text();
  }
}

export class WebhooksResource extends Resource {
  /** The answer carries the signing `secret`, shown this once. */
  create(body: T.EndpointRequest & { url: string }): Promise<T.EndpointWithSecret> {
    return this.call({ method: "POST", path: "/v1/webhooks", body, retry: "unsent" });
  }
  list(query: PageQuery = {}): Pager<T.WebhookEndpoint> {
    return this.pager("/v1/webhooks", { ...query });
  }
  retrieve(webhookId: string): Promise<T.WebhookEndpoint> {
    return this.call({ method: "GET", path: `/v1/webhooks/${q(webhookId)}` });
  }
  update(webhookId: string, body: T.EndpointRequest): Promise<T.WebhookEndpoint> {
    return this.call({ method: "PUT", path: `/v1/webhooks/${q(webhookId)}`, body });
  }
  async delete(webhookId: string): Promise<void> {
    await this.transport.send({ method: "DELETE", path: `/v1/webhooks/${q(webhookId)}` });
  }
  /**
   * A new signing `secret` (shown this once); the old one keeps signing beside it for
   * `graceHours` (the service's default when not given, 0 to stop it at once), until
   * `previousSecretExpiresAt`.
   */
  rotateSecret(webhookId: string, body: T.RotateSecretRequest = {}): Promise<T.EndpointWithSecret> {
    return this.call({ method: "POST", path: `/v1/webhooks/${q(webhookId)}/rotate-secret`, body, retry: "unsent" });
  }
  deliveries(webhookId: string, query: PageQuery = {}): Pager<T.Delivery> {
    return this.pager(`/v1/webhooks/${q(webhookId)}/deliveries`, { ...query });
  }
  redeliver(webhookId: string, deliveryId: string): Promise<T.Queued> {
    return this.call({ method: "POST", path: `/v1/webhooks/${q(webhookId)}/deliveries/${q(deliveryId)}/redeliver`, retry: "unsent" });
  }
  /** Queues a `webhook.test` delivery. */
  test(webhookId: string): Promise<T.Queued> {
    return this.call({ method: "POST", path: `/v1/webhooks/${q(webhookId)}/test`, retry: "unsent" });
  }
}
