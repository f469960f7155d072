// Auto-pagination over `{data, nextCursor, hasMore}` lists: `for await (const x of list())`
// walks every page lazily; `firstPage()` returns one page for paging by hand.

import type { RequestSpec, Transport } from "./http.js";

export interface Page<T> {
  data: T[];
  nextCursor: string | null;
  hasMore: boolean;
}

export class Pager<T> implements AsyncIterable<T> {
  constructor(
    private readonly transport: Transport,
    private readonly spec: RequestSpec,
  ) {}

  private async fetch(cursor: string | undefined | null): Promise<Page<T>> {
    const query = { ...(this.spec.query ?? {}) };
    if (cursor) query.cursor = cursor;
    const raw = await this.transport.json<unknown>({ ...this.spec, method: "GET", query });
    if (Array.isArray(raw)) return { data: raw as T[], nextCursor: null, hasMore: false };
    const page = raw as Partial<Page<T>>;
    const nextCursor = page.nextCursor ?? null;
    return { data: page.data ?? [], nextCursor, hasMore: Boolean(page.hasMore) && nextCursor !== null };
  }

  firstPage(): Promise<Page<T>> {
    return this.fetch(this.spec.query?.cursor as string | undefined);
  }

  async *pages(): AsyncGenerator<Page<T>> {
    let page = await this.firstPage();
    yield page;
    while (page.hasMore) {
      page = await this.fetch(page.nextCursor);
      yield page;
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for await (const page of this.pages()) yield* page.data;
  }

  async toArray(): Promise<T[]> {
    const items: T[] = [];
    for await (const item of this) items.push(item);
    return items;
  }
}
