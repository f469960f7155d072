/**
 * Test fixtures for Limitry browser tests.
 *
 * `server` (test-scoped): a private `limitry serve` on 127.0.0.1 with a random
 * port and a fresh SQLite database in its own temp directory. It is stopped
 * (SIGTERM, then SIGKILL if it lingers) and the directory removed when the test
 * ends, whatever the outcome. Playwright's `baseURL` is set to the server's URL,
 * so `page.goto('/')` works directly.
 *
 * The binary is `../target/release/limitry` relative to end2end/, or the path
 * in env LIMITRY_BIN.
 */
import { test as base, expect, type TestInfo } from '@playwright/test';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export { expect };

export const LIMITRY_BIN: string = process.env.LIMITRY_BIN
  ? path.resolve(process.env.LIMITRY_BIN)
  : path.resolve(__dirname, '..', '..', 'target', 'release', 'limitry');

const STARTUP_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;
const CLI_TIMEOUT_MS = 30_000;
const MAX_LOG_CHARS = 256 * 1024;

// Safety net: whatever happens to a test, no server outlives the worker.
const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
process.on('exit', () => {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  for (const dir of liveDirs) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
});

// tracing-subscriber may colour its output even into a pipe.
const ANSI_RE = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;
function stripAnsi(s: string): string {
  return s.replace(ANSI_RE, '');
}

function childEnv(): NodeJS.ProcessEnv {
  return { ...process.env, NO_COLOR: '1' };
}

export interface LimitryServer {
  /** e.g. http://127.0.0.1:41234 (no trailing slash) */
  baseURL: string;
  /** sqlite://<tempdir>/limitry.db */
  databaseURL: string;
  /** the temp directory holding the database */
  dir: string;
  /** everything the server printed so far (stderr and stdout, ANSI stripped) */
  logs(): string;
  /** `limitry keys create --name NAME --database-url …`; returns the key */
  createKey(name?: string): Promise<string>;
  /** Authorization header for a key */
  authHeaders(key: string): Record<string, string>;
  /** `limitry admin create --email E --password P --database-url …` (a dashboard operator) */
  createOperator(email: string, password: string): Promise<void>;
}

interface RunningServer extends LimitryServer {
  stop(): Promise<string[]>;
}

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

function tail(s: string, n = 8000): string {
  return s.length > n ? `…(truncated)…\n${s.slice(-n)}` : s;
}

