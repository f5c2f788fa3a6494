/**
 * Per-tenant JWT authentication end-to-end (PROTOCOL.md "Authentication",
 * and the details pinned for issue 11), with real tokens signed here by
 * `node:crypto` (no JWT library) against spawned `rtm-host` processes
 * started with a tenants file.
 *
 * What is pinned:
 * 1. HS256: a valid token connects and `presence:join` takes the user from
 *    `sub`; every refusal (missing, malformed, bad signature, expired, `nbf`
 *    ahead, wrong or missing `aud`/`iss`, `alg: none`, another tenant's key,
 *    ...) is a `connect_error` `unauthorized` and registers nothing; a
 *    `userId` other than `sub` and a room outside `rooms` are `forbidden`,
 *    `prefix*` patterns allow; `info` is shown to other members; an expiring
 *    token disconnects its socket (its member leaves) unless `auth:refresh`
 *    came in time; `?token=` in the query works for a client without `auth`;
 * 2. PEM public keys (RS256, ES256, EdDSA): valid tokens connect; another
 *    key, the wrong signature encoding, another algorithm and the algorithm
 *    confusion (HS256 keyed with the public key PEM) are refused;
 * 3. JWKS served by a local `node:http` server: a kid in the set is accepted,
 *    rotation is followed (a new kid is accepted, a removed one refused), an
 *    unknown kid refetches at most once per `jwks_refetch_min_s`, an
 *    unreachable JWKS refuses.
 *
 * Not covered here: a python-socketio client (no suite uses python-socketio
 * and it is not installed; adding it would be a new dependency).
 *
 * "Nothing registered" is checked through `/admin/tenants`: the tenant's
 * connection count returns to the sockets still open (a refused socket that
 * stayed counted never gets there).
 */

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { join } from 'node:path';
import {
  Harness,
  base64url,
  freePort,
  makeKeyPair,
  nowSeconds,
  show,
  signJwt,
  uid,
  waitConnections,
  waitUntil,
  writeTenantsFile,
  scratchSpace,
} from './support.mjs';

const TEST_TIMEOUT = { timeout: 120_000 };

/**
 * Lifetime of the tokens that are meant to expire during a test: long
 * enough to connect and join on a busy machine, short enough to wait for.
 */
const SHORT_LIFE_S = 3;
/** How long after its `exp` an expired socket may take to go (bounded, never asserted). */
const EXPIRY_DEADLINE_MS = SHORT_LIFE_S * 1000 + 30_000;
/**
 * Slack on "not disconnected before exp": the host may round to whole
 * seconds, but a socket closed more than this before its token's `exp` was
 * closed while the token was still valid.
 */
const EARLY_SLACK_MS = 500;

const space = scratchSpace();

/** Writes a tenants file into a fresh temporary folder (removed at the end); returns its path. */
const tenantsFile = (spec) => space.tenantsFile('rtm-auth-', spec);

/** Sockets of `tenant` on `node` the harness still holds open. */
function openSockets(h, node, tenant) {
  return h.clients.filter((c) => c.host === node && c.namespace === `/${tenant}` && c.connected).length;
}

/**
 * The connect must be refused with `unauthorized`, and afterwards the host
 * counts no more sockets of the tenant than are open.
 */
async function refusedUnauthorized(h, node, tenant, options, what) {
  const error = await h.refused(node, { namespace: `/${tenant}`, label: `refused(${what})`, ...options }, 'unauthorized');
  await waitConnections(node, tenant, openSockets(h, node, tenant));
  return error;
}

/** Replaces the claims part of a signed token (the signature no longer matches). */
function withClaims(token, claims) {
  const [head, , signature] = token.split('.');
  return `${head}.${base64url(JSON.stringify(claims))}.${signature}`;
}

// ---------------------------------------------------------------------------
// 1. HS256
// ---------------------------------------------------------------------------

