/**
 * Shared steps for the dashboard tests: signing in, filling the dashboard's forms, recording
 * usage through the API, and reading CSV downloads. Every step works with JavaScript disabled
 * (plain form posts and links), so both projects use the same helpers.
 */
import { expect, type LimitryServer } from './fixtures';
import type { APIRequestContext, Locator, Page } from '@playwright/test';

export const OPERATOR = { email: 'ops@example.com', password: 'correct-horse-battery' } as const;

// ---------------------------------------------------------------- sessions

/** The first-run form on a fresh database: / sends the browser to /setup. */
export async function setupFirstOperator(page: Page, email: string = OPERATOR.email, password: string = OPERATOR.password) {
  await page.goto('/');
  await expect(page).toHaveURL(/\/setup$/);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create and sign in' }).click();
  await expectOverview(page);
}

/** Fills and submits the /login form (does not check the outcome). */
export async function submitLogin(page: Page, email: string, password: string) {
  if (!/\/login(\?|$)/.test(page.url())) await page.goto('/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

export async function signIn(page: Page, email: string = OPERATOR.email, password: string = OPERATOR.password) {
  await submitLogin(page, email, password);
  await expectOverview(page);
}

/** Creates an operator with the CLI, then signs in through /login. */
export async function signedIn(page: Page, server: LimitryServer) {
  await server.createOperator(OPERATOR.email, OPERATOR.password);
  await signIn(page);
}

export async function signOut(page: Page) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible();
}

export async function expectOverview(page: Page) {
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole('heading', { level: 1, name: 'Limitry' })).toBeVisible();
  await expect(page.getByRole('button', { name: 'Sign out' })).toBeVisible();
}

/** Goes to a page through the header navigation. */
export async function navigate(
  page: Page,
  link: 'Customers' | 'Meters' | 'Limits' | 'Events' | 'Webhooks' | 'Exports' | 'API keys',
) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: link, exact: true }).click();
  await expect(page.getByRole('heading', { level: 1, name: link })).toBeVisible();
}

// ---------------------------------------------------------------- messages

export async function expectNotice(page: Page, text: string | RegExp) {
  await expect(page.locator('.notice[role=status]')).toHaveText(text);
}

/** The field error shown for a form field (`.field-error`, role=alert). */
export function fieldError(page: Page): Locator {
  return page.locator('.field-error[role=alert]');
}

/** A section or form found by the heading it holds. */
function withHeading(page: Page, selector: string, heading: string): Locator {
  return page.locator(selector).filter({ has: page.getByRole('heading', { name: heading, exact: true }) });
}

// ---------------------------------------------------------------- meters and limits

export interface MeterInput {
  name: string;
  aggregation?: 'sum' | 'count' | 'max' | 'latest';
  field?: string;
  eventType?: string;
  description?: string;
}

/** Fills and submits the "New meter" form on /meters (does not check the outcome). */
export async function submitMeter(page: Page, meter: MeterInput) {
  await page.goto('/meters');
  const form = withHeading(page, 'section', 'New meter').locator('form');
  await form.getByLabel('Name', { exact: true }).fill(meter.name);
  await form.getByLabel('Aggregation').selectOption(meter.aggregation ?? 'sum');
  await form.getByLabel('Field').fill(meter.field ?? 'values.tokens');
  await form.getByLabel('Event type').fill(meter.eventType ?? 'llm.completion');
  await form.getByLabel('Description').fill(meter.description ?? '');
  await form.getByRole('button', { name: 'Create meter' }).click();
}

export async function createMeter(page: Page, meter: MeterInput) {
  await submitMeter(page, meter);
  await expectNotice(page, `Meter ${meter.name} created.`);
  await expect(meterItem(page, meter.name)).toBeVisible();
}

/** The <details> of a meter in the list on /meters. */
export function meterItem(page: Page, name: string): Locator {
  return page.locator('details').filter({ has: page.locator('summary strong', { hasText: new RegExp(`^${escapeRe(name)}$`) }) });
}

