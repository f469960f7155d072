// Buffered recording: queues events and sends them through `/v1/events/batch`.
//
// - Each event gets its idempotency key (and timestamp) when queued, so a batch retried after a
//   lost answer counts once: the service acknowledges repeats as duplicates.
// - A batch goes out when `batchSize` events are queued or `flushIntervalMs` after the oldest
//   queued event, whichever comes first.
// - A batch that fails to send (connection, timeout, 429, 5xx) is retried, the same events with
//   the same keys, with backoff up to `retryCapMs`, for as long as the recorder runs: nothing
//   queued is lost while the service comes back.
// - A batch refused because one event is invalid (400 naming `events[i]…`) drops that event,
//   reports it to `onError` and sends the rest; any other 4xx drops the batch and reports it.
// - The queue holds at most `maxQueue` events. When full, `overflow` decides: `"drop_newest"`
//   (default: `record` returns false, the event is counted in `stats.dropped` and given to
//   `onDrop`) or `"drop_oldest"` (the oldest queued event is dropped and reported instead).
// - `close()` flushes, waiting up to `closeTimeoutMs`; events still unsent are counted in
//   `stats.lost`. In Node it also runs when the event loop empties (`beforeExit`).

import { APIConnectionError, APIStatusError, RateLimitError } from "./errors.js";
import { retryDelayMs } from "./http.js";
import { withIdempotencyKey } from "./resources.js";
import type { Transport } from "./http.js";
import type { EventInput } from "./types.js";

export interface RecorderOptions {
  batchSize?: number;
  flushIntervalMs?: number;
  maxQueue?: number;
  overflow?: "drop_newest" | "drop_oldest";
  onDrop?: (event: EventInput) => void;
  onError?: (error: Error, events: EventInput[]) => void;
  retryBaseMs?: number;
  retryCapMs?: number;
  closeTimeoutMs?: number;
  /** Flush when Node's event loop empties (default true). */
  flushOnExit?: boolean;
}

export interface RecorderStats {
  /** Events accepted by `record`. */
  queued: number;
  /** Events the service acknowledged as newly recorded. */
  sent: number;
  /** Events acknowledged as already recorded (a retry of a lost answer). */
  duplicates: number;
  /** Events refused because the queue was full. */
  dropped: number;
  /** Events the service refused (invalid) and that were dropped. */
  rejected: number;
  /** Events still unsent when `close` gave up. */
  lost: number;
  /** Batch sends that failed and were retried. */
  retries: number;
}

const EVENT_FIELD = /^events\[(\d+)\]/;

export class BufferedRecorder {
  readonly stats: RecorderStats = { queued: 0, sent: 0, duplicates: 0, dropped: 0, rejected: 0, lost: 0, retries: 0 };
  private readonly queue: EventInput[] = [];
  private inflight = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private pumping: Promise<void> | undefined;
  private closed = false;
  private abandon = false;
  private wake: (() => void) | undefined;
  private readonly options: Required<Omit<RecorderOptions, "onDrop" | "onError">> & Pick<RecorderOptions, "onDrop" | "onError">;
  private readonly exitHandler = () => void this.close();

  constructor(private readonly transport: Transport, options: RecorderOptions = {}) {
    this.options = {
      batchSize: 500,
      flushIntervalMs: 1000,
      maxQueue: 100_000,
      overflow: "drop_newest",
      retryBaseMs: 200,
      retryCapMs: 5000,
      closeTimeoutMs: 30_000,
      flushOnExit: true,
      ...options,
    };
    if (this.options.batchSize < 1 || this.options.batchSize > 1000) throw new RangeError("batchSize must be 1 to 1000");
    const proc = (globalThis as { process?: { once?: Function; off?: Function } }).process;
    if (this.options.flushOnExit && proc?.once) proc.once("beforeExit", this.exitHandler);
  }

