/**
 * Several projects, the "New balance" form and the usage export, as an operator uses them:
 * create a project and switch between projects from the header (the choice stays with the
 * session), a refused balance that keeps everything typed, and a usage file named after the
 * days it covers, split where each customer lives. Both projects (with and without
 * JavaScript) run every test: every form here is a plain form post or GET.
 */
import AxeBuilder from '@axe-core/playwright';
import type { APIRequestContext, Page } from '@playwright/test';
import { test, expect, type LimitryServer } from './fixtures';
import {
  balanceCard,
  csvRecords,
  downloadByLink,
  expectNotice,
  fieldError,
  openCustomer,
  recordEvent,
  signedIn,
  USAGE_HEADER,
} from './helpers';

async function api(request: APIRequestContext, server: LimitryServer, key: string, method: 'POST' | 'PUT', path: string, data: object) {
  const res = await request.fetch(`${server.baseURL}${path}`, { method, headers: server.authHeaders(key), data });
  const text = await res.text();
  expect(res.ok(), `${method} ${path} → ${text}`).toBeTruthy();
  return JSON.parse(text || '{}');
}

/** The header's project switcher. */
function switcher(page: Page) {
  return page.getByLabel('Project', { exact: true });
}

async function expectManaging(page: Page, name: string) {
  await expect(switcher(page).locator('option:checked')).toHaveText(name);
}

