import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Backoff } from '../../src/backoff.js';
import { RealtimeMessageClient } from '../../src/client.js';
import type { RtmError } from '../../src/errors.js';
import type { ConnectionState, RejoinInfo } from '../../src/types.js';
import { FakeSocket, flush } from './fake-socket.js';
import { connected, joinAck, joined, member, presence } from './helpers.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Backoff', () => {
  it('grows exponentially up to the cap and resets', () => {
    const backoff = new Backoff({ initialDelayMs: 100, maxDelayMs: 1_000, factor: 2, jitter: 0 });
    expect([1, 2, 3, 4, 5, 6].map(() => backoff.next())).toEqual([100, 200, 400, 800, 1_000, 1_000]);
    backoff.reset();
    expect(backoff.next()).toBe(100);
  });

  it('spreads delays by the jitter fraction', () => {
    const low = new Backoff({ initialDelayMs: 1_000, jitter: 0.5 }, () => 0);
    const high = new Backoff({ initialDelayMs: 1_000, jitter: 0.5 }, () => 0.999_999);
    expect(low.next()).toBe(500);
    expect(high.next()).toBe(1_500);
  });

  it('counts attempts against maxAttempts', () => {
    const backoff = new Backoff({ maxAttempts: 2 });
    expect(backoff.exhausted).toBe(false);
    backoff.next();
    backoff.next();
    expect(backoff.exhausted).toBe(true);
  });
});

describe('connect', () => {
  it('retries failed attempts with back-off until the server answers', async () => {
    const socket = new FakeSocket(false);
    const client = new RealtimeMessageClient();
    const states: ConnectionState[] = [];
    client.on('connection', (s) => states.push(s));
    const connecting = client.connect('http://rtm.test', {
      socketFactory: () => socket,
      reconnect: { initialDelayMs: 100, maxDelayMs: 1_000, jitter: 0 },
    });
    expect(socket.connectCalls).toBe(1);
    socket.failAttempt();
    await vi.advanceTimersByTimeAsync(99);
    expect(socket.connectCalls).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(socket.connectCalls).toBe(2);
    socket.failAttempt();
    await vi.advanceTimersByTimeAsync(199);
    expect(socket.connectCalls).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(socket.connectCalls).toBe(3);
    socket.accept();
    await connecting;
    expect(client.state).toBe('connected');
    expect(states).toEqual(['connecting', 'connected']);
  });

  it('rejects with the server code when the handshake is refused, without retrying', async () => {
    const socket = new FakeSocket(false);
    const client = new RealtimeMessageClient();
    const connecting = client.connect('http://rtm.test', { socketFactory: () => socket });
    socket.refuse('token expired', { code: 'unauthorized' });
    await expect(connecting).rejects.toMatchObject({ name: 'RtmError', code: 'unauthorized' });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(socket.connectCalls).toBe(1);
    expect(client.state).toBe('closed');
  });

  it('rejects with timeout after connectTimeoutMs', async () => {
    const socket = new FakeSocket(false);
    const client = new RealtimeMessageClient();
    const connecting = client.connect('http://rtm.test', { socketFactory: () => socket, connectTimeoutMs: 2_000 });
    const outcome = connecting.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(await outcome).toMatchObject({ code: 'timeout' });
    expect(client.state).toBe('closed');
    expect(socket.disconnectCalls).toBe(1);
  });

  it('refuses a second connect()', async () => {
    const { client } = await connected();
    await expect(client.connect('http://x')).rejects.toThrow(/already connected/);
  });

  it('passes socket options through to the factory', async () => {
    const factory = vi.fn((_url: string, _options: object) => new FakeSocket());
    await RealtimeMessageClient.connect('http://rtm.test', {
      socketFactory: factory,
      socketOptions: { auth: { token: 't' } },
    });
    expect(factory).toHaveBeenCalledWith('http://rtm.test', { auth: { token: 't' } });
  });
});

