import { afterEach, describe, expect, it, vi } from 'vitest';
import { RtmError } from '../../src/errors.js';
import type { PresenceEvent, PresenceMember } from '../../src/protocol.js';
import { flush } from './fake-socket.js';
import { connected, errorAck, joinAck, joined, member, presence } from './helpers.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('join', () => {
  it('sends presence:join and resolves to the snapshot', async () => {
    const { client, socket } = await connected();
    const rosters: Array<[string, string[]]> = [];
    client.on('roster', (roomId, members) => rosters.push([roomId, [...members.keys()]]));

    const promise = client.join('lobby', 'alice', { status: 'here' });
    await flush();
    expect(socket.pendingRequest('presence:join').payload).toEqual({
      roomId: 'lobby',
      userId: 'alice',
      state: { status: 'here' },
    });
    socket.reply(
      'presence:join',
      joinAck('c-alice', 1, [member('c-bob', 'bob'), member('c-alice', 'alice', { status: 'here' })]),
    );
    const snapshot = await promise;

    expect(snapshot.roomId).toBe('lobby');
    expect(snapshot.self).toEqual({ connId: 'c-alice', epoch: 1 });
    expect(snapshot.members.map((m) => m.userId).sort()).toEqual(['alice', 'bob']);
    expect([...client.roster('lobby').keys()].sort()).toEqual(['c-alice', 'c-bob']);
    expect(client.self('lobby')).toEqual({ connId: 'c-alice', epoch: 1 });
    expect(rosters).toEqual([['lobby', ['c-bob', 'c-alice']]]);
  });

  it('omits state when none is given', async () => {
    const { client, socket } = await connected();
    void client.join('lobby', 'alice');
    await flush();
    expect(socket.pendingRequest('presence:join').payload).toEqual({ roomId: 'lobby', userId: 'alice' });
  });

  it('rejects with the server code and forgets the room', async () => {
    const { client, socket } = await connected();
    const promise = client.join('bad room!', 'alice');
    await flush();
    socket.reply('presence:join', errorAck('invalid_payload', 'roomId has bad characters'));
    await expect(promise).rejects.toMatchObject({ name: 'RtmError', code: 'invalid_payload', roomId: 'bad room!' });
    expect(client.roomIds()).toEqual([]);
  });

  it('rejects a malformed ack as protocol_error', async () => {
    const { client, socket } = await connected();
    const promise = client.join('lobby', 'alice');
    await flush();
    socket.reply('presence:join', { ok: true, snapshot: [] });
    await expect(promise).rejects.toMatchObject({ code: 'protocol_error' });
  });

  it('maps an error code outside the protocol to protocol_error, keeping the raw one', async () => {
    const { client, socket } = await connected();
    const promise = client.join('lobby', 'alice');
    await flush();
    socket.reply('presence:join', errorAck('brand_new_code'));
    const error = await promise.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RtmError);
    expect(error).toMatchObject({ code: 'protocol_error', serverCode: 'brand_new_code' });
  });
});

