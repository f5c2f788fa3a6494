// Guest-level tests of the polyglot plugin components under the in-process
// MockHost (no rtm-host needed): the chat conformance cases against the Rust
// chat plugin and the JS one (same transcript expected from both, and each
// reads the other's kv history), the Python moderation plugin, and the SDK
// glue (error mapping, hooks, manifest).
//
//   node --test guest-sdk/js/test/          (after plugins/build-polyglot.sh)
//
// RTM_CHAT_WASM: the Rust chat component (default: the workspace's
// wasm32-wasip2 release output, from scripts/build-guests.sh).
// RTM_POLYGLOT_DIST: where build-polyglot.sh put the JS/Python components
// (default plugins/dist, built first if out of date).
//
// Nothing is skipped: the components are built (when RTM_POLYGLOT_DIST is
// unset) before any test is declared, and a component still missing then
// fails the file at once, naming it.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { MockHost, loadPlugin } from './mock-host.mjs';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const dist = resolve(process.env.RTM_POLYGLOT_DIST ?? join(repo, 'plugins/dist'));
const rustChat = resolve(
  process.env.RTM_CHAT_WASM ?? join(repo, 'target/wasm-guests/wasm32-wasip2/release/chat.wasm'),
);

// Build first, at load time: every decision below is made on what exists
// after the build, not before it (a before() hook would run too late).
if (!process.env.RTM_POLYGLOT_DIST) {
  execFileSync('bash', [join(repo, 'plugins/build-polyglot.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
  execFileSync('bash', [join(repo, 'plugins/build-polyglot.sh'), 'sdk-probe-js', 'sdk-probe-py'], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

const required = [
  rustChat,
  ...['chat-js', 'spin-js', 'moderation-py', 'membomb-py'].map((name) => join(dist, `${name}.wasm`)),
  ...['js', 'py'].map((lang) => join(dist, `sdk-probe/sdk-probe-${lang}.wasm`)),
];
const missing = required.filter((path) => !existsSync(path));
if (missing.length > 0) {
  throw new Error(
    `guest components missing: ${missing.map((path) => path.replace(`${repo}/`, '')).join(', ')}. ` +
      'Build the Rust chat with scripts/build-guests.sh (or set RTM_CHAT_WASM) and the JS/Python ' +
      'components with plugins/build-polyglot.sh [sdk-probe-js sdk-probe-py] (or set RTM_POLYGLOT_DIST).',
  );
}

const chatPlugins = [
  { name: 'rust', path: rustChat },
  { name: 'js', path: join(dist, 'chat-js.wasm') },
];

/**
 * Runs the chat conformance script against one plugin on a fresh MockHost
 * and returns its transcript (acks with error messages dropped, emits, kv).
 */
async function chatTranscript(path) {
  const p = await loadPlugin(path);
  const { host } = p;
  const t = [];
  const ack = (label, socket, user, event, payload) => {
    const a = p.event(socket, user, event, payload);
    const entry = { label, ok: a.ok };
    if (a.ok && 'data' in a) entry.dataJson = a.dataJson;
    if (!a.ok) entry.code = a.error.code;
    entry.emitted = host.takeEmitted();
    t.push(entry);
    return a;
  };
  host.join('sA', 'lobby');
  host.join('sB', 'lobby');

  ack('send before join', 'sC', 'carol', 'chat:message', { roomId: 'lobby', text: 'hi' });
  ack('send without user', 'sA', undefined, 'chat:message', { roomId: 'lobby', text: 'hi' });
  ack('empty room id', 'sA', 'alice', 'chat:message', { roomId: '', text: 'hi' });
  ack('empty text', 'sA', 'alice', 'chat:message', { roomId: 'lobby', text: '' });
  ack('text 2001 chars', 'sA', 'alice', 'chat:message', { roomId: 'lobby', text: 'x'.repeat(2001) });
  ack('text wrong type', 'sA', 'alice', 'chat:message', { roomId: 'lobby', text: 5 });
  ack('missing roomId', 'sA', 'alice', 'chat:message', { text: 'hi' });
  ack('null payload', 'sA', 'alice', 'chat:message', null);
  ack('array payload, wrong length', 'sA', 'alice', 'chat:message', ['lobby']);
  // serde's derived Deserialize takes a struct as an array too (fields in order).
  ack('array payload', 'sA', 'alice', 'chat:message', ['lobby', 'positional']);
  ack('text 2000 chars', 'sA', 'alice', 'chat:message', { roomId: 'lobby', text: 'y'.repeat(2000) });
  ack('astral text 2000 code points', 'sA', 'alice', 'chat:message', { roomId: 'lobby', text: '😀'.repeat(2000) });
  ack('astral text 2001 code points', 'sA', 'alice', 'chat:message', { roomId: 'lobby', text: '😀'.repeat(2001) });
  host.nowMs += 5n;
  ack('message', 'sA', 'alice', 'chat:message', { roomId: 'lobby', text: 'hello "world" ✓', extra: 1 });
  ack('message 2', 'sB', 'bob', 'chat:message', { roomId: 'lobby', text: 'hey\t\u0001\u2028\\' });
  ack('history', 'sC', undefined, 'chat:history', { roomId: 'lobby' });
  ack('history limit 1', 'sC', undefined, 'chat:history', { roomId: 'lobby', limit: 1 });
  ack('history limit 0', 'sC', undefined, 'chat:history', { roomId: 'lobby', limit: 0 });
  ack('history limit null', 'sC', undefined, 'chat:history', { roomId: 'lobby', limit: null });
  ack('history limit 1000', 'sC', undefined, 'chat:history', { roomId: 'lobby', limit: 1000 });
  ack('history limit -1', 'sC', undefined, 'chat:history', { roomId: 'lobby', limit: -1 });
  ack('history limit "2"', 'sC', undefined, 'chat:history', { roomId: 'lobby', limit: '2' });
  ack('history empty room', 'sC', undefined, 'chat:history', { roomId: '' });
  ack('history unknown room', 'sC', undefined, 'chat:history', { roomId: 'nowhere' });
  ack('typing', 'sA', 'alice', 'chat:typing', { roomId: 'lobby', typing: true });
  ack('typing not joined', 'sC', 'carol', 'chat:typing', { roomId: 'lobby', typing: true });
  ack('typing wrong type', 'sA', 'alice', 'chat:typing', { roomId: 'lobby', typing: 'yes' });
  for (let i = 0; i < 105; i++) {
    p.event('sA', 'alice', 'chat:message', { roomId: 'big', text: `m${i}` });
  }
  host.join('sA', 'big');
  for (let i = 0; i < 105; i++) {
    p.event('sA', 'alice', 'chat:message', { roomId: 'big', text: `m${i}` });
  }
  host.takeEmitted();
  ack('capped history', 'sC', undefined, 'chat:history', { roomId: 'big' });
  t.push({ label: 'kv', kv: [...host.kv].map(([k, v]) => [k, v.kind, v.kind === 'list' ? v.value.length : v.value]) });
  return { t, p };
}

const transcripts = new Map();

for (const plugin of chatPlugins) {
  describe(`chat conformance (${plugin.name}: ${plugin.path.replace(`${repo}/`, '')})`, () => {
    let t;
    let p;
    before(async () => {
      ({ t, p } = await chatTranscript(plugin.path));
      transcripts.set(plugin.name, t);
    });
    const at = (label) => t.find((e) => e.label === label);

    test('manifest: name chat, three events, no hooks', () => {
      const m = p.manifest();
      assert.equal(m.name, 'chat');
      assert.deepEqual([...m.events].sort(), ['chat:history', 'chat:message', 'chat:typing']);
      assert.deepEqual(m.hooks, { connect: false, disconnect: false, presence: false });
    });

    test('sender must be in the room and have a user', () => {
      assert.equal(at('send before join').code, 'not_joined');
      assert.equal(at('send without user').code, 'not_joined');
      assert.equal(at('empty room id').code, 'not_joined');
      assert.equal(at('typing not joined').code, 'not_joined');
    });

    test('text is 1..2000 characters (code points), payload shape checked', () => {
      for (const l of ['array payload, wrong length', 'empty text', 'text 2001 chars', 'text wrong type', 'missing roomId', 'null payload', 'astral text 2001 code points', 'typing wrong type']) {
        assert.equal(at(l).code, 'invalid_payload', l);
      }
      assert.equal(at('array payload').ok, true);
      assert.equal(at('text 2000 chars').ok, true);
      assert.equal(at('astral text 2000 code points').ok, true);
    });

    test('message: broadcast to the room, ack {id, v}', () => {
      const e = at('message');
      assert.equal(e.ok, true);
      const data = JSON.parse(e.dataJson);
      assert.deepEqual(data, { id: 'lobby-4', v: 'v1' });
      assert.equal(e.emitted.length, 1);
      const [ev] = e.emitted;
      assert.equal(ev.kind, 'room');
      assert.equal(ev.target, 'lobby');
      assert.equal(ev.except, undefined);
      assert.equal(ev.event, 'chat:message');
      assert.deepEqual(Object.keys(ev.payload), ['id', 'roomId', 'userId', 'text', 'ts', 'v']);
      assert.deepEqual(ev.payload, { id: 'lobby-4', roomId: 'lobby', userId: 'alice', text: 'hello "world" ✓', ts: 1_732_900_000_005, v: 'v1' });
    });

    test('history: oldest first, limit, capped at 100', () => {
      const all = JSON.parse(at('history').dataJson).messages;
      assert.deepEqual(all.map((m) => m.id), ['lobby-1', 'lobby-2', 'lobby-3', 'lobby-4', 'lobby-5']);
      assert.deepEqual(JSON.parse(at('history limit 1').dataJson).messages.map((m) => m.id), ['lobby-5']);
      assert.deepEqual(JSON.parse(at('history limit 0').dataJson).messages, []);
      assert.equal(JSON.parse(at('history limit null').dataJson).messages.length, 5);
      assert.equal(JSON.parse(at('history limit 1000').dataJson).messages.length, 5);
      assert.equal(at('history limit -1').code, 'invalid_payload');
      assert.equal(at('history limit "2"').code, 'invalid_payload');
      assert.equal(at('history empty room').code, 'invalid_payload');
      assert.deepEqual(JSON.parse(at('history unknown room').dataJson), { messages: [] });
      const capped = JSON.parse(at('capped history').dataJson).messages;
      assert.equal(capped.length, 100);
      assert.equal(capped[0].text, 'm5');
      assert.equal(capped[99].id, 'big-105');
    });

    test('typing: to the room except the sender, ack without data', () => {
      const e = at('typing');
      assert.deepEqual({ ok: e.ok, dataJson: e.dataJson }, { ok: true, dataJson: undefined });
      assert.deepEqual(e.emitted, [
        { kind: 'room', target: 'lobby', except: 'sA', event: 'chat:typing', payload: { roomId: 'lobby', userId: 'alice', typing: true } },
      ]);
    });

    test('kv layout: seq:<room> and history:<room>', () => {
      assert.deepEqual(at('kv').kv, [
        ['seq:lobby', 'str', '5'],
        ['history:lobby', 'list', 5],
        ['seq:big', 'str', '105'],
        ['history:big', 'list', 100],
      ]);
    });
  });
}

test('Rust and JS chat give identical transcripts', async () => {
  const rust = transcripts.get('rust') ?? (await chatTranscript(rustChat)).t;
  const js = transcripts.get('js') ?? (await chatTranscript(join(dist, 'chat-js.wasm'))).t;
  assert.deepEqual(js, rust);
});

test('each chat reads and continues the other\'s history', async () => {
  const host = new MockHost();
  host.join('s1', 'r');
  const rust = await loadPlugin(rustChat, host);
  const js = await loadPlugin(join(dist, 'chat-js.wasm'), host);
  assert.equal(rust.event('s1', 'u', 'chat:message', { roomId: 'r', text: 'from rust' }).ok, true);
  assert.equal(js.event('s1', 'u', 'chat:message', { roomId: 'r', text: 'from js' }).ok, true);
  assert.equal(rust.event('s1', 'u', 'chat:message', { roomId: 'r', text: 'rust again' }).ok, true);
  const a = rust.event('s9', undefined, 'chat:history', { roomId: 'r' });
  const b = js.event('s9', undefined, 'chat:history', { roomId: 'r' });
  assert.equal(a.dataJson, b.dataJson);
  assert.deepEqual(a.data.messages.map((m) => [m.id, m.text]), [
    ['r-1', 'from rust'],
    ['r-2', 'from js'],
    ['r-3', 'rust again'],
  ]);
});

test('host errors reach the client unchanged (kv unavailable)', async () => {
  for (const plugin of chatPlugins) {
    const p = await loadPlugin(plugin.path);
    p.host.join('s1', 'r');
    p.host.kvFailure = { code: 'unavailable', message: 'redis down' };
    const a = p.event('s1', 'u', 'chat:message', { roomId: 'r', text: 'x' });
    assert.deepEqual(a, { ok: false, error: { code: 'unavailable', message: 'redis down' } }, plugin.name);
  }
});

describe('moderation-py', () => {
  let p;
  before(async () => {
    p = await loadPlugin(join(dist, 'moderation-py.wasm'));
    p.host.join('sA', 'lobby');
  });

  test('manifest', () => {
    assert.deepEqual(p.manifest(), {
      name: 'moderation',
      version: '0.1.0',
      events: ['mod:*'],
      hooks: { connect: false, disconnect: false, presence: false },
    });
  });

  test('add, list, check, remove', () => {
    assert.deepEqual(p.event('sA', 'alice', 'mod:list', { roomId: 'lobby' }), { ok: true, data: { words: [] }, dataJson: '{"words":[]}' });
    const add = p.event('sA', 'alice', 'mod:add-words', { roomId: 'lobby', words: ['Darn', 'heck', ' DARN '] });
    assert.deepEqual(add.data, { words: ['darn', 'heck'], added: 2 });
    assert.deepEqual(p.host.takeEmitted(), [
      { kind: 'room', target: 'lobby', event: 'mod:words', payload: { roomId: 'lobby', words: ['darn', 'heck'] } },
    ]);
    assert.deepEqual(p.event('sB', 'bob', 'mod:list', { roomId: 'lobby' }).data, { words: ['darn', 'heck'] });
    assert.deepEqual(p.event('sB', 'bob', 'mod:check', { roomId: 'lobby', text: 'Darn it, what the HECK? darnit heckler' }).data, {
      allowed: false,
      masked: '**** it, what the ****? darnit heckler',
    });
    assert.deepEqual(p.event('sB', 'bob', 'mod:check', { roomId: 'lobby', text: 'all good here' }).data, { allowed: true, masked: 'all good here' });
    assert.deepEqual(p.event('sB', 'bob', 'mod:check', { roomId: 'other', text: 'darn' }).data, { allowed: true, masked: 'darn' });
    assert.deepEqual(p.event('sB', 'bob', 'mod:check', { roomId: 'lobby', text: 'ünïcode darn ДАРН' }).data, { allowed: false, masked: 'ünïcode **** ДАРН' });
    const rm = p.event('sA', 'alice', 'mod:remove-words', { roomId: 'lobby', words: ['HECK', 'nope'] });
    assert.deepEqual(rm.data, { words: ['darn'], removed: 1 });
    assert.equal(p.host.takeEmitted().length, 1);
    const again = p.event('sA', 'alice', 'mod:add-words', { roomId: 'lobby', words: ['darn'] });
    assert.deepEqual(again.data, { words: ['darn'], added: 0 });
    assert.deepEqual(p.host.takeEmitted(), [], 'no broadcast when nothing changed');
    assert.deepEqual([...p.host.kv.keys()], ['words:lobby']);
    assert.equal(p.host.kv.get('words:lobby').value, '["darn"]');
    p.event('sA', 'alice', 'mod:remove-words', { roomId: 'lobby', words: ['darn'] });
    assert.equal(p.host.kv.has('words:lobby'), false, 'an empty list deletes the key');
  });

  test('errors', () => {
    const code = (ev, payload, socket = 'sA') => p.event(socket, 'x', ev, payload).error?.code;
    assert.equal(code('mod:add-words', { roomId: 'lobby', words: ['two words'] }), 'invalid_payload');
    assert.equal(code('mod:add-words', { roomId: 'lobby', words: [''] }), 'invalid_payload');
    assert.equal(code('mod:add-words', { roomId: 'lobby', words: 'darn' }), 'invalid_payload');
    assert.equal(code('mod:add-words', { roomId: 'lobby', words: [1] }), 'invalid_payload');
    assert.equal(code('mod:add-words', { roomId: 'lobby', words: ['x'.repeat(65)] }), 'invalid_payload');
    assert.equal(code('mod:add-words', { roomId: '', words: ['a'] }), 'invalid_payload');
    assert.equal(code('mod:add-words', { roomId: 'lobby', words: ['a'] }, 'sZ'), 'not_joined');
    assert.equal(code('mod:remove-words', { roomId: 'lobby', words: ['a'] }, 'sZ'), 'not_joined');
    assert.equal(code('mod:check', { roomId: 'lobby' }), 'invalid_payload');
    assert.equal(code('mod:check', { roomId: 'lobby', text: 'x'.repeat(10_001) }), 'invalid_payload');
    assert.equal(code('mod:check', null), 'invalid_payload');
    assert.equal(code('mod:nope', {}), 'unknown_event');
    p.host.kvFailure = { code: 'unavailable', message: 'down' };
    try {
      assert.deepEqual(p.event('sA', 'x', 'mod:list', { roomId: 'lobby' }), { ok: false, error: { code: 'unavailable', message: 'down' } });
    } finally {
      p.host.kvFailure = null;
    }
  });
});

// ---- the SDKs themselves, one probe guest per language ------------------------

for (const lang of ['js', 'py']) {
  describe(`guest SDK (${lang})`, () => {
    let p;
    before(async () => {
      p = await loadPlugin(join(dist, `sdk-probe/sdk-probe-${lang}.wasm`));
      p.host.join('s1', 'r');
    });

    test('manifest: events from the handlers, presence hook declared', () => {
      const m = p.manifest();
      assert.equal(m.name, `sdk-probe-${lang}`);
      assert.ok(m.events.includes('probe:kv') && m.events.includes('probe:*'), JSON.stringify(m.events));
      assert.deepEqual(m.hooks, { connect: false, disconnect: false, presence: true });
    });

    test('kv wrappers: JSON values, negative list indexes, trim, hashes', () => {
      const a = p.event('s1', 'u', 'probe:kv', {});
      assert.deepEqual(a.data, {
        incr: 2,
        range: ['c', 'd'],
        rangePos: ['b', 'c'],
        rangeMixed: ['c', 'd'],
        rangeEmpty: [],
        ...(lang === 'js' ? {} : { missing: null }),
        json: { a: [1, 2] },
        trimmed: ['c', 'd'],
        hash: [['f', { x: 1 }]],
        del: true,
      });
      assert.deepEqual(p.host.kv.get('l').value, ['"c"', '"d"'], 'list items are stored as JSON');
    });

    test('negative incr: Python passes it; JS refuses it with an error instead of trapping', () => {
      const a = p.event('s1', 'u', 'probe:incr-negative', {});
      if (lang === 'py') assert.equal(a.ok, true);
      else assert.equal(a.error.code, 'unsupported');
      assert.equal(p.event('s1', 'u', 'probe:none', {}).ok, true, 'the instance is still alive');
    });

    test('errors: PluginError, host error forwarded, a bug becomes `internal` and is logged', () => {
      assert.deepEqual(p.event('s1', 'u', 'probe:throw', {}), { ok: false, error: { code: 'custom_code', message: 'custom message' } });
      p.host.kvFailure = { code: 'unavailable', message: 'down' };
      try {
        assert.deepEqual(p.event('s1', 'u', 'probe:host-error', {}), { ok: false, error: { code: 'unavailable', message: 'down' } });
      } finally {
        p.host.kvFailure = null;
      }
      const bug = p.event('s1', 'u', 'probe:bug', {});
      assert.equal(bug.error.code, 'internal');
      assert.ok(p.host.logs.some((l) => l.level === 'error' && l.message.includes('probe:bug')), JSON.stringify(p.host.logs));
      assert.deepEqual(p.event('s1', 'u', 'probe:none', {}), { ok: true });
    });

    test('routing: exact names first, then the pattern; undefined/None acks without data', () => {
      assert.deepEqual(p.event('s1', 'u', 'probe:other', {}).data, { fallback: 'probe:other' });
      assert.deepEqual(p.event('s1', 'u', 'probe:none', {}), { ok: true });
    });

    test('emit, rooms, presence, clock, log, ctx and payload validation', () => {
      p.host.takeEmitted();
      const a = p.event('s1', 'alice', 'probe:misc', { a: 'x', c: null, extra: 1 });
      assert.deepEqual(a.data, {
        now: 1_732_900_000_000,
        has: true,
        members: ['s1'],
        snapshot: [],
        user: 'alice',
        payload: lang === 'js' ? { a: 'x', c: null } : { a: 'x', b: null, c: null },
      });
      assert.deepEqual(p.host.takeEmitted(), [
        { kind: 'socket', target: 's1', event: 'probe:to-socket', payload: { n: 1 } },
        { kind: 'all', event: 'probe:all', payload: [1, 'two'] },
      ]);
      assert.ok(p.host.logs.some((l) => l.level === 'info' && l.message === 'probe log'));
      assert.deepEqual(p.event('s1', undefined, 'probe:misc', ['x', 7, { z: 1 }]).data.payload, { a: 'x', b: 7, c: { z: 1 } }, 'positional form');
      assert.equal(p.event('s1', undefined, 'probe:misc', { a: 'x' }).error.code, 'invalid_payload', '`any` fields are required');
      assert.equal(p.event('s1', undefined, 'probe:misc', { a: 'x', b: -1, c: 0 }).error.code, 'invalid_payload');
      assert.equal(p.event('s1', undefined, 'probe:misc', { a: 'x', b: true, c: 0 }).error.code, 'invalid_payload');
      assert.equal(p.event('s1', undefined, 'probe:misc', ['x', 1]).error.code, 'invalid_payload');
    });

    test('presence hook gets the decoded event', () => {
      p.raw.onPresence(JSON.stringify({ type: 'join', roomId: 'r' }));
      assert.ok(p.host.logs.some((l) => l.message.startsWith('presence ') && l.message.includes('join')), JSON.stringify(p.host.logs));
    });
  });
}

// ---- what each component imports and exports ----------------------------------

/** The WASI interfaces rtm-host links (WASI p2, no wasi:http): package names. */
const HOST_WASI = new Set(['wasi:io', 'wasi:clocks', 'wasi:random', 'wasi:cli', 'wasi:filesystem', 'wasi:sockets']);

function witSurface(path) {
  const wit = execFileSync(process.execPath, [join(repo, 'guest-sdk/js/node_modules/@bytecodealliance/jco/dist/jco.js'), 'wit', path], {
    encoding: 'utf8',
    maxBuffer: 16 << 20,
  });
  const imports = [...wit.matchAll(/^\s{2}import ([^;\s]+);/gm)].map((m) => m[1]);
  const exports = [...wit.matchAll(/^\s{2}export ([^;:\s]+(?::[^;\s]+)?)[;:]/gm)].map((m) => m[1]);
  return { imports, exports };
}

for (const name of ['chat-js', 'spin-js', 'moderation-py', 'membomb-py']) {
  test(`${name}.wasm imports only rtm:plugin/*@0.1.0 and host-linked WASI 0.2, exports the handler`, () => {
    const { imports, exports } = witSurface(join(dist, `${name}.wasm`));
    const rtm = imports.filter((i) => i.startsWith('rtm:'));
    const wasi = imports.filter((i) => i.startsWith('wasi:'));
    assert.deepEqual(imports.filter((i) => !i.startsWith('rtm:') && !i.startsWith('wasi:')), []);
    assert.ok(rtm.every((i) => /^rtm:plugin\/[a-z-]+@0\.1\.0$/.test(i)), rtm.join(' '));
    for (const i of wasi) {
      assert.match(i, /^wasi:[a-z-]+\/[a-z-]+@0\.2\.\d+$/);
      assert.ok(HOST_WASI.has(i.split('/')[0]), `${i} is not linked by the host`);
    }
    assert.ok(exports.includes('rtm:plugin/handler@0.1.0'), exports.join(' '));
    // componentize-py also exports its pre-initialization hook (`exports`, with `init`).
    const allowed = name.endsWith('-py') ? ['rtm:plugin/handler@0.1.0', 'exports'] : ['rtm:plugin/handler@0.1.0'];
    assert.deepEqual(exports.filter((e) => !allowed.includes(e)), []);
  });
}
