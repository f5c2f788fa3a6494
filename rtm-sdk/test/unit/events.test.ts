import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ChatEmits, ChatListens, ChatMessage } from '../../src/chat.js';
import { RtmError, isRtmError } from '../../src/errors.js';
import { flush } from './fake-socket.js';
import { connected, errorAck } from './helpers.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('custom events', () => {
  it('emit resolves to the data of the ok ack', async () => {
    const { client, socket } = await connected<ChatEmits, ChatListens>();
    socket.respond('chat:message', (payload) => {
      expect(payload).toEqual({ roomId: 'lobby', text: 'hi' });
      return { ok: true, data: { id: 'm1' } };
    });
    const ack = await client.emit('chat:message', { roomId: 'lobby', text: 'hi' });
    expect(ack.id).toBe('m1');
  });

  it('emit rejects with the server code', async () => {
    const { client, socket } = await connected();
    socket.respond('nope:event', () => errorAck('unknown_event', 'no plugin handles nope:event'));
    const error = await client.emit('nope:event', { roomId: 'r' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RtmError);
    expect(isRtmError(error, 'unknown_event')).toBe(true);
    expect(error).toMatchObject({ event: 'nope:event', roomId: 'r', message: 'no plugin handles nope:event' });
  });

  it('emit times out with the per-call timeout', async () => {
    vi.useFakeTimers();
    const { client } = await connected({ requestTimeoutMs: 60_000 });
    const outcome = client.emit('slow:event', {}, { timeout: 250 }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(249);
    await vi.advanceTimersByTimeAsync(1);
    expect(await outcome).toMatchObject({ code: 'timeout', event: 'slow:event' });
  });

  it('a late ack after a timeout is ignored', async () => {
    vi.useFakeTimers();
    const { client, socket } = await connected();
    const outcome = client.emit('slow:event', {}, { timeout: 100 }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(100);
    socket.reply('slow:event', { ok: true, data: 1 });
    expect(await outcome).toMatchObject({ code: 'timeout' });
  });

  it('on delivers server events to typed handlers; off and unsubscribe stop them', async () => {
    const { client, socket } = await connected<ChatEmits, ChatListens>();
    const got: ChatMessage[] = [];
    const typing: boolean[] = [];
    const handler = (message: ChatMessage) => got.push(message);
    client.on('chat:message', handler);
    const stopTyping = client.on('chat:typing', (t) => typing.push(t.typing));
    const message: ChatMessage = { id: 'm1', roomId: 'lobby', userId: 'bob', text: 'yo', ts: 1 };
    socket.serverEmit('chat:message', message);
    socket.serverEmit('chat:typing', { roomId: 'lobby', userId: 'bob', typing: true });
    client.off('chat:message', handler);
    stopTyping();
    socket.serverEmit('chat:message', message);
    socket.serverEmit('chat:typing', { roomId: 'lobby', userId: 'bob', typing: false });
    expect(got).toEqual([message]);
    expect(typing).toEqual([true]);
    expect(socket.listenerCount('chat:message')).toBe(0);
  });

  it('handlers registered before connect are attached to the socket', async () => {
    const { FakeSocket } = await import('./fake-socket.js');
    const { RealtimeMessageClient } = await import('../../src/client.js');
    const socket = new FakeSocket();
    const client = new RealtimeMessageClient<ChatEmits, ChatListens>();
    const got: string[] = [];
    client.on('chat:message', (m) => got.push(m.text));
    await client.connect('http://rtm.test', { socketFactory: () => socket });
    socket.serverEmit('chat:message', { id: 'm', roomId: 'r', userId: 'u', text: 'early bird', ts: 0 });
    expect(got).toEqual(['early bird']);
  });

  it('does not send anything when not connected', async () => {
    const { client, socket } = await connected({ reconnect: false });
    socket.drop();
    await flush();
    await expect(client.emit('x:y', {})).rejects.toMatchObject({ code: 'disconnected' });
    expect(socket.packets('x:y')).toHaveLength(0);
  });
});
