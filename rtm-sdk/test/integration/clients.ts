import { afterEach } from 'vitest';
import { RealtimeMessageClient, type ConnectOptions } from '../../src/client.js';
import type { PresenceEvent } from '../../src/protocol.js';
import type { EmitMap, LooseEmits, LooseListens } from '../../src/types.js';

const open: Array<RealtimeMessageClient<never, never> | RealtimeMessageClient> = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((client) => client.close()));
});

/**
 * A connected client tuned to the test host (TTL 3 s, so heartbeats every
 * second) and closed after each test.
 */
export async function newClient<E extends EmitMap<E> = LooseEmits, L extends object = LooseListens>(
  url: string,
  options: ConnectOptions = {},
): Promise<RealtimeMessageClient<E, L>> {
  const client = await RealtimeMessageClient.connect<E, L>(url, {
    presenceTtlMs: 3_000,
    requestTimeoutMs: 5_000,
    connectTimeoutMs: 10_000,
    reconnect: { initialDelayMs: 100, maxDelayMs: 1_000 },
    ...options,
  });
  open.push(client as unknown as RealtimeMessageClient);
  return client;
}

/** Records every presence event a client sees. */
export function recordPresence(client: { on(event: 'presence', h: (e: PresenceEvent) => void): unknown }): PresenceEvent[] {
  const events: PresenceEvent[] = [];
  client.on('presence', (event) => events.push(event));
  return events;
}

let counter = 0;
/** A room id no other test uses, so tests sharing one host stay independent. */
export function uniqueRoom(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}-${Date.now().toString(36)}`;
}
