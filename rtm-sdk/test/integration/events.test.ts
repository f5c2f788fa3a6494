import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatEmits, ChatListens, ChatMessage } from '../../src/chat.js';
import { RtmError } from '../../src/errors.js';
import { startHost, type RunningHost } from '../support/host.js';
import { waitFor } from '../support/wait.js';
import { newClient, uniqueRoom } from './clients.js';

/** Loads the chat plugin from RTM_PLUGINS_DIR (required: make test sets it). */
let host: RunningHost;
/** No plugin at all: custom events have nobody to answer them. */
let bare: RunningHost;

beforeAll(async () => {
  [host, bare] = await Promise.all([startHost({}, { plugins: true }), startHost()]);
});
afterAll(async () => {
  await Promise.all([host?.stop(), bare?.stop()]);
});

describe('custom events against a real rtm-host', () => {
  it('an event no plugin handles rejects with unknown_event', async () => {
    const client = await newClient(host.url);
    const error = await client.emit('rtm-sdk-test:no-such-event', { roomId: 'r', n: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RtmError);
    expect(error).toMatchObject({ code: 'unknown_event', event: 'rtm-sdk-test:no-such-event' });
    // The socket stays usable after the refusal.
    const room = uniqueRoom('after-unknown');
    await expect(client.join(room, 'alice')).resolves.toMatchObject({ roomId: room });
  });

  it('chat:message round trip through the chat plugin', async () => {
    const room = uniqueRoom('chat');
    const alice = await newClient<ChatEmits, ChatListens>(host.url);
    const bob = await newClient<ChatEmits, ChatListens>(host.url);
    const received: ChatMessage[] = [];
    bob.on('chat:message', (message) => received.push(message));
    await alice.join(room, 'alice');
    await bob.join(room, 'bob');

    const ack = await alice.emit('chat:message', { roomId: room, text: 'hello from the sdk' });
    expect(typeof ack.id).toBe('string');
    const message = await waitFor('bob to receive the message', () => received.find((m) => m.id === ack.id));
    expect(message).toMatchObject({ id: ack.id, roomId: room, userId: 'alice', text: 'hello from the sdk' });
    expect(typeof message.ts).toBe('number');

    const history = await bob.emit('chat:history', { roomId: room, limit: 10 });
    expect(history.messages.map((m) => m.id)).toContain(ack.id);

    // Sending to a room the sender has not joined is refused with a typed error.
    const refused = await alice
      .emit('chat:message', { roomId: uniqueRoom('elsewhere'), text: 'x' })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RtmError);
  });

  it('without the chat plugin, chat events reject with unknown_event and presence keeps working', async () => {
    const room = uniqueRoom('no-chat');
    const alice = await newClient<ChatEmits, ChatListens>(bare.url);
    await alice.join(room, 'alice');
    const error = await alice.emit('chat:message', { roomId: room, text: 'anyone?' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RtmError);
    expect(error).toMatchObject({ code: 'unknown_event', event: 'chat:message' });
    const history = await alice.emit('chat:history', { roomId: room }).catch((e: unknown) => e);
    expect(history).toMatchObject({ code: 'unknown_event' });
    await expect(alice.patchState(room, { still: 'here' })).resolves.toMatchObject({ state: { still: 'here' } });
  });
});
