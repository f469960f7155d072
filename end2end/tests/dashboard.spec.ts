/**
 * The operator dashboard end to end: first-run setup and sessions, configuring meters and
 * limits through the forms, API keys, customer usage and limits, balances, CSV downloads and
 * key revocation. Every test gets its own server and database; both projects (with and
 * without JavaScript) run every test.
 */
import { test, expect } from './fixtures';
import {
  OPERATOR,
  balanceCard,
  createApiKeyInUi,
  createBalanceViaApi,
  createLimit,
  createMeter,
  creditBalance,
  csvRecords,
  debitBalance,
  downloadByLink,
  expectNotice,
  expectOverview,
  fetchCsv,
  fieldError,
  ledgerRows,
  limitItem,
  meterItem,
  navigate,
  openCustomer,
  recordEvent,
  setupFirstOperator,
  signIn,
  signOut,
  signedIn,
  submitLogin,
  submitMeter,
  utcDate,
  USAGE_HEADER,
} from './helpers';

const EVENTS_HEADER = [
  'id',
  'timestamp',
  'customer_external_id',
  'customer_id',
  'event_type',
  'values',
  'dimensions',
  'properties',
  'idempotency_key',
];
const LEDGER_HEADER = [
  'id',
  'created_at',
  'customer_id',
  'balance',
  'type',
  'amount',
  'hold_change',
  'balance_after',
  'held_after',
  'description',
  'reference',
  'reservation_id',
];

test('setup, sign out, a wrong password, sign in again; setup is then gone', async ({ page }) => {
  // A fresh database sends the browser to the first-run setup.
  await setupFirstOperator(page);
  await expect(page.getByTestId('events-today')).toBeVisible();
  await expect(page.getByRole('region', { name: 'Service status' })).toBeVisible();
  const nav = page.getByRole('navigation', { name: 'Main' });
  for (const link of ['Customers', 'Meters', 'Limits', 'Events', 'API keys']) {
    await expect(nav.getByRole('link', { name: link, exact: true })).toBeVisible();
  }

  await signOut(page);
  // Signed out means signed out: the overview sends us back to /login.
  await page.goto('/');
  await expect(page).toHaveURL(/\/login$/);

  await submitLogin(page, OPERATOR.email, 'not-the-password');
  await expect(page).toHaveURL(/\/login\?/);
  await expect(fieldError(page)).toHaveText('Wrong email or password.');
  await expect(page.getByRole('button', { name: 'Sign out' })).toHaveCount(0);

  await signIn(page);
  await expectOverview(page);

  const setup = await page.goto('/setup');
  expect(setup?.status()).toBe(404);
});

test('configure a meter and a limit through the forms', async ({ page, server }) => {
  await signedIn(page, server);
  await navigate(page, 'Meters');

  // A field that is not `values.<key>` is refused next to the field, and nothing is created.
  await submitMeter(page, { name: 'Broken', field: 'tokens' });
  // The error travels in the session, not the URL.
  await expect(page).toHaveURL(/\/meters$/);
  await expect(fieldError(page)).toHaveCount(1);
  await expect(fieldError(page)).toHaveAttribute('id', 'field-error');
  await expect(fieldError(page)).not.toBeEmpty();
  await expect(page.getByRole('heading', { name: '0 meter(s)' })).toBeVisible();

  await createMeter(page, { name: 'Tokens', field: 'values.tokens', eventType: 'llm.completion', description: 'LLM tokens' });
  await expect(page.getByRole('heading', { name: '1 meter(s)' })).toBeVisible();
  await expect(meterItem(page, 'Tokens').locator('summary')).toContainText('sum of values.tokens on llm.completion');
  // Opening the <details> shows its edit form and delete button (native, no script needed).
  const meter = meterItem(page, 'Tokens');
  await meter.locator('summary').click();
  await expect(meter.getByRole('link', { name: 'Delete Tokens' })).toBeVisible();
  await expect(meter.getByLabel('Description')).toHaveValue('LLM tokens');
  await meter.getByLabel('Description').fill('Tokens of LLM completions');
  await meter.getByRole('button', { name: 'Save' }).click();
  await expectNotice(page, 'Meter Tokens saved.');
  await meterItem(page, 'Tokens').locator('summary').click();
  await expect(meterItem(page, 'Tokens').getByLabel('Description')).toHaveValue('Tokens of LLM completions');

  await navigate(page, 'Limits');
  await createLimit(page, {
    name: 'Daily tokens',
    meter: 'Tokens',
    limit: 1000,
    period: 'day',
    customer: 'acme',
    thresholds: '50, 100',
  });
  await expect(page.getByRole('heading', { name: '1 limit(s)' })).toBeVisible();
  const limit = limitItem(page, 'Daily tokens');
  await expect(limit.locator('summary')).toContainText('1,000 tokens per day on Tokens (for customer acme');
  // The edit form (inside the <details>) holds what was saved.
  await limit.locator('summary').click();
  await expect(limit.getByRole('link', { name: 'Delete Daily tokens' })).toBeVisible();
  await expect(limit.getByLabel('Alert thresholds (%)')).toHaveValue('50, 100');
  await expect(limit.getByLabel('Period', { exact: true })).toHaveValue('day');
  await expect(limit.getByRole('button', { name: 'Save' })).toBeVisible();

  // The overview counts them.
  await page.goto('/');
  await expect(page.getByTestId('count-meters')).toHaveText('1');
  await expect(page.getByTestId('count-limits')).toHaveText('1');
});

