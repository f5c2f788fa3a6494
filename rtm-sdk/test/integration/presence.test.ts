import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RtmError } from '../../src/errors.js';
import { startHost, type RunningHost } from '../support/host.js';
import { waitFor, waitForAsync } from '../support/wait.js';
import { newClient, recordPresence, uniqueRoom } from './clients.js';

/** The test host's presence timings (test/support/host.ts). */
const TTL_MS = 3_000;
const REAPER_MS = 200;

let host: RunningHost;

beforeAll(async () => {
  host = await startHost();
});
afterAll(async () => {
  await host?.stop();
});

describe('presence against a real rtm-host', () => {
  it('join resolves to a snapshot that includes the caller', async () => {
    const room = uniqueRoom('join');
    const alice = await newClient(host.url);
    const snapshot = await alice.join(room, 'alice', { status: 'online' });

    expect(snapshot.roomId).toBe(room);
    expect(typeof snapshot.self.connId).toBe('string');
    expect(snapshot.self.epoch).toBeGreaterThanOrEqual(1);
    expect(snapshot.members).toHaveLength(1);
    expect(snapshot.members[0]).toMatchObject({
      connId: snapshot.self.connId,
      userId: 'alice',
      state: { status: 'online' },
    });
    expect(alice.roster(room).get(snapshot.self.connId)?.userId).toBe('alice');
  });

  it('keeps the roster current as a second client joins, patches and leaves', async () => {
    const room = uniqueRoom('roster');
    const alice = await newClient(host.url);
    const aliceEvents = recordPresence(alice);
    const rosterSizes: number[] = [];
    alice.on('roster', (roomId, members) => {
      if (roomId === room) rosterSizes.push(members.size);
    });
    const a = await alice.join(room, 'alice');

    const bob = await newClient(host.url);
    const b = await bob.join(room, 'bob', { mood: 'ok' });
    expect(b.members.map((m) => m.userId).sort()).toEqual(['alice', 'bob']);
    expect(bob.roster(room).get(a.self.connId)?.userId).toBe('alice');

    await waitFor('alice to see bob', () => alice.roster(room).get(b.self.connId));
    expect(alice.roster(room).get(b.self.connId)?.state).toEqual({ mood: 'ok' });

    await bob.patchState(room, { mood: 'great', typing: true });
    await waitFor('alice to see bob update', () => alice.roster(room).get(b.self.connId)?.state['mood'] === 'great');
    expect(alice.roster(room).get(b.self.connId)?.state).toEqual({ mood: 'great', typing: true });

    await bob.leave(room);
    await waitFor('alice to see bob leave', () => !alice.roster(room).has(b.self.connId));
    expect([...alice.roster(room).keys()]).toEqual([a.self.connId]);

    const bobEvents = aliceEvents.filter((e) => e.connId === b.self.connId).map((e) => e.type);
    expect(bobEvents).toEqual(['join', 'update', 'leave']);
    expect(rosterSizes.at(-1)).toBe(1);
    expect(Math.max(...rosterSizes)).toBe(2);
  });

  it('patchState merges shallowly and bumps the epoch; a snapshot read agrees', async () => {
    const room = uniqueRoom('patch');
    const alice = await newClient(host.url);
    const joined = await alice.join(room, 'alice', { a: 1, nested: { x: 1 } });

    const first = await alice.patchState(room, { b: 2 });
    expect(first.epoch).toBeGreaterThan(joined.self.epoch);
    const second = await alice.patchState(room, { a: 3, nested: { y: 2 } });
    expect(second.epoch).toBeGreaterThan(first.epoch);
    expect(second.state).toEqual({ a: 3, b: 2, nested: { y: 2 } });

    const observer = await newClient(host.url);
    const members = await observer.snapshot(room);
    expect(members).toHaveLength(1);
    expect(members[0]?.state).toEqual({ a: 3, b: 2, nested: { y: 2 } });
    expect(members[0]?.epoch).toBe(second.epoch);
  });

  it('recovers from stale_epoch by adopting the server epoch and retrying once', async () => {
    const room = uniqueRoom('stale');
    const alice = await newClient(host.url);
    const { self } = await alice.join(room, 'alice');

    const sent: Array<{ epoch: number; patch: unknown }> = [];
    const socket = alice.rawSocket as Socket;
    socket.onAnyOutgoing((event: string, payload: { epoch?: number; patchState?: unknown }) => {
      if (event === 'presence:heartbeat' && payload.patchState !== undefined) {
        sent.push({ epoch: payload.epoch ?? -1, patch: payload.patchState });
      }
    });

    // Both patches leave with the same epoch; the server lets one win and
    // refuses the other as stale, which the SDK must absorb.
    const results = await Promise.all([
      alice.patchState(room, { left: true }),
      alice.patchState(room, { right: true }),
    ]);

    expect(sent).toHaveLength(3);
    expect(sent[0]?.epoch).toBe(self.epoch);
    expect(sent[1]?.epoch).toBe(self.epoch);
    expect(sent[2]?.epoch).toBe(self.epoch + 1);
    expect(results.map((r) => r.epoch).sort()).toEqual([self.epoch + 1, self.epoch + 2]);
    const [member] = await alice.snapshot(room);
    expect(member?.state).toEqual({ left: true, right: true });
    expect(member?.epoch).toBe(self.epoch + 2);
  });

  it('the server refuses a write with an old epoch and reports its own', async () => {
    const room = uniqueRoom('fence');
    const alice = await newClient(host.url);
    const { self } = await alice.join(room, 'alice');
    await alice.patchState(room, { v: 1 });
    // Bypass the SDK to send the epoch it has moved past.
    const ack = await (alice.rawSocket as Socket)
      .timeout(5_000)
      .emitWithAck('presence:heartbeat', { roomId: room, patchState: { v: 0 }, epoch: self.epoch });
    expect(ack).toMatchObject({ ok: false, error: { code: 'stale_epoch' }, epoch: self.epoch + 1 });
    const [member] = await alice.snapshot(room);
    expect(member?.state).toEqual({ v: 1 });
  });

  it('rejects invalid input with a typed invalid_payload error', async () => {
    const alice = await newClient(host.url);
    const error = await alice.join('bad room id!', 'alice').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RtmError);
    expect(error).toMatchObject({ code: 'invalid_payload' });
    const notObject = await alice
      .join(uniqueRoom('state'), 'alice', ['not', 'an', 'object'] as never)
      .catch((e: unknown) => e);
    expect(notObject).toMatchObject({ code: 'invalid_payload' });
  });

  it('heartbeats keep a registration alive past the TTL', async () => {
    const room = uniqueRoom('alive');
    const alice = await newClient(host.url); // heartbeats every 1 s for the 3 s TTL
    const observer = await newClient(host.url);
    const { self, members } = await alice.join(room, 'alice');
    const joinedAt = members.find((m) => m.connId === self.connId)?.lastSeen ?? 0;
    expect(joinedAt).toBeGreaterThan(0);
    const events = recordPresence(observer);
    await observer.join(room, 'observer');

    // No fixed wait: poll until the host itself says the registration has been
    // refreshed more than a TTL (plus reaper ticks) after it was created.
    await waitForAsync('a heartbeat more than a TTL after the join', async () => {
      const member = (await observer.snapshot(room)).find((m) => m.connId === self.connId);
      if (!member) throw new Error('alice is no longer registered');
      return member.lastSeen - joinedAt > TTL_MS + 2 * REAPER_MS;
    });
    expect(events.filter((e) => e.connId === self.connId && e.type !== 'update')).toEqual([]);
    expect(observer.roster(room).has(self.connId)).toBe(true);
  });

  it('without heartbeats the reaper expires the registration, and the SDK rejoins', async () => {
    const room = uniqueRoom('expire');
    const observer = await newClient(host.url);
    const events = recordPresence(observer);
    await observer.join(room, 'observer');

    const sleepy = await newClient(host.url, { heartbeatIntervalMs: 60_000 });
    const rejoined = new Promise((done) => sleepy.on('rejoined', done));
    const { self } = await sleepy.join(room, 'sleepy');

    await waitFor('the expire broadcast', () => events.find((e) => e.type === 'expire' && e.connId === self.connId), 30_000);
    // Its own expire told the SDK its registration was gone: it joined again.
    await rejoined;
    const again = await waitFor('sleepy back in the roster', () =>
      [...observer.roster(room).values()].find((m) => m.userId === 'sleepy'),
    );
    expect(sleepy.self(room)?.connId).toBe(again.connId);
  });

  it('close() leaves: the other member sees a leave at once', async () => {
    const room = uniqueRoom('close');
    const alice = await newClient(host.url);
    const bob = await newClient(host.url);
    const events = recordPresence(alice);
    await alice.join(room, 'alice');
    const { self } = await bob.join(room, 'bob');
    await bob.close();
    await waitFor('the leave', () => events.find((e) => e.type === 'leave' && e.connId === self.connId));
    expect(bob.state).toBe('closed');
  });
});
