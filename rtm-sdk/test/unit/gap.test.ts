import { afterEach, describe, expect, it, vi } from 'vitest';
import type { RtmError } from '../../src/errors.js';
import type { PresenceMember } from '../../src/protocol.js';
import type { GapInfo, ResyncInfo } from '../../src/types.js';
import { flush } from './fake-socket.js';
import { connected, errorAck, joinAck, joined, member, presence } from './helpers.js';

afterEach(() => {
  vi.useRealTimers();
});

function snapshotAck(members: PresenceMember[]): unknown {
  return { ok: true, snapshot: members };
}

/** Records what listeners see, in order. */
function watch(client: Awaited<ReturnType<typeof connected>>['client']) {
  const log: string[] = [];
  const gaps: GapInfo[] = [];
  const resyncs: ResyncInfo[] = [];
  const errors: RtmError[] = [];
  const rosters: Array<[string, string[]]> = [];
  client.on('gap', (info) => {
    gaps.push(info);
    log.push('gap');
  });
  client.on('resynced', (info) => {
    resyncs.push(info);
    log.push(`resynced:${info.roomId}`);
  });
  client.on('error', (error) => {
    errors.push(error);
    log.push(`error:${error.code}`);
  });
  client.on('roster', (roomId, members) => {
    rosters.push([roomId, [...members.keys()].sort()]);
    log.push(`roster:${roomId}`);
  });
  return { log, gaps, resyncs, errors, rosters };
}

const ids = (members: readonly PresenceMember[]) => members.map((m) => m.userId).sort();

