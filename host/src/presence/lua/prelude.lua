-- Shared helpers, prepended to every presence script.
-- A registration is the hash <prefix>conn:<id> with fields id, room, user, owner, node,
-- epoch and one field per top-level state key: 's:' .. <JSON-encoded key> -> JSON value.
-- <prefix>room:<room> is the set of ids in a room; <prefix>seen orders '<id> <room> <user>'
-- by lastSeen (ids never contain spaces), so the reaper can still name an expired hash.
-- lastSeen lives only there: a heartbeat is then PEXPIRE + ZADD, and a hash read for a
-- client gets it appended as a 'seen' field (with_seen).
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

local function room_snapshot(prefix, seen_key, room_key, room)
  local out = {}
  for _, id in ipairs(redis.call('SMEMBERS', room_key)) do
    local h = redis.call('HGETALL', prefix .. 'conn:' .. id)
    if #h > 0 then out[#out + 1] = with_seen(h, seen_key, id, room) end
  end
  return out
end


-- <base>users:<room> counts the room's by-last-seen entries per user, moved in the same
-- step as the entry, so a user's first and last registration in a room (and the room's
-- first and last) are each seen by exactly one script call cluster-wide. The moves are
-- appended to `out` as tokens: 'ro' (room occupied), 'uj:<user>', 'ul:<user>', 'rv'.
local function seen_added(base, room, user, out)
  local ukey = base .. 'users:' .. room
  if redis.call('HINCRBY', ukey, user, 1) == 1 then
    if redis.call('HLEN', ukey) == 1 then out[#out + 1] = 'ro' end
    out[#out + 1] = 'uj:' .. user
  end
end

local function seen_removed(base, room, user, out)
  local ukey = base .. 'users:' .. room
  local n = redis.call('HINCRBY', ukey, user, -1)
  if n > 0 then return end
  redis.call('HDEL', ukey, user)
  -- Below zero: an entry written before this count existed; nothing to announce.
  if n < 0 then return end
  out[#out + 1] = 'ul:' .. user
  if redis.call('HLEN', ukey) == 0 then out[#out + 1] = 'rv' end
end

-- Adds (or refreshes) a registration's by-last-seen entry, counting a new one.
local function add_seen(seen_key, now, base, id, room, user, out)
  if redis.call('ZADD', seen_key, now, member(id, room, user)) == 1 then
    seen_added(base, room, user, out)
  end
end

-- Removes a registration's by-last-seen entry, counting it out if it was there.
local function drop_seen(seen_key, base, id, room, user, out)
  if redis.call('ZREM', seen_key, member(id, room, user)) == 1 then
    seen_removed(base, room, user, out)
  end
end
