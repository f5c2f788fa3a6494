-- Every kv write of one plugin, with its quota kept in the same atomic step.
-- KEYS: the data key, the sizes hash (data key -> bytes counted), the totals hash
-- (fields bytes, keys), the expiry zset (data key by expiry, ms).
-- ARGV: op, plugin key length, max_bytes, max_keys (0: no limit), then the op's args:
--   set value ttl_ms('' none) | del | incr by | push value cap | trim start stop
--   | hset field value
-- Returns {1, result} or {0, 'bytes'|'keys'} when the write would break the quota (then
-- nothing was written). Bytes of a key: the plugin's key plus every value (list items,
-- hash fields and values). Keys that expired are uncounted first, so an expired value
-- never holds quota.
local data, sizes, totals, exp = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local op, klen = ARGV[1], tonumber(ARGV[2])
local max_bytes, max_keys = tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function uncount(key)
  local size = tonumber(redis.call('HGET', sizes, key) or '0')
  if redis.call('HDEL', sizes, key) == 1 then
    redis.call('HINCRBY', totals, 'bytes', -size)
    redis.call('HINCRBY', totals, 'keys', -1)
  end
end

-- The expiry zset is exact (every write of a key with a TTL records it, every other
-- write of the key removes it), so an entry due before now is a key Redis has expired:
-- uncounted from the zset alone, without touching the key (a script may only touch the
-- keys it declares).
for _, key in ipairs(redis.call('ZRANGEBYSCORE', exp, '-inf', '(' .. now)) do
  if key ~= data then
    uncount(key)
    redis.call('ZREM', exp, key)
  end
end

local exists = redis.call('EXISTS', data) == 1
if not exists then
  uncount(data)
  redis.call('ZREM', exp, data)
end
local old = tonumber(redis.call('HGET', sizes, data) or '0')
local bytes = tonumber(redis.call('HGET', totals, 'bytes') or '0')
local keys = tonumber(redis.call('HGET', totals, 'keys') or '0')

-- Whether the data key may become `new` bytes (nil: it is removed).
local function fits(new)
  if new == nil then return nil end
  if max_bytes > 0 and bytes - old + new > max_bytes then return 'bytes' end
  if not exists and max_keys > 0 and keys + 1 > max_keys then return 'keys' end
  return nil
end

local function record(new)
  if new == nil then
    if exists then uncount(data) end
    redis.call('ZREM', exp, data)
    return
  end
  redis.call('HSET', sizes, data, new)
  redis.call('HINCRBY', totals, 'bytes', new - old)
  if not exists then redis.call('HINCRBY', totals, 'keys', 1) end
end

local function sum(items)
  local n = 0
  for _, v in ipairs(items) do n = n + #v end
  return n
end

if op == 'set' then
  local new = klen + #ARGV[5]
  local over = fits(new)
  if over then return {0, over} end
  if ARGV[6] == '' then
    redis.call('SET', data, ARGV[5])
    redis.call('ZREM', exp, data)
  else
    redis.call('SET', data, ARGV[5], 'PX', ARGV[6])
    redis.call('ZADD', exp, now + tonumber(ARGV[6]), data)
  end
  record(new)
  return {1, 'OK'}
elseif op == 'del' then
  local n = redis.call('DEL', data)
  record(nil)
  return {1, n}
elseif op == 'incr' then
  local r = redis.call('INCRBY', data, ARGV[5])
  local new = klen + redis.call('STRLEN', data)
  local over = fits(new)
  if over then
    if exists then redis.call('DECRBY', data, ARGV[5]) else redis.call('DEL', data) end
    return {0, over}
  end
  record(new)
  return {1, r}
elseif op == 'push' then
  local len, cap = redis.call('LLEN', data), tonumber(ARGV[6])
  local drop = 0
  if cap > 0 and len + 1 > cap then drop = len + 1 - cap end
  local dropped = 0
  if drop > 0 then dropped = sum(redis.call('LRANGE', data, 0, drop - 1)) end
  local base = old
  if not exists then base = klen end
  local new = base + #ARGV[5] - dropped
  local over = fits(new)
  if over then return {0, over} end
  len = redis.call('RPUSH', data, ARGV[5])
  if drop > 0 then
    redis.call('LTRIM', data, drop, -1)
    len = len - drop
  end
  record(new)
  return {1, len}
elseif op == 'trim' then
  if not exists then return {1, 'OK'} end
  local kept = redis.call('LRANGE', data, ARGV[5], ARGV[6])
  redis.call('LTRIM', data, ARGV[5], ARGV[6])
  if #kept == 0 then record(nil) else record(klen + sum(kept)) end
  return {1, 'OK'}
elseif op == 'hset' then
  local field, value = ARGV[5], ARGV[6]
  local had = redis.call('HEXISTS', data, field) == 1
  local old_field = 0
  if had then old_field = #field + redis.call('HSTRLEN', data, field) end
  local base = old
  if not exists then base = klen end
  local new = base - old_field + #field + #value
  local over = fits(new)
  if over then return {0, over} end
  redis.call('HSET', data, field, value)
  record(new)
  return {1, 'OK'}
end
return redis.error_reply('unknown kv op ' .. op)
