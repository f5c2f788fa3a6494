import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionState, RejoinInfo } from '../../src/types.js';
import { startHost, type RunningHost } from '../support/host.js';
import { waitFor, waitForAsync } from '../support/wait.js';
import { newClient, recordPresence, uniqueRoom } from './clients.js';

let host: RunningHost;

beforeAll(async () => {
  // Resuming without a flap needs the old registration to outlive its
  // socket; PROTOCOL.md makes that the PRESENCE_RESUME_GRACE_MS window
  // (without it a disconnect removes the registration and broadcasts leave).
  host = await startHost({ PRESENCE_RESUME_GRACE_MS: '10000' });
});
afterAll(async () => {
  await host?.stop();
});

describe('reconnect and resume against a real rtm-host', () => {
  it('resumes the same registration after the transport is killed, with no leave for others', async () => {
    const room = uniqueRoom('resume');
    const observer = await newClient(host.url);
    const seen = recordPresence(observer);
    await observer.join(room, 'observer');

    const alice = await newClient(host.url);
    const states: ConnectionState[] = [];
    alice.on('connection', (state) => states.push(state));
    const rejoined = new Promise<RejoinInfo>((done) => alice.on('rejoined', done));
    const joined = await alice.join(room, 'alice', { status: 'typing' });
    await waitFor('observer to see alice', () => observer.roster(room).has(joined.self.connId));
    const socket = alice.rawSocket as Socket;
    const oldSocketId = socket.id;

    // Kill the transport under the client, as a network drop would.
    socket.io.engine.close();

    const info = await rejoined;
    expect(info).toMatchObject({ roomId: room, connId: joined.self.connId, resumed: true });
    expect(info.epoch).toBeGreaterThan(joined.self.epoch);
    expect(states).toEqual(['reconnecting', 'connected']);
    expect(socket.id).not.toBe(oldSocketId);

    expect(observer.roster(room).get(joined.self.connId)?.state).toEqual({ status: 'typing' });

    // The resumed registration is writable with the epoch the SDK now holds.
    const patched = await alice.patchState(room, { status: 'back' });
    expect(patched.epoch).toBeGreaterThan(info.epoch);
    await waitFor('observer to see the patch', () =>
      observer.roster(room).get(joined.self.connId)?.state['status'] === 'back',
    );
    // No fixed wait for "stray" broadcasts: a leave or join caused by the drop
    // and the resume would have been sent to the observer before this update
    // (one host, one socket, events in order), so by now it would be here.
    const flaps = seen.filter((e) => e.connId === joined.self.connId && e.type !== 'update');
    expect(flaps.map((e) => e.type)).toEqual(['join']);
  });

  it('keeps heartbeating after a resume, so the registration outlives the TTL', async () => {
    const room = uniqueRoom('resume-ttl');
    const observer = await newClient(host.url);
    const seen = recordPresence(observer);
    await observer.join(room, 'observer');
    const alice = await newClient(host.url);
    const rejoined = new Promise<RejoinInfo>((done) => alice.on('rejoined', done));
    const { self, members } = await alice.join(room, 'alice');
    const joinedAt = members.find((m) => m.connId === self.connId)?.lastSeen ?? 0;
    expect(joinedAt).toBeGreaterThan(0);

    (alice.rawSocket as Socket).io.engine.close();
    await rejoined;
    // Until the host says the resumed registration was refreshed more than a
    // TTL (3 s, plus reaper ticks) after the join: the heartbeats kept it.
    await waitForAsync('a heartbeat more than a TTL after the resume', async () => {
      const member = (await observer.snapshot(room)).find((m) => m.connId === self.connId);
      if (!member) throw new Error('alice is no longer registered');
      return member.lastSeen - joinedAt > 3_000 + 2 * 200;
    });
    expect(seen.filter((e) => e.connId === self.connId && (e.type === 'expire' || e.type === 'leave'))).toEqual([]);
    expect(observer.roster(room).has(self.connId)).toBe(true);
  });
});
