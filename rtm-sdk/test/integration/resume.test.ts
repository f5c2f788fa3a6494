import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionState, RejoinInfo } from '../../src/types.js';
import { startHost, type RunningHost } from '../support/host.js';
import { sleep, waitFor } from '../support/wait.js';
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

    // Give any stray broadcast time to arrive before judging its absence.
    await sleep(1_000);
    const flaps = seen.filter((e) => e.connId === joined.self.connId && e.type !== 'update');
    expect(flaps.map((e) => e.type)).toEqual(['join']);
    expect(observer.roster(room).get(joined.self.connId)?.state).toEqual({ status: 'typing' });

    // The resumed registration is writable with the epoch the SDK now holds.
    const patched = await alice.patchState(room, { status: 'back' });
    expect(patched.epoch).toBeGreaterThan(info.epoch);
    await waitFor('observer to see the patch', () =>
      observer.roster(room).get(joined.self.connId)?.state['status'] === 'back',
    );
  });

  it('keeps heartbeating after a resume, so the registration outlives the TTL', async () => {
    const room = uniqueRoom('resume-ttl');
    const observer = await newClient(host.url);
    const seen = recordPresence(observer);
    await observer.join(room, 'observer');
    const alice = await newClient(host.url);
    const rejoined = new Promise<RejoinInfo>((done) => alice.on('rejoined', done));
    const { self } = await alice.join(room, 'alice');

    (alice.rawSocket as Socket).io.engine.close();
    await rejoined;
    await sleep(5_000); // > TTL of 3 s
    expect(seen.filter((e) => e.connId === self.connId && (e.type === 'expire' || e.type === 'leave'))).toEqual([]);
    expect(observer.roster(room).has(self.connId)).toBe(true);
  });
});
