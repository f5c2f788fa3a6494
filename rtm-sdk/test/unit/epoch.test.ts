import { describe, expect, it } from 'vitest';
import { RtmError } from '../../src/errors.js';
import { flush } from './fake-socket.js';
import { connected, errorAck, joined, presence } from './helpers.js';

describe('patchState and epochs', () => {
  it('carries the epoch from the join ack and adopts the epoch the ack returns', async () => {
    const { client, socket } = await connected();
    await joined(client, socket, 'lobby', 'alice', { connId: 'c-alice', epoch: 3, state: { a: 1 } });

    const first = client.patchState('lobby', { b: 2 });
    await flush();
    expect(socket.pendingRequest('presence:heartbeat').payload).toEqual({
      roomId: 'lobby',
      patchState: { b: 2 },
      epoch: 3,
    });
    socket.reply('presence:heartbeat', { ok: true, epoch: 4 });
    await expect(first).resolves.toEqual({ epoch: 4, state: { a: 1, b: 2 } });
    expect(client.self('lobby')).toEqual({ connId: 'c-alice', epoch: 4 });

    const second = client.patchState('lobby', { a: 5 });
    await flush();
    expect(socket.pendingRequest('presence:heartbeat').payload).toMatchObject({ epoch: 4 });
    socket.reply('presence:heartbeat', { ok: true, epoch: 5 });
    await expect(second).resolves.toEqual({ epoch: 5, state: { a: 5, b: 2 } });
  });

  it('adopts a newer epoch from its own update broadcast', async () => {
    const { client, socket } = await connected();
    await joined(client, socket, 'lobby', 'alice', { connId: 'c-alice', epoch: 1 });
    socket.serverEmit('presence:event', presence({ type: 'update', roomId: 'lobby', userId: 'alice', connId: 'c-alice', state: { x: 9 }, epoch: 7 }));
    void client.patchState('lobby', { y: 1 });
    await flush();
    expect(socket.pendingRequest('presence:heartbeat').payload).toMatchObject({ epoch: 7 });
  });

  it('on stale_epoch adopts the server epoch and retries once', async () => {
    const { client, socket } = await connected();
    await joined(client, socket, 'lobby', 'alice', { connId: 'c-alice', epoch: 2 });
    const patch = client.patchState('lobby', { typing: true });
    await flush();
    socket.reply('presence:heartbeat', errorAck('stale_epoch', 'epoch 2 < 6', { epoch: 6 }));
    await flush();
    const retry = socket.pendingRequest('presence:heartbeat');
    expect(retry.payload).toEqual({ roomId: 'lobby', patchState: { typing: true }, epoch: 6 });
    socket.reply('presence:heartbeat', { ok: true, epoch: 7 });
    await expect(patch).resolves.toMatchObject({ epoch: 7, state: { typing: true } });
    expect(socket.packets('presence:heartbeat')).toHaveLength(2);
  });

  it('gives up after a second stale_epoch and throws it', async () => {
    const { client, socket } = await connected();
    await joined(client, socket, 'lobby', 'alice', { connId: 'c-alice', epoch: 2 });
    socket.respond('presence:heartbeat', () => errorAck('stale_epoch', 'fenced', { epoch: 9 }));
    const error = await client.patchState('lobby', { a: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RtmError);
    expect(error).toMatchObject({ code: 'stale_epoch', epoch: 9, roomId: 'lobby' });
    expect(socket.packets('presence:heartbeat').map((p) => (p.payload as { epoch: number }).epoch)).toEqual([2, 9]);
  });

  it('does not retry other errors', async () => {
    const { client, socket } = await connected();
    await joined(client, socket, 'lobby', 'alice', { connId: 'c-alice', epoch: 1 });
    socket.respond('presence:heartbeat', () => errorAck('payload_too_large'));
    await expect(client.patchState('lobby', { big: 'x' })).rejects.toMatchObject({ code: 'payload_too_large' });
    expect(socket.packets('presence:heartbeat')).toHaveLength(1);
  });

  it('two concurrent patches both land: the loser of the race retries with the new epoch', async () => {
    const { client, socket } = await connected();
    await joined(client, socket, 'lobby', 'alice', { connId: 'c-alice', epoch: 1 });
    // A tiny compare-and-set server: refuse any epoch older than the stored one.
    let stored = 1;
    socket.respond('presence:heartbeat', (payload) => {
      const { epoch } = payload as { epoch: number };
      if (epoch < stored) return errorAck('stale_epoch', 'stale', { epoch: stored });
      stored += 1;
      return { ok: true, epoch: stored };
    });
    // Both leave with epoch 1; the first bumps it to 2, so the second is stale once.
    const [a, b] = await Promise.all([
      client.patchState('lobby', { a: 1 }),
      client.patchState('lobby', { b: 1 }),
    ]);
    expect(a.epoch).toBe(2);
    expect(b.epoch).toBe(3);
    expect(socket.packets('presence:heartbeat').map((p) => (p.payload as { epoch: number }).epoch)).toEqual([1, 1, 2]);
  });

  it('refuses to patch a room it has not joined', async () => {
    const { client } = await connected();
    await expect(client.patchState('nowhere', { a: 1 })).rejects.toMatchObject({ code: 'not_joined' });
  });
});
