-- Remove a registration its owner still holds (compare-and-delete on the owner).
-- KEYS: conn hash, room set, seen zset. ARGV: owner, connId, seenMember.
-- Returns the removed registration's epoch, or 0 when nothing was removed.
local cur = redis.call('HMGET', KEYS[1], 'owner', 'epoch')
if not cur[2] or cur[1] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[3])
return tonumber(cur[2])
