// The fail mode each customer's limits asked for at their last successful check: any `closed`
// limit makes the customer fail closed; all `open` fails open; unknown falls back to the
// client default.

import type { FailMode } from "./types.js";

export class FailModeMemory {
  private readonly modes = new Map<string, FailMode>();
  constructor(private readonly capacity = 10_000) {}

  remember(customerId: string, limits: ReadonlyArray<{ failMode?: string | null }> | undefined): void {
    const modes = (limits ?? []).map((l) => l.failMode).filter((m): m is string => Boolean(m));
    this.modes.delete(customerId);
    if (modes.length === 0) return;
    if (this.modes.size >= this.capacity) {
      const oldest = this.modes.keys().next().value;
      if (oldest !== undefined) this.modes.delete(oldest);
    }
    this.modes.set(customerId, modes.includes("closed") ? "closed" : "open");
  }

  recall(customerId: string): FailMode | undefined {
    return this.modes.get(customerId);
  }
}
