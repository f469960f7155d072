import { defineConfig } from '@playwright/test';

/**
 * Browser tests for Limitry.
 *
 * No `webServer` block: every test starts its own `limitry serve` on a fresh
 * SQLite database (see tests/fixtures.ts), so tests never share state.
 *
 * Chromium is the system one (Debian `chromium` package); Playwright's own
 * browser downloads are never used. Override with CHROMIUM_PATH if needed.
 */
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const chromiumLaunch = {
  executablePath: chromiumPath,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-quic',
  ],
};

// scripts/e2e.sh sets E2E_JSON_REPORT to get a machine-readable summary too.
const reporter: any[] = [['list']];
if (process.env.E2E_JSON_REPORT) {
  reporter.push(['json', { outputFile: process.env.E2E_JSON_REPORT }]);
}

export default defineConfig({
  testDir: './tests',
  outputDir: './test-results',
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: !!process.env.CI,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  reporter,
  use: {
    browserName: 'chromium',
    launchOptions: chromiumLaunch,
    screenshot: 'only-on-failure',
    trace: 'off',
    video: 'off',
  },
  projects: [
    {
      name: 'chromium',
      use: { javaScriptEnabled: true },
    },
    {
      name: 'chromium-no-js',
      use: { javaScriptEnabled: false },
    },
  ],
});