describe('rtm:gap', () => {
  it('is surfaced as a typed gap event with the server ts', async () => {
    const { client, socket } = await connected();
    const seen = watch(client);
    socket.serverEmit('rtm:gap', { ts: 1_700_000_000_123 });
    await flush();
    expect(seen.gaps).toEqual([{ ts: 1_700_000_000_123 }]);
    // Nothing joined: nothing to refetch.
    expect(socket.packets('presence:snapshot')).toHaveLength(0);
    expect(seen.errors).toEqual([]);
  });

  it('a notice without a usable ts is still a gap, dated now', async () => {
    vi.useFakeTimers({ now: 5_000 });
    const { client, socket } = await connected();
    const seen = watch(client);
    socket.serverEmit('rtm:gap', { ts: 'soon' });
    socket.serverEmit('rtm:gap');
    expect(seen.gaps).toEqual([{ ts: 5_000 }, { ts: 5_000 }]);
  });

  it('replaces each joined room roster with a fresh snapshot, reporting the difference', async () => {
    const { client, socket } = await connected();
    await joined(client, socket, 'lobby', 'alice', { connId: 'c-alice', epoch: 1 }, [
      member('c-bob', 'bob'),
      member('c-carol', 'carol', { mood: 'ok' }),
    ]);
    await joined(client, socket, 'side', 'alice', { connId: 'c-alice2', epoch: 1 });
    const seen = watch(client);

    socket.serverEmit('rtm:gap', { ts: 9_000 });
    await flush();
    expect(socket.packets('presence:snapshot').map((p) => p.payload)).toEqual([
      { roomId: 'lobby' },
      { roomId: 'side' },
    ]);
    // Bob left and Dave joined while the broadcasts were lost; Carol changed her state.
    socket.reply(
      'presence:snapshot',
      snapshotAck([member('c-alice', 'alice'), member('c-carol', 'carol', { mood: 'great' }), member('c-dave', 'dave')]),
    );
    socket.reply('presence:snapshot', snapshotAck([member('c-alice2', 'alice', {}, 1, 8_000)]));
    await flush();

    expect([...client.roster('lobby').keys()].sort()).toEqual(['c-alice', 'c-carol', 'c-dave']);
    expect(client.roster('lobby').get('c-carol')?.state).toEqual({ mood: 'great' });
    const lobby = seen.resyncs.find((r) => r.roomId === 'lobby');
    expect(lobby && ids(lobby.joined)).toEqual(['dave']);
    expect(lobby && ids(lobby.left)).toEqual(['bob']);
    expect(lobby && ids(lobby.updated)).toEqual(['carol']);
    // Nothing missed in `side` (a newer lastSeen is not a change): no roster event, an empty resync.
    expect(seen.resyncs.find((r) => r.roomId === 'side')).toEqual({ roomId: 'side', joined: [], left: [], updated: [] });
    expect(seen.log).toEqual(['gap', 'roster:lobby', 'resynced:lobby', 'resynced:side']);
    expect(seen.rosters).toEqual([['lobby', ['c-alice', 'c-carol', 'c-dave']]]);
    expect(seen.errors).toEqual([]);
    // Live broadcasts apply as usual afterwards.
    socket.serverEmit('presence:event', presence({ type: 'leave', roomId: 'lobby', userId: 'dave', connId: 'c-dave', epoch: 1 }));
    expect(client.roster('lobby').has('c-dave')).toBe(false);
  });

  it('replays broadcasts that arrived during the refetch over the snapshot, by epoch', async () => {
    const { client, socket } = await connected();
    await joined(client, socket, 'lobby', 'alice', { connId: 'c-alice', epoch: 1 }, [
      member('c-bob', 'bob', { v: 1 }, 1),
    ]);
    const seen = watch(client);
    socket.serverEmit('rtm:gap', { ts: 9_000 });
    await flush();
    socket.pendingRequest('presence:snapshot');

    // Arrive while the snapshot request is in flight:
    // an update of bob's older than the snapshot's (must not roll it back),
    socket.serverEmit('presence:event', presence({ type: 'update', roomId: 'lobby', userId: 'bob', connId: 'c-bob', state: { v: 'old' }, epoch: 2 }));
    // carol's newer update (after the snapshot was taken: must win over it),
    socket.serverEmit('presence:event', presence({ type: 'update', roomId: 'lobby', userId: 'carol', connId: 'c-carol', state: { v: 'new' }, epoch: 4 }));
    // and erin, who joined after the snapshot was taken.
    socket.serverEmit('presence:event', presence({ type: 'join', roomId: 'lobby', userId: 'erin', connId: 'c-erin', epoch: 1 }));
    // Held back until the snapshot is in: the roster listeners saw nothing yet.
    expect(seen.rosters).toEqual([]);
    expect(client.roster('lobby').has('c-erin')).toBe(false);

    socket.reply(
      'presence:snapshot',
      snapshotAck([member('c-alice', 'alice'), member('c-bob', 'bob', { v: 3 }, 3), member('c-carol', 'carol', { v: 'snap' }, 3)]),
    );
    await flush();
    const roster = client.roster('lobby');
    expect([...roster.keys()].sort()).toEqual(['c-alice', 'c-bob', 'c-carol', 'c-erin']);
    expect(roster.get('c-bob')).toMatchObject({ state: { v: 3 }, epoch: 3 });
    expect(roster.get('c-carol')).toMatchObject({ state: { v: 'new' }, epoch: 4 });
    expect(seen.rosters).toHaveLength(1);
    const [resync] = seen.resyncs;
    expect(resync && ids(resync.joined)).toEqual(['carol', 'erin']);
    expect(resync && ids(resync.updated)).toEqual(['bob']);
    expect(resync?.left).toEqual([]);
  });

  it('a failed snapshot leaves the roster as it was and reports the error', async () => {
    const { client, socket } = await connected();
    await joined(client, socket, 'lobby', 'alice', { connId: 'c-alice', epoch: 1 }, [member('c-bob', 'bob')]);
    const before = client.roster('lobby');
    const seen = watch(client);

    socket.serverEmit('rtm:gap', { ts: 9_000 });
    await flush();
    socket.reply('presence:snapshot', { ok: false, error: { code: 'unavailable' } });
    await flush();

    expect(client.roster('lobby')).toEqual(before);
    expect(seen.rosters).toEqual([]);
    expect(seen.resyncs).toEqual([]);
    expect(seen.errors).toHaveLength(1);
    expect(seen.errors[0]).toMatchObject({
      name: 'RtmError',
      code: 'unavailable',
      event: 'presence:snapshot',
      roomId: 'lobby',
    });
    expect(seen.log).toEqual(['gap', 'error:unavailable']);
    // The room is kept and live broadcasts still apply.
    expect(client.roomIds()).toEqual(['lobby']);
    socket.serverEmit('presence:event', presence({ type: 'join', roomId: 'lobby', userId: 'dave', connId: 'c-dave', epoch: 1 }));
    expect(client.roster('lobby').has('c-dave')).toBe(true);
  });

  it('a failed snapshot still applies the broadcasts held back meanwhile', async () => {
    const { client, socket } = await connected();
    await joined(client, socket, 'lobby', 'alice', { connId: 'c-alice', epoch: 1 });
    const seen = watch(client);
    socket.serverEmit('rtm:gap', { ts: 9_000 });
    await flush();
    socket.serverEmit('presence:event', presence({ type: 'join', roomId: 'lobby', userId: 'bob', connId: 'c-bob', epoch: 1 }));
    socket.reply('presence:snapshot', errorAck('unavailable'));
    await flush();
    expect([...client.roster('lobby').keys()].sort()).toEqual(['c-alice', 'c-bob']);
    expect(seen.log).toEqual(['gap', 'roster:lobby', 'error:unavailable']);
  });

  it('retries a transiently failed refetch with the next heartbeat, and then converges', async () => {
    vi.useFakeTimers();
    const { client, socket } = await connected({ heartbeatIntervalMs: 1_000 });
    socket.respond('presence:heartbeat', () => ({ ok: true, epochs: { lobby: 1 } }));
    await joined(client, socket, 'lobby', 'alice', { connId: 'c-alice', epoch: 1 }, [member('c-bob', 'bob')]);
    const seen = watch(client);
    socket.serverEmit('rtm:gap', { ts: 9_000 });
    await flush();
    socket.reply('presence:snapshot', errorAck('unavailable'));
    await flush();
    expect(seen.errors.map((e) => e.code)).toEqual(['unavailable']);

    await vi.advanceTimersByTimeAsync(1_000);
    expect(socket.packets('presence:snapshot')).toHaveLength(2);
    socket.reply('presence:snapshot', snapshotAck([member('c-alice', 'alice')]));
    await flush();
    expect([...client.roster('lobby').keys()]).toEqual(['c-alice']);
    expect(seen.resyncs.map((r) => ids(r.left))).toEqual([['bob']]);

    // Converged: later heartbeats do not refetch again.
    await vi.advanceTimersByTimeAsync(3_000);
    expect(socket.packets('presence:snapshot')).toHaveLength(2);
  });

  it('does not retry a refetch refused for good', async () => {
    vi.useFakeTimers();
    const { client, socket } = await connected({ heartbeatIntervalMs: 1_000 });
    socket.respond('presence:heartbeat', () => ({ ok: true, epochs: { lobby: 1 } }));
    await joined(client, socket, 'lobby', 'alice', { connId: 'c-alice', epoch: 1 });
    const seen = watch(client);
    socket.serverEmit('rtm:gap', { ts: 9_000 });
    await flush();
    socket.reply('presence:snapshot', errorAck('forbidden'));
    await vi.advanceTimersByTimeAsync(3_000);
    expect(socket.packets('presence:snapshot')).toHaveLength(1);
    expect(seen.errors.map((e) => e.code)).toEqual(['forbidden']);
    expect(client.roomIds()).toEqual(['lobby']);
  });

  it('rejoins when the snapshot no longer holds our own registration', async () => {
    const { client, socket } = await connected();
    await joined(client, socket, 'lobby', 'alice', { connId: 'c-alice', epoch: 2 }, [member('c-bob', 'bob')]);
    socket.serverEmit('rtm:gap', { ts: 9_000 });
    await flush();
    // Our `expire` was among the lost broadcasts.
    socket.reply('presence:snapshot', snapshotAck([member('c-bob', 'bob')]));
    await flush();
    expect(socket.pendingRequest('presence:join').payload).toEqual({
      roomId: 'lobby',
      userId: 'alice',
      state: {},
      resume: { connId: 'c-alice', epoch: 2 },
    });
    socket.reply('presence:join', joinAck('c-alice-2', 1, [member('c-bob', 'bob'), member('c-alice-2', 'alice')]));
    await flush();
    expect(client.self('lobby')).toEqual({ connId: 'c-alice-2', epoch: 1 });
    expect([...client.roster('lobby').keys()].sort()).toEqual(['c-alice-2', 'c-bob']);
  });

  it('refetches after a join that was in flight when the gap arrived, not during it', async () => {
    const { client, socket } = await connected();
    const seen = watch(client);
    const join = client.join('lobby', 'alice');
    await flush();
    socket.serverEmit('rtm:gap', { ts: 9_000 });
    await flush();
    expect(socket.packets('presence:snapshot')).toHaveLength(0);
    socket.reply('presence:join', joinAck('c-alice', 1, [member('c-alice', 'alice'), member('c-bob', 'bob')]));
    await join;
    await flush();
    // That snapshot was requested before the gap: it may already be stale.
    socket.reply('presence:snapshot', snapshotAck([member('c-alice', 'alice')]));
    await flush();
    expect([...client.roster('lobby').keys()]).toEqual(['c-alice']);
    expect(seen.resyncs.map((r) => ids(r.left))).toEqual([['bob']]);
  });

  it('coalesces gaps that arrive before the refetch is sent, and refetches again after one that arrives during it', async () => {
    const { client, socket } = await connected();
    await joined(client, socket, 'lobby', 'alice', { connId: 'c-alice', epoch: 1 });
    socket.serverEmit('rtm:gap', { ts: 9_000 });
    socket.serverEmit('rtm:gap', { ts: 9_001 });
    await flush();
    expect(socket.packets('presence:snapshot')).toHaveLength(1);
    socket.serverEmit('rtm:gap', { ts: 9_500 });
    await flush();
    expect(socket.packets('presence:snapshot')).toHaveLength(1);
    socket.reply('presence:snapshot', snapshotAck([member('c-alice', 'alice')]));
    await flush();
    expect(socket.packets('presence:snapshot')).toHaveLength(2);
    socket.reply('presence:snapshot', snapshotAck([member('c-alice', 'alice'), member('c-bob', 'bob')]));
    await flush();
    expect([...client.roster('lobby').keys()].sort()).toEqual(['c-alice', 'c-bob']);
  });

  it('a room left before its refetch ran is not refetched', async () => {
    const { client, socket } = await connected();
    socket.respond('presence:leave', () => ({ ok: true }));
    await joined(client, socket, 'lobby', 'alice', { connId: 'c-alice', epoch: 1 });
    client.on('gap', () => void client.leave('lobby'));
    socket.serverEmit('rtm:gap', { ts: 9_000 });
    await flush();
    expect(socket.packets('presence:snapshot')).toHaveLength(0);
    expect(client.roomIds()).toEqual([]);
  });

  it('a drop during the refetch is left to the rejoin, which brings a fresh snapshot', async () => {
    vi.useFakeTimers();
    const { client, socket } = await connected({ heartbeatIntervalMs: 1_000 });
    socket.respond('presence:heartbeat', () => ({ ok: true, epochs: { lobby: 1 } }));
    await joined(client, socket, 'lobby', 'alice', { connId: 'c-alice', epoch: 1 }, [member('c-bob', 'bob')]);
    const seen = watch(client);
    socket.serverEmit('rtm:gap', { ts: 9_000 });
    await flush();
    socket.drop();
    await flush();
    expect(seen.errors).toEqual([]);
    await vi.advanceTimersByTimeAsync(100);
    socket.reply('presence:join', joinAck('c-alice', 1, [member('c-alice', 'alice')]));
    await vi.advanceTimersByTimeAsync(3_000);
    expect([...client.roster('lobby').keys()]).toEqual(['c-alice']);
    // The rejoin was sent after the gap: no further refetch.
    expect(socket.packets('presence:snapshot')).toHaveLength(1);
    expect(seen.errors).toEqual([]);
  });
});