describe('live roster', () => {
  it('follows join, update, leave and expire broadcasts', async () => {
    const { client, socket } = await connected();
    await joined(client, socket, 'lobby', 'alice', { connId: 'c-alice', epoch: 1 });
    const seen: PresenceEvent[] = [];
    const rosters: Array<ReadonlyMap<string, PresenceMember>> = [];
    client.on('presence', (event) => seen.push(event));
    client.on('roster', (_roomId, members) => rosters.push(members));

    socket.serverEmit('presence:event', presence({ type: 'join', roomId: 'lobby', userId: 'bob', connId: 'c-bob', state: { mood: 'ok' }, epoch: 1 }));
    expect(client.roster('lobby').get('c-bob')).toMatchObject({ userId: 'bob', state: { mood: 'ok' } });

    socket.serverEmit('presence:event', presence({ type: 'update', roomId: 'lobby', userId: 'bob', connId: 'c-bob', state: { mood: 'great' }, epoch: 2 }));
    expect(client.roster('lobby').get('c-bob')).toMatchObject({ state: { mood: 'great' }, epoch: 2 });

    socket.serverEmit('presence:event', presence({ type: 'join', roomId: 'lobby', userId: 'carol', connId: 'c-carol', epoch: 1 }));
    socket.serverEmit('presence:event', presence({ type: 'leave', roomId: 'lobby', userId: 'bob', connId: 'c-bob' }));
    socket.serverEmit('presence:event', presence({ type: 'expire', roomId: 'lobby', userId: 'carol', connId: 'c-carol' }));

    expect([...client.roster('lobby').keys()]).toEqual(['c-alice']);
    expect(seen.map((e) => `${e.type}:${e.userId}`)).toEqual([
      'join:bob',
      'update:bob',
      'join:carol',
      'leave:bob',
      'expire:carol',
    ]);
    expect(rosters.map((m) => m.size)).toEqual([2, 2, 3, 2, 1]);
    // Every callback got its own copy.
    expect(rosters[0]?.has('c-bob')).toBe(true);
  });

  it('keeps rooms apart and ignores rooms it is not in', async () => {
    const { client, socket } = await connected();
    await joined(client, socket, 'a', 'alice', { connId: 'c1', epoch: 1 });
    await joined(client, socket, 'b', 'alice', { connId: 'c2', epoch: 1 });
    socket.serverEmit('presence:event', presence({ type: 'join', roomId: 'b', userId: 'bob', connId: 'c-bob', epoch: 1 }));
    socket.serverEmit('presence:event', presence({ type: 'join', roomId: 'zzz', userId: 'eve', connId: 'c-eve', epoch: 1 }));
    expect(client.roster('a').size).toBe(1);
    expect(client.roster('b').size).toBe(2);
    expect(client.roster('zzz').size).toBe(0);
  });

  it('replays broadcasts that overtook the join ack over its snapshot', async () => {
    const { client, socket } = await connected();
    const promise = client.join('lobby', 'alice');
    await flush();
    // Bob joins and then updates before our ack arrives; the snapshot was
    // taken after his join but before his update.
    socket.serverEmit('presence:event', presence({ type: 'join', roomId: 'lobby', userId: 'bob', connId: 'c-bob', state: { v: 1 }, epoch: 1 }));
    socket.serverEmit('presence:event', presence({ type: 'update', roomId: 'lobby', userId: 'bob', connId: 'c-bob', state: { v: 2 }, epoch: 2 }));
    // Carol's leave was broadcast before the snapshot was taken...
    socket.serverEmit('presence:event', presence({ type: 'leave', roomId: 'lobby', userId: 'carol', connId: 'c-carol', epoch: 1 }));
    expect(client.roster('lobby').size).toBe(0);
    socket.reply(
      'presence:join',
      joinAck('c-alice', 1, [member('c-alice', 'alice'), member('c-bob', 'bob', { v: 1 }, 1)]),
    );
    await promise;
    const roster = client.roster('lobby');
    expect([...roster.keys()].sort()).toEqual(['c-alice', 'c-bob']);
    expect(roster.get('c-bob')?.state).toEqual({ v: 2 });
  });

  it('does not let a buffered broadcast roll the snapshot back', async () => {
    const { client, socket } = await connected();
    const promise = client.join('lobby', 'alice');
    await flush();
    socket.serverEmit('presence:event', presence({ type: 'update', roomId: 'lobby', userId: 'bob', connId: 'c-bob', state: { v: 'old' }, epoch: 3 }));
    socket.reply(
      'presence:join',
      joinAck('c-alice', 1, [member('c-alice', 'alice'), member('c-bob', 'bob', { v: 'new' }, 4)]),
    );
    await promise;
    expect(client.roster('lobby').get('c-bob')?.state).toEqual({ v: 'new' });
  });

  it('reports a malformed broadcast and keeps going', async () => {
    const { client, socket } = await connected();
    await joined(client, socket, 'lobby', 'alice', { connId: 'c-alice', epoch: 1 });
    const errors: RtmError[] = [];
    client.on('error', (e) => errors.push(e));
    socket.serverEmit('presence:event', { type: 'teleport', roomId: 'lobby' });
    socket.serverEmit('presence:event', presence({ type: 'join', roomId: 'lobby', userId: 'bob', connId: 'c-bob', epoch: 1 }));
    expect(errors.map((e) => e.code)).toEqual(['protocol_error']);
    expect(client.roster('lobby').size).toBe(2);
  });

  it('a throwing listener does not break bookkeeping', async () => {
    const { client, socket } = await connected();
    await joined(client, socket, 'lobby', 'alice', { connId: 'c-alice', epoch: 1 });
    const boom = new Error('app bug');
    client.on('roster', () => {
      throw boom;
    });
    const thrown: unknown[] = [];
    const original = globalThis.queueMicrotask;
    globalThis.queueMicrotask = (cb) =>
      original(() => {
        try {
          cb();
        } catch (e) {
          thrown.push(e);
        }
      });
    try {
      socket.serverEmit('presence:event', presence({ type: 'join', roomId: 'lobby', userId: 'bob', connId: 'c-bob', epoch: 1 }));
      await flush();
    } finally {
      globalThis.queueMicrotask = original;
    }
    expect(thrown).toEqual([boom]);
    expect(client.roster('lobby').size).toBe(2);
  });
});

