-- Join, or re-join from the socket that holds the registration.
-- KEYS: conn hash, room set, seen zset.
-- ARGV: prefix, connId, roomId, userId, owner, node, ttlMs, seenMember, state ('' = keep).
-- Returns {-1} when another socket owns the registration (it was resumed elsewhere),
-- else {created (1/0), epoch, state, rows}.
local now = now_ms()
local cur = redis.call('HMGET', KEYS[1], 'owner', 'epoch', 'roomId', 'userId', 'state')
local created, epoch, state = 1, 1, ARGV[9]
if cur[2] then
  if cur[1] ~= ARGV[5] or cur[3] ~= ARGV[3] then return {-1} end
  created, epoch = 0, tonumber(cur[2]) + 1
  if cur[4] ~= ARGV[4] then
    redis.call('ZREM', KEYS[3], ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. cur[4])
  end
  if state == '' then state = cur[5] end
elseif state == '' then
  state = '{}'
end
redis.call('HSET', KEYS[1], 'roomId', ARGV[3], 'userId', ARGV[4], 'state', state,
  'epoch', epoch, 'lastSeen', now, 'node', ARGV[6], 'owner', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], now, ARGV[8])
return {created, epoch, state, room_rows(ARGV[1], KEYS[2])}
