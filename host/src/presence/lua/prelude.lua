-- Shared helpers, prepended to every presence script.
-- A registration is the hash <prefix>conn:<id> with fields id, room, user, owner, node,
-- epoch and one field per top-level state key: 's:' .. <JSON-encoded key> -> JSON value.
-- <prefix>room:<room> is the set of ids in a room; <prefix>seen orders '<id> <room> <user>'
-- by lastSeen (ids never contain spaces), so the reaper can still name an expired hash.
-- lastSeen lives only there: a heartbeat is then PEXPIRE + ZADD, and a hash read for a
-- client gets it appended as a 'seen' field (with_seen).
-- Every key a script touches is in its KEYS (Redis Cluster proxies, managed services and
-- Dragonfly refuse others): names built here are only used once is_declared says so.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function member(id, room, user)
  return id .. ' ' .. room .. ' ' .. user
end

local function is_state_field(f)
  return string.sub(f, 1, 2) == 's:'
end

local function clear_state(key)
  local fields = redis.call('HKEYS', key)
  for _, f in ipairs(fields) do
    if is_state_field(f) then redis.call('HDEL', key, f) end
  end
end

local function set_pairs(key, first)
  for i = first, #ARGV, 2 do redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
end

-- Appends 'seen', lastSeen to an HGETALL reply of registration id in room.
local function with_seen(h, seen_key, id, room)
  local user = ''
  for i = 1, #h, 2 do
    if h[i] == 'user' then user = h[i + 1]; break end
  end
  h[#h + 1] = 'seen'
  h[#h + 1] = redis.call('ZSCORE', seen_key, member(id, room, user)) or '0'
  return h
end

-- Every key of KEYS, built on first use (the heartbeat, the hot path, never asks).
local declared
local function is_declared(key)
  if not declared then
    declared = {}
    for _, k in ipairs(KEYS) do declared[k] = true end
  end
  return declared[key] == true
end

-- A room's member ids when one of their registration hashes was not passed in KEYS
-- (the caller's roster of the room is out of date), else nil. Scripts call it before
-- writing anything, so a stale roster changes nothing and the caller retries with the
-- ids returned.
local function undeclared_roster(base, room_key)
  local ids = redis.call('SMEMBERS', room_key)
  for _, id in ipairs(ids) do
    if not is_declared(base .. 'conn:' .. id) then return ids end
  end
  return nil
end

-- {registrations, ids}: every live registration in a room and every id its index holds
-- (an expired hash stays indexed until the reaper runs, and the caller must declare it
-- too). Reads only declared hashes: undeclared_roster was checked first.
local function room_snapshot(base, seen_key, room_key, room)
  local out, ids = {}, redis.call('SMEMBERS', room_key)
  for _, id in ipairs(ids) do
    local key = base .. 'conn:' .. id
    if is_declared(key) then
      local h = redis.call('HGETALL', key)
      if #h > 0 then out[#out + 1] = with_seen(h, seen_key, id, room) end
    end
  end
  return {out, ids}
end


-- <base>users:<room> (ukey) counts the room's by-last-seen entries per user, moved in
-- the same step as the entry, so a user's first and last registration in a room (and the
-- room's first and last) are each seen by exactly one script call cluster-wide. The moves
-- are appended to `out` as tokens: 'ro' (room occupied), 'uj:<user>', 'ul:<user>', 'rv'.
local function seen_added(ukey, user, out)
  if redis.call('HINCRBY', ukey, user, 1) == 1 then
    if redis.call('HLEN', ukey) == 1 then out[#out + 1] = 'ro' end
    out[#out + 1] = 'uj:' .. user
  end
end

local function seen_removed(ukey, user, out)
  local n = redis.call('HINCRBY', ukey, user, -1)
  if n > 0 then return end
  redis.call('HDEL', ukey, user)
  -- Below zero: an entry written before this count existed; nothing to announce.
  if n < 0 then return end
  out[#out + 1] = 'ul:' .. user
  if redis.call('HLEN', ukey) == 0 then out[#out + 1] = 'rv' end
end

-- Adds (or refreshes) a registration's by-last-seen entry, counting a new one.
local function add_seen(seen_key, ukey, now, id, room, user, out)
  if redis.call('ZADD', seen_key, now, member(id, room, user)) == 1 then
    seen_added(ukey, user, out)
  end
end

-- Removes a registration's by-last-seen entry, counting it out if it was there.
local function drop_seen(seen_key, ukey, id, room, user, out)
  if redis.call('ZREM', seen_key, member(id, room, user)) == 1 then
    seen_removed(ukey, user, out)
  end
end