describe('auth: an HS256 tenant', () => {
  const h = new Harness();
  let node;
  const SECRET = randomBytes(32).toString('hex');
  const OTHER_SECRET = randomBytes(32).toString('hex');
  const AUD = 'rtm-hs';
  const ISS = 'https://id.hs.test';
  const rsa = makeKeyPair('rsa');

  before(async () => {
    const file = tenantsFile({
      tenants: [
        { id: 'hs', auth: { hs256_secret: 'env:RTM_T_HS_SECRET', audience: AUD, issuer: ISS, leeway_s: 0 } },
        { id: 'other', auth: { hs256_secret: OTHER_SECRET } },
      ],
    });
    node = await h.startHost('auth-hs', { env: { TENANTS_FILE: file, RTM_T_HS_SECRET: SECRET } });
  });
  after(() => h.stop());
  afterEach(() => h.closeClients());

  /** Claims tenant hs accepts, for `sub`, valid for 10 minutes; `extra` adds or overrides. */
  const claims = (sub, extra = {}) => ({ sub, aud: AUD, iss: ISS, iat: nowSeconds(), exp: nowSeconds() + 600, ...extra });
  /** An HS256 token of tenant hs. */
  const token = (sub, extra = {}, opts = {}) => signJwt(claims(sub, extra), { key: SECRET, ...opts });
  /** Connect options for tenant hs with `token`. */
  const hs = (tok, label = 'hs') => ({ namespace: '/hs', auth: { token: tok }, label });
  /** Barrier markers of tenant hs need a token whose sub is their userId. */
  const marker = () => {
    const userId = uid('barrier-marker');
    return { userId, ...hs(token(userId), 'barrier-marker') };
  };

  it(
    'a valid token connects; presence:join takes userId from sub, and a different userId is forbidden',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('room');
      const observer = await h.connect(node, hs(token('olga'), 'observer'));
      await observer.ok('presence:join', { roomId: room });
      const c = await h.connect(node, hs(token('ursula'), 'ursula'));

      const ack = await c.ok('presence:join', { roomId: room });
      const mine = ack.snapshot.find((m) => m.connId === ack.self.connId);
      assert.equal(mine?.userId, 'ursula', `the member's userId is the token's sub: ${show(ack)}`);
      const seen = await observer.events.waitFor({ type: 'join', connId: ack.self.connId });
      assert.equal(seen.userId, 'ursula', `others see the sub as userId: ${show(seen)}`);

      await c.join(uid('room'), 'ursula');
      const other = uid('room');
      await c.fails('presence:join', { roomId: other, userId: 'mallory' }, 'forbidden');
      await c.fails('presence:join', { roomId: room, userId: 'mallory' }, 'forbidden');
      await c.assertStillServing('after forbidden joins');
      assert.deepEqual(await c.snapshot(other), [], 'a forbidden join registers nothing');
      const snap = await observer.snapshot(room);
      assert.deepEqual(
        snap.map((m) => m.userId).sort(),
        ['olga', 'ursula'],
        `the refused re-join as mallory changed nothing: ${show(snap)}`,
      );
    }),
  );

  /** Each case: connect options (without namespace) that tenant hs must refuse. */
  const REFUSALS = [
    ['no auth at all', () => ({})],
    ['an empty auth object', () => ({ auth: {} })],
    ['an empty token', () => ({ auth: { token: '' } })],
    ['a token that is not a string', () => ({ auth: { token: 12345 } })],
    ['a token that is not a JWT', () => ({ auth: { token: 'not-a-jwt' } })],
    ['three parts of garbage', () => ({ auth: { token: 'abc.def.ghi' } })],
    ['claims that are not JSON', () => ({ auth: { token: signJwt('{not json', { key: SECRET }) } })],
    ['a signature made with another secret', () => ({ auth: { token: token('eve', {}, { key: 'not-the-secret' }) } })],
    ['claims changed after signing', () => ({ auth: { token: withClaims(token('eve'), claims('admin')) } })],
    ['the signature stripped', () => ({ auth: { token: `${token('eve').split('.').slice(0, 2).join('.')}.` } })],
    ['expired a minute ago', () => ({ auth: { token: token('eve', { exp: nowSeconds() - 60 }) } })],
    // leeway_s = 0: no library default (jsonwebtoken's is 60 s) may keep this alive.
    ['expired 5 s ago (leeway_s 0)', () => ({ auth: { token: token('eve', { exp: nowSeconds() - 5 }) } })],
    ['nbf 30 s in the future (leeway_s 0)', () => ({ auth: { token: token('eve', { nbf: nowSeconds() + 30 }) } })],
    ['no exp', () => ({ auth: { token: signJwt({ sub: 'eve', aud: AUD, iss: ISS }, { key: SECRET }) } })],
    ['no sub', () => ({ auth: { token: signJwt({ aud: AUD, iss: ISS, exp: nowSeconds() + 600 }, { key: SECRET }) } })],
    ['a sub that is not a valid userId', () => ({ auth: { token: token('has space') } })],
    ['a wrong aud', () => ({ auth: { token: token('eve', { aud: 'someone-else' }) } })],
    ['no aud (the tenant requires one)', () => ({ auth: { token: token('eve', { aud: undefined }) } })],
    ['a wrong iss', () => ({ auth: { token: token('eve', { iss: 'https://evil.test' }) } })],
    ['no iss (the tenant requires one)', () => ({ auth: { token: token('eve', { iss: undefined }) } })],
    ['alg none, no signature', () => ({ auth: { token: signJwt(claims('eve'), { alg: 'none' }) } })],
    ['alg none over a valid HS256 signature', () => ({ auth: { token: signJwt(claims('eve'), { alg: 'none', signWith: 'HS256', key: SECRET }) } })],
    ['an RS256 token on the HS256 tenant', () => ({ auth: { token: rsa.sign(claims('eve')) } })],
    ["a token signed with tenant other's key", () => ({ auth: { token: token('eve', {}, { key: OTHER_SECRET }) } })],
    ['a bad token in the query', () => ({ query: { token: token('eve', {}, { key: 'not-the-secret' }) } })],
  ];

  for (const [what, options] of REFUSALS) {
    it(
      `refuses ${what}: connect_error unauthorized, nothing registered`,
      TEST_TIMEOUT,
      h.wrap(async () => {
        await refusedUnauthorized(h, node, 'hs', options(), what);
      }),
    );
  }

  it(
    "a token of tenant hs is refused by tenant other (each tenant checks its own key)",
    TEST_TIMEOUT,
    h.wrap(async () => {
      await refusedUnauthorized(h, node, 'other', { auth: { token: token('eve') } }, "hs's token on other");
      // The control: other's own key is accepted there.
      const ok = await h.connect(node, { namespace: '/other', auth: { token: signJwt(claims('otto'), { key: OTHER_SECRET }) } });
      await ok.ok('presence:join', { roomId: uid('other') });
    }),
  );

  it(
    'rooms: exact ids and prefix* patterns allow, any other room is forbidden and registers nothing',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const base = uid('rooms');
      const c = await h.connect(node, hs(token('rita', { rooms: [`${base}-lobby`, `${base}-team-*`] }), 'rita'));
      const free = await h.connect(node, hs(token('fred'), 'unrestricted'));
      for (const room of [`${base}-lobby`, `${base}-team-red`, `${base}-team-blue`]) {
        await c.ok('presence:join', { roomId: room });
      }
      const outside = [`${base}-lobby-2`, `${base}-other`, `x${base}-team-red`, `${base}-team`, base];
      for (const room of outside) {
        await c.fails('presence:join', { roomId: room }, 'forbidden');
        await c.fails('presence:join', { roomId: room, userId: 'rita' }, 'forbidden');
      }
      await c.assertStillServing('after forbidden rooms');
      for (const room of outside) assert.deepEqual(await free.snapshot(room), [], `${room}: nothing registered`);
      assert.equal((await free.snapshot(`${base}-team-red`)).length, 1, 'the allowed pattern room holds rita');
      // A token without `rooms` may join anything.
      await free.ok('presence:join', { roomId: `${base}-other` });
    }),
  );

  it(
    "info from the token is shown to other members, in join acks' snapshots, in snapshots and in presence:event",
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('info');
      const infoA = { name: 'Ann', color: 'teal', tags: ['x', 'y'] };
      const b = await h.connect(node, hs(token('bert'), 'bert (no info)'));
      const bId = (await b.ok('presence:join', { roomId: room })).self.connId;
      const a = await h.connect(node, hs(token('ann', { info: infoA }), 'ann'));
      const aJoin = await a.ok('presence:join', { roomId: room, state: { s: 1 } });
      const aId = aJoin.self.connId;
      const bInA = aJoin.snapshot.find((m) => m.connId === bId);
      assert.ok(bInA, `ann's join ack lists bert: ${show(aJoin.snapshot)}`);
      assert.equal(bInA.info, undefined, `a member whose token had no info carries none: ${show(bInA)}`);

      const event = await b.events.waitFor({ type: 'join', connId: aId });
      assert.deepEqual(event.info, infoA, `the join event carries ann's info: ${show(event)}`);
      assert.deepEqual(event.state, { s: 1 }, 'info is not mixed into state');
      const inB = (await b.snapshot(room)).find((m) => m.connId === aId);
      assert.deepEqual(inB?.info, infoA, `bert's snapshot shows ann's info: ${show(inB)}`);

      const c = await h.connect(node, hs(token('cy', { info: { name: 'Cy' } }), 'cy'));
      const cJoin = await c.ok('presence:join', { roomId: room });
      const aInC = cJoin.snapshot.find((m) => m.connId === aId);
      assert.deepEqual(aInC?.info, infoA, `cy's join ack snapshot shows ann's info: ${show(cJoin.snapshot)}`);
      assert.deepEqual(cJoin.snapshot.find((m) => m.connId === cJoin.self.connId)?.info, { name: 'Cy' });
      assert.deepEqual((await a.events.waitFor({ type: 'join', connId: cJoin.self.connId })).info, { name: 'Cy' });
    }),
  );

  it(
    "when exp passes the socket is disconnected (not before) and its member leaves for the others",
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('expiry');
      const observer = await h.connect(node, hs(token('olga'), 'observer'));
      await observer.ok('presence:join', { roomId: room });
      const exp = nowSeconds() + SHORT_LIFE_S;
      const x = await h.connect(node, hs(token('xena', { exp }), 'expiring'));
      const { self } = await x.ok('presence:join', { roomId: room });
      await observer.events.waitFor({ type: 'join', connId: self.connId });

      await x.waitDisconnected(EXPIRY_DEADLINE_MS);
      const goneAt = Date.now();
      assert.ok(goneAt >= exp * 1000 - EARLY_SLACK_MS, `disconnected ${exp * 1000 - goneAt} ms before the token's exp`);
      const leave = await observer.events.waitFor({ type: 'leave', connId: self.connId });
      assert.equal(leave.userId, 'xena');
      assert.deepEqual((await observer.snapshot(room)).map((m) => m.userId), ['olga']);
      await waitConnections(node, 'hs', openSockets(h, node, 'hs'));
    }),
  );

  it(
    'auth:refresh with a fresh token in time keeps the socket past the first exp (ack { ok, exp })',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('refresh');
      const observer = await h.connect(node, hs(token('olga'), 'observer'));
      await observer.ok('presence:join', { roomId: room });
      const yExp = nowSeconds() + SHORT_LIFE_S;
      // The control expires one second after y's first exp: once it is gone, y's first exp has passed.
      const zExp = yExp + 1;
      const y = await h.connect(node, hs(token('yuri', { exp: yExp }), 'refreshing'));
      const z = await h.connect(node, hs(token('zoe', { exp: zExp }), 'control'));
      const yId = (await y.ok('presence:join', { roomId: room })).self.connId;
      const zId = (await z.ok('presence:join', { roomId: room })).self.connId;

      const newExp = nowSeconds() + 600;
      const ack = await y.ok('auth:refresh', { token: token('yuri', { exp: newExp }) });
      assert.equal(ack.exp, newExp, `the ack carries the new token's exp (seconds): ${show(ack)}`);

      await z.waitDisconnected(EXPIRY_DEADLINE_MS);
      const zGoneAt = Date.now();
      assert.ok(zGoneAt >= zExp * 1000 - EARLY_SLACK_MS, `the control was disconnected ${zExp * 1000 - zGoneAt} ms before its exp`);
      await observer.events.waitFor({ type: 'leave', connId: zId });

      assert.ok(Date.now() > yExp * 1000, "past y's first exp");
      await y.assertStillServing("past the first token's exp, after auth:refresh");
      await h.barrier(room, { nodes: [node], observers: [observer], after: [y], marker });
      observer.events.assertCount((e) => e.connId === yId && (e.type === 'leave' || e.type === 'expire'), 0, 'the refreshed member never left');
      assert.ok((await observer.snapshot(room)).some((m) => m.connId === yId), 'the refreshed member is still in the room');
    }),
  );

  it(
    'auth:refresh for another sub is forbidden, a bad token unauthorized; the socket stays',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const w = await h.connect(node, hs(token('wanda'), 'wanda'));
      const room = uid('refresh-bad');
      await w.ok('presence:join', { roomId: room });
      await w.fails('auth:refresh', { token: token('mallory') }, 'forbidden');
      for (const [what, tok] of [
        ['garbage', 'garbage'],
        ['another secret', token('wanda', {}, { key: 'not-the-secret' })],
        ['an expired token', token('wanda', { exp: nowSeconds() - 60 })],
        ['a wrong aud', token('wanda', { aud: 'someone-else' })],
        ['alg none', signJwt(claims('wanda'), { alg: 'none' })],
        ["tenant other's key", token('wanda', {}, { key: OTHER_SECRET })],
      ]) {
        const ack = await w.fails('auth:refresh', { token: tok }, 'unauthorized');
        assert.equal(ack.exp, undefined, `${what}: a refused refresh carries no exp: ${show(ack)}`);
      }
      await w.assertStillServing('after refused refreshes');
      assert.deepEqual((await w.snapshot(room)).map((m) => m.userId), ['wanda'], 'its registration is untouched');
    }),
  );

  for (const transport of ['websocket', 'polling']) {
    it(
      `?token= in the query works for a client that does not set auth (${transport})`,
      TEST_TIMEOUT,
      h.wrap(async () => {
        const c = await h.connect(node, { namespace: '/hs', query: { token: token('quinn') }, transport, label: 'query' });
        const ack = await c.ok('presence:join', { roomId: uid('query') });
        assert.equal(ack.snapshot.find((m) => m.connId === ack.self.connId)?.userId, 'quinn', show(ack));
        await refusedUnauthorized(h, node, 'hs', { query: { token: 'garbage' }, transport }, `garbage query token over ${transport}`);
      }),
    );
  }
});