test('a key made on /api-keys records usage that the customer page shows', async ({ page, request, server }) => {
  await signedIn(page, server);
  await createMeter(page, { name: 'Tokens' });
  await createLimit(page, { name: 'Daily tokens', meter: 'Tokens', limit: 1000, period: 'day', customer: 'acme', thresholds: '50, 100' });

  await navigate(page, 'API keys');
  const key = await createApiKeyInUi(page, 'ingest');
  // Shown once only.
  await page.reload();
  await expect(page.getByTestId('new-api-key')).toHaveCount(0);

  await recordEvent(request, server, key, 'acme', 250);
  await recordEvent(request, server, key, 'acme', 350);

  await openCustomer(page, 'acme');
  const limits = page.getByRole('region', { name: 'Limits' });
  const status = limits.getByTestId('limit-status');
  await expect(status).toHaveCount(1);
  await expect(status).toContainText('Daily tokens');
  await expect(status).toContainText('600 of 1,000 tokens per day');
  await expect(status).toContainText('400 tokens left (60 % used)');
  await expect(status).toContainText(/resets \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC \(in \d+ (h|min|s)\)/);
  // 60 % is past the limit's first alert threshold (50 %): near, in words.
  await expect(status.getByText('Near limit', { exact: true })).toBeVisible();
  await expect(status.getByRole('progressbar', { name: 'Daily tokens: 60 % used' })).toHaveAttribute('value', '60');

  const usage = page.getByRole('region', { name: 'Usage' });
  const chart = usage.getByRole('img');
  await expect(chart).toHaveCount(1);
  await expect(chart).toHaveJSProperty('tagName', 'svg');
  await expect(chart).toHaveAttribute('aria-label', /Tokens/);

  await page.goto('/');
  const today = Number((await page.getByTestId('events-today').innerText()).trim());
  expect(today).toBeGreaterThanOrEqual(1);
  await expect(page.getByTestId('events-today')).toHaveText('2');
  await expect(page.getByTestId('active-customers')).toHaveText('1');
});

test('balances: credit and debit through the forms; an over-large debit changes nothing', async ({ page, request, server }) => {
  await signedIn(page, server);
  const key = await server.createKey('balances');
  await createBalanceViaApi(request, server, key, 'acme', 'credits', 100);

  await openCustomer(page, 'acme');
  let card = balanceCard(page, 'credits');
  await expect(card.getByTestId('current-balance')).toHaveText('100');

  await creditBalance(card, 50, 'Top-up');
  await expectNotice(page, 'Balance credited.');
  card = balanceCard(page, 'credits');
  await expect(card.getByTestId('current-balance')).toHaveText('150');

  await debitBalance(card, 30, 'Manual usage');
  await expectNotice(page, 'Balance debited.');
  await expect(card.getByTestId('current-balance')).toHaveText('120');
  await expect(card.getByTestId('available-balance')).toHaveText('120');

  const rows = await ledgerRows(card);
  const credit = rows.find((r) => r['Type'] === 'credit' && r['Description'] === 'Top-up');
  const debit = rows.find((r) => r['Type'] === 'debit' && r['Description'] === 'Manual usage');
  expect(credit, JSON.stringify(rows)).toMatchObject({ Amount: '50', 'Balance after': '150' });
  expect(debit, JSON.stringify(rows)).toMatchObject({ Amount: '-30', 'Balance after': '120' });

  // More than there is: refused, nothing moves.
  await debitBalance(card, 1000, 'Too much');
  await expect(page.locator('#amount-error')).toHaveText('Insufficient balance: nothing was debited.');
  await expect(page.locator('.notice')).toHaveCount(0);
  await expect(card.getByTestId('current-balance')).toHaveText('120');
  expect(await ledgerRows(card)).toEqual(rows);
});