export interface LimitInput {
  name: string;
  meter: string; // the meter's name
  limit: number | string;
  period?: 'hour' | 'day' | 'week' | 'month' | 'annual' | 'all_time';
  customer?: string;
  thresholds?: string;
  failMode?: 'open' | 'closed';
}

export async function submitLimit(page: Page, limit: LimitInput) {
  await page.goto('/limits');
  const form = withHeading(page, 'section', 'New limit').locator('form');
  await form.getByLabel('Name', { exact: true }).fill(limit.name);
  await form.getByLabel('Meter', { exact: true }).selectOption({ label: limit.meter });
  await form.getByLabel('Limit', { exact: true }).fill(String(limit.limit));
  await form.getByLabel('Period', { exact: true }).selectOption(limit.period ?? 'day');
  await form.getByLabel('Customer (empty: the default for every customer)').fill(limit.customer ?? '');
  // A customer that does not exist yet is created only when asked for.
  if (limit.customer) await form.getByLabel('Create this customer if it does not exist yet').check();
  await form.getByLabel('Alert thresholds (%)').fill(limit.thresholds ?? '');
  await form.getByLabel('Fail mode').selectOption(limit.failMode ?? 'open');
  await form.getByRole('button', { name: 'Create limit' }).click();
}

export async function createLimit(page: Page, limit: LimitInput) {
  await submitLimit(page, limit);
  await expectNotice(page, `Limit ${limit.name} created.`);
  await expect(limitItem(page, limit.name)).toBeVisible();
}

export function limitItem(page: Page, name: string): Locator {
  return page.locator('details').filter({ has: page.locator('summary strong', { hasText: new RegExp(`^${escapeRe(name)}$`) }) });
}

// ---------------------------------------------------------------- API keys

/** Creates a key on /api-keys and returns the secret the page shows once. */
export async function createApiKeyInUi(page: Page, name: string): Promise<string> {
  await page.goto('/api-keys');
  const form = withHeading(page, 'section', 'Create a key').locator('form');
  await form.getByLabel('Name', { exact: true }).fill(name);
  await form.getByRole('button', { name: 'Create key' }).click();
  await expectNotice(page, `API key ${name} created. Copy it now: it is not shown again.`);
  const secret = (await page.getByTestId('new-api-key').innerText()).trim();
  expect(secret).toMatch(/^limitry_sk_\S+$/);
  return secret;
}

// ---------------------------------------------------------------- JSON API

export async function recordEvent(
  request: APIRequestContext,
  server: LimitryServer,
  key: string,
  customerId: string,
  tokens: number,
  dimensions: Record<string, string> = {},
) {
  const res = await request.post(`${server.baseURL}/v1/events/record`, {
    headers: server.authHeaders(key),
    data: { customerId, eventType: 'llm.completion', values: { tokens }, dimensions },
  });
  const text = await res.text();
  expect(res.status(), `POST /v1/events/record → ${text}`).toBe(200);
  const body = JSON.parse(text);
  expect(body).toMatchObject({ recorded: true, duplicate: false });
  expect(body.id).toMatch(/^evt_/);
  return body;
}

export async function createBalanceViaApi(
  request: APIRequestContext,
  server: LimitryServer,
  key: string,
  customerId: string,
  name: string,
  initialBalance: number,
): Promise<{ id: string; customerId: string; currentBalance: number }> {
  const res = await request.post(`${server.baseURL}/v1/balances`, {
    headers: server.authHeaders(key),
    data: { customerId, name, initialBalance },
  });
  const text = await res.text();
  expect(res.status(), `POST /v1/balances → ${text}`).toBe(201);
  const body = JSON.parse(text);
  expect(body.id).toBeTruthy();
  return body;
}

// ---------------------------------------------------------------- customers and balances

/** Finds a customer with the search form on /customers and opens its page. */
export async function openCustomer(page: Page, externalId: string) {
  await page.goto('/customers');
  await page.getByLabel('Search by id, name or email').fill(externalId);
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await expect(page).toHaveURL(/\/customers\?search=/);
  await page.getByRole('table').getByRole('link', { name: externalId, exact: true }).click();
  await expect(page).toHaveURL(/\/customers\/cust_/);
  await expect(page.getByRole('heading', { level: 1, name: externalId, exact: true })).toBeVisible();
}

