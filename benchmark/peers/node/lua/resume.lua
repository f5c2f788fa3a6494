-- Take a registration over for a reconnected socket.
-- KEYS: conn hash, room set, seen zset.
-- ARGV: prefix, connId, roomId, userId, epoch, owner, node, ttlMs, seenMember, state ('' = keep).
-- Returns {0} when there is nothing to resume (gone, other room or user, or the stored
-- epoch is newer than the sent one), else {1, stateChanged (1/0), epoch, state, rows}.
local cur = redis.call('HMGET', KEYS[1], 'roomId', 'userId', 'epoch', 'state')
if not cur[3] or cur[1] ~= ARGV[3] or cur[2] ~= ARGV[4] or tonumber(cur[3]) > tonumber(ARGV[5]) then
  return {0}
end
local now = now_ms()
local epoch = tonumber(cur[3]) + 1
local state, changed = cur[4], 0
if ARGV[10] ~= '' and ARGV[10] ~= cur[4] then state, changed = ARGV[10], 1 end
redis.call('HSET', KEYS[1], 'state', state, 'epoch', epoch, 'lastSeen', now,
  'node', ARGV[7], 'owner', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[8])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], now, ARGV[9])
return {1, changed, epoch, state, room_rows(ARGV[1], KEYS[2])}
