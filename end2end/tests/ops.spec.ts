/**
 * Operations an operator answers for: rotating a webhook secret with a grace period during
 * which the old secret still signs, the audit log of who changed what, and the history of the
 * alerts that fired, per customer and per limit. Both projects (with and without JavaScript)
 * run every test; the pages are also in operator.spec.ts's axe-core and phone-width runs.
 */
import type { APIRequestContext, Page } from '@playwright/test';
import { test, expect, type LimitryServer } from './fixtures';
import {
  balanceCard,
  createBalanceViaApi,
  creditBalance,
  expectNotice,
  limitItem,
  openCustomer,
  OPERATOR,
  recordEvent,
  signedIn,
} from './helpers';

// Receivers on loopback may be registered; the service's grace period is 48 hours.
test.use({ serverArgs: ['--webhook-allow-private', '--webhook-secret-grace-hours', '48'] });

async function api(request: APIRequestContext, server: LimitryServer, key: string, method: 'GET' | 'POST' | 'PUT', path: string, data?: object) {
  const res = await request.fetch(`${server.baseURL}${path}`, { method, headers: server.authHeaders(key), data });
  const text = await res.text();
  expect(res.ok(), `${method} ${path} → ${text}`).toBeTruthy();
  return JSON.parse(text || '{}');
}

const UTC_TIME = /\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC/;

test('rotating a signing secret offers a grace period and shows until when the old secret signs', async ({ page, request, server }) => {
  const key = await server.createKey('seed');
  // Nothing is sent to this receiver: no event is queued for it.
  const endpoint = await api(request, server, key, 'POST', '/v1/webhooks', { url: 'http://127.0.0.1:9/hook', description: 'Billing system' });
  await signedIn(page, server);
  await page.goto(`/webhooks/${endpoint.id}`);
  await expect(page.getByTestId('previous-secret')).toHaveCount(0);

  await page.getByRole('link', { name: 'Rotate secret' }).click();
  await expect(page.getByRole('heading', { level: 1, name: /^Rotate the signing secret of / })).toBeVisible();
  const grace = page.getByLabel('The old secret keeps signing for');
  await expect(grace).toHaveValue('48');
  await expect(grace.locator('option:checked')).toHaveText('48 hours (the default)');
  const before = Date.now();
  await page.getByRole('button', { name: 'Rotate secret' }).click();

  await expect(page).toHaveURL(new RegExp(`/webhooks/${endpoint.id}$`));
  await expectNotice(page, new RegExp(`^Secret rotated\\. Copy the new one now; the old one keeps signing too until ${UTC_TIME.source}\\.$`));
  await expect(page.getByTestId('webhook-secret')).toHaveText(/^whsec_/);
  const previous = page.getByTestId('previous-secret');
  await expect(previous).toContainText('The previous signing secret still signs every delivery too, until');
  await expect(previous).toContainText(UTC_TIME);
  await expect(previous).toContainText('After that only the current secret signs.');
  // The API reads the same end: 48 hours after the rotation.
  const read = await api(request, server, key, 'GET', `/v1/webhooks/${endpoint.id}`);
  const until = Date.parse(read.previousSecretExpiresAt);
  expect(until - before).toBeGreaterThan(47.9 * 3600_000);
  expect(until - Date.now()).toBeLessThanOrEqual(48 * 3600_000);
  const shown = new Date(until).toISOString().slice(0, 19).replace('T', ' ');
  await expect(previous).toContainText(`${shown} UTC`);

  // A rotation may stop the old secret at once instead.
  await page.goto(`/confirm/rotate-secret/${endpoint.id}`);
  await page.getByLabel('The old secret keeps signing for').selectOption({ label: 'stop at once' });
  await page.getByRole('button', { name: 'Rotate secret' }).click();
  await expectNotice(page, 'Secret rotated. Copy the new one now; the old one no longer signs.');
  await expect(page.getByTestId('previous-secret')).toHaveCount(0);
  const after = await api(request, server, key, 'GET', `/v1/webhooks/${endpoint.id}`);
  expect(after.previousSecretExpiresAt).toBeNull();
});

/** The audit log's rows as cell texts. */
async function auditRows(page: Page) {
  const rows = page.getByTestId('audit-entry');
  const out: { who: string; what: string; details: string }[] = [];
  for (const row of await rows.all()) {
    out.push({
      who: (await row.getByTestId('audit-actor').innerText()).trim(),
      what: (await row.getByTestId('audit-action').innerText()).trim(),
      details: (await row.getByTestId('audit-summary').innerText()).trim(),
    });
  }
  return out;
}