describe('leave', () => {
  it('sends presence:leave, clears the roster and forgets the room', async () => {
    const { client, socket } = await connected();
    socket.respond('presence:leave', () => ({ ok: true }));
    await joined(client, socket, 'lobby', 'alice', { connId: 'c-alice', epoch: 1 }, [member('c-bob', 'bob')]);
    const rosters: number[] = [];
    client.on('roster', (_r, members) => rosters.push(members.size));
    await client.leave('lobby');
    expect(socket.packets('presence:leave').map((p) => p.payload)).toEqual([{ roomId: 'lobby' }]);
    expect(client.roomIds()).toEqual([]);
    expect(client.roster('lobby').size).toBe(0);
    expect(rosters).toEqual([0]);
    // Later broadcasts for the room are ignored.
    socket.serverEmit('presence:event', presence({ type: 'join', roomId: 'lobby', userId: 'x', connId: 'c-x', epoch: 1 }));
    expect(client.roster('lobby').size).toBe(0);
  });

  it('treats not_joined as already left, and is a no-op for unknown rooms', async () => {
    const { client, socket } = await connected();
    socket.respond('presence:leave', () => errorAck('not_joined'));
    await joined(client, socket, 'lobby', 'alice', { connId: 'c-alice', epoch: 1 });
    await expect(client.leave('lobby')).resolves.toBeUndefined();
    await expect(client.leave('never-joined')).resolves.toBeUndefined();
    expect(socket.packets('presence:leave')).toHaveLength(1);
  });

  it('waits for an in-flight join of the same room', async () => {
    const { client, socket } = await connected();
    socket.respond('presence:leave', () => ({ ok: true }));
    const join = client.join('lobby', 'alice');
    const leave = client.leave('lobby');
    await flush();
    expect(socket.packets('presence:leave')).toHaveLength(0);
    socket.reply('presence:join', joinAck('c-alice', 1, [member('c-alice', 'alice')]));
    await join;
    await leave;
    expect(socket.sent.map((p) => p.event)).toEqual(['presence:join', 'presence:leave']);
    expect(client.roomIds()).toEqual([]);
  });
});

describe('snapshot', () => {
  it('reads a room without joining it', async () => {
    const { client, socket } = await connected();
    socket.respond('presence:snapshot', () => ({ ok: true, snapshot: [member('c-bob', 'bob', { a: 1 })] }));
    await expect(client.snapshot('other')).resolves.toEqual([member('c-bob', 'bob', { a: 1 })]);
    expect(socket.packets('presence:snapshot')[0]?.payload).toEqual({ roomId: 'other' });
    expect(client.roomIds()).toEqual([]);
  });
});