// ---------------------------------------------------------------------------
// 2. PEM public keys
// ---------------------------------------------------------------------------

describe('auth: PEM public keys (RS256, ES256, EdDSA)', () => {
  const h = new Harness();
  let node;
  const keys = { rs: makeKeyPair('rsa'), es: makeKeyPair('ec'), ed: makeKeyPair('ed25519') };
  const strangers = { rs: makeKeyPair('rsa'), es: makeKeyPair('ec'), ed: makeKeyPair('ed25519') };

  before(async () => {
    const file = tenantsFile({
      tenants: Object.entries(keys).map(([id, key]) => ({ id, auth: { public_key_pem: key.publicPem } })),
    });
    node = await h.startHost('auth-pem', { env: { TENANTS_FILE: file } });
  });
  after(() => h.stop());
  afterEach(() => h.closeClients());

  const claims = (sub, extra = {}) => ({ sub, exp: nowSeconds() + 600, ...extra });

  for (const id of Object.keys(keys)) {
    it(
      `${keys[id].alg}: a token signed with the configured key connects and joins as its sub`,
      TEST_TIMEOUT,
      h.wrap(async () => {
        const c = await h.connect(node, { namespace: `/${id}`, auth: { token: keys[id].sign(claims('petra')) }, label: id });
        const ack = await c.ok('presence:join', { roomId: uid('pem') });
        assert.equal(ack.snapshot.find((m) => m.connId === ack.self.connId)?.userId, 'petra', show(ack));
      }),
    );

    it(
      `${keys[id].alg}: another key, another algorithm, alg none and HMAC keyed with the public key are refused`,
      TEST_TIMEOUT,
      h.wrap(async () => {
        const pem = keys[id].publicPem;
        const otherAlg = id === 'rs' ? keys.es : keys.rs;
        const cases = [
          ['a stranger key', strangers[id].sign(claims('eve'))],
          ['an expired token', keys[id].sign(claims('eve', { exp: nowSeconds() - 60 }))],
          [`a ${otherAlg.alg} token of another tenant's key`, otherAlg.sign(claims('eve'))],
          ['alg none', signJwt(claims('eve'), { alg: 'none' })],
          // Algorithm confusion: an HS256 token whose HMAC key is the public key PEM the tenant configured.
          ['HS256 keyed with the public key PEM', signJwt(claims('eve'), { alg: 'HS256', key: pem })],
          ['HS256 keyed with the PEM without its trailing newline', signJwt(claims('eve'), { alg: 'HS256', key: pem.trimEnd() })],
          [
            'HS256 keyed with the DER public key',
            signJwt(claims('eve'), { alg: 'HS256', key: keys[id].publicKey.export({ type: 'spki', format: 'der' }) }),
          ],
          ['the right signature under a header claiming HS256', signJwt(claims('eve'), { alg: 'HS256', signWith: keys[id].alg, key: keys[id].privateKey })],
        ];
        if (id === 'es') {
          // JWS ES256 signatures are raw r||s; DER is another encoding and must not verify.
          cases.push(['a DER-encoded ES256 signature', keys.es.sign(claims('eve'), { dsaEncoding: 'der' })]);
        }
        for (const [what, tok] of cases) {
          await refusedUnauthorized(h, node, id, { auth: { token: tok } }, `${id}: ${what}`);
        }
      }),
    );
  }
});

