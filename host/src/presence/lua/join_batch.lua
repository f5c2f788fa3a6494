-- Join or re-join many registrations (of different sockets) in one step.
-- KEYS: per join its conn hash, its room set, its by-last-seen zset and its room's
-- occupancy hash (prelude: seen_added); then the registration hash of every member the
-- caller's roster says each room holds (a room's snapshot reads them).
-- ARGV: ttl_ms, number of joins, then per join: key base of its room (what its conn
-- keys start with, before 'conn:'), id, room, user, owner, node, replace_state
-- ('1'/'0'), info (JSON, '' for none), max_members ('0': no limit), n, then n state
-- field/value pairs.
-- Returns {results, snapshots}: results[j] is {-1} when another socket owns that
-- registration, {-2} when it is new and its room already holds max_members, {-3, ids}
-- when its room holds a member whose hash was not declared (nothing written for that
-- join; ids is the room's member set to declare on the retry), else {created, s,
-- moves}; snapshots[s] is {registrations, ids} of the room as it stands after every join of the batch, read
-- once per room (the joiner's own registration is in it), and moves are the occupancy
-- tokens of the join (prelude: seen_added).
local now = now_ms()
local results, snapshots, rooms, where, stale = {}, {}, {}, {}, {}
local a = 3
for j = 1, tonumber(ARGV[2]) do
  local hkey, rkey, skey, ukey = KEYS[4 * j - 3], KEYS[4 * j - 2], KEYS[4 * j - 1], KEYS[4 * j]
  local base, id, room, user, owner, node = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local replace, info, max_members, first = ARGV[a + 6], ARGV[a + 7], tonumber(ARGV[a + 8]), a + 10
  a = first + 2 * tonumber(ARGV[a + 9])
  -- Decided at the room's first join, before anything of the batch is written to it.
  if stale[rkey] == nil then stale[rkey] = undeclared_roster(base, rkey) or false end
  local cur = redis.call('HMGET', hkey, 'owner', 'room', 'user', 'epoch')
  local epoch, created, moves = 1, 1, {}
  if stale[rkey] then
    results[j] = {-3, stale[rkey]}
  elseif cur[4] and (cur[1] ~= owner or cur[2] ~= room) then
    results[j] = {-1}
  elseif not cur[4] and max_members > 0 and redis.call('SCARD', rkey) >= max_members then
    results[j] = {-2}
  else
    if cur[4] then
      epoch, created = tonumber(cur[4]) + 1, 0
      if replace == '1' then clear_state(hkey) end
    end
    redis.call('HSET', hkey, 'id', id, 'room', room, 'user', user, 'owner', owner,
      'node', node, 'epoch', epoch)
    if info == '' then redis.call('HDEL', hkey, 'info') else redis.call('HSET', hkey, 'info', info) end
    for i = first, a - 1, 2 do redis.call('HSET', hkey, ARGV[i], ARGV[i + 1]) end
    redis.call('PEXPIRE', hkey, ARGV[1])
    redis.call('SADD', rkey, id)
    add_seen(skey, ukey, now, id, room, user, moves)
    -- A re-join as another user: counted in first, so the room never looks empty.
    if cur[4] and cur[3] ~= user then drop_seen(skey, ukey, id, cur[2], cur[3], moves) end
    if not rooms[room] then
      snapshots[#snapshots + 1] = rkey
      rooms[room] = #snapshots
      where[room] = {base, skey}
    end
    results[j] = {created, rooms[room], moves}
  end
end
for room, s in pairs(rooms) do
  snapshots[s] = room_snapshot(where[room][1], where[room][2], snapshots[s], room)
end
return {results, snapshots}
