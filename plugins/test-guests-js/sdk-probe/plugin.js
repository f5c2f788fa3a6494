// Test guest for the JS SDK itself (guest-sdk/js/test/components.test.mjs):
// each `probe:*` event exercises one helper and returns what it saw.
// Built on demand into plugins/dist/sdk-probe/ (not a default output).

import { PluginError, clock, definePlugin, emit, kv, log, presence, rooms } from '@rtm/guest';

export const handler = definePlugin({
  name: 'sdk-probe-js',
  version: '0.1.0',
  on: {
    'probe:kv': () => {
      for (const x of ['a', 'b', 'c', 'd']) kv.listPush('l', x, 3);
      const out = {
        incr: kv.incr('n', 2),
        range: kv.listRange('l', -2, -1),
        rangePos: kv.listRange('l', 0, 1),
        rangeMixed: kv.listRange('l', 1, -1),
        rangeEmpty: kv.listRange('l', -1, -2),
        missing: kv.get('nope'),
      };
      kv.set('j', { a: [1, 2] });
      out.json = kv.get('j');
      kv.listTrim('l', -2, -1);
      out.trimmed = kv.listRange('l', 0, 10);
      kv.hashSet('h', 'f', { x: 1 });
      out.hash = kv.hashGetAll('h');
      out.del = kv.del('j');
      return out;
    },
    'probe:incr-negative': () => kv.incr('n', -1),
    'probe:host-error': () => kv.get('boom'),
    'probe:bug': () => {
      /** @type {any} */ const x = undefined;
      return x.y;
    },
    'probe:throw': () => {
      throw new PluginError('custom_code', 'custom message');
    },
    'probe:misc': (ctx) => {
      log.info('probe log');
      emit.toSocket(ctx.socket, 'probe:to-socket', { n: 1 });
      emit.broadcast('probe:all', [1, 'two']);
      return {
        now: clock.nowMs(),
        has: rooms.has(ctx.socket, 'r'),
        members: rooms.members('r'),
        snapshot: presence.snapshot('r'),
        user: ctx.user ?? null,
        payload: ctx.payload({ a: 'string', b: 'u32?', c: 'any' }),
      };
    },
    'probe:none': () => undefined,
    'probe:*': (ctx) => ({ fallback: ctx.event }),
  },
  onPresence: (ev) => log.info(`presence ${JSON.stringify(ev)}`),
});