export async function startServer(extraArgs: string[] = []): Promise<RunningServer> {
  if (!fs.existsSync(LIMITRY_BIN)) {
    throw new Error(
      `limitry binary not found at ${LIMITRY_BIN}. Build it with \`cargo build --release\` ` +
        `in the repo root, or set LIMITRY_BIN.`,
    );
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'limitry-e2e-'));
  liveDirs.add(dir);
  const dbPath = path.join(dir, 'limitry.db');
  const databaseURL = `sqlite://${dbPath}`;
  const args = ['serve', '--bind', '127.0.0.1:0', '--database-url', databaseURL, ...extraArgs];
  const cmdline = `${LIMITRY_BIN} ${args.join(' ')}`;

  let log = '';
  let stderrText = '';
  const append = (chunk: string) => {
    log += chunk;
    if (log.length > MAX_LOG_CHARS) log = log.slice(-MAX_LOG_CHARS);
  };

  const child = spawn(LIMITRY_BIN, args, {
    cwd: dir,
    env: childEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));

  // Always drain both pipes so the server can never block on a full pipe.
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => append(stripAnsi(d)));

  const removeDir = () => {
    fs.rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  };

  let baseURL: string;
  try {
    baseURL = await new Promise<string>((resolve, reject) => {
      const fail = (why: string) => {
        clearTimeout(timer);
        reject(
          new Error(
            `limitry did not start: ${why}\n  command: ${cmdline}\n` +
              `----- server output -----\n${tail(log) || '(nothing)'}\n-------------------------`,
          ),
        );
      };
      const timer = setTimeout(() => {
        const onStdout = /listening on http:\/\/127\.0\.0\.1:\d+/.test(log) && !/listening on/.test(stderrText);
        fail(
          `no "listening on http://127.0.0.1:PORT" line on stderr within ${STARTUP_TIMEOUT_MS / 1000}s` +
            (onStdout ? ' (the line was printed on stdout, but the contract says stderr)' : ''),
        );
      }, STARTUP_TIMEOUT_MS);
      child.stderr!.on('data', (d: string) => {
        const clean = stripAnsi(d);
        append(clean);
        stderrText += clean;
        if (stderrText.length > MAX_LOG_CHARS) stderrText = stderrText.slice(-MAX_LOG_CHARS);
        const m = /listening on (http:\/\/127\.0\.0\.1:(\d+))/.exec(stderrText);
        if (m) {
          clearTimeout(timer);
          if (Number(m[2]) === 0) {
            fail('it reported port 0 instead of the port actually bound');
          } else {
            resolve(m[1]);
          }
        }
      });
      child.once('error', (err) => fail(`spawn error: ${err.message}`));
      child.once('exit', (code, signal) =>
        fail(`process exited early (code ${code}, signal ${signal})`),
      );
    });
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await waitForExit(child, 5_000);
    }
    removeDir();
    throw err;
  }

  const server: RunningServer = {
    baseURL,
    databaseURL,
    dir,
    logs: () => log,
    authHeaders: (key: string) => ({ Authorization: `Bearer ${key}` }),
    createOperator: (email: string, password: string) =>
      new Promise<void>((resolve, reject) => {
        const cliArgs = ['admin', 'create', '--email', email, '--database-url', databaseURL];
        execFile(
          LIMITRY_BIN,
          cliArgs,
          // The password goes through the environment so it never shows in a process list.
          { cwd: dir, env: { ...childEnv(), LIMITRY_ADMIN_PASSWORD: password }, timeout: CLI_TIMEOUT_MS },
          (err, stdout, stderr) => {
            if (err) {
              reject(
                new Error(
                  `\`limitry admin create\` failed: ${err.message}\n  command: ${LIMITRY_BIN} ${cliArgs.join(' ')}\n` +
                    `  stdout: ${JSON.stringify(stdout)}\n  stderr:\n${tail(stripAnsi(String(stderr)), 4000)}`,
                ),
              );
              return;
            }
            resolve();
          },
        );
      }),
    createKey: (name = 'e2e') =>
      new Promise<string>((resolve, reject) => {
        const cliArgs = ['keys', 'create', '--name', name, '--database-url', databaseURL];
        execFile(
          LIMITRY_BIN,
          cliArgs,
          { cwd: dir, env: childEnv(), timeout: CLI_TIMEOUT_MS },
          (err, stdout, stderr) => {
            const describe = () =>
              `  command: ${LIMITRY_BIN} ${cliArgs.join(' ')}\n  stdout: ${JSON.stringify(stdout)}\n` +
              `  stderr:\n${tail(stripAnsi(String(stderr)), 4000)}`;
            if (err) {
              reject(new Error(`\`limitry keys create\` failed: ${err.message}\n${describe()}`));
              return;
            }
            const lines = String(stdout)
              .split(/\r?\n/)
              .map((l) => l.trim())
              .filter((l) => l.length > 0);
            if (lines.length !== 1 || !/^limitry_sk_\S+$/.test(lines[0])) {
              reject(
                new Error(
                  `\`limitry keys create\` should print exactly one line \`limitry_sk_…\` on stdout\n${describe()}`,
                ),
              );
              return;
            }
            resolve(lines[0]);
          },
        );
      }),
    stop: async () => {
      const problems: string[] = [];
      if (child.exitCode !== null || child.signalCode !== null) {
        problems.push(
          `server had already exited during the test (code ${child.exitCode}, signal ${child.signalCode})`,
        );
      } else {
        child.kill('SIGTERM');
        if (!(await waitForExit(child, STOP_GRACE_MS))) {
          problems.push(`server ignored SIGTERM for ${STOP_GRACE_MS / 1000}s; killed with SIGKILL`);
          child.kill('SIGKILL');
          if (!(await waitForExit(child, 5_000))) {
            problems.push(`server pid ${child.pid} still alive after SIGKILL`);
          }
        }
      }
      removeDir();
      return problems;
    },
  };
  return server;
}

async function attachLogs(testInfo: TestInfo, server: LimitryServer) {
  await testInfo.attach('limitry-server.log', {
    body: server.logs(),
    contentType: 'text/plain',
  });
  // Also on the console: the list reporter prints a failed test's stdout.
  console.log(`----- limitry server output (${server.baseURL}) -----\n${tail(server.logs())}`);
}

export const test = base.extend<{ server: LimitryServer; serverArgs: string[] }>({
  /** Extra `limitry serve` flags for a file's tests: `test.use({ serverArgs: [...] })`. */
  serverArgs: [[], { option: true }],
  server: async ({ serverArgs }, use, testInfo) => {
    const server = await startServer(serverArgs);
    let problems: string[] = [];
    try {
      await use(server);
    } finally {
      problems = await server.stop();
      if (testInfo.status !== testInfo.expectedStatus || problems.length > 0) {
        await attachLogs(testInfo, server);
      }
    }
    if (problems.length > 0) {
      throw new Error(`limitry server shutdown problem: ${problems.join('; ')}`);
    }
  },
  baseURL: async ({ server }, use) => {
    await use(server.baseURL);
  },
});