/** axe-core over the page as it is (it runs inside the page, so only with JavaScript). */
async function expectNoAxeViolations(page: Page, javaScriptEnabled: boolean, name: string) {
  if (!javaScriptEnabled) return;
  const results = await new AxeBuilder({ page }).analyze();
  const violations = results.violations.map((v) => `${name}: ${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  expect(violations, 'axe-core violations').toEqual([]);
}

test('a project made in the dashboard is switched to, and the header switches back', async ({ page, request, server, javaScriptEnabled }) => {
  const key = await server.createKey('default');
  await api(request, server, key, 'POST', '/v1/meters', { name: 'Default tokens', aggregation: 'sum', field: 'values.tokens' });
  await signedIn(page, server);
  await expectManaging(page, 'Default project');

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Projects', exact: true }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Projects' })).toBeVisible();
  const form = page.locator('form[action="/projects/create"]');
  await form.getByLabel('Name').fill('Staging');
  await form.getByLabel('Timezone of its customers').fill('Mars/Olympus');
  await form.getByRole('button', { name: 'Create project' }).click();
  // Refused beside its field, with what was typed still there.
  await expect(page).toHaveURL(/\/projects$/);
  await expect(fieldError(page)).toHaveCount(1);
  await expect(page.locator('#timezone-error')).toHaveText('Timezone must be an IANA timezone such as Europe/Paris.');
  await expect(form.getByLabel('Name')).toHaveValue('Staging');
  await expect(form.getByLabel('Timezone of its customers')).toHaveValue('Mars/Olympus');
  await expectNoAxeViolations(page, javaScriptEnabled, 'projects with an error');
  await expect(page.getByTestId('project-row')).toHaveCount(1);

  await form.getByLabel('Timezone of its customers').fill('Europe/Paris');
  await form.getByRole('button', { name: 'Create project' }).click();
  await expectNotice(page, 'Project Staging created. You are now managing it.');
  await expect(page).toHaveURL(/\/$/);
  await expectManaging(page, 'Staging');

  // Every page shows the chosen project only.
  await page.goto('/meters');
  await expect(page.getByRole('heading', { name: '0 meter(s)' })).toBeVisible();
  await expect(page.getByText('Default tokens')).toHaveCount(0);

  // The header switches back and stays on the same page.
  await switcher(page).selectOption({ label: 'Default project' });
  await page.getByRole('button', { name: 'Switch', exact: true }).click();
  await expect(page).toHaveURL(/\/meters$/);
  await expectNotice(page, 'Now managing the project Default project.');
  await expect(page.getByRole('heading', { name: '1 meter(s)' })).toBeVisible();
  await expectManaging(page, 'Default project');

  // The choice is the session's: it holds on every page until changed.
  await page.goto('/projects');
  await expect(page.getByTestId('current-project')).toHaveText('Default project');
  const staging = page.getByTestId('project-row').filter({ hasText: 'Staging' });
  await expect(staging).toContainText('Europe/Paris');
  await staging.getByRole('button', { name: 'Manage Staging' }).click();
  await expectNotice(page, 'Now managing the project Staging.');
  await page.goto('/api-keys');
  await expectManaging(page, 'Staging');
  await expect(page.getByRole('row').filter({ hasText: 'default' })).toHaveCount(0);
});

test('the New balance form keeps every value on an error and creates with the API rules', async ({ page, request, server, javaScriptEnabled }) => {
  const key = await server.createKey('balances');
  await recordEvent(request, server, key, 'acme', 10);
  await signedIn(page, server);
  await openCustomer(page, 'acme');

  const form = () => page.locator('form').filter({ has: page.getByRole('heading', { name: 'New balance' }) });
  await form().getByLabel('Name').fill('credits');
  await form().getByLabel('Unit').fill('tokens');
  await form().getByLabel('Initial balance').fill('-5');
  await form().getByLabel('Minimum balance').fill('-1,000');
  await form().getByLabel('Low balance threshold').fill('500');
  await form().getByRole('button', { name: 'Create balance' }).click();

  await expect(page).toHaveURL(/\/customers\/cust_[^/]+$/);
  await expect(fieldError(page)).toHaveCount(1);
  await expect(page.locator('#initialBalance-error')).toHaveText('Initial balance must not be negative.');
  await expect(form().getByLabel('Name')).toHaveValue('credits');
  await expect(form().getByLabel('Unit')).toHaveValue('tokens');
  await expect(form().getByLabel('Initial balance')).toHaveValue('-5');
  await expect(form().getByLabel('Minimum balance')).toHaveValue('-1,000');
  await expect(form().getByLabel('Low balance threshold')).toHaveValue('500');
  await expect(page.getByTestId('balance')).toHaveCount(0);
  await expectNoAxeViolations(page, javaScriptEnabled, 'customer with a balance error');

  // Only the wrong field changes; thousands separators are fine.
  await form().getByLabel('Initial balance').fill('36,000');
  await form().getByRole('button', { name: 'Create balance' }).click();
  await expectNotice(page, 'Balance credits created.');
  const card = balanceCard(page, 'credits', 'tokens');
  await expect(card.getByTestId('current-balance')).toHaveText('36,000');
  await expect(card).toContainText('-1,000');
  await expect(card).toContainText('500');
});

function day(date: Date): string {
  return date.toISOString().slice(0, 10);
}

test('the usage export form downloads a file named after its first and last day', async ({ page, request, server }) => {
  const key = await server.createKey('usage');
  await api(request, server, key, 'POST', '/v1/meters', { name: 'Tokens', aggregation: 'sum', field: 'values.tokens', eventFilter: { eventType: 'llm.completion' } });
  await recordEvent(request, server, key, 'acme', 1200);
  await api(request, server, key, 'PUT', '/v1/customers/acme', { name: 'Acme K.K.', timezone: 'Asia/Tokyo' });
  await signedIn(page, server);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Exports', exact: true }).click();

  // From the first of last month to the end of next month: today's usage is inside it in
  // any timezone, whatever the day.
  const now = new Date();
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  const end = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 2, 1));
  const last = new Date(end.getTime() - 86_400_000);
  await page.getByLabel('From (inclusive)').first().fill(day(start));
  await page.getByLabel('Until (exclusive)').first().fill(day(end));
  await page.getByLabel('Granularity').selectOption('month');
  const csv = await downloadByLink(page, page.getByRole('button', { name: 'Download usage CSV' }));
  expect(csv.filename).toBe(`usage_${day(start)}_${day(last)}_month.csv`);

  const rows = csvRecords(csv.text, USAGE_HEADER).filter((r) => r.customer_external_id === 'acme');
  expect(rows, csv.text).toHaveLength(1);
  expect(rows[0]).toMatchObject({ customer_name: 'Acme K.K.', meter_name: 'Tokens', timezone: 'Asia/Tokyo', value: '1200' });
  // Its month runs from midnight in Tokyo.
  expect(rows[0].period_start).toMatch(/^\d{4}-\d{2}-01T00:00:00\+09:00$/);

  // One total over the same range.
  await page.goto('/exports');
  await page.getByLabel('From (inclusive)').first().fill(day(start));
  await page.getByLabel('Until (exclusive)').first().fill(day(end));
  await page.getByLabel('Granularity').selectOption('total');
  const total = await downloadByLink(page, page.getByRole('button', { name: 'Download usage CSV' }));
  expect(total.filename).toBe(`usage_${day(start)}_${day(last)}.csv`);
});

test('usage charts: a range, granularity and breakdown form, the limit drawn, readable on a phone', async ({ page, request, server }) => {
  const key = await server.createKey('charts');
  const meter = await api(request, server, key, 'POST', '/v1/meters', {
    name: 'Tokens',
    aggregation: 'sum',
    field: 'values.tokens',
    eventFilter: { eventType: 'llm.completion' },
  });
  await recordEvent(request, server, key, 'acme', 1200, { model: 'gpt-4o' });
  await recordEvent(request, server, key, 'acme', 300, { model: 'gpt-4o-mini' });
  await api(request, server, key, 'POST', '/v1/limits', {
    name: 'Daily tokens',
    meterId: meter.id,
    limitValue: 60000,
    period: 'day',
    customerId: 'acme',
  });
  await signedIn(page, server);
  await openCustomer(page, 'acme');

  const usage = page.getByRole('region', { name: 'Usage' });
  const chart = usage.getByRole('img');
  await expect(chart).toHaveCount(1);
  await expect(chart).toHaveAttribute('aria-label', /^Tokens per day: line chart of 1 series \(Tokens\)/);
  await expect(chart).toHaveAttribute('aria-label', /in tokens per day; dashed line: Limit Daily tokens: 60,000 tokens per day; the last point is today so far$/);

  // The controls are a plain GET form: per hour, by model, today only.
  const today = new Date().toISOString().slice(0, 10);
  await usage.getByLabel('From', { exact: true }).fill(today);
  await usage.getByLabel('To (inclusive)').fill(today);
  await usage.getByLabel('Granularity').selectOption('hour');
  await usage.getByLabel('Break down by').selectOption('model');
  await usage.getByRole('button', { name: 'Show usage' }).click();
  await expect(page).toHaveURL(/[?&]granularity=hour&breakdown=model/);
  await expect(usage.getByLabel('Granularity')).toHaveValue('hour');
  await expect(chart).toHaveAttribute('aria-label', /^Tokens per hour by model: line chart of 2 series \(model = gpt-4o, model = gpt-4o-mini\)/);
  await expect(chart).toHaveAttribute('aria-label', /the last point is this hour so far$/);
  await expect(usage).toContainText('Also limited (not drawn: the chart shows usage per hour): Daily tokens: 60,000 tokens per day.');

  // On a phone the narrow drawing shows, its text at full size and the page no wider.
  await page.setViewportSize({ width: 390, height: 844 });
  await expect(chart).toHaveCount(1);
  const smallest = await chart.evaluate((svg: SVGSVGElement) => {
    const scale = svg.getBoundingClientRect().width / svg.width.baseVal.value;
    return Math.min(...Array.from(svg.querySelectorAll('text')).map((t) => parseFloat(getComputedStyle(t).fontSize) * scale));
  });
  expect(smallest, 'smallest chart text on a phone, in CSS px').toBeGreaterThanOrEqual(10);
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
});
