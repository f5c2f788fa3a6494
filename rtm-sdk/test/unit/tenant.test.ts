import type { Socket } from 'socket.io-client';
import { describe, expect, it } from 'vitest';
import { RealtimeMessageClient } from '../../src/client.js';
import { Roster } from '../../src/roster.js';
import { defaultSocketFactory, namespaceUrl } from '../../src/socket.js';
import { FakeSocket, flush } from './fake-socket.js';
import { member, presence } from './helpers.js';

describe('namespaceUrl', () => {
  it('keeps the namespace path, query and fragment', () => {
    expect(namespaceUrl('https://host/acme')).toBe('https://host/acme');
    expect(namespaceUrl('https://host:8443/acme?token=t#x')).toBe('https://host:8443/acme?token=t#x');
    expect(namespaceUrl('http://localhost:3000')).toBe('http://localhost:3000');
    expect(namespaceUrl('/acme')).toBe('/acme');
    expect(namespaceUrl('localhost:3000/acme')).toBe('localhost:3000/acme');
  });

  it('drops trailing slashes, which would name another namespace', () => {
    expect(namespaceUrl('https://host/acme/')).toBe('https://host/acme');
    expect(namespaceUrl('https://host/')).toBe('https://host');
  });

  it('adds the tenant namespace, and refuses a URL naming another one', () => {
    expect(namespaceUrl('https://host', 'acme')).toBe('https://host/acme');
    expect(namespaceUrl('https://host/?x=1', 'acme')).toBe('https://host/acme?x=1');
    expect(namespaceUrl('https://host/acme', 'acme')).toBe('https://host/acme');
    expect(() => namespaceUrl('https://host/other', 'acme')).toThrow(/already names namespace \/other/);
    expect(() => namespaceUrl('https://host', 'Acme')).toThrow(RangeError);
    expect(() => namespaceUrl('https://host', '')).toThrow(RangeError);
  });

  it('gives socket.io-client a socket on the tenant namespace, engine path unchanged', () => {
    const socket = defaultSocketFactory(namespaceUrl('http://127.0.0.1:9/acme/'), {}) as Socket;
    try {
      expect((socket as unknown as { nsp: string }).nsp).toBe('/acme');
      expect(socket.io.opts.path).toBe('/socket.io');
      expect(socket.connected).toBe(false); // autoConnect is off: no network here
    } finally {
      socket.disconnect();
    }
  });
});

describe('connect to a tenant', () => {
  it('hands the namespace URL to the socket factory', async () => {
    const socket = new FakeSocket();
    await RealtimeMessageClient.connect('https://rtm.test/acme', { socketFactory: socket.factory });
    expect(socket.url).toBe('https://rtm.test/acme');
  });

  it('builds the namespace from the tenant option', async () => {
    const socket = new FakeSocket();
    await RealtimeMessageClient.connect('https://rtm.test', { tenant: 'acme', socketFactory: socket.factory });
    expect(socket.url).toBe('https://rtm.test/acme');
  });

  it('rejects a tenant that conflicts with the URL', async () => {
    const socket = new FakeSocket();
    await expect(
      RealtimeMessageClient.connect('https://rtm.test/other', { tenant: 'acme', socketFactory: socket.factory }),
    ).rejects.toThrow(RangeError);
    expect(socket.connectCalls).toBe(0);
  });
});

describe('member info', () => {
  it('keeps the token info of members from join acks and broadcasts', async () => {
    const socket = new FakeSocket();
    const client = await RealtimeMessageClient.connect('https://rtm.test/acme', { socketFactory: socket.factory });
    const joining = client.join('lobby', 'alice');
    await flush();
    socket.reply('presence:join', {
      ok: true,
      self: { connId: 'c1', epoch: 1 },
      snapshot: [{ ...member('c1', 'alice'), info: { name: 'Alice' } }],
    });
    const { members } = await joining;
    expect(members[0]?.info).toEqual({ name: 'Alice' });
    socket.serverEmit(
      'presence:event',
      presence({ type: 'join', roomId: 'lobby', userId: 'bob', connId: 'c2', epoch: 1, info: { name: 'Bob' } }),
    );
    expect(client.roster('lobby').get('c2')?.info).toEqual({ name: 'Bob' });
  });

  it('keeps known info when an update omits it', () => {
    const roster = new Roster();
    roster.reset([{ ...member('c1', 'alice'), info: { name: 'Alice' } }]);
    roster.apply(presence({ type: 'update', roomId: 'r', userId: 'alice', connId: 'c1', epoch: 2, state: { s: 1 } }));
    expect(roster.get('c1')).toMatchObject({ state: { s: 1 }, epoch: 2, info: { name: 'Alice' } });
  });
});