test('CSV downloads: events, usage and a ledger', async ({ page, request, server }) => {
  await signedIn(page, server);
  await createMeter(page, { name: 'Tokens' });
  const key = await server.createKey('csv');
  await recordEvent(request, server, key, 'acme', 600, { model: 'gpt-4o' });
  await recordEvent(request, server, key, 'globex', 40);

  // events.csv, by clicking the link on /events (a plain download, JavaScript or not).
  await navigate(page, 'Events');
  await expect(page.getByRole('table').locator('tbody tr')).toHaveCount(2);
  const events = await downloadByLink(page, page.getByRole('link', { name: 'Download CSV' }));
  expect(events.filename).toBe('events.csv');
  const eventRows = csvRecords(events.text, EVENTS_HEADER);
  expect(eventRows).toHaveLength(2);
  const acmeEvent = eventRows.find((r) => r.customer_external_id === 'acme');
  expect(acmeEvent).toMatchObject({ event_type: 'llm.completion', dimensions: '{"model":"gpt-4o"}' });
  expect(JSON.parse(acmeEvent!.values)).toEqual({ tokens: 600 });
  expect(acmeEvent!.id).toMatch(/^evt_/);
  expect(acmeEvent!.customer_id).toMatch(/^cust_/);

  // The filter carries into the download link.
  await page.getByLabel('Customer').fill('acme');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page.getByRole('table').locator('tbody tr')).toHaveCount(1);
  const filtered = csvRecords(
    (await downloadByLink(page, page.getByRole('link', { name: 'Download CSV' }))).text,
    EVENTS_HEADER,
  );
  expect(filtered.map((r) => r.customer_external_id)).toEqual(['acme']);

  // usage.csv over a range holding today, with the session cookie.
  const usageText = await fetchCsv(page, `/exports/usage.csv?start=${utcDate(-1)}&end=${utcDate(2)}&period=total`);
  const usage = csvRecords(usageText, USAGE_HEADER);
  const acmeUsage = usage.filter((r) => r.customer_external_id === 'acme');
  expect(acmeUsage, usageText).toHaveLength(1);
  expect(acmeUsage[0]).toMatchObject({ meter_name: 'Tokens', aggregation: 'sum', value: '600' });
  expect(usage.find((r) => r.customer_external_id === 'globex')?.value, usageText).toBe('40');

  // The ledger of a balance made with the "New balance" form.
  await openCustomer(page, 'acme');
  const newBalance = page.locator('form').filter({ has: page.getByRole('heading', { name: 'New balance' }) });
  await newBalance.getByLabel('Name').fill('credits');
  await newBalance.getByLabel('Unit').fill('credits');
  await newBalance.getByLabel('Minimum balance').fill('0');
  await newBalance.getByRole('button', { name: 'Create balance' }).click();
  await expectNotice(page, 'Balance credits created.');
  const card = balanceCard(page, 'credits');
  await expect(card.getByTestId('current-balance')).toHaveText('0');
  await creditBalance(card, 50, 'Top-up');
  await expectNotice(page, 'Balance credited.');
  // A description that looks like a formula is defused in the CSV.
  await debitBalance(card, 30, '=SUM(A1)');
  await expectNotice(page, 'Balance debited.');
  await expect(card.getByTestId('current-balance')).toHaveText('20');

  const ledgerLink = card.getByRole('link', { name: 'Download ledger CSV' });
  await expect(ledgerLink).toHaveAttribute('href', /^\/exports\/ledger\.csv\?balanceId=/);
  const ledger = await downloadByLink(page, ledgerLink);
  expect(ledger.filename).toMatch(/\.csv$/);
  const ledgerRows = csvRecords(ledger.text, LEDGER_HEADER);
  expect(ledgerRows).toHaveLength(2);
  const credit = ledgerRows.find((r) => r.type === 'credit');
  const debit = ledgerRows.find((r) => r.type === 'debit');
  expect(credit, ledger.text).toMatchObject({ amount: '50', balance_after: '50', description: 'Top-up', balance: 'credits' });
  expect(debit, ledger.text).toMatchObject({ amount: '-30', balance_after: '20', description: "'=SUM(A1)" });

  // The same file through the session's request context.
  const href = (await ledgerLink.getAttribute('href'))!;
  expect(csvRecords(await fetchCsv(page, href), LEDGER_HEADER)).toHaveLength(2);
});

test('a key revoked on /api-keys is refused at once', async ({ page, request, server }) => {
  await signedIn(page, server);
  const key = await createApiKeyInUi(page, 'doomed');

  const before = await request.get(`${server.baseURL}/v1/project`, { headers: server.authHeaders(key) });
  expect(before.status(), await before.text()).toBe(200);

  await page.goto('/api-keys');
  const row = page.getByRole('row').filter({ hasText: 'doomed' });
  await expect(row).toContainText('active');
  // Revoking asks first, on a page of its own.
  await row.getByRole('link', { name: 'Revoke doomed' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Revoke the API key doomed?' })).toBeVisible();
  await page.getByRole('button', { name: 'Revoke doomed' }).click();
  await expectNotice(page, 'API key revoked.');
  await expect(page.getByRole('link', { name: 'Revoke doomed' })).toHaveCount(0);
  await expect(page.getByRole('row').filter({ hasText: 'doomed' })).toContainText('revoked');

  // No waiting for the 5 s key cache: the revoke cleared it.
  const after = await request.get(`${server.baseURL}/v1/project`, { headers: server.authHeaders(key) });
  const body = await after.text();
  expect(after.status(), body).toBe(401);
  expect(JSON.parse(body)).toMatchObject({ error: { code: 'expired_api_key' } });
});
