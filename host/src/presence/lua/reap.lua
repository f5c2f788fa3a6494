-- Remove lapsed registrations. KEYS: seen zset. ARGV: prefix, ttl_ms, lookback_ms, limit.
-- Read and delete happen in this one atomic step, so a racing heartbeat either refreshed
-- the entry first (and it is skipped) or comes after (and finds it gone); each removal is
-- returned to exactly one node. Returns {id, room, user, epoch (0 if expired), hash} items.
-- The score is lastSeen: a live hash is removed once it is older than the lookback.
local now = now_ms()
local ttl, lookback = tonumber(ARGV[2]), tonumber(ARGV[3])
local cutoff = now - math.min(ttl, lookback)
local out = {}
local cands = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. cutoff, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[4]))
for k = 1, #cands, 2 do
  local m, seen = cands[k], tonumber(cands[k + 1])
  local id, room, user = string.match(m, '^(%S+) (%S+) (%S+)$')
  if not id then
    redis.call('ZREM', KEYS[1], m)
  else
    local key = ARGV[1] .. 'conn:' .. id
    local cur = redis.call('HMGET', key, 'epoch', 'room', 'user')
    if not cur[1] then
      redis.call('ZREM', KEYS[1], m)
      redis.call('SREM', ARGV[1] .. 'room:' .. room, id)
      out[#out + 1] = {id, room, user, 0, {}}
    elseif cur[2] ~= room or cur[3] ~= user then
      redis.call('ZREM', KEYS[1], m)
    elseif seen < now - lookback then
      local h = with_seen(redis.call('HGETALL', key), KEYS[1], id, room)
      redis.call('DEL', key)
      redis.call('ZREM', KEYS[1], m)
      redis.call('SREM', ARGV[1] .. 'room:' .. room, id)
      out[#out + 1] = {id, room, user, tonumber(cur[1]), h}
    end
  end
end
return out
