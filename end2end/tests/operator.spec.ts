/**
 * The operator's daily jobs: find who is over a limit from the overview, fix a form without
 * retyping it, confirm before deleting, see why a webhook failed and retry everything that
 * failed, export usage for finance. Then every page is checked with axe-core and for phone
 * width, and screenshots of the overview and a customer page are kept as artifacts. Both
 * projects (with and without JavaScript) run every test.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import AxeBuilder from '@axe-core/playwright';
import type { APIRequestContext, Page, TestInfo } from '@playwright/test';
import { test, expect, type LimitryServer } from './fixtures';
import { csvRecords, downloadByLink, expectNotice, fieldError, limitItem, recordEvent, signedIn, USAGE_HEADER } from './helpers';

// Webhook receivers of these tests listen on loopback; a failed delivery waits an hour for
// its next retry unless an operator retries it.
test.use({ serverArgs: ['--webhook-allow-private', '--webhook-retry-schedule', '1h', '--webhook-poll-ms', '100'] });

/** A receiver on 127.0.0.1 that answers 503 with a reason until `fix()` is called. */
async function flakyReceiver(): Promise<{ url: string; fix: () => void; close: () => Promise<void> }> {
  let fixed = false;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (fixed) {
        res.writeHead(204).end();
      } else {
        res.writeHead(503, { 'content-type': 'text/plain' }).end('database down for maintenance');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    fix: () => {
      fixed = true;
    },
    // The service's webhook client keeps its connection alive; closing only the listener would
    // wait for that connection to idle out, past the test's timeout.
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function api(request: APIRequestContext, server: LimitryServer, key: string, method: 'POST' | 'PUT', path: string, data: object) {
  const res = await request.fetch(`${server.baseURL}${path}`, { method, headers: server.authHeaders(key), data });
  const text = await res.text();
  expect(res.ok(), `${method} ${path} → ${text}`).toBeTruthy();
  return JSON.parse(text || '{}');
}

/**
 * A project as an operator finds it: a token meter with a daily limit of 60,000 (alerts at 50
 * and 80 %), `acme` far over it, `globex` near it and low on credits, a few more within, and a
 * webhook endpoint whose receiver fails.
 */
async function seed(request: APIRequestContext, server: LimitryServer, receiverUrl?: string) {
  const key = await server.createKey('seed');
  const meter = await api(request, server, key, 'POST', '/v1/meters', {
    name: 'Tokens',
    aggregation: 'sum',
    field: 'values.tokens',
    eventFilter: { eventType: 'llm.completion' },
  });
  await api(request, server, key, 'POST', '/v1/limits', {
    name: 'Daily tokens',
    meterId: meter.id,
    limitValue: 60000,
    period: 'day',
    alertThresholds: [50, 80, 100],
  });
  if (receiverUrl) {
    await api(request, server, key, 'POST', '/v1/webhooks', { url: receiverUrl, description: 'Billing system' });
  }
  await recordEvent(request, server, key, 'acme', 458377, { model: 'gpt-4o' });
  await recordEvent(request, server, key, 'globex', 51000, { model: 'gpt-4o-mini' });
  for (const [customer, tokens] of [['initech', 1200], ['umbrella', 300], ['hooli', 25000]] as const) {
    await recordEvent(request, server, key, customer, tokens);
  }
  await api(request, server, key, 'PUT', '/v1/customers/acme', { name: 'Acme Corporation', timezone: 'Europe/Paris' });
  await api(request, server, key, 'POST', '/v1/balances', {
    customerId: 'globex',
    name: 'credits',
    initialBalance: 40,
    lowBalanceThreshold: 100,
  });
  return key;
}

test('the overview leads to the customer over a limit in one click', async ({ page, request, server }) => {
  await seed(request, server);
  await signedIn(page, server);

  const over = page.getByTestId('over-limit');
  await expect(over.getByRole('heading', { name: 'Over a limit (1)' })).toBeVisible();
  await expect(over).toContainText('Over by 398,377 tokens (763 % of the limit)');
  await expect(page.getByTestId('near-limit')).toContainText('globex');
  await expect(page.getByTestId('low-balances')).toContainText('credits: 40 credits available, below its low threshold of 100');
  await expect(page.getByTestId('recent-alerts')).toContainText('acme reached 100 % of Daily tokens');

  await over.getByRole('link', { name: 'acme', exact: true }).click();
  await expect(page).toHaveURL(/\/customers\/cust_[^#]+#limits$/);
  const status = page.getByTestId('limit-status');
  await expect(status.getByText('Over limit', { exact: true })).toBeVisible();
  await expect(status).toContainText('458,377 of 60,000 tokens per day');
  await expect(status).toContainText('Over by 398,377 tokens (763 % of the limit)');
  // The customer is in Paris: the reset is shown in its time, and from now.
  await expect(status).toContainText(/resets \d{4}-\d{2}-\d{2} 00:00 CE(S)?T \(in \d+ (h|min)\)/);

  // The customers list answers the same question, filtered and sorted.
  await page.goto('/customers');
  await page.getByLabel('Status').selectOption('attention');
  await page.getByLabel('Order').selectOption('worst');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  const rows = page.getByTestId('customer-row');
  await expect(rows).toHaveCount(2);
  await expect(rows.nth(0)).toContainText('acme');
  await expect(rows.nth(0)).toContainText('763 % of Daily tokens');
  await expect(rows.nth(1)).toContainText('globex');
  await expect(rows.nth(1)).toContainText('(low)');
});

test('a refused limit form keeps everything typed and says what to fix beside the field', async ({ page, request, server }) => {
  await seed(request, server);
  await signedIn(page, server);
  await page.goto('/limits');
  const form = page.locator('form[action="/limits/create"]');
  await form.getByLabel('Name', { exact: true }).fill('Monthly tokens');
  await form.getByLabel('Meter', { exact: true }).selectOption({ label: 'Tokens' });
  await form.getByLabel('Limit', { exact: true }).fill('36,000');
  await form.getByLabel('Period', { exact: true }).selectOption('month');
  await form.getByLabel('Customer (empty: the default for every customer)').fill('globex');
  await form.getByLabel('Dimension key').fill('model');
  await form.getByLabel('Dimension value').fill('gpt-4o');
  await form.getByLabel('Alert thresholds (%)').fill('50, 80, 150');
  await form.getByLabel('Fail mode').selectOption('closed');
  await form.getByRole('button', { name: 'Create limit' }).click();

  await expect(page).toHaveURL(/\/limits$/);
  await expect(fieldError(page)).toHaveCount(1);
  await expect(page.locator('#alertThresholds-error')).toHaveText(
    'Alert thresholds must each be a percentage from 1 to 100 (number 3 in the list is not).',
  );
  const again = page.locator('form[action="/limits/create"]');
  await expect(again.getByLabel('Name', { exact: true })).toHaveValue('Monthly tokens');
  await expect(again.getByLabel('Limit', { exact: true })).toHaveValue('36,000');
  await expect(again.getByLabel('Period', { exact: true })).toHaveValue('month');
  await expect(again.getByLabel('Customer (empty: the default for every customer)')).toHaveValue('globex');
  await expect(again.getByLabel('Dimension key')).toHaveValue('model');
  await expect(again.getByLabel('Dimension value')).toHaveValue('gpt-4o');
  await expect(again.getByLabel('Alert thresholds (%)')).toHaveValue('50, 80, 150');
  await expect(again.getByLabel('Fail mode')).toHaveValue('closed');
  await expect(page.getByRole('heading', { name: '1 limit(s)' })).toBeVisible();

  // Only the wrong field needs changing.
  await again.getByLabel('Alert thresholds (%)').fill('50, 80, 100');
  await again.getByRole('button', { name: 'Create limit' }).click();
  await expectNotice(page, 'Limit Monthly tokens created.');
  await expect(limitItem(page, 'Monthly tokens').locator('summary')).toContainText(
    '36,000 tokens per month on Tokens (for customer globex, only model = gpt-4o); alerts at 50 %, 80 %, 100 %; fail closed',
  );

  // A typo in the customer creates nobody.
  await page.locator('form[action="/limits/create"]').getByLabel('Name', { exact: true }).fill('Typo');
  await page.locator('form[action="/limits/create"]').getByLabel('Limit', { exact: true }).fill('10');
  await page.locator('form[action="/limits/create"]').getByLabel('Customer (empty: the default for every customer)').fill('globx');
  await page.locator('form[action="/limits/create"]').getByRole('button', { name: 'Create limit' }).click();
  await expect(page.locator('#customerId-error')).toContainText('Customer must be an existing customer (there is no globx)');
  await page.goto('/customers?search=globx');
  await expect(page.getByTestId('customer-row')).toHaveCount(0);
});

test('deleting a limit asks first, and cancelling keeps it', async ({ page, request, server }) => {
  await seed(request, server);
  await signedIn(page, server);
  await page.goto('/limits');
  const limit = limitItem(page, 'Daily tokens');
  await limit.locator('summary').click();
  await limit.getByRole('link', { name: 'Delete Daily tokens' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Delete the limit Daily tokens?' })).toBeVisible();
  await page.getByRole('link', { name: 'Cancel' }).click();
  await expect(page).toHaveURL(/\/limits$/);
  await expect(limitItem(page, 'Daily tokens')).toBeVisible();

  await limitItem(page, 'Daily tokens').locator('summary').click();
  await limitItem(page, 'Daily tokens').getByRole('link', { name: 'Delete Daily tokens' }).click();
  await page.getByRole('button', { name: 'Delete Daily tokens' }).click();
  await expectNotice(page, 'Limit deleted.');
  await expect(page.getByRole('heading', { name: '0 limit(s)' })).toBeVisible();
});

test('a failing webhook shows why it failed, and "retry all failed" delivers after the fix', async ({ page, request, server }) => {
  const receiver = await flakyReceiver();
  try {
    const key = await seed(request, server, receiver.url);
    await signedIn(page, server);
    const endpoints = await (await request.get(`${server.baseURL}/v1/webhooks`, { headers: server.authHeaders(key) })).json();
    const endpointId: string = endpoints.data[0].id;
    await request.post(`${server.baseURL}/v1/webhooks/${endpointId}/test`, { headers: server.authHeaders(key) });
    await expect
      .poll(async () => {
        const log = await request.get(`${server.baseURL}/v1/webhooks/${endpointId}/deliveries`, { headers: server.authHeaders(key) });
        return (await log.json()).data.filter((d: { attempts: number }) => d.attempts > 0).length;
      })
      .toBeGreaterThanOrEqual(1);

    await page.goto('/');
    const failing = page.getByTestId('failing-webhooks');
    await failing.getByRole('link', { name: receiver.url }).click();
    await expect(page).toHaveURL(/\/webhooks\/whk_[^?]+\?status=failing$/);
    const delivery = page.getByTestId('delivery').first();
    await expect(delivery.getByTestId('delivery-reason')).toHaveText('HTTP 503');
    await expect(delivery.getByTestId('delivery-status')).toContainText(/^retrying in (60 min|1 h)/);
    await delivery.getByText(/attempt\(s\)$/).click();
    await expect(delivery.getByTestId('response-excerpt').first()).toHaveText('database down for maintenance');
    await expect(page.getByTestId('success-rate')).toContainText(/^0 % of \d+ attempts succeeded$/);

    receiver.fix();
    await page.getByRole('button', { name: 'Retry all failed deliveries' }).click();
    await expectNotice(page, /failed deliver(y|ies) queued again with (its|their) webhook-ids?\./);
    await expect
      .poll(
        async () => {
          await page.goto(`/webhooks/${endpointId}?status=failing`);
          return page.getByTestId('delivery').count();
        },
        { timeout: 15_000 },
      )
      .toBe(0);
    await page.getByRole('link', { name: 'Delivered', exact: true }).click();
    await expect(page.getByTestId('delivery').first()).toContainText('delivered');
  } finally {
    await receiver.close();
  }
});

test('usage for finance: a period picker, a file named after its range, a wrong range explained', async ({ page, request, server }) => {
  await seed(request, server);
  await signedIn(page, server);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Exports', exact: true }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Exports' })).toBeVisible();

  // To the end of next month: acme (in Paris) has today's usage inside its months even on the
  // last evening of a UTC month.
  const today = new Date();
  const first = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), 1)).toISOString().slice(0, 10);
  const next = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() + 2, 1)).toISOString().slice(0, 10);
  const last = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() + 2, 0)).toISOString().slice(0, 10);
  await page.getByLabel('From (inclusive)').first().fill(first);
  await page.getByLabel('Until (exclusive)').first().fill(next);
  await page.getByLabel('Granularity').selectOption('month');
  const csv = await downloadByLink(page, page.getByRole('button', { name: 'Download usage CSV' }));
  expect(csv.filename).toBe(`usage_${first}_${last}_month.csv`);
  const rows = csvRecords(csv.text, USAGE_HEADER);
  expect(rows.find((r) => r.customer_external_id === 'acme')).toMatchObject({
    customer_name: 'Acme Corporation',
    meter_name: 'Tokens',
    value: '458377',
  });

  // The end before the start: back to the form, the error beside the field, the dates kept.
  await page.getByLabel('From (inclusive)').first().fill(next);
  await page.getByLabel('Until (exclusive)').first().fill(first);
  await page.getByRole('button', { name: 'Download usage CSV' }).click();
  await expect(page).toHaveURL(/\/exports$/);
  await expect(page.locator('#end-error')).toHaveText('Until must be after the start date.');
  await expect(page.getByLabel('From (inclusive)').first()).toHaveValue(next);
  await expect(page.getByLabel('Granularity')).toHaveValue('month');
});

