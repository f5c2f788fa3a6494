-- Join or re-join. KEYS: conn hash, room set, seen zset.
-- ARGV: prefix, id, room, user, owner, node, ttl_ms, replace_state ('1'/'0'), state pairs...
-- Returns {-1} when another socket owns the registration, else {created, hash, snapshot}.
local now = now_ms()
local cur = redis.call('HMGET', KEYS[1], 'owner', 'room', 'user', 'epoch')
local epoch, created = 1, 1
if cur[4] then
  if cur[1] ~= ARGV[5] or cur[2] ~= ARGV[3] then return {-1} end
  epoch = tonumber(cur[4]) + 1
  created = 0
  if cur[3] ~= ARGV[4] then redis.call('ZREM', KEYS[3], member(ARGV[2], cur[2], cur[3])) end
  if ARGV[8] == '1' then clear_state(KEYS[1]) end
end
redis.call('HSET', KEYS[1], 'id', ARGV[2], 'room', ARGV[3], 'user', ARGV[4], 'owner', ARGV[5],
  'node', ARGV[6], 'epoch', epoch, 'seen', now)
set_pairs(KEYS[1], 9)
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], now, member(ARGV[2], ARGV[3], ARGV[4]))
return {created, redis.call('HGETALL', KEYS[1]), room_snapshot(ARGV[1], KEYS[2])}
