// A LangChain callback handler (`@langchain/core`) guarding any chat model or LLM: before each
// run it checks the customer's limits (dimensions `provider: langchain`, `model` and yours) and
// throws `LimitExceededError` when denied, so the model is never called; when the run ends it
// records the usage the provider reported (`usage_metadata`, else `llmOutput.tokenUsage`).

import { BaseCallbackHandler } from "@langchain/core/callbacks/base";
import type { LLMResult } from "@langchain/core/outputs";
import type { Limitry } from "../client.js";
import { LimitExceededError } from "../errors.js";
import { Guard, tokenValues, type WrapOptions } from "./core.js";

export type LangChainOptions = Omit<WrapOptions, "fallback">;

function modelName(llm: any, extraParams?: Record<string, unknown>, metadata?: Record<string, unknown>): string | undefined {
  const params = (extraParams?.invocation_params ?? {}) as Record<string, unknown>;
  const name = params.model ?? params.model_name ?? params.modelName ?? metadata?.ls_model_name ?? llm?.kwargs?.model ?? llm?.kwargs?.model_name;
  return name ? String(name) : undefined;
}

export function usageFromResult(output: LLMResult): Record<string, number> | undefined {
  let input = 0;
  let outputTokens = 0;
  let found = false;
  for (const generations of output.generations) {
    for (const generation of generations) {
      const usage = (generation as any).message?.usage_metadata;
      if (usage) {
        found = true;
        input += usage.input_tokens ?? 0;
        outputTokens += usage.output_tokens ?? 0;
      }
    }
  }
  if (found) return tokenValues(input, outputTokens);
  const tokenUsage = (output.llmOutput as any)?.tokenUsage ?? (output.llmOutput as any)?.token_usage;
  if (tokenUsage) {
    return tokenValues(tokenUsage.promptTokens ?? tokenUsage.prompt_tokens, tokenUsage.completionTokens ?? tokenUsage.completion_tokens);
  }
  return undefined;
}

export class LimitryCallbackHandler extends BaseCallbackHandler {
  name = "limitry";
  /** A denied check must stop the run, not be logged and ignored. */
  override raiseError = true;
  override awaitHandlers = true;
  private readonly guard: Guard;
  private readonly runs = new Map<string, string | undefined>();

  constructor(limitry: Limitry, options: LangChainOptions) {
    super();
    this.guard = new Guard(limitry, "langchain", options);
  }

  private async start(runId: string, model: string | undefined): Promise<void> {
    const check = await this.guard.limitry.limits.check({
      customerId: this.guard.options.customerId,
      dimensions: this.guard.dims(model),
      requested: this.guard.options.requested,
      failMode: this.guard.options.failMode,
    });
    if (!check.allowed) throw new LimitExceededError(check);
    this.runs.set(runId, model);
  }

  override async handleChatModelStart(llm: any, _messages: unknown, runId: string, _parent?: string, extraParams?: Record<string, unknown>, _tags?: string[], metadata?: Record<string, unknown>): Promise<void> {
    await this.start(runId, modelName(llm, extraParams, metadata));
  }

  override async handleLLMStart(llm: any, _prompts: string[], runId: string, _parent?: string, extraParams?: Record<string, unknown>, _tags?: string[], metadata?: Record<string, unknown>): Promise<void> {
    await this.start(runId, modelName(llm, extraParams, metadata));
  }

  override async handleLLMEnd(output: LLMResult, runId: string): Promise<void> {
    const model = this.runs.get(runId);
    this.runs.delete(runId);
    const values = usageFromResult(output);
    if (values) await this.guard.record(model, values);
  }

  override async handleLLMError(_error: unknown, runId: string): Promise<void> {
    this.runs.delete(runId);
  }
}
