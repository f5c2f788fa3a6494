-- Refresh many registrations in one step. KEYS: seen zset, then one conn hash per entry.
-- ARGV: ttl_ms, then the owning socket id for each conn hash.
-- Returns one integer per entry: its epoch (refreshed), -epoch (owned by another socket), 0 (gone).
local now = now_ms()
local out = {}
for i = 2, #KEYS do
  local cur = redis.call('HMGET', KEYS[i], 'owner', 'epoch', 'id', 'room', 'user')
  if not cur[2] then
    out[#out + 1] = 0
  elseif cur[1] ~= ARGV[i] then
    out[#out + 1] = -tonumber(cur[2])
  else
    redis.call('HSET', KEYS[i], 'seen', now)
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
    redis.call('ZADD', KEYS[1], now, member(cur[3], cur[4], cur[5]))
    out[#out + 1] = tonumber(cur[2])
  end
end
return out
