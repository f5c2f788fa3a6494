-- Remove lapsed registrations. KEYS: seen zset. ARGV: prefix, ttlMs, lookbackMs, limit.
-- Read and delete happen in this one atomic step (compare-and-delete: an entry a
-- heartbeat refreshed first is skipped, and one removed here is returned to exactly one
-- caller cluster-wide). Returns flat: connId, roomId, userId, epoch (0 if the hash had
-- already expired), ...
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
    local cur = redis.call('HMGET', key, 'epoch', 'lastSeen', 'roomId', 'userId')
    if not cur[1] then
      redis.call('ZREM', KEYS[1], m)
      redis.call('SREM', ARGV[1] .. 'room:' .. room, id)
      out[#out + 1] = id; out[#out + 1] = room; out[#out + 1] = user; out[#out + 1] = 0
    elseif cur[3] ~= room or cur[4] ~= user then
      -- A leftover member from before a re-join as another user.
      redis.call('ZREM', KEYS[1], m)
    elseif tonumber(cur[2]) < now - lookback then
      redis.call('DEL', key)
      redis.call('ZREM', KEYS[1], m)
      redis.call('SREM', ARGV[1] .. 'room:' .. room, id)
      out[#out + 1] = id; out[#out + 1] = room; out[#out + 1] = user; out[#out + 1] = tonumber(cur[1])
    else
      redis.call('ZADD', KEYS[1], tonumber(cur[2]), m)
    end
  end
end
return out
