-- Refresh many registrations in one step, of one tenant or of several (the keys of each
-- entry are passed in full). KEYS: per entry its conn hash, then its by-last-seen zset.
-- ARGV: ttl_ms, then per entry its owning socket id and its seen member ('<id> <room> <user>').
-- Returns one integer per entry: its epoch (refreshed), -epoch (owned by another socket), 0 (gone).
local now = now_ms()
local out = {}
for e = 1, #KEYS / 2 do
  local hkey, seen = KEYS[2 * e - 1], KEYS[2 * e]
  local cur = redis.call('HMGET', hkey, 'owner', 'epoch')
  if not cur[2] then
    out[e] = 0
  elseif cur[1] ~= ARGV[2 * e] then
    out[e] = -tonumber(cur[2])
  else
    redis.call('PEXPIRE', hkey, ARGV[1])
    -- XX: a refresh never adds an entry (the occupancy count is moved only by joins).
    redis.call('ZADD', seen, 'XX', now, ARGV[2 * e + 1])
    out[e] = tonumber(cur[2])
  end
end
return out
