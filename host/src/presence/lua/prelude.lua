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

