-- Remove a registration its owner holds (compare-and-delete). KEYS: conn hash, room set,
-- seen zset, the room's occupancy hash. ARGV: owner, room, epoch ('' for any).
-- Returns {0} when not removed, else {1, hash, moves} (occupancy tokens, prelude:
-- seen_removed).
local cur = redis.call('HMGET', KEYS[1], 'owner', 'epoch', 'id', 'room', 'user')
if not cur[2] or cur[1] ~= ARGV[1] or cur[4] ~= ARGV[2]
  or (ARGV[3] ~= '' and tonumber(ARGV[3]) ~= tonumber(cur[2])) then
  return {0}
end
local h = with_seen(redis.call('HGETALL', KEYS[1]), KEYS[3], cur[3], cur[4])
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], cur[3])
local moves = {}
drop_seen(KEYS[3], KEYS[4], cur[3], cur[4], cur[5], moves)
return {1, h, moves}
