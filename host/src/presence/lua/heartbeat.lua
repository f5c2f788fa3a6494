-- Refresh many registrations in one step. KEYS: seen zset, then one conn hash per entry.
-- ARGV: ttl_ms, then per entry its owning socket id and its seen member ('<id> <room> <user>').
-- Returns one integer per entry: its epoch (refreshed), -epoch (owned by another socket), 0 (gone).
local now = now_ms()
local out = {}
for i = 2, #KEYS do
  local cur = redis.call('HMGET', KEYS[i], 'owner', 'epoch')
  if not cur[2] then
    out[i - 1] = 0
  elseif cur[1] ~= ARGV[2 * i - 2] then
    out[i - 1] = -tonumber(cur[2])
  else
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
    redis.call('ZADD', KEYS[1], now, ARGV[2 * i - 1])
    out[i - 1] = tonumber(cur[2])
  end
end
return out
