import { RealtimeMessageClient, type ConnectOptions } from '../../src/client.js';
import type { PresenceEvent, PresenceMember, PresenceState } from '../../src/protocol.js';
import type { EmitMap, LooseEmits, LooseListens } from '../../src/types.js';
import { FakeSocket, flush } from './fake-socket.js';

export function member(
  connId: string,
  userId: string,
  state: PresenceState = {},
  epoch = 1,
  lastSeen = 1_000,
): PresenceMember {
  return { connId, userId, state, epoch, lastSeen };
}

export function joinAck(connId: string, epoch: number, snapshot: PresenceMember[]): unknown {
  return { ok: true, self: { connId, epoch }, snapshot };
}

export function presence(event: Omit<PresenceEvent, 'ts'> & { ts?: number }): PresenceEvent {
  return { ts: 2_000, ...event };
}

export function errorAck(code: string, message = code, extra: Record<string, unknown> = {}): unknown {
  return { ok: false, error: { code, message }, ...extra };
}

/** A connected client on a fake socket. */
export async function connected<E extends EmitMap<E> = LooseEmits, L extends object = LooseListens>(
  options: ConnectOptions = {},
): Promise<{ client: RealtimeMessageClient<E, L>; socket: FakeSocket }> {
  const socket = new FakeSocket();
  const client = new RealtimeMessageClient<E, L>();
  await client.connect('http://rtm.test', {
    reconnect: { initialDelayMs: 100, maxDelayMs: 1_000, jitter: 0 },
    ...options,
    socketFactory: () => socket,
  });
  return { client, socket };
}

/**
 * Joins `roomId` as `userId`, answering the join with the given registration
 * and snapshot (the caller's own entry is added when missing).
 */
export async function joined(
  client: { join(roomId: string, userId: string, state?: PresenceState): Promise<unknown> },
  socket: FakeSocket,
  roomId: string,
  userId: string,
  self: { connId: string; epoch: number; state?: PresenceState },
  others: PresenceMember[] = [],
): Promise<void> {
  const promise = client.join(roomId, userId, self.state);
  await flush();
  socket.reply(
    'presence:join',
    joinAck(self.connId, self.epoch, [member(self.connId, userId, self.state ?? {}, self.epoch), ...others]),
  );
  await promise;
}
