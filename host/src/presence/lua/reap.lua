-- Remove lapsed registrations. KEYS: seen zset. ARGV: prefix, ttl_ms, lookback_ms, limit.
-- Read and delete happen in this one atomic step, so a racing heartbeat either refreshed
-- the entry first (and it is skipped) or comes after (and finds it gone); each removal is
-- returned to exactly one node. Returns {id, room, user, epoch (0 if expired), hash} items.
local now = now_ms()
local ttl, lookback = tonumber(ARGV[2]), tonumber(ARGV[3])
local cutoff = now - math.min(ttl, lookback)
local out = {}
local cands = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. cutoff, 'LIMIT', 0, tonumber(ARGV[4]))
for _, m in ipairs(cands) do
  local id, room, user = string.match(m, '^(%S+) (%S+) (%S+)$')
  if not id then
    redis.call('ZREM', KEYS[1], m)
  else
    local key = ARGV[1] .. 'conn:' .. id
    local cur = redis.call('HMGET', key, 'epoch', 'seen', 'room', 'user')
    if not cur[1] then
      redis.call('ZREM', KEYS[1], m)
      redis.call('SREM', ARGV[1] .. 'room:' .. room, id)
      out[#out + 1] = {id, room, user, 0, {}}
    elseif cur[3] ~= room or cur[4] ~= user then
      redis.call('ZREM', KEYS[1], m)
    elseif tonumber(cur[2]) < now - lookback then
      local h = redis.call('HGETALL', key)
      redis.call('DEL', key)
      redis.call('ZREM', KEYS[1], m)
      redis.call('SREM', ARGV[1] .. 'room:' .. room, id)
      out[#out + 1] = {id, room, user, tonumber(cur[1]), h}
    else
      redis.call('ZADD', KEYS[1], tonumber(cur[2]), m)
    end
  end
end
return out