test('an operator action appears in the audit log with who did it, beside the API changes', async ({ page, request, server }) => {
  const key = await server.createKey('seed');
  const prefix = `API key ${key.slice(0, 'limitry_sk_'.length + 4)}`;
  await createBalanceViaApi(request, server, key, 'acme', 'credits', 100);
  await signedIn(page, server);

  await openCustomer(page, 'acme');
  await creditBalance(balanceCard(page, 'credits'), '250', 'goodwill after the outage');
  await expectNotice(page, 'Balance credited.');

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit log', exact: true }).click();
  await expect(page).toHaveURL(/\/audit$/);
  await expect(page.getByRole('heading', { level: 1, name: 'Audit log' })).toBeVisible();
  const rows = await auditRows(page);
  expect(rows[0]).toEqual({
    who: OPERATOR.email,
    what: 'Balance credited',
    details: 'Credited 250 credits to balance credits of customer acme; 350 credits after (goodwill after the outage)',
  });
  expect(rows.slice(1)).toEqual([
    { who: prefix, what: 'Balance created', details: 'Balance credits created for customer acme with 100 credits' },
    { who: 'command line', what: 'API key created', details: 'API key seed created' },
  ]);

  // A change of a limit through the dashboard, then the log of limits only.
  const meter = await api(request, server, key, 'POST', '/v1/meters', {
    name: 'Tokens',
    aggregation: 'sum',
    field: 'values.tokens',
    eventFilter: { eventType: 'llm.completion' },
  });
  await page.goto('/limits');
  const form = page.locator('form[action="/limits/create"]');
  await form.getByLabel('Name', { exact: true }).fill('Daily tokens');
  await form.getByLabel('Meter', { exact: true }).selectOption({ label: meter.name });
  await form.getByLabel('Limit', { exact: true }).fill('60,000');
  await form.getByRole('button', { name: 'Create limit' }).click();
  await expectNotice(page, 'Limit Daily tokens created.');
  await page.goto('/audit');
  await page.getByLabel('Show').selectOption({ label: 'Limits' });
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/\/audit\?kind=limit$/);
  expect(await auditRows(page)).toEqual([
    {
      who: OPERATOR.email,
      what: 'Limit created',
      details: 'Limit Daily tokens created: 60000 of Tokens per day for every customer; no alerts; fail open',
    },
  ]);
  // The entry links to the limit's page.
  await page.getByRole('link', { name: 'Limit created' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Daily tokens' })).toBeVisible();

  // Fifty entries a page, older ones a link away.
  for (let i = 0; i < 55; i++) {
    await api(request, server, key, 'POST', '/v1/customers', { externalId: `customer-${String(i).padStart(2, '0')}` });
  }
  await page.goto('/audit?kind=customer');
  await expect(page.getByTestId('audit-entry')).toHaveCount(50);
  await expect(page.getByTestId('audit-entry').first()).toContainText('Customer customer-54 created');
  await page.getByRole('link', { name: 'Older entries' }).click();
  await expect(page.getByTestId('audit-entry')).toHaveCount(5);
  await expect(page.getByTestId('audit-entry').last()).toContainText('Customer customer-00 created');
  await expect(page.getByRole('link', { name: 'Older entries' })).toHaveCount(0);
  await page.getByRole('link', { name: 'Newest entries' }).click();
  await expect(page).toHaveURL(/\/audit\?kind=customer$/);
});

test('a customer page lists the alerts that fired for it, linking to each limit and back', async ({ page, request, server }) => {
  const key = await server.createKey('seed');
  const meter = await api(request, server, key, 'POST', '/v1/meters', {
    name: 'Tokens',
    aggregation: 'sum',
    field: 'values.tokens',
    eventFilter: { eventType: 'llm.completion' },
  });
  const limit = await api(request, server, key, 'POST', '/v1/limits', {
    name: 'Daily tokens',
    meterId: meter.id,
    limitValue: 60000,
    period: 'day',
    alertThresholds: [50, 80, 100],
  });
  await recordEvent(request, server, key, 'acme', 45000);
  await recordEvent(request, server, key, 'acme', 20000);
  await recordEvent(request, server, key, 'globex', 31000);
  await signedIn(page, server);

  await openCustomer(page, 'acme');
  const history = page.getByTestId('alert-history');
  await expect(history.locator('caption')).toHaveText('3 alert(s), newest first');
  const alerts = history.getByTestId('alert');
  await expect(alerts).toHaveCount(3);
  // Newest first: the second event crossed 80 % and 100 % at once, the first 50 %.
  await expect(alerts.nth(0)).toContainText('100 % (limit reached)');
  await expect(alerts.nth(1)).toContainText('80 %');
  await expect(alerts.nth(2)).toContainText('50 %');
  for (const row of await alerts.all()) {
    await expect(row).toContainText(/\d{4}-\d{2}-\d{2} \d{2}:\d{2}/);
    await expect(row.getByRole('link', { name: 'Daily tokens' })).toHaveAttribute('href', `/limits/${limit.id}/alerts`);
  }

  // The limit's own page: every customer's alerts, each linking back to its customer.
  await alerts.nth(0).getByRole('link', { name: 'Daily tokens' }).click();
  await expect(page).toHaveURL(new RegExp(`/limits/${limit.id}/alerts$`));
  await expect(page.getByRole('heading', { level: 1, name: 'Daily tokens' })).toBeVisible();
  await expect(page.getByTestId('limit-summary')).toContainText('60,000 tokens per day on Tokens');
  const limitAlerts = page.getByTestId('alert-history').getByTestId('alert');
  await expect(limitAlerts).toHaveCount(4);
  await expect(limitAlerts.filter({ hasText: 'globex' })).toHaveCount(1);
  await expect(limitAlerts.filter({ hasText: 'globex' })).toContainText('50 %');
  await limitAlerts.filter({ hasText: 'acme' }).first().getByRole('link', { name: 'acme' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'acme', exact: true })).toBeVisible();

  // The limits page leads to the same history, and a customer without alerts says so.
  await page.goto('/limits');
  await limitItem(page, 'Daily tokens').locator('summary').click();
  await limitItem(page, 'Daily tokens').getByRole('link', { name: 'Alert history of Daily tokens' }).click();
  await expect(page).toHaveURL(new RegExp(`/limits/${limit.id}/alerts$`));
  await api(request, server, key, 'POST', '/v1/customers', { externalId: 'initech' });
  await openCustomer(page, 'initech');
  await expect(page.getByTestId('alert-history-empty')).toHaveText('No limit alert has fired for this customer.');
});
