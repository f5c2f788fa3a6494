/**
 * End to end: a real rtm-host with the chat plugin (RTM_PLUGINS_DIR, required),
 * a second one without any plugin, the demo served by Vite (as `npm run demo`
 * serves it) and headless Debian Chromium pages acting as users: two on the
 * chat host, one on the bare host.
 * Chromium comes from the system (/usr/bin/chromium); playwright-core never
 * downloads a browser.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SDK_ROOT, startHost, stopProcess, type RunningHost } from '../support/host.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const DEMO_URL = 'http://localhost:4173/';
const SCREENSHOT = resolve(SDK_ROOT, 'test-results', 'e2e.png');
const ROOM = `e2e-${Date.now().toString(36)}`;

/** Loads the chat plugin. */
let host: RunningHost;
/** No plugin at all: the demo must say chat is unavailable. */
let bare: RunningHost;
let demo: ChildProcess | undefined;
let demoLog = '';
let browser: Browser | undefined;
let alice: Page;
let bob: Page;
const pageErrors: string[] = [];

/** Starts the demo exactly as `npm run demo` does and waits until it serves. */
async function startDemo(): Promise<void> {
  const vite = resolve(SDK_ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  demo = spawn(process.execPath, [vite, '--config', 'vite.config.ts'], {
    cwd: SDK_ROOT,
    env: { ...process.env, BROWSER: 'none', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  demo.stdout?.setEncoding('utf8').on('data', (chunk: string) => (demoLog += chunk));
  demo.stderr?.setEncoding('utf8').on('data', (chunk: string) => (demoLog += chunk));
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (demo.exitCode !== null) {
      throw new Error(`demo server exited (code ${demo.exitCode}); is port 4173 taken?\n${demoLog}`);
    }
    try {
      const response = await fetch(DEMO_URL);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((done) => setTimeout(done, 200));
  }
  throw new Error(`demo server not serving ${DEMO_URL} within 60 s\n${demoLog}`);
}

async function openAs(user: string, server: 'field' | 'query', url = host.url): Promise<Page> {
  if (!browser) throw new Error('browser not started');
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(`${user}: ${error.message}`));
  const query = new URLSearchParams({ room: ROOM, user });
  if (server === 'query') query.set('server', url);
  await page.goto(`${DEMO_URL}?${query.toString()}`);
  if (server === 'field') await page.getByTestId('server-url').fill(url);
  await expectText(page, 'connection-status', 'idle');
  await page.getByTestId('join-btn').click();
  await page.waitForSelector('[data-testid="connection-status"][data-state="connected"]');
  await page.waitForSelector(`[data-testid="roster-member"][data-user-id="${user}"]`);
  return page;
}

async function expectText(page: Page, testId: string, text: string): Promise<void> {
  await page.waitForFunction(
    ([id, want]) => document.querySelector(`[data-testid="${id}"]`)?.textContent?.includes(want ?? ''),
    [testId, text] as const,
  );
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH).`);
  }
  [host, bare] = await Promise.all([startHost({}, { plugins: true }), startHost()]);
  await startDemo();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
});

afterAll(async () => {
  // The screenshot is taken whatever happened: on failure it shows why.
  try {
    if (bob && !bob.isClosed()) {
      mkdirSync(resolve(SDK_ROOT, 'test-results'), { recursive: true });
      await bob.screenshot({ path: SCREENSHOT, fullPage: true });
    }
  } finally {
    await browser?.close();
    if (demo) await stopProcess(demo);
    await Promise.all([host?.stop(), bare?.stop()]);
  }
});

describe('demo playground in Chromium', () => {
  it('two users join and see each other in the live roster', async () => {
    alice = await openAs('alice', 'field');
    bob = await openAs('bob', 'query');

    await alice.waitForSelector('[data-testid="roster-member"][data-user-id="bob"]');
    await bob.waitForSelector('[data-testid="roster-member"][data-user-id="alice"]');
    await expectText(alice, 'roster-count', '2');
    await expectText(bob, 'roster-count', '2');
    await expectText(bob, 'events-log', 'presence:join');
  });

  it('a state patch shows up in the other user’s roster', async () => {
    await alice.getByTestId('state-input').fill('{ "status": "busy", "mood": "focused" }');
    await alice.getByTestId('patch-btn').click();
    await bob.waitForFunction(() =>
      document
        .querySelector('[data-testid="roster-member"][data-user-id="alice"] [data-testid="roster-state"]')
        ?.textContent?.includes('"busy"'),
    );
    await expectText(alice, 'events-log', 'patched');
  });

  it('users exchange chat messages through the chat plugin', async () => {
    await alice.getByTestId('chat-input').fill('hello bob, from alice');
    await alice.getByTestId('chat-send').click();
    await bob.waitForSelector('[data-testid="chat-message"][data-user-id="alice"]');
    expect(await bob.getByTestId('chat-log').textContent()).toContain('hello bob, from alice');

    await bob.getByTestId('chat-input').fill('hi alice!');
    await bob.getByTestId('chat-send').click();
    await alice.waitForSelector('[data-testid="chat-message"][data-user-id="bob"]');
    expect(await alice.getByTestId('chat-log').textContent()).toContain('hi alice!');
  });

  it('on a host without the chat plugin the demo says so, and sending answers unknown_event', async () => {
    const carol = await openAs('carol', 'query', bare.url);
    await expectText(carol, 'events-log', 'chat plugin not loaded');
    await carol.getByTestId('chat-input').fill('anyone?');
    await carol.getByTestId('chat-send').click();
    await expectText(carol, 'error', 'unknown_event');
    // The chat host's pages never say so: their history loaded.
    expect(await alice.getByTestId('events-log').textContent()).not.toContain('chat plugin not loaded');
  });

  it('raised no uncaught page errors', () => {
    expect(pageErrors).toEqual([]);
  });
});
