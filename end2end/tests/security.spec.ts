import { test, expect } from './fixtures';
import { signedIn } from './helpers';

// What a browser is told about the dashboard's pages, and what it is never shown.

test('dashboard pages forbid framing, sniffing and storing, and carry a strict content policy', async ({ page, server }) => {
  await signedIn(page, server);
  for (const path of ['/', '/customers', '/api-keys', '/login']) {
    const res = await page.request.get(`${server.baseURL}${path}`);
    const headers = res.headers();
    expect(headers['content-security-policy'], path).toContain("frame-ancestors 'none'");
    expect(headers['content-security-policy'], path).toContain("default-src 'none'");
    expect(headers['x-frame-options'], path).toBe('DENY');
    expect(headers['x-content-type-options'], path).toBe('nosniff');
    expect(headers['referrer-policy'], path).toBeTruthy();
  }
  const keys = await page.request.get(`${server.baseURL}/api-keys`);
  expect(keys.headers()['cache-control']).toContain('no-store');
});

test('text in the address is never rendered as a message', async ({ page, server }) => {
  await server.createOperator('ops@example.com', 'correct-horse-battery');
  const planted = 'Your account is locked, call +1 555 0100';
  await page.goto(`/login?error=${encodeURIComponent(planted)}&notice=${encodeURIComponent(planted)}`);
  await expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible();
  await expect(page.getByText(planted)).toHaveCount(0);
  expect(await page.content()).not.toContain('555 0100');
});

test('a missing customer page answers 404', async ({ page, server }) => {
  await signedIn(page, server);
  const res = await page.goto('/customers/cust_01NOSUCHCUSTOMER');
  expect(res?.status()).toBe(404);
});