  /** Queues one event; false when it was dropped because the queue was full. */
  record(event: EventInput & { customerId: string; eventType: string }): boolean {
    if (this.closed) throw new Error("the recorder is closed");
    const queued = withIdempotencyKey({ timestamp: new Date().toISOString(), ...event });
    let dropped: EventInput | undefined;
    if (this.queue.length >= this.options.maxQueue) {
      dropped = this.options.overflow === "drop_oldest" ? this.queue.shift() : queued;
    }
    if (dropped !== queued) {
      this.queue.push(queued);
      this.stats.queued++;
    }
    if (dropped) {
      this.stats.dropped++;
      this.options.onDrop?.(dropped);
    }
    if (this.queue.length >= this.options.batchSize) this.kick();
    else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.kick(true);
      }, this.options.flushIntervalMs);
      (this.timer as { unref?: () => void }).unref?.();
    }
    return dropped !== queued;
  }

  /** Events queued or being sent. */
  pending(): number {
    return this.queue.length + this.inflight;
  }

  /** Sends everything queued now; true when all of it was acknowledged in time. */
  async flush(timeoutMs?: number): Promise<boolean> {
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    while (this.pending() > 0) {
      this.kick(true);
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await Promise.race([this.pumping, new Promise((r) => setTimeout(r, Math.min(left, 100)))]);
    }
    return true;
  }

  /** Flushes (waiting up to `timeoutMs`, default `closeTimeoutMs`) and stops. */
  async close(timeoutMs?: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const proc = (globalThis as { process?: { off?: Function } }).process;
    proc?.off?.("beforeExit", this.exitHandler);
    if (this.timer) clearTimeout(this.timer);
    await this.flush(timeoutMs ?? this.options.closeTimeoutMs);
    this.abandon = true;
    this.wake?.();
    await this.pumping;
    const lost = this.queue.length;
    this.queue.length = 0;
    this.stats.lost += lost;
  }

  private kick(force = false): void {
    if (this.pumping) return;
    if (!force && this.queue.length < this.options.batchSize) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = undefined;
      if (this.queue.length >= this.options.batchSize) this.kick();
      else if (this.queue.length > 0 && !this.timer && !this.abandon) this.kick(true);
    });
  }

  private async pump(): Promise<void> {
    while (this.queue.length > 0 && !this.abandon) {
      const batch = this.queue.splice(0, this.options.batchSize);
      this.inflight = batch.length;
      const sent = await this.send(batch);
      this.inflight = 0;
      if (!sent) {
        this.queue.unshift(...batch);
        return;
      }
    }
  }

  /** Sends one batch until acknowledged; false when abandoned (the batch goes back). */
  private async send(batch: EventInput[]): Promise<boolean> {
    for (let attempt = 0; batch.length > 0; ) {
      try {
        const response = await this.transport.json<{ count?: number; duplicates?: number }>({
          method: "POST",
          path: "/v1/events/batch",
          body: { events: batch },
        });
        this.stats.sent += response.count ?? 0;
        this.stats.duplicates += response.duplicates ?? 0;
        return true;
      } catch (error) {
        const transient =
          error instanceof APIConnectionError ||
          error instanceof RateLimitError ||
          (error instanceof APIStatusError && error.status >= 500);
        if (transient) {
          this.stats.retries++;
          const retryAfter = error instanceof RateLimitError ? error.retryAfter : undefined;
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, retryDelayMs(attempt, retryAfter, this.options.retryBaseMs, this.options.retryCapMs));
            this.wake = () => {
              clearTimeout(t);
              resolve();
            };
          });
          this.wake = undefined;
          attempt++;
          if (this.abandon) return false;
          continue;
        }
        const err = error as APIStatusError;
        const match = EVENT_FIELD.exec(err.field ?? "");
        if (err.status === 400 && match && Number(match[1]) < batch.length) {
          const [bad] = batch.splice(Number(match[1]), 1);
          this.stats.rejected++;
          this.options.onError?.(err, [bad]);
          continue;
        }
        this.stats.rejected += batch.length;
        this.options.onError?.(err, batch);
        return true;
      }
    }
    return true;
  }
}
