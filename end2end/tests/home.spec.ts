import { test, expect, type LimitryServer } from './fixtures';
import type { Page } from '@playwright/test';
import { recordEvent, signedIn } from './helpers';

const COUNTS = ['customers', 'events', 'meters', 'limits'] as const;
type Counts = Record<(typeof COUNTS)[number], number>;

async function expectCounts(page: Page, counts: Counts) {
  for (const name of COUNTS) {
    await expect(page.getByTestId(`count-${name}`), `count-${name}`).toHaveText(
      String(counts[name]),
      { useInnerText: true },
    );
  }
}

async function createMeterViaApi(page: Page, server: LimitryServer, key: string) {
  const meterRes = await page.request.post(`${server.baseURL}/v1/meters`, {
    headers: server.authHeaders(key),
    data: {
      name: 'Tokens',
      aggregation: 'sum',
      field: 'values.tokens',
      eventFilter: { eventType: 'llm.completion' },
    },
  });
  const meterText = await meterRes.text();
  expect(meterRes.status(), `POST /v1/meters → ${meterText}`).toBe(201);
  expect(JSON.parse(meterText).id).toMatch(/^mtr_/);
}

test.describe('home page', () => {
  test('healthz answers without a session', async ({ request, server }) => {
    const res = await request.get(`${server.baseURL}/healthz`);
    expect(res.status()).toBe(200);
  });

  test('the dashboard is closed without a session', async ({ request, server }) => {
    // Fresh database: to first-run setup.
    const fresh = await request.get(`${server.baseURL}/`, { maxRedirects: 0 });
    expect(fresh.status()).toBe(303);
    expect(fresh.headers()['location']).toBe('/setup');

    // Once an operator exists: to the login page, for pages and downloads alike.
    await server.createOperator('ops@example.com', 'correct-horse-battery');
    for (const path of ['/', '/meters', '/exports/events.csv']) {
      const res = await request.get(`${server.baseURL}${path}`, { maxRedirects: 0 });
      expect(res.status(), `GET ${path}`).toBe(303);
      expect(res.headers()['location'], `GET ${path}`).toBe('/login');
    }
    const setup = await request.get(`${server.baseURL}/setup`, { maxRedirects: 0 });
    expect(setup.status()).toBe(404);
  });

  test('shows service status on a fresh database', async ({ page, server }) => {
    await signedIn(page, server);
    const res = await page.goto('/');
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-type'] ?? '').toContain('text/html');

    await expect(page.locator('h1')).toContainText('Limitry');
    await expect(page.getByTestId('version')).toHaveText(/^\s*\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?\s*$/);
    await expect(page.getByTestId('database')).toHaveText(/^\s*sqlite\s*$/);
    await expectCounts(page, { customers: 0, events: 0, meters: 0, limits: 0 });
    await expect(page.getByTestId('events-today')).toHaveText(/^\s*0\s*$/);
    await expect(page.getByTestId('active-customers')).toHaveText(/^\s*0\s*$/);
    await expect(page.getByRole('img')).toHaveCount(2);
  });

  test('is server-rendered: the status is in the HTML itself', async ({ page, server }) => {
    await signedIn(page, server);
    // The browser context's session cookie, without a browser render.
    const res = await page.request.get(`${server.baseURL}/`, { maxRedirects: 0 });
    expect(res.status()).toBe(200);
    const html = await res.text();
    expect(html).toMatch(/<h1[^>]*>[\s\S]*Limitry[\s\S]*<\/h1>/);
    for (const id of ['version', 'database', 'events-today', 'active-customers', ...COUNTS.map((c) => `count-${c}`)]) {
      expect(html, `data-testid="${id}" in the SSR HTML`).toContain(`data-testid="${id}"`);
    }
    expect(html).toMatch(/<svg[^>]*role="img"/);
  });

  test('counts follow usage recorded through the API', async ({ page, request, server }) => {
    await signedIn(page, server);
    await expectCounts(page, { customers: 0, events: 0, meters: 0, limits: 0 });

    const key = await server.createKey('e2e-home');
    expect(key).toMatch(/^limitry_sk_/);

    await recordEvent(request, server, key, 'acme', 100);
    await recordEvent(request, server, key, 'acme', 250);
    await recordEvent(request, server, key, 'globex', 40);
    await createMeterViaApi(page, server, key);

    await page.reload();
    await expect(page.locator('h1')).toContainText('Limitry');
    await expectCounts(page, { customers: 2, events: 3, meters: 1, limits: 0 });
    await expect(page.getByTestId('events-today')).toHaveText(/^\s*3\s*$/);
    await expect(page.getByTestId('active-customers')).toHaveText(/^\s*2\s*$/);
  });

  test('API rejects requests without a valid key', async ({ page, request, server }) => {
    const event = { customerId: 'acme', eventType: 'llm.completion', values: { tokens: 1 } };
    const none = await request.post(`${server.baseURL}/v1/events/record`, { data: event });
    expect([401, 403], `no key → ${none.status()}`).toContain(none.status());
    const bad = await request.post(`${server.baseURL}/v1/events/record`, {
      headers: server.authHeaders('limitry_sk_not_a_real_key'),
      data: event,
    });
    expect([401, 403], `bad key → ${bad.status()}`).toContain(bad.status());

    // and nothing was recorded
    await signedIn(page, server);
    await expectCounts(page, { customers: 0, events: 0, meters: 0, limits: 0 });
  });
});
