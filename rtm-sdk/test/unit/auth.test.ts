import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { decodeTokenPayload, refreshDelayMs, tokenExpiry } from '../../src/auth.js';
import { RealtimeMessageClient, type ConnectOptions } from '../../src/client.js';
import { isRtmError, type RtmError } from '../../src/errors.js';
import type { TokenRefreshInfo } from '../../src/types.js';
import { FakeSocket, flush } from './fake-socket.js';
import { errorAck } from './helpers.js';

const NOW = 1_750_000_000_000;

/** An unsigned JWT-shaped token: the client only decodes it. */
function jwt(payload: Record<string, unknown>): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'HS256', typ: 'JWT' })}.${part(payload)}.c2lnbmF0dXJl`;
}

/** A token for `sub` that expires `inSeconds` from now (fake time). */
function tokenFor(sub: string, inSeconds: number): string {
  return jwt({ sub, exp: Math.floor(Date.now() / 1_000) + inSeconds });
}

/** getToken handing out `alice` tokens valid `lifetime` seconds, numbered by call. */
function tokenSource(lifetime = 100): { getToken: ReturnType<typeof vi.fn<() => Promise<string>>>; issued: string[] } {
  const issued: string[] = [];
  const getToken = vi.fn(async () => {
    const token = jwt({ sub: 'alice', n: issued.length + 1, exp: Math.floor(Date.now() / 1_000) + lifetime });
    issued.push(token);
    return token;
  });
  return { getToken, issued };
}

async function connect(
  options: ConnectOptions,
  socket = new FakeSocket(),
): Promise<{ client: RealtimeMessageClient; socket: FakeSocket }> {
  const client = new RealtimeMessageClient();
  await client.connect('http://rtm.test', {
    reconnect: { initialDelayMs: 100, maxDelayMs: 1_000, jitter: 0 },
    ...options,
    socketFactory: socket.factory,
  });
  return { client, socket };
}

/** From now on a connect only runs the handshake; the test accepts or refuses by hand. */
function manualConnect(socket: FakeSocket): void {
  socket.connect = () => {
    socket.connectCalls += 1;
    const auth = socket.options?.auth;
    if (typeof auth === 'function') auth((data) => socket.handshakes.push(data));
    else socket.handshakes.push(auth);
    return socket;
  };
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(NOW);
});
afterEach(() => {
  vi.useRealTimers();
});

describe('tokens', () => {
  it('decodes a base64url JWT payload without verifying it', () => {
    const token = jwt({ sub: 'ålice', exp: 1_750_000_100, info: { name: '~~~???>>>' } });
    expect(token.split('.')[1]).toMatch(/[-_]/); // exercises the base64url alphabet
    expect(decodeTokenPayload(token)).toEqual({ sub: 'ålice', exp: 1_750_000_100, info: { name: '~~~???>>>' } });
    expect(tokenExpiry(token)).toBe(1_750_000_100);
    expect(tokenExpiry(jwt({ sub: 'a' }))).toBeUndefined();
    expect(decodeTokenPayload('not a token')).toBeUndefined();
    expect(decodeTokenPayload('a.!!!.c')).toBeUndefined();
    expect(decodeTokenPayload(`a.${Buffer.from('[1]').toString('base64url')}.c`)).toBeUndefined();
  });

  it('refreshes 10 % of the remaining lifetime before exp, at least 1 s and at most 60 s', () => {
    const nowS = NOW / 1_000;
    expect(refreshDelayMs(nowS + 100, NOW)).toBe(90_000);
    expect(refreshDelayMs(nowS + 5, NOW)).toBe(4_000);
    expect(refreshDelayMs(nowS + 3_600, NOW)).toBe(3_540_000);
    expect(refreshDelayMs(nowS + 0.5, NOW)).toBe(0);
    expect(refreshDelayMs(nowS - 10, NOW)).toBe(0);
  });
});

describe('handshake auth', () => {
  it('sends a static token as auth: { token }, merged with other auth fields', async () => {
    const token = tokenFor('alice', 100);
    const { socket } = await connect({ token, socketOptions: { auth: { app: 'x' } } });
    expect(socket.handshakes).toEqual([{ app: 'x', token }]);
  });

  it('sends nothing extra without token options', async () => {
    const { socket } = await connect({});
    expect(socket.handshakes).toEqual([undefined]);
  });

  it('calls getToken before the first connect and again before every reconnect', async () => {
    const { getToken, issued } = tokenSource();
    const { client, socket } = await connect({ getToken });
    expect(getToken).toHaveBeenCalledTimes(1);
    expect(socket.handshakes).toEqual([{ token: issued[0] }]);

    socket.drop('io server disconnect');
    await vi.advanceTimersByTimeAsync(100);
    expect(client.state).toBe('connected');
    expect(getToken).toHaveBeenCalledTimes(2);
    expect(socket.handshakes).toEqual([{ token: issued[0] }, { token: issued[1] }]);
    expect(issued[1]).not.toBe(issued[0]);

    socket.drop();
    await vi.advanceTimersByTimeAsync(100);
    expect(socket.handshakes).toEqual([{ token: issued[0] }, { token: issued[1] }, { token: issued[2] }]);
  });

  it('accepts a synchronous getToken', async () => {
    const { socket } = await connect({ getToken: () => 'plain-token' });
    expect(socket.handshakes).toEqual([{ token: 'plain-token' }]);
  });

  it('closes with unauthorized when getToken fails, keeping the cause', async () => {
    const socket = new FakeSocket();
    const cause = new Error('identity provider down');
    const outcome = connect({ getToken: () => Promise.reject(cause) }, socket).catch((e: unknown) => e);
    const error = (await outcome) as RtmError;
    expect(isRtmError(error, 'unauthorized')).toBe(true);
    expect(error.cause).toBe(cause);
    expect(error.event).toBe('connect');
    expect(socket.handshakes).toEqual([]);
  });

  it('refuses token together with getToken, and an auth callback with either', async () => {
    const client = new RealtimeMessageClient();
    await expect(
      client.connect('http://rtm.test', { token: 't', getToken: () => 't', socketFactory: new FakeSocket().factory }),
    ).rejects.toThrow(/token or getToken/);
    await expect(
      new RealtimeMessageClient().connect('http://rtm.test', {
        token: 't',
        socketOptions: { auth: (cb) => cb({}) },
        socketFactory: new FakeSocket().factory,
      }),
    ).rejects.toThrow(/auth as a function/);
    await expect(
      new RealtimeMessageClient().connect('http://rtm.test', { token: '', socketFactory: new FakeSocket().factory }),
    ).rejects.toThrow(/non-empty string/);
  });
});

describe('token refresh', () => {
  it('sends auth:refresh with a fresh token before exp and reschedules from the ack', async () => {
    const { getToken, issued } = tokenSource(100);
    const { client, socket } = await connect({ getToken });
    const refreshed: TokenRefreshInfo[] = [];
    client.on('tokenRefreshed', (info) => refreshed.push(info));

    // 100 s lifetime: refresh 10 s before exp.
    await vi.advanceTimersByTimeAsync(89_999);
    expect(socket.packets('auth:refresh')).toHaveLength(0);
    expect(getToken).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(getToken).toHaveBeenCalledTimes(2);
    expect(socket.pendingRequest('auth:refresh').payload).toEqual({ token: issued[1] });

    // The ack's exp drives the next refresh: 1000 s away, margin capped at 60 s.
    const exp = Math.floor(Date.now() / 1_000) + 1_000;
    socket.reply('auth:refresh', { ok: true, exp });
    await flush();
    expect(refreshed).toEqual([{ exp }]);
    await vi.advanceTimersByTimeAsync(939_999);
    expect(socket.packets('auth:refresh')).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(socket.packets('auth:refresh')).toHaveLength(2);
    expect(socket.packets('auth:refresh')[1]?.payload).toEqual({ token: issued[2] });
  });

  it('waits out tokens that live longer than setTimeout can', async () => {
    const days30 = 30 * 24 * 3_600;
    const { getToken } = tokenSource(days30);
    const { socket } = await connect({ getToken });
    await vi.advanceTimersByTimeAsync(days30 * 1_000 - 60_001);
    expect(socket.packets('auth:refresh')).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(socket.packets('auth:refresh')).toHaveLength(1);
  });

  it('refreshes on demand and resolves to the new exp', async () => {
    const { getToken, issued } = tokenSource(100);
    const { client, socket } = await connect({ getToken });
    socket.respond('auth:refresh', () => ({ ok: true, exp: 1_750_000_500 }));
    await expect(client.refreshAuth()).resolves.toBe(1_750_000_500);
    expect(socket.packets('auth:refresh').map((p) => p.payload)).toEqual([{ token: issued[1] }]);
  });

  it('does not refresh a static token, which has no source for a new one', async () => {
    const { client, socket } = await connect({ token: tokenFor('alice', 100) });
    await vi.advanceTimersByTimeAsync(200_000);
    expect(socket.packets('auth:refresh')).toHaveLength(0);
    await expect(client.refreshAuth()).rejects.toThrow(/getToken/);
  });

  it('reports a refused refresh as a typed error and does not retry it', async () => {
    const { getToken } = tokenSource(100);
    const { client, socket } = await connect({ getToken });
    const errors: RtmError[] = [];
    client.on('error', (e) => errors.push(e));
    await vi.advanceTimersByTimeAsync(90_000);
    socket.reply('auth:refresh', errorAck('forbidden', 'token is for another sub'));
    await flush();
    expect(errors).toHaveLength(1);
    expect(isRtmError(errors[0], 'forbidden')).toBe(true);
    expect(errors[0]?.event).toBe('auth:refresh');
    await vi.advanceTimersByTimeAsync(600_000);
    expect(socket.packets('auth:refresh')).toHaveLength(1);
  });

  it('rejects refreshAuth with unauthorized on an error ack', async () => {
    const { getToken } = tokenSource(100);
    const { client, socket } = await connect({ getToken });
    socket.respond('auth:refresh', () => errorAck('unauthorized', 'bad signature'));
    await expect(client.refreshAuth()).rejects.toMatchObject({
      name: 'RtmError',
      code: 'unauthorized',
      event: 'auth:refresh',
    });
  });

  it('retries a refresh that timed out while the token is still valid', async () => {
    const { getToken } = tokenSource(100);
    const { client, socket } = await connect({ getToken, requestTimeoutMs: 2_000 });
    const errors: RtmError[] = [];
    client.on('error', (e) => errors.push(e));
    await vi.advanceTimersByTimeAsync(90_000); // refresh sent, never answered
    await vi.advanceTimersByTimeAsync(2_000);
    expect(errors.map((e) => e.code)).toEqual(['timeout']);
    // 8 s left: the retry comes after min(5 s, half of it).
    await vi.advanceTimersByTimeAsync(3_999);
    expect(socket.packets('auth:refresh')).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(socket.packets('auth:refresh')).toHaveLength(2);
  });

  it('stops the refresh timer on disconnect and schedules from the reconnect token', async () => {
    const { getToken, issued } = tokenSource(100);
    const { socket } = await connect({ getToken });
    expect(vi.getTimerCount()).toBe(1); // the refresh timer
    manualConnect(socket);
    await vi.advanceTimersByTimeAsync(50_000);
    socket.drop();
    await vi.advanceTimersByTimeAsync(100); // the back-off fires; the handshake is under way
    expect(socket.handshakes).toEqual([{ token: issued[0] }, { token: issued[1] }]);
    expect(vi.getTimerCount()).toBe(0);

    // Connected at 50.1 s with a token valid 100 s from 50 s: refresh 9.99 s before
    // its exp (at 140.01 s), not at 90 s as the first token would have had it.
    socket.accept();
    await vi.advanceTimersByTimeAsync(89_909);
    expect(socket.packets('auth:refresh')).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(socket.packets('auth:refresh').map((p) => p.payload)).toEqual([{ token: issued[2] }]);
  });

  it('clears every timer on close', async () => {
    const { getToken } = tokenSource(100);
    const { client, socket } = await connect({ getToken });
    await client.close();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(200_000);
    expect(socket.packets('auth:refresh')).toHaveLength(0);
    expect(getToken).toHaveBeenCalledTimes(1);
  });
});

describe('connect refusals', () => {
  it.each(['unauthorized', 'quota_exceeded'] as const)(
    'rejects connect() with %s from connect_error and does not retry',
    async (code) => {
      const socket = new FakeSocket(false);
      const client = new RealtimeMessageClient();
      const outcome = client
        .connect('http://rtm.test', { token: 't', socketFactory: socket.factory })
        .catch((e: unknown) => e);
      socket.refuse(code);
      const error = await outcome;
      expect(isRtmError(error, code)).toBe(true);
      expect(error).toMatchObject({ event: 'connect' });
      await vi.advanceTimersByTimeAsync(60_000);
      expect(socket.connectCalls).toBe(1);
      expect(client.state).toBe('closed');
    },
  );

  it('retries an unauthorized refusal once with a fresh token from getToken', async () => {
    const { getToken, issued } = tokenSource();
    const socket = new FakeSocket(false);
    const client = new RealtimeMessageClient();
    const outcome = client.connect('http://rtm.test', { getToken, socketFactory: socket.factory }).catch((e: unknown) => e);
    await flush();
    socket.refuse('unauthorized');
    await vi.advanceTimersByTimeAsync(0);
    expect(socket.connectCalls).toBe(2);
    expect(socket.handshakes).toEqual([{ token: issued[0] }, { token: issued[1] }]);
    socket.refuse('unauthorized');
    expect(isRtmError(await outcome, 'unauthorized')).toBe(true);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(socket.connectCalls).toBe(2);
    expect(getToken).toHaveBeenCalledTimes(2);
  });

  it('connects when the retry with a fresh token is accepted', async () => {
    const { getToken } = tokenSource();
    const socket = new FakeSocket(false);
    const client = new RealtimeMessageClient();
    const connecting = client.connect('http://rtm.test', { getToken, socketFactory: socket.factory });
    await flush();
    socket.refuse('unauthorized');
    await vi.advanceTimersByTimeAsync(0);
    socket.accept();
    await connecting;
    expect(client.state).toBe('connected');
  });

  it('reports a refused reconnect on error and closes', async () => {
    const { client, socket } = await connect({ token: tokenFor('alice', 100) });
    const errors: RtmError[] = [];
    client.on('error', (e) => errors.push(e));
    manualConnect(socket);
    socket.drop('io server disconnect'); // e.g. the token expired
    await vi.advanceTimersByTimeAsync(100);
    socket.refuse('unauthorized');
    expect(errors.map((e) => e.code)).toEqual(['unauthorized']);
    expect(client.state).toBe('closed');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(socket.connectCalls).toBe(2);
  });

  it('takes the code from data.code, maps an unknown namespace, and keeps unknown messages', async () => {
    const refusal = async (message: string, data?: unknown): Promise<unknown> => {
      const socket = new FakeSocket(false);
      const outcome = new RealtimeMessageClient()
        .connect('http://rtm.test/acme', { socketFactory: socket.factory })
        .catch((e: unknown) => e);
      socket.refuse(message, data);
      return outcome;
    };
    expect(await refusal('tenant full', { code: 'quota_exceeded' })).toMatchObject({ code: 'quota_exceeded' });
    expect(await refusal('Invalid namespace')).toMatchObject({ code: 'invalid_namespace' });
    expect(await refusal('something else')).toMatchObject({ code: 'protocol_error', serverCode: 'something else' });
  });
});

describe('typed errors from acks', () => {
  it.each(['unauthorized', 'forbidden', 'quota_exceeded', 'rate_limited'] as const)(
    'rejects a request whose ack is %s with that code',
    async (code) => {
      const { client, socket } = await connect({});
      socket.respond('presence:join', () => errorAck(code, `no: ${code}`));
      socket.respond('game:move', () => errorAck(code, `no: ${code}`));
      const joinError = await client.join('a', 'alice').catch((e: unknown) => e);
      expect(isRtmError(joinError, code)).toBe(true);
      expect(joinError).toMatchObject({ event: 'presence:join', roomId: 'a', message: `no: ${code}` });
      const emitError = await client.emit('game:move', { roomId: 'g' }).catch((e: unknown) => e);
      expect(isRtmError(emitError, code)).toBe(true);
      expect(client.roomIds()).toEqual([]);
    },
  );
});