// ---------------------------------------------------------------------------
// 3. JWKS
// ---------------------------------------------------------------------------

describe('auth: JWKS from a local server, with key rotation', () => {
  const h = new Harness();
  let node;
  let jwks;
  /** What each path serves (`{ keys }`), and how often it was fetched. */
  const served = { '/rotating.json': [], '/steady.json': [] };
  const fetches = { '/rotating.json': 0, '/steady.json': 0 };
  const k1 = makeKeyPair('rsa', 'kid-1');
  const k2 = makeKeyPair('ec', 'kid-2');
  const k3 = makeKeyPair('rsa', 'kid-3');

  before(async () => {
    jwks = createServer((req, res) => {
      const path = new URL(req.url, 'http://x').pathname;
      if (!(path in served)) {
        res.writeHead(404).end();
        return;
      }
      fetches[path] += 1;
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ keys: served[path] }));
    });
    await new Promise((res) => jwks.listen(0, '127.0.0.1', res));
    const base = `http://127.0.0.1:${jwks.address().port}`;
    const closedPort = await freePort();
    served['/rotating.json'] = [k1.jwk];
    served['/steady.json'] = [k3.jwk];
    const file = tenantsFile({
      tenants: [
        // Unknown kids refetch at once; the whole set is refetched on use after 1 s.
        { id: 'rot', auth: { jwks_url: `${base}/rotating.json`, jwks_refetch_min_s: 0, jwks_cache_s: 1 } },
        { id: 'steady', auth: { jwks_url: `${base}/steady.json`, jwks_refetch_min_s: 3600, jwks_cache_s: 3600 } },
        { id: 'down', auth: { jwks_url: `http://127.0.0.1:${closedPort}/jwks.json`, jwks_timeout_ms: 1000 } },
      ],
    });
    node = await h.startHost('auth-jwks', { env: { TENANTS_FILE: file } });
  });
  after(async () => {
    await h.stop();
    await new Promise((res) => jwks.close(res));
  });
  afterEach(() => h.closeClients());

  const claims = (sub) => ({ sub, exp: nowSeconds() + 600 });
  const rot = (tok, label) => ({ namespace: '/rot', auth: { token: tok }, label });

  it(
    'a token whose kid is in the set connects; a kid not in the set, or the right kid with another key, is refused',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const c = await h.connect(node, rot(k1.sign(claims('jo')), 'kid-1'));
      const ack = await c.ok('presence:join', { roomId: uid('jwks') });
      assert.equal(ack.snapshot.find((m) => m.connId === ack.self.connId)?.userId, 'jo');
      assert.ok(fetches['/rotating.json'] >= 1, 'the host fetched the JWKS');
      await refusedUnauthorized(h, node, 'rot', { auth: { token: k2.sign(claims('eve')) } }, 'kid-2 not published yet');
      const impostor = makeKeyPair('rsa', 'kid-1');
      await refusedUnauthorized(h, node, 'rot', { auth: { token: impostor.sign(claims('eve')) } }, 'kid-1 signed by another key');
      await refusedUnauthorized(h, node, 'rot', { auth: { token: signJwt(claims('eve'), { alg: 'none', kid: 'kid-1' }) } }, 'alg none');
      await refusedUnauthorized(
        h,
        node,
        'rot',
        { auth: { token: signJwt(claims('eve'), { alg: 'HS256', kid: 'kid-1', key: k1.publicPem }) } },
        'HS256 keyed with the public key',
      );
    }),
  );

  it(
    'rotation: once the JWKS changes, a token with the new kid is accepted and the removed kid is refused',
    TEST_TIMEOUT,
    h.wrap(async () => {
      served['/rotating.json'] = [k2.jwk];
      const fetchedBefore = fetches['/rotating.json'];
      // The new kid: unknown to the cache, so the set is refetched (jwks_refetch_min_s = 0).
      const accepted = await waitUntil(
        async () => {
          const { client, error } = await h.tryConnect(node, rot(k2.sign(claims('kim')), 'kid-2'));
          if (error) {
            assert.equal(error.message, 'unauthorized', `kid-2 before the refetch: ${error.message}`);
            return false;
          }
          return client;
        },
        { timeoutMs: 20_000, intervalMs: 300, what: 'a kid-2 token to be accepted after the rotation' },
      );
      await accepted.ok('presence:join', { roomId: uid('rotated') });
      assert.ok(fetches['/rotating.json'] > fetchedBefore, 'the rotated set was fetched');

      // The removed kid: gone once the cached set is refetched (jwks_cache_s = 1).
      await waitUntil(
        async () => {
          const { client, error } = await h.tryConnect(node, rot(k1.sign(claims('old')), 'kid-1 removed'));
          if (error) return error.message === 'unauthorized';
          client.close();
          return false;
        },
        { timeoutMs: 20_000, intervalMs: 300, what: 'a token with the removed kid-1 to be refused' },
      );
      await waitConnections(node, 'rot', openSockets(h, node, 'rot'));
      // The new key keeps working.
      const again = await h.connect(node, rot(k2.sign(claims('kim')), 'kid-2 again'));
      await again.ok('presence:join', { roomId: uid('rotated') });
    }),
  );

  it(
    'an unknown kid refetches the set at most once per jwks_refetch_min_s',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const c = await h.connect(node, { namespace: '/steady', auth: { token: k3.sign(claims('sam')) }, label: 'kid-3' });
      await c.ok('presence:join', { roomId: uid('steady') });
      const afterFirst = fetches['/steady.json'];
      assert.ok(afterFirst >= 1, 'the set was fetched');
      const ghost = makeKeyPair('rsa', 'kid-ghost');
      for (let i = 0; i < 5; i += 1) {
        await refusedUnauthorized(h, node, 'steady', { auth: { token: ghost.sign(claims('eve')) } }, `unknown kid #${i + 1}`);
      }
      assert.ok(
        fetches['/steady.json'] <= afterFirst + 1,
        `5 unknown-kid connects within jwks_refetch_min_s caused ${fetches['/steady.json'] - afterFirst} refetches (at most 1 allowed)`,
      );
      // The known key still connects from the cache.
      await h.connect(node, { namespace: '/steady', auth: { token: k3.sign(claims('sam')) }, label: 'kid-3 again' });
    }),
  );

  it(
    'a JWKS that cannot be fetched refuses with unauthorized',
    TEST_TIMEOUT,
    h.wrap(async () => {
      await refusedUnauthorized(h, node, 'down', { auth: { token: k1.sign(claims('dan')) } }, 'unreachable JWKS');
    }),
  );
});