/** One balance's card on a customer page, found by its heading `name (unit)`. */
export function balanceCard(page: Page, name: string, unit = 'credits'): Locator {
  return page
    .getByTestId('balance')
    .filter({ has: page.getByRole('heading', { name: `${name} (${unit})`, exact: true }) });
}

export async function creditBalance(card: Locator, amount: number | string, description: string) {
  const form = card.locator('form').filter({ has: card.page().getByRole('button', { name: 'Credit', exact: true }) });
  await form.getByLabel('Credit amount').fill(String(amount));
  await form.getByLabel('Description').fill(description);
  await form.getByRole('button', { name: 'Credit', exact: true }).click();
}

export async function debitBalance(card: Locator, amount: number | string, description?: string) {
  const form = card.locator('form').filter({ has: card.page().getByRole('button', { name: 'Debit', exact: true }) });
  await form.getByLabel('Debit amount').fill(String(amount));
  if (description !== undefined) await form.getByLabel('Description').fill(description);
  await form.getByRole('button', { name: 'Debit', exact: true }).click();
}

/** The ledger table of a balance card, as cell texts keyed by column header. */
export async function ledgerRows(card: Locator): Promise<Record<string, string>[]> {
  const table = card.getByRole('table');
  const headers = (await table.locator('thead th').allInnerTexts()).map((h) => h.trim());
  const rows: Record<string, string>[] = [];
  for (const row of await table.locator('tbody tr').all()) {
    const cells = (await row.locator('td').allInnerTexts()).map((c) => c.trim());
    rows.push(Object.fromEntries(headers.map((h, i) => [h, cells[i] ?? ''])));
  }
  return rows;
}

// ---------------------------------------------------------------- CSV

/** An RFC 4180 parser: quoted fields, doubled quotes, CRLF or LF rows. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else {
        field += c;
      }
      i += 1;
      continue;
    }
    if (c === '"') {
      quoted = true;
    } else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i += 1;
    } else if (c === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else {
      field += c;
    }
    i += 1;
  }
  if (quoted) throw new Error('CSV ends inside a quoted field');
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** Parses a CSV, checks its header, and returns the rows as objects keyed by column. */
export function csvRecords(text: string, expectedHeader: string[]): Record<string, string>[] {
  const [header, ...rows] = parseCsv(text);
  expect(header, 'CSV header').toEqual(expectedHeader);
  return rows.map((cells, n) => {
    expect(cells.length, `CSV row ${n + 1} width: ${JSON.stringify(cells)}`).toBe(header.length);
    return Object.fromEntries(header.map((h, i) => [h, cells[i]]));
  });
}

/** Clicks a download link and returns the file's name and text (works without JavaScript). */
export async function downloadByLink(page: Page, link: Locator): Promise<{ filename: string; text: string }> {
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  const failure = await download.failure();
  expect(failure, `download of ${download.url()} failed`).toBeNull();
  const stream = await download.createReadStream();
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return { filename: download.suggestedFilename(), text: Buffer.concat(chunks).toString('utf8') };
}

/** GETs a download with the signed-in browser context's cookies and checks it is a CSV attachment. */
export async function fetchCsv(page: Page, url: string): Promise<string> {
  const res = await page.request.get(url, { maxRedirects: 0 });
  const text = await res.text();
  expect(res.status(), `GET ${url} → ${text.slice(0, 500)}`).toBe(200);
  expect(res.headers()['content-type'] ?? '').toContain('text/csv');
  expect(res.headers()['content-disposition'] ?? '').toMatch(/^attachment/);
  return text;
}

/** YYYY-MM-DD of today (UTC) shifted by `days`. */
export function utcDate(days = 0): string {
  const d = new Date(Date.now() + days * 86_400_000);
  return d.toISOString().slice(0, 10);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The columns of the usage CSV, in order. */
export const USAGE_HEADER = [
  'customer_external_id',
  'customer_name',
  'meter_id',
  'meter_name',
  'aggregation',
  'timezone',
  'period_start',
  'period_end',
  'value',
];
