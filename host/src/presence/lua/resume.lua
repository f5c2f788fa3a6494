-- Take a registration over for a reconnected socket. KEYS: conn hash, room set, seen
-- zset, the room's occupancy hash, then the registration hash of every member the
-- caller's roster names. ARGV: key base of the room, id, room, user, epoch, owner, node,
-- ttl_ms, has_state ('1'/'0'), state pairs...
-- Returns {0} when there is nothing to resume, {-3, ids} when a member's hash was not
-- declared (nothing written; ids: the room's member set, to declare on the retry), else
-- {1, state_changed, hash, {registrations, ids}, moves} (occupancy tokens: none unless the index had
-- lost the entry).
local cur = redis.call('HMGET', KEYS[1], 'room', 'user', 'epoch')
if not cur[3] or cur[1] ~= ARGV[3] or cur[2] ~= ARGV[4] or tonumber(cur[3]) > tonumber(ARGV[5]) then
  return {0}
end
local stale = undeclared_roster(ARGV[1], KEYS[2])
if stale then return {-3, stale} end
local now = now_ms()
local changed = 0
if ARGV[9] == '1' then
  local old, n_old, n_new = {}, 0, 0
  local h = redis.call('HGETALL', KEYS[1])
  for i = 1, #h, 2 do
    if is_state_field(h[i]) then old[h[i]] = h[i + 1]; n_old = n_old + 1 end
  end
  for i = 10, #ARGV, 2 do
    n_new = n_new + 1
    if old[ARGV[i]] ~= ARGV[i + 1] then changed = 1 end
  end
  if n_new ~= n_old then changed = 1 end
  if changed == 1 then
    clear_state(KEYS[1])
    set_pairs(KEYS[1], 10)
  end
end
redis.call('HSET', KEYS[1], 'owner', ARGV[6], 'node', ARGV[7], 'epoch', tonumber(cur[3]) + 1)
redis.call('PEXPIRE', KEYS[1], ARGV[8])
redis.call('SADD', KEYS[2], ARGV[2])
local moves = {}
add_seen(KEYS[3], KEYS[4], now, ARGV[2], ARGV[3], ARGV[4], moves)
return {1, changed, with_seen(redis.call('HGETALL', KEYS[1]), KEYS[3], ARGV[2], ARGV[3]),
  room_snapshot(ARGV[1], KEYS[3], KEYS[2], ARGV[3]), moves}
