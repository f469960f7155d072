// A wrapper for the official `@anthropic-ai/sdk` client. `messages.create` checks the
// customer's limits first (dimensions `provider`, `model` and yours); when denied it throws
// `LimitExceededError` (or returns `fallback`) and Anthropic is not called. Afterwards it
// records the reported `input_tokens`, `output_tokens`, `total_tokens` (and cache token counts
// when present). With `stream: true` the usage comes from `message_start` and the final
// `message_delta` and is recorded when the stream ends. The SDK's `messages.stream(...)` helper
// is guarded the same way (a denial fails the stream with the `LimitExceededError` as cause).

import type { Limitry } from "../client.js";
import { Guard, guardedCall, override, tokenValues, wrapStream, type WrapOptions } from "./core.js";

export type { WrapOptions } from "./core.js";

interface AnthropicUsage {
  input_tokens?: number | null;
  output_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
}

export function anthropicUsageValues(usage: AnthropicUsage): Record<string, number> {
  return tokenValues(usage.input_tokens, usage.output_tokens, {
    cache_creation_input_tokens: usage.cache_creation_input_tokens,
    cache_read_input_tokens: usage.cache_read_input_tokens,
  });
}

interface AnthropicLike {
  messages: { create: (...args: any[]) => any };
}

/** Wraps an Anthropic client; the result has the client's own type. */
export function wrapAnthropic<C extends AnthropicLike>(client: C, limitry: Limitry, options: WrapOptions): C {
  const guard = new Guard(limitry, "anthropic", options);
  const messages = client.messages;
  const create = (body: any, requestOptions?: unknown) => {
    const { limitryCustomerId, ...params } = body ?? {};
    const customerId: string = limitryCustomerId ?? options.customerId;
    const model: string | undefined = params.model;
    return guardedCall(
      () => guard.check(model, customerId),
      () => messages.create.call(messages, params, requestOptions),
      async (response: any) => {
        if (params.stream) {
          const usage: AnthropicUsage = {};
          let started = false;
          return wrapStream(response, (event) => {
            if (event?.type === "message_start") {
              started = true;
              Object.assign(usage, event.message?.usage ?? {});
            } else if (event?.type === "message_delta" && event.usage) {
              usage.output_tokens = event.usage.output_tokens;
              if (event.usage.input_tokens) usage.input_tokens = event.usage.input_tokens;
            }
          }, async () => {
            if (started) await guard.record(model, anthropicUsageValues(usage), customerId);
          });
        }
        await guard.record(model, anthropicUsageValues(response.usage ?? {}), customerId);
        return response;
      },
    );
  };
  // The SDK's `messages.stream(...)` helper calls `this.create(...).withResponse()`: run it
  // with the guarded `messages` as `this`, so the helper is checked and recorded too.
  const stream = (messages as { stream?: (...args: any[]) => any }).stream;
  const guarded: any = override(messages, "create", create);
  const withStream = typeof stream === "function" ? override(guarded, "stream", (...args: any[]) => stream.apply(guarded, args)) : guarded;
  return override(client, "messages", withStream);
}