describe('reconnect and resume', () => {
  it('rejoins every room with resume after the transport drops', async () => {
    const { client, socket } = await connected();
    await joined(client, socket, 'a', 'alice', { connId: 'c-a', epoch: 4, state: { s: 'a' } }, [member('c-bob', 'bob')]);
    await joined(client, socket, 'b', 'alice', { connId: 'c-b', epoch: 1 });
    const states: ConnectionState[] = [];
    const rejoins: RejoinInfo[] = [];
    client.on('connection', (s) => states.push(s));
    client.on('rejoined', (info) => rejoins.push(info));

    socket.connect = () => {
      socket.connectCalls += 1;
      return socket;
    };
    socket.drop('transport close');
    expect(client.state).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(100);
    expect(socket.connectCalls).toBe(2);
    socket.accept();
    await flush();

    const rejoinA = socket.pendingRequest('presence:join');
    expect(rejoinA.payload).toEqual({
      roomId: 'a',
      userId: 'alice',
      state: { s: 'a' },
      resume: { connId: 'c-a', epoch: 4 },
    });
    // Old registration still there: same connId, bumped epoch. Meanwhile bob left.
    socket.reply('presence:join', joinAck('c-a', 5, [member('c-a', 'alice', { s: 'a' }, 5)]));
    await flush();
    expect(socket.pendingRequest('presence:join').payload).toMatchObject({ roomId: 'b', resume: { connId: 'c-b', epoch: 1 } });
    socket.reply('presence:join', joinAck('c-b', 2, [member('c-b', 'alice', {}, 2)]));
    await flush();

    expect(states).toEqual(['reconnecting', 'connected']);
    expect(rejoins).toEqual([
      { roomId: 'a', connId: 'c-a', epoch: 5, resumed: true },
      { roomId: 'b', connId: 'c-b', epoch: 2, resumed: true },
    ]);
    expect([...client.roster('a').keys()]).toEqual(['c-a']);
    expect(client.self('a')).toEqual({ connId: 'c-a', epoch: 5 });
  });

  it('uses the latest state for the resume, including patches', async () => {
    const { client, socket } = await connected();
    await joined(client, socket, 'a', 'alice', { connId: 'c-a', epoch: 1, state: { s: 1 } });
    socket.respond('presence:heartbeat', () => ({ ok: true, epoch: 2 }));
    await client.patchState('a', { t: 2 });
    socket.drop();
    await vi.advanceTimersByTimeAsync(100);
    await flush();
    expect(socket.pendingRequest('presence:join').payload).toEqual({
      roomId: 'a',
      userId: 'alice',
      state: { s: 1, t: 2 },
      resume: { connId: 'c-a', epoch: 2 },
    });
  });

  it('reconnects after the server disconnects us', async () => {
    const { client, socket } = await connected();
    await joined(client, socket, 'a', 'alice', { connId: 'c-a', epoch: 1 });
    socket.drop('io server disconnect');
    await vi.advanceTimersByTimeAsync(100);
    expect(client.state).toBe('connected');
    expect(socket.pendingRequest('presence:join').payload).toMatchObject({ resume: { connId: 'c-a' } });
  });

  it('fails requests in flight with disconnected, and refuses new ones until reconnected', async () => {
    const { client, socket } = await connected();
    socket.connect = () => {
      socket.connectCalls += 1;
      return socket;
    };
    const inFlight = client.emit('x:y', { a: 1 });
    socket.drop();
    await expect(inFlight).rejects.toMatchObject({ code: 'disconnected', event: 'x:y' });
    await expect(client.emit('x:y', {})).rejects.toMatchObject({ code: 'disconnected' });
    await expect(client.join('a', 'alice')).rejects.toMatchObject({ code: 'disconnected' });
    expect(client.roomIds()).toEqual([]);
    expect(socket.packets('presence:join')).toHaveLength(0);
  });

  it('drops a room whose rejoin is refused for good, and reports it', async () => {
    const { client, socket } = await connected();
    await joined(client, socket, 'a', 'alice', { connId: 'c-a', epoch: 1 });
    const errors: RtmError[] = [];
    client.on('error', (e) => errors.push(e));
    socket.drop();
    await vi.advanceTimersByTimeAsync(100);
    await flush();
    socket.reply('presence:join', { ok: false, error: { code: 'forbidden', message: 'no' } });
    await flush();
    expect(errors.map((e) => [e.code, e.roomId])).toEqual([['forbidden', 'a']]);
    expect(client.roomIds()).toEqual([]);
  });

  it('keeps a room whose rejoin failed transiently and retries on the next heartbeat', async () => {
    const { client, socket } = await connected({ heartbeatIntervalMs: 1_000 });
    await joined(client, socket, 'a', 'alice', { connId: 'c-a', epoch: 1 });
    socket.drop();
    await vi.advanceTimersByTimeAsync(100);
    await flush();
    socket.reply('presence:join', { ok: false, error: { code: 'unavailable', message: 'redis down' } });
    await flush();
    expect(client.roomIds()).toEqual(['a']);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(socket.pendingRequest('presence:join').payload).toMatchObject({ roomId: 'a', resume: { connId: 'c-a' } });
  });

  it('gives up after maxAttempts and reports disconnected', async () => {
    const { client, socket } = await connected({ reconnect: { initialDelayMs: 10, jitter: 0, maxAttempts: 2 } });
    const errors: RtmError[] = [];
    client.on('error', (e) => errors.push(e));
    socket.connect = () => {
      socket.connectCalls += 1;
      queueMicrotask(() => socket.failAttempt());
      return socket;
    };
    socket.drop();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(socket.connectCalls).toBe(3); // the first connect plus two retries
    expect(client.state).toBe('closed');
    expect(errors.map((e) => e.code)).toEqual(['disconnected']);
  });

  it('stays closed after a drop when reconnect is off', async () => {
    const { client, socket } = await connected({ reconnect: false });
    socket.drop();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(client.state).toBe('closed');
    expect(socket.connectCalls).toBe(1);
  });

  it('ignores a stale leave of its old socket that arrives after the resume', async () => {
    const { client, socket } = await connected();
    await joined(client, socket, 'a', 'alice', { connId: 'c-a', epoch: 3 });
    socket.respond('presence:join', () => joinAck('c-a', 4, [member('c-a', 'alice', {}, 4)]));
    socket.drop();
    await vi.advanceTimersByTimeAsync(100);
    await flush();
    socket.serverEmit('presence:event', presence({ type: 'leave', roomId: 'a', userId: 'alice', connId: 'c-a', epoch: 3 }));
    await flush();
    expect(client.roster('a').has('c-a')).toBe(true);
    expect(socket.packets('presence:join')).toHaveLength(2);
  });
});
