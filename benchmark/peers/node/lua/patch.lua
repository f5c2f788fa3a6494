-- Write a merged state under an epoch compare-and-set, and refresh the registration.
-- KEYS: conn hash, seen zset.
-- ARGV: owner, epoch ('' when the client sent none), ttlMs, seenMember, merged state JSON.
-- Returns {0} gone, {-1, storedEpoch} stale or fenced (nothing written), {1, newEpoch}.
local cur = redis.call('HMGET', KEYS[1], 'owner', 'epoch')
if not cur[2] then return {0} end
local stored = tonumber(cur[2])
if cur[1] ~= ARGV[1] or (ARGV[2] ~= '' and tonumber(ARGV[2]) < stored) then
  return {-1, stored}
end
local now = now_ms()
redis.call('HSET', KEYS[1], 'state', ARGV[5], 'epoch', stored + 1, 'lastSeen', now)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], now, ARGV[4])
return {1, stored + 1}