test('customers are created, edited and deleted in the dashboard', async ({ page, server }) => {
  await signedIn(page, server);
  await page.goto('/customers');
  await page.getByText('New customer', { exact: true }).click();
  const create = page.locator('form[action="/customers/create"]');
  await create.getByLabel('Customer id').fill('acme');
  await create.getByLabel('Name').fill('Acme');
  await create.getByLabel('Timezone').fill('Mars/Olympus');
  await create.getByRole('button', { name: 'Create customer' }).click();
  await expect(page.locator('#timezone-error')).toHaveText('Timezone must be an IANA timezone such as Europe/Paris.');
  await expect(page.locator('form[action="/customers/create"]').getByLabel('Customer id')).toHaveValue('acme');
  await expect(page.locator('form[action="/customers/create"]').getByLabel('Name')).toHaveValue('Acme');

  await page.locator('form[action="/customers/create"]').getByLabel('Timezone').fill('Europe/Paris');
  await page.locator('form[action="/customers/create"]').getByRole('button', { name: 'Create customer' }).click();
  await expectNotice(page, 'Customer acme created.');
  await expect(page.getByRole('heading', { level: 1, name: 'acme', exact: true })).toBeVisible();
  await expect(page.locator('.lead')).toContainText('timezone Europe/Paris');

  await page.getByText('Edit details or delete', { exact: true }).click();
  const edit = page.locator('form[action$="/update"]');
  await expect(edit.getByLabel('Name')).toHaveValue('Acme');
  await edit.getByLabel('Name').fill('Acme Corporation');
  await edit.getByLabel('Email').fill('billing@acme.example');
  await edit.getByRole('button', { name: 'Save customer' }).click();
  await expectNotice(page, 'Customer saved.');
  await expect(page.locator('.lead')).toContainText('Acme Corporation');
  await expect(page.locator('.lead')).toContainText('billing@acme.example');

  await page.getByText('Edit details or delete', { exact: true }).click();
  await page.getByRole('link', { name: 'Delete acme' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Delete the customer acme?' })).toBeVisible();
  await page.getByRole('button', { name: 'Delete acme' }).click();
  await expectNotice(page, 'Customer acme deleted with its events and own limits.');
  await expect(page.getByTestId('customer-row')).toHaveCount(0);
});

// ---------------------------------------------------------------- every page

/** Every page of a seeded dashboard, by name. */
async function everyPage(page: Page, request: APIRequestContext, server: LimitryServer, key: string) {
  const headers = server.authHeaders(key);
  const customers = await (await request.get(`${server.baseURL}/v1/customers?search=acme`, { headers })).json();
  const limits = await (await request.get(`${server.baseURL}/v1/limits`, { headers })).json();
  const endpoints = await (await request.get(`${server.baseURL}/v1/webhooks`, { headers })).json();
  const acme = customers.data.find((c: { externalId: string }) => c.externalId === 'acme').id;
  return {
    overview: '/',
    customers: '/customers',
    customer: `/customers/${acme}`,
    meters: '/meters',
    limits: '/limits',
    events: '/events',
    webhooks: '/webhooks',
    webhook: `/webhooks/${endpoints.data[0].id}`,
    exports: '/exports',
    'api-keys': '/api-keys',
    projects: '/projects',
    confirm: `/confirm/delete-limit/${limits.data[0].id}`,
    'confirm rotation': `/confirm/rotate-secret/${endpoints.data[0].id}`,
    limit: `/limits/${limits.data[0].id}/alerts`,
    audit: '/audit',
  } as Record<string, string>;
}

async function seededSignedIn(page: Page, request: APIRequestContext, server: LimitryServer) {
  const receiver = await flakyReceiver();
  const key = await seed(request, server, receiver.url);
  await signedIn(page, server);
  return { key, receiver };
}

test('every page passes axe-core without a violation', async ({ page, request, server, javaScriptEnabled }) => {
  // axe-core runs as a script inside the page. Without JavaScript the server sends the very
  // same HTML, so the run with JavaScript covers both.
  test.skip(!javaScriptEnabled, 'axe-core needs JavaScript in the page; the HTML is the same without it');
  const { key, receiver } = await seededSignedIn(page, request, server);
  try {
    const pages = await everyPage(page, request, server, key);
    const violations: string[] = [];
    const audit = async (name: string) => {
      const results = await new AxeBuilder({ page }).analyze();
      for (const v of results.violations) {
        violations.push(`${name}: ${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
      }
    };
    for (const [name, path] of Object.entries(pages)) {
      await page.goto(path);
      await audit(`${name} (${path})`);
    }
    // A form that came back with an error, and the pages of someone not signed in.
    await page.goto('/limits');
    await page.locator('form[action="/limits/create"]').getByLabel('Name', { exact: true }).fill('Broken');
    await page.locator('form[action="/limits/create"]').getByLabel('Limit', { exact: true }).fill('lots');
    await page.locator('form[action="/limits/create"]').getByRole('button', { name: 'Create limit' }).click();
    await expect(page.locator('#limitValue-error')).toBeVisible();
    await audit('limits with an error');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await audit('login');
    expect(violations, 'axe-core violations').toEqual([]);
  } finally {
    await receiver.close();
  }
});

test('no page is wider than a 390 px phone, and ids do not wrap one character a line', async ({ page, request, server }) => {
  const { key, receiver } = await seededSignedIn(page, request, server);
  try {
    await page.setViewportSize({ width: 390, height: 844 });
    const pages = await everyPage(page, request, server, key);
    for (const [name, path] of Object.entries(pages)) {
      await page.goto(path);
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      expect(width, `${name} (${path}) is ${width} px wide at 390 px`).toBeLessThanOrEqual(390);
    }
    await page.goto('/events');
    const id = page.getByRole('table').locator('tbody tr').first().locator('code').last();
    const box = await id.boundingBox();
    expect(box, 'an event id is on screen').not.toBeNull();
    expect(box!.height, 'an event id stays on one or two lines').toBeLessThan(45);
  } finally {
    await receiver.close();
  }
});

async function keepScreenshot(page: Page, testInfo: TestInfo, name: string) {
  const path = testInfo.outputPath(`${name}.png`);
  await page.screenshot({ path, fullPage: true });
  await testInfo.attach(name, { path, contentType: 'image/png' });
}

test('screenshots of the overview and a customer page on a laptop and a phone', async ({ page, request, server }, testInfo) => {
  const { key, receiver } = await seededSignedIn(page, request, server);
  try {
    const pages = await everyPage(page, request, server, key);
    for (const [width, height] of [
      [1366, 900],
      [390, 844],
    ]) {
      await page.setViewportSize({ width, height });
      await page.goto(pages.overview);
      await expect(page.getByTestId('over-limit')).toBeVisible();
      await keepScreenshot(page, testInfo, `overview-${width}x${height}`);
      await page.goto(pages.customer);
      await expect(page.getByTestId('limit-status')).toBeVisible();
      await keepScreenshot(page, testInfo, `customer-${width}x${height}`);
    }
  } finally {
    await receiver.close();
  }
});
