// A wrapper for the official `openai` client (OpenAI, AzureOpenAI, and any OpenAI-compatible
// endpoint through `baseURL`). `chat.completions.create` and `responses.create` check the
// customer's limits first
// (dimensions `provider`, `model` and yours); when denied it throws `LimitExceededError` (or
// returns `fallback`) and OpenAI is not called. Afterwards it records the reported
// `input_tokens`, `output_tokens` and `total_tokens`. Streams ask for usage in the final chunk
// (`stream_options.include_usage`), streamed responses carry it in `response.completed`; either
// is recorded when the stream ends. Everything else passes
// through. Pass `limitryCustomerId` in a call's body to meter another customer.

import type { Limitry } from "../client.js";
import { Guard, guardedCall, override, tokenValues, wrapStream, type WrapOptions } from "./core.js";

export type { WrapOptions } from "./core.js";

interface OpenAIUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  prompt_tokens_details?: { cached_tokens?: number } | null;
}

export function openaiUsageValues(usage: OpenAIUsage | null | undefined): Record<string, number> | undefined {
  if (!usage) return undefined;
  return tokenValues(usage.prompt_tokens, usage.completion_tokens, {
    cached_input_tokens: usage.prompt_tokens_details?.cached_tokens,
  });
}

interface ResponsesUsage {
  input_tokens?: number;
  output_tokens?: number;
  input_tokens_details?: { cached_tokens?: number } | null;
}

export function responsesUsageValues(usage: ResponsesUsage | null | undefined): Record<string, number> | undefined {
  if (!usage) return undefined;
  return tokenValues(usage.input_tokens, usage.output_tokens, {
    cached_input_tokens: usage.input_tokens_details?.cached_tokens,
  });
}

interface OpenAILike {
  chat: { completions: { create: (...args: any[]) => any } };
  responses?: { create: (...args: any[]) => any };
}

/** Wraps an `openai` client; the result has the client's own type. */
export function wrapOpenAI<C extends OpenAILike>(client: C, limitry: Limitry, options: WrapOptions): C {
  const guard = new Guard(limitry, "openai", options);
  const completions = client.chat.completions;
  const create = (body: any, requestOptions?: unknown) => {
    const { limitryCustomerId, ...params } = body ?? {};
    const customerId: string = limitryCustomerId ?? options.customerId;
    const model: string | undefined = params.model;
    if (params.stream) params.stream_options = { include_usage: true, ...(params.stream_options ?? {}) };
    return guardedCall(
      () => guard.check(model, customerId),
      () => completions.create.call(completions, params, requestOptions),
      async (response: any) => {
        if (params.stream) {
          let usage: OpenAIUsage | undefined;
          return wrapStream(response, (chunk) => {
            if (chunk?.usage) usage = chunk.usage;
          }, async () => {
            const values = openaiUsageValues(usage);
            if (values) await guard.record(model, values, customerId);
          });
        }
        const values = openaiUsageValues(response?.usage);
        if (values) await guard.record(model, values, customerId);
        return response;
      },
    );
  };
  const chat = override(client.chat, "completions", override(completions, "create", create));
  const wrapped = override(client, "chat", chat);
  const responses = client.responses;
  if (!responses) return wrapped;
  const createResponse = (body: any, requestOptions?: unknown) => {
    const { limitryCustomerId, ...params } = body ?? {};
    const customerId: string = limitryCustomerId ?? options.customerId;
    const model: string | undefined = params.model;
    return guardedCall(
      () => guard.check(model, customerId),
      () => responses.create.call(responses, params, requestOptions),
      async (response: any) => {
        if (params.stream) {
          let usage: ResponsesUsage | undefined;
          return wrapStream(response, (event) => {
            if ((event?.type === "response.completed" || event?.type === "response.incomplete") && event.response?.usage) {
              usage = event.response.usage;
            }
          }, async () => {
            const values = responsesUsageValues(usage);
            if (values) await guard.record(model, values, customerId);
          });
        }
        const values = responsesUsageValues(response?.usage);
        if (values) await guard.record(model, values, customerId);
        return response;
      },
    );
  };
  return override(wrapped, "responses", override(responses, "create", createResponse));
}
