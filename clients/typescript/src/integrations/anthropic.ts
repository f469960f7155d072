// A wrapper for the official `@anthropic-ai/sdk` client. `messages.create` checks the
// customer's limits first (dimensions `provider`, `model` and yours); when denied it throws
// `LimitExceededError` (or returns `fallback`) and Anthropic is not called. Afterwards it
// records the reported `input_tokens`, `output_tokens`, `total_tokens` (and cache token counts
// when present). With `stream: true` the usage comes from `message_start` and the final
// `message_delta` and is recorded when the stream ends.

import type { Limitry } from "../client.js";
import { Guard, override, tokenValues, wrapStream, type WrapOptions } from "./core.js";

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
  const create = async (body: any, requestOptions?: unknown) => {
    const { limitryCustomerId, ...params } = body ?? {};
    const customerId: string = limitryCustomerId ?? options.customerId;
    const model: string | undefined = params.model;
    const verdict = await guard.check(model, customerId);
    if (!verdict.allowed) return verdict.fallback;
    const response = await messages.create.call(messages, params, requestOptions);
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
  };
  return override(client, "messages", override(messages, "create", create));
}
