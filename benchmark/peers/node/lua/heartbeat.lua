-- Refresh TTL and lastSeen of one or more registrations of one socket.
-- KEYS: seen zset, then one conn hash per registration.
-- ARGV: owner, ttlMs, then the seen member of each registration (same order as KEYS).
-- Returns one integer per registration: its epoch (refreshed), -epoch (another socket
-- owns it now: this one is fenced), 0 (gone).
local now = now_ms()
local out = {}
for i = 2, #KEYS do
  local cur = redis.call('HMGET', KEYS[i], 'owner', 'epoch')
  if not cur[2] then
    out[i - 1] = 0
  elseif cur[1] ~= ARGV[1] then
    out[i - 1] = -tonumber(cur[2])
  else
    redis.call('HSET', KEYS[i], 'lastSeen', now)
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
    redis.call('ZADD', KEYS[1], now, ARGV[i + 1])
    out[i - 1] = tonumber(cur[2])
  end
end
return out
