import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RtmError } from '../../src/errors.js';
import type { RejoinInfo } from '../../src/types.js';
import { flush } from './fake-socket.js';
import { connected, errorAck, joinAck, joined, member, presence } from './helpers.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** Acks every all-rooms heartbeat with the given rooms' epochs. */
function heartbeatOk(epochs: Record<string, number>) {
  return () => ({ ok: true, epochs });
}

describe('heartbeat scheduling', () => {
  it('defaults to a third of the 30 s server TTL: one all-rooms heartbeat every 10 s', async () => {
    const { client, socket } = await connected();
    socket.respond('presence:heartbeat', heartbeatOk({ lobby: 1 }));
    await vi.advanceTimersByTimeAsync(30_000);
    expect(socket.packets('presence:heartbeat')).toHaveLength(0); // nothing joined, nothing sent

    await joined(client, socket, 'lobby', 'alice', { connId: 'c1', epoch: 1 });
    await vi.advanceTimersByTimeAsync(9_999);
    expect(socket.packets('presence:heartbeat')).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(socket.packets('presence:heartbeat').map((p) => p.payload)).toEqual([{}]);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(socket.packets('presence:heartbeat')).toHaveLength(3);
  });

  it('derives the interval from presenceTtlMs, and heartbeatIntervalMs wins over it', async () => {
    const a = await connected({ presenceTtlMs: 3_000 });
    a.socket.respond('presence:heartbeat', heartbeatOk({ r: 1 }));
    await joined(a.client, a.socket, 'r', 'u', { connId: 'c1', epoch: 1 });
    await vi.advanceTimersByTimeAsync(3_000);
    expect(a.socket.packets('presence:heartbeat')).toHaveLength(3);

    const b = await connected({ presenceTtlMs: 3_000, heartbeatIntervalMs: 250 });
    b.socket.respond('presence:heartbeat', heartbeatOk({ r: 1 }));
    await joined(b.client, b.socket, 'r', 'u', { connId: 'c1', epoch: 1 });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(b.socket.packets('presence:heartbeat')).toHaveLength(4);
  });

  it('rejects a non-positive interval', async () => {
    await expect(connected({ heartbeatIntervalMs: 0 })).rejects.toThrow(RangeError);
  });

  it('sends one heartbeat for all rooms and stops when the last room is left', async () => {
    const { client, socket } = await connected({ heartbeatIntervalMs: 1_000 });
    socket.respond('presence:heartbeat', heartbeatOk({ a: 1, b: 1 }));
    socket.respond('presence:leave', () => ({ ok: true }));
    await joined(client, socket, 'a', 'u', { connId: 'c1', epoch: 1 });
    await joined(client, socket, 'b', 'u', { connId: 'c2', epoch: 1 });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(socket.packets('presence:heartbeat')).toHaveLength(1);

    await client.leave('a');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(socket.packets('presence:heartbeat')).toHaveLength(2);

    await client.leave('b');
    // Not just silent: the timer itself is gone.
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(socket.packets('presence:heartbeat')).toHaveLength(2);
  });

  it('stops on close', async () => {
    const { client, socket } = await connected({ heartbeatIntervalMs: 1_000 });
    socket.respond('presence:heartbeat', heartbeatOk({ a: 1 }));
    socket.respond('presence:leave', () => ({ ok: true }));
    await joined(client, socket, 'a', 'u', { connId: 'c1', epoch: 1 });
    await vi.advanceTimersByTimeAsync(1_000);
    await client.close();
    expect(socket.packets('presence:leave').map((p) => p.payload)).toEqual([{}]);
    expect(socket.disconnectCalls).toBe(1);
    expect(client.state).toBe('closed');
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(socket.packets('presence:heartbeat')).toHaveLength(1);
  });

  it('does not stack heartbeats while one is unanswered', async () => {
    const { client, socket } = await connected({ heartbeatIntervalMs: 1_000, requestTimeoutMs: 5_000 });
    await joined(client, socket, 'a', 'u', { connId: 'c1', epoch: 1 });
    await vi.advanceTimersByTimeAsync(3_000);
    expect(socket.packets('presence:heartbeat')).toHaveLength(1);
    socket.reply('presence:heartbeat', { ok: true, epochs: { a: 1 } });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(socket.packets('presence:heartbeat')).toHaveLength(2);
  });

  it('reports a heartbeat timeout as an error event', async () => {
    const { client, socket } = await connected({ heartbeatIntervalMs: 1_000, requestTimeoutMs: 500 });
    const errors: RtmError[] = [];
    client.on('error', (e) => errors.push(e));
    await joined(client, socket, 'a', 'u', { connId: 'c1', epoch: 1 });
    await vi.advanceTimersByTimeAsync(1_500);
    expect(errors.map((e) => [e.code, e.event])).toEqual([['timeout', 'presence:heartbeat']]);
  });

  it('pauses while disconnected and restarts after reconnecting', async () => {
    const { client, socket } = await connected({ heartbeatIntervalMs: 1_000 });
    socket.respond('presence:heartbeat', heartbeatOk({ a: 2 }));
    await joined(client, socket, 'a', 'u', { connId: 'c1', epoch: 1 });
    socket.respond('presence:join', () => joinAck('c1', 2, [member('c1', 'u', {}, 2)]));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(socket.packets('presence:heartbeat')).toHaveLength(1);

    const autoAccept = socket.connect.bind(socket);
    socket.connect = () => {
      socket.connectCalls += 1;
      return socket; // stay down until the test accepts
    };
    socket.drop();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(socket.packets('presence:heartbeat')).toHaveLength(1);

    socket.connect = autoAccept;
    socket.accept();
    await flush();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(socket.packets('presence:heartbeat')).toHaveLength(2);
  });
});

