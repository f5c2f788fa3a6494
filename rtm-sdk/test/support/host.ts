/**
 * Spawns a real rtm-host for integration and end-to-end tests. There is no
 * fake server on purpose: these tests exist to catch drift between the SDK
 * and the host's actual behaviour.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The rtm-sdk folder. */
export const SDK_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** `RTM_HOST_BIN`, or the workspace's debug build next to rtm-sdk. */
export function hostBinary(): string {
  const fromEnv = process.env['RTM_HOST_BIN'];
  return fromEnv ? resolve(SDK_ROOT, fromEnv) : resolve(SDK_ROOT, '..', 'target', 'debug', 'rtm-host');
}

/**
 * `RTM_PLUGINS_DIR`: the folder (holding the chat plugin) that hosts started
 * with `{ plugins: true }` load. `make test` always sets it; a missing one is
 * an error, never a reason to skip the chat tests.
 */
export function pluginsDir(): string {
  const dir = process.env['RTM_PLUGINS_DIR'];
  if (!dir) {
    throw new Error(
      'RTM_PLUGINS_DIR is not set: point it at a folder holding chat.wasm (make test-sdk does: ' +
        'target/sdk-plugins, a copy of target/wasm-guests/artifacts/chat-v1.wasm from scripts/build-guests.sh).',
    );
  }
  const path = resolve(SDK_ROOT, dir);
  if (!existsSync(resolve(path, 'chat.wasm'))) {
    throw new Error(`RTM_PLUGINS_DIR=${path} holds no chat.wasm (copy target/wasm-guests/artifacts/chat-v1.wasm there).`);
  }
  return path;
}

/**
 * A spawned host gets no rtm setting from the caller's shell (REDIS_URL,
 * PLUGINS_DIR, API_KEY, TENANTS_FILE, PRESENCE_*, ...): only these process
 * basics, then the harness defaults, then what the test sets.
 */
const INHERITED_ENV = new Set([
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'TMPDIR',
  'TMP',
  'TEMP',
  'LANG',
  'LANGUAGE',
  'TZ',
  'RUST_LOG',
  'RUST_BACKTRACE',
  'RUST_LIB_BACKTRACE',
]);

function inheritedEnv(): Record<string, string> {
  const base: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && (INHERITED_ENV.has(key) || key.startsWith('LC_'))) base[key] = value;
  }
  return base;
}

export interface StartOptions {
  /** Load the plugins of {@link pluginsDir} (the chat plugin); default false: no plugins at all. */
  plugins?: boolean;
}

export interface RunningHost {
  /** e.g. http://127.0.0.1:41234 */
  readonly url: string;
  /** Everything the host printed so far, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

const READY = /rtm-host listening on (http:\/\/\S+)/;

/**
 * Starts rtm-host on an ephemeral port with the in-memory store and short
 * presence timings (TTL 3 s, reaper every 200 ms) so expiry is testable in
 * seconds, with the chat plugin when `options.plugins` and with no plugin
 * otherwise. Resolves once it prints its "listening" line (and, with
 * plugins, once /readyz says they are loaded).
 *
 * A missing binary is an error, not a skip: these tests must not turn green
 * without ever talking to a host.
 */
export async function startHost(env: Record<string, string> = {}, options: StartOptions = {}): Promise<RunningHost> {
  const bin = hostBinary();
  const plugins = options.plugins === true ? pluginsDir() : undefined;
  if (!existsSync(bin)) {
    throw new Error(
      `rtm-host binary not found at ${bin}. Build it first (cargo build -p rtm-host, from the ` +
        `repository root) or point RTM_HOST_BIN at it. Integration and e2e tests need a real host.`,
    );
  }
  const childEnv: Record<string, string> = {
    ...inheritedEnv(),
    PORT: '0',
    BIND_ADDR: '127.0.0.1',
    PRESENCE_TTL_MS: '3000',
    PRESENCE_REAPER_INTERVAL_MS: '200',
    ...(plugins === undefined ? {} : { PLUGINS_DIR: plugins }),
    ...env,
  };

  const child = spawn(bin, [], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    log += chunk;
  });
  const lines = createInterface({ input: child.stdout! });

  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`rtm-host did not report "listening" within 60 s. Output:\n${log}`));
    }, 60_000);
    lines.on('line', (line) => {
      log += `${line}\n`;
      // Strip ANSI colours in case the host's logger adds them.
      const match = READY.exec(line.replace(/\u001b\[[0-9;]*m/g, ''));
      if (match?.[1]) {
        clearTimeout(timer);
        resolveUrl(match[1].replace(/\/+$/, ''));
      }
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`could not start ${bin}: ${error.message}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`rtm-host exited early (code ${code}, signal ${signal}). Output:\n${log}`));
    });
  });

  const running: RunningHost = { url, output: () => log, stop: () => stopProcess(child) };
  if (childEnv['PLUGINS_DIR']) {
    // Plugins may finish loading after the listener is up; /readyz says when.
    try {
      await waitReady(url);
    } catch (error) {
      await running.stop();
      throw new Error(`${(error as Error).message}. Output:\n${log}`);
    }
  }
  return running;
}

/** Polls `GET /readyz` until it answers 200 (PROTOCOL.md: plugins loaded). */
async function waitReady(url: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${url}/readyz`);
      if (response.status === 200) return;
      last = `HTTP ${response.status}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((done) => setTimeout(done, 100));
  }
  throw new Error(`rtm-host at ${url} not ready within ${timeoutMs} ms (/readyz: ${last})`);
}

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
export async function stopProcess(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
