// rtm's PROTOCOL.md presence + chat contract on socket.io 4.8, ioredis and
// @socket.io/redis-adapter: the Node.js reference rtm-bench compares rtm-host against.
// Redis is required (REDIS_URL). See README.md.
import { createServer } from 'node:http';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';

import { Server } from 'socket.io';
import { Redis } from 'ioredis';
import { createAdapter } from '@socket.io/redis-adapter';

import { Presence, definePresenceScripts } from './presence.mjs';
import { Chat } from './chat.mjs';
import { refuseUnknownEvents } from './protocol.mjs';

// --- configuration (the same variables and defaults as rtm-host) ------------------------

const env = process.env;
const LEVELS = { error: 0, warn: 1, info: 2, debug: 3 };
const level = LEVELS[env.LOG_LEVEL ?? 'info'] ?? LEVELS.info;
const log = Object.fromEntries(
  Object.keys(LEVELS).map((name) => [
    name,
    LEVELS[name] <= level ? (msg) => console.error(`${new Date().toISOString()} ${name} ${msg}`) : () => {},
  ]),
);

function fatal(message) {
  console.error(message);
  process.exit(2);
}

function int(name, fallback, min, max) {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) fatal(`invalid ${name}: ${raw} (expected an integer in ${min}..${max})`);
  return n;
}

const ttlMs = int('PRESENCE_TTL_MS', 30_000, 100, 86_400_000);
const config = {
  port: int('PORT', 3000, 0, 65_535),
  bindAddr: env.BIND_ADDR || '0.0.0.0',
  redisUrl: env.REDIS_URL,
  redisTimeoutMs: int('REDIS_TIMEOUT_MS', 1000, 1, 600_000),
  ttlMs,
  reaperIntervalMs: int('PRESENCE_REAPER_INTERVAL_MS', 3000, 10, 3_600_000),
  lookbackMs: int('PRESENCE_REAPER_LOOKBACK_MS', 2 * ttlMs, ttlMs, 172_800_000),
  maxStateBytes: int('PRESENCE_MAX_STATE_BYTES', 4096, 2, 1_048_576),
  maxIdLen: int('PRESENCE_MAX_ID_LEN', 128, 1, 1024),
  resumeGraceMs: int('PRESENCE_RESUME_GRACE_MS', 0, 0, 3_600_000),
  prefix: env.PRESENCE_PREFIX || 'prs:',
  chatPrefix: env.CHAT_PREFIX || 'chat:',
  pingIntervalMs: int('SOCKETIO_PING_INTERVAL_MS', 15_000, 1, 3_600_000),
  pingTimeoutMs: int('SOCKETIO_PING_TIMEOUT_MS', 10_000, 1, 3_600_000),
  maxPayloadBytes: int('SOCKETIO_MAX_PAYLOAD_BYTES', 1_048_576, 1, 1_073_741_824),
  shutdownTimeoutMs: int('SHUTDOWN_TIMEOUT_MS', 5000, 0, 600_000),
};
if (!config.redisUrl) fatal('REDIS_URL is required (this server keeps presence and chat in Redis)');
const node = env.NODE_ID || `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;

// --- Redis -------------------------------------------------------------------------------

// Commands: auto-pipelined (everything issued in one tick goes out in one write), failing
// fast as `unavailable` rather than queueing while Redis is away.
const redis = new Redis(config.redisUrl, {
  enableAutoPipelining: true,
  maxRetriesPerRequest: 1,
  commandTimeout: config.redisTimeoutMs,
  connectionName: `rtm-node:${node}`,
});
definePresenceScripts(redis);
// The adapter's pair: publishes, and a connection in subscriber mode.
const pub = redis.duplicate({ connectionName: `rtm-node-pub:${node}`, commandTimeout: undefined });
const sub = redis.duplicate({
  connectionName: `rtm-node-sub:${node}`,
  commandTimeout: undefined,
  enableAutoPipelining: false,
});
for (const [name, client] of Object.entries({ redis, pub, sub })) {
  client.on('error', (err) => log.warn(`redis (${name}): ${err.message}`));
}
// The adapter publishes without awaiting; a publish failing while Redis is away must not
// take the process down.
process.on('unhandledRejection', (err) => log.error(`unhandled rejection: ${err?.stack ?? err}`));

try {
  await Promise.all([redis.ping(), pub.ping(), sub.ping()]);
} catch (err) {
  fatal(`cannot reach Redis at ${config.redisUrl}: ${err.message}`);
}

// --- HTTP + Socket.IO ----------------------------------------------------------------------

let draining = false;
const http = createServer((req, res) => {
  const path = req.url.split('?', 1)[0];
  if (req.method !== 'GET') return res.writeHead(405).end();
  if (path === '/healthz') return res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
  if (path === '/readyz') {
    const ready = !draining && redis.status === 'ready' && sub.status === 'ready';
    return res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'not ready\n');
  }
  if (path === '/metrics') {
    const body = [
      '# TYPE rtm_connections gauge',
      `rtm_connections ${io.engine.clientsCount}`,
      '# TYPE rtm_presence_local_registrations gauge',
      `rtm_presence_local_registrations ${presence.localRegistrations}`,
      '# TYPE rtm_presence_reaped_total counter',
      `rtm_presence_reaped_total ${presence.reaped}`,
      '',
    ].join('\n');
    return res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(body);
  }
  res.writeHead(404).end();
});

const io = new Server(http, {
  serveClient: false,
  transports: ['polling', 'websocket'],
  pingInterval: config.pingIntervalMs,
  pingTimeout: config.pingTimeoutMs,
  maxHttpBufferSize: config.maxPayloadBytes,
  adapter: createAdapter(pub, sub),
});

const presence = new Presence({ io, redis, config, node, log });
const chat = new Chat({ io, redis, presence, config, log });

io.use((_socket, next) => (draining ? next(new Error('unavailable')) : next()));
io.on('connection', (socket) => {
  refuseUnknownEvents(socket);
  presence.bind(socket);
  chat.bind(socket);
});

presence.startReaper();

http.listen(config.port, config.bindAddr, () => {
  const { port } = http.address();
  console.log(`rtm-host listening on http://${config.bindAddr}:${port}`);
});

// --- drain on SIGTERM / SIGINT ---------------------------------------------------------------

async function shutdown(signal) {
  if (draining) return;
  draining = true;
  log.info(`${signal}: draining`);
  setTimeout(() => {
    log.warn(`drain did not finish in ${config.shutdownTimeoutMs} ms; exiting`);
    process.exit(1);
  }, config.shutdownTimeoutMs).unref();
  http.close(); // no new connections
  // Every socket disconnects; presence removes its registrations and announces the leaves
  // to the other nodes through the adapter.
  await presence.drain(() => io.local.disconnectSockets(true));
  log.debug('registrations removed');
  io.engine.close();
  // quit() bypasses the auto-pipeline queue: flush what is still queued there (the last
  // leave broadcasts) before closing.
  await Promise.allSettled([redis.ping(), pub.ping()]);
  await Promise.allSettled([redis.quit(), pub.quit(), sub.quit()]);
  log.debug('redis closed');
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