describe('heartbeat acks', () => {
  it('adopts newer epochs from the ack', async () => {
    const { client, socket } = await connected({ heartbeatIntervalMs: 1_000 });
    socket.respond('presence:heartbeat', heartbeatOk({ a: 5 }));
    await joined(client, socket, 'a', 'u', { connId: 'c1', epoch: 1 });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(client.self('a')?.epoch).toBe(5);
  });

  it('rejoins, with resume, a room missing from the ack', async () => {
    const { client, socket } = await connected({ heartbeatIntervalMs: 1_000 });
    socket.respond('presence:heartbeat', heartbeatOk({ a: 1 }));
    await joined(client, socket, 'a', 'u', { connId: 'c1', epoch: 1, state: { s: 1 } });
    await joined(client, socket, 'b', 'u', { connId: 'c2', epoch: 3, state: { s: 2 } });
    const rejoins: RejoinInfo[] = [];
    client.on('rejoined', (info) => rejoins.push(info));

    await vi.advanceTimersByTimeAsync(1_000);
    const rejoin = socket.pendingRequest('presence:join');
    expect(rejoin.payload).toEqual({
      roomId: 'b',
      userId: 'u',
      state: { s: 2 },
      resume: { connId: 'c2', epoch: 3 },
    });
    // The registration was gone: the server registers us afresh.
    socket.reply('presence:join', joinAck('c9', 1, [member('c9', 'u', { s: 2 })]));
    await flush();
    expect(rejoins).toEqual([{ roomId: 'b', connId: 'c9', epoch: 1, resumed: false }]);
    expect(client.self('b')).toEqual({ connId: 'c9', epoch: 1 });
  });

  it('rejoins every room on not_joined', async () => {
    const { client, socket } = await connected({ heartbeatIntervalMs: 1_000 });
    socket.respond('presence:heartbeat', () => errorAck('not_joined'));
    await joined(client, socket, 'a', 'u', { connId: 'c1', epoch: 1 });
    await joined(client, socket, 'b', 'u', { connId: 'c2', epoch: 1 });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(socket.packets('presence:join').slice(2).map((p) => (p.payload as { roomId: string }).roomId)).toEqual(['a', 'b']);
  });

  it('rejoins when its own registration expires', async () => {
    const { client, socket } = await connected({ heartbeatIntervalMs: 1_000 });
    await joined(client, socket, 'a', 'u', { connId: 'c1', epoch: 2 });
    socket.serverEmit('presence:event', presence({ type: 'expire', roomId: 'a', userId: 'u', connId: 'c1', epoch: 2 }));
    await flush();
    expect(socket.pendingRequest('presence:join').payload).toMatchObject({ roomId: 'a', resume: { connId: 'c1', epoch: 2 } });
  });
});
