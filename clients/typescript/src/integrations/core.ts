// What the provider wrappers share: the check before a call and the record after it.

import type { Limitry } from "../client.js";
import { LimitExceededError } from "../errors.js";
import type { BufferedRecorder } from "../recorder.js";
import type { CheckResult } from "../resources.js";
import type { FailMode } from "../types.js";

export interface WrapOptions {
  customerId: string;
  /** Default `llm.completion`. */
  eventType?: string;
  /** Added to `provider` and `model` on the check and the recorded event. */
  dimensions?: Record<string, string>;
  requested?: number;
  failMode?: FailMode;
  /** Returned instead of throwing `LimitExceededError` when denied (a function gets the check). */
  fallback?: unknown;
  /** Record through this recorder instead of one direct request. */
  recorder?: BufferedRecorder;
}

export class Guard {
  constructor(
    readonly limitry: Limitry,
    readonly provider: string,
    readonly options: WrapOptions,
  ) {}

  dims(model: string | undefined): Record<string, string> {
    const dims: Record<string, string> = { provider: this.provider, ...(this.options.dimensions ?? {}) };
    if (model) dims.model = model;
    return dims;
  }

  /** `{allowed: true}`, or `{allowed: false, fallback}`; throws `LimitExceededError` without a fallback. */
  async check(model: string | undefined, customerId = this.options.customerId): Promise<{ allowed: boolean; fallback?: unknown }> {
    const check: CheckResult = await this.limitry.limits.check({
      customerId,
      dimensions: this.dims(model),
      requested: this.options.requested,
      failMode: this.options.failMode,
    });
    if (check.allowed) return { allowed: true };
    const fallback = this.options.fallback;
    if (fallback === undefined) throw new LimitExceededError(check);
    return { allowed: false, fallback: typeof fallback === "function" ? fallback(check) : fallback };
  }

  async record(model: string | undefined, values: Record<string, number>, customerId = this.options.customerId): Promise<void> {
    const event = {
      customerId,
      eventType: this.options.eventType ?? "llm.completion",
      values,
      dimensions: this.dims(model),
    };
    if (this.options.recorder) this.options.recorder.record(event);
    else await this.limitry.events.record(event);
  }
}

export function tokenValues(input: number | null | undefined, output: number | null | undefined, extra: Record<string, number | null | undefined> = {}): Record<string, number> {
  const values: Record<string, number> = { input_tokens: input ?? 0, output_tokens: output ?? 0 };
  values.total_tokens = values.input_tokens + values.output_tokens;
  for (const [k, v] of Object.entries(extra)) if (v) values[k] = v;
  return values;
}

/** Wraps a provider's async-iterable stream: items pass unchanged, `done` runs once at the end;
 * everything else on the stream object (controller, tee, …) passes through. */
export function wrapStream<S extends AsyncIterable<unknown>>(stream: S, onItem: (item: any) => void, done: () => Promise<void>): S {
  let finished = false;
  const finish = async () => {
    if (!finished) {
      finished = true;
      await done();
    }
  };
  return new Proxy(stream, {
    get(target, prop, receiver) {
      if (prop === Symbol.asyncIterator) {
        return async function* () {
          try {
            for await (const item of target) {
              onItem(item);
              yield item;
            }
          } finally {
            await finish();
          }
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** A proxy of `obj` whose property `key` is `replacement`. */
export function override<O extends object>(obj: O, key: PropertyKey, replacement: unknown): O {
  return new Proxy(obj, {
    get(target, prop, receiver) {
      if (prop === key) return replacement;
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/**
 * What the SDKs' `create` returns: awaitable for the data, with `withResponse()` for the data
 * and the raw response. Lazy and run once, like the SDKs' own `APIPromise`, so the SDKs'
 * helpers that call `create(...).withResponse()` (e.g. Anthropic's `messages.stream`) go
 * through the guard too.
 */
export class GuardedPromise<T> implements PromiseLike<T> {
  private result: Promise<{ data: T; response?: Response; request_id?: string | null }> | undefined;

  constructor(private readonly run: () => Promise<{ data: T; response?: Response; request_id?: string | null }>) {}

  withResponse(): Promise<{ data: T; response?: Response; request_id?: string | null }> {
    this.result ??= this.run();
    return this.result;
  }

  then<A = T, B = never>(onfulfilled?: ((value: T) => A | PromiseLike<A>) | null, onrejected?: ((reason: any) => B | PromiseLike<B>) | null): Promise<A | B> {
    return this.withResponse().then((r) => r.data).then(onfulfilled, onrejected);
  }

  catch<B = never>(onrejected?: ((reason: any) => B | PromiseLike<B>) | null): Promise<T | B> {
    return this.then(undefined, onrejected);
  }

  finally(onfinally?: (() => void) | null): Promise<T> {
    return this.then().finally(onfinally);
  }
}

/** Runs the SDK call `call` (returning its APIPromise) behind the check, then `after` on its data. */
export function guardedCall<T>(
  check: () => Promise<{ allowed: boolean; fallback?: unknown }>,
  call: () => any,
  after: (data: any) => Promise<T>,
): GuardedPromise<T> {
  return new GuardedPromise<T>(async () => {
    const verdict = await check();
    if (!verdict.allowed) return { data: verdict.fallback as T };
    const pending = call();
    if (typeof pending?.withResponse === "function") {
      const { data, ...rest } = await pending.withResponse();
      return { ...rest, data: await after(data) };
    }
    return { data: await after(await pending) };
  });
}
