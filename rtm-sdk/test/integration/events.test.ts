import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatEmits, ChatListens, ChatMessage } from '../../src/chat.js';
import { RtmError } from '../../src/errors.js';
import { pluginsDir, startHost, type RunningHost } from '../support/host.js';
import { waitFor } from '../support/wait.js';
import { newClient, uniqueRoom } from './clients.js';

let host: RunningHost;

beforeAll(async () => {
  host = await startHost();
});
afterAll(async () => {
  await host?.stop();
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

  it.runIf(pluginsDir() !== undefined)('chat:message round trip through the chat plugin', async () => {
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
});
