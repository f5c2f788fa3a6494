-- Shared helpers, prepended to every presence script.
-- A registration is the hash <prefix>conn:<id> with fields id, room, user, owner, node,
-- epoch, seen and one field per top-level state key: 's:' .. <JSON-encoded key> -> JSON value.
-- <prefix>room:<room> is the set of ids in a room; <prefix>seen orders '<id> <room> <user>'
-- by lastSeen (ids never contain spaces), so the reaper can still name an expired hash.
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

local function room_snapshot(prefix, room_key)
  local out = {}
  for _, id in ipairs(redis.call('SMEMBERS', room_key)) do
    local h = redis.call('HGETALL', prefix .. 'conn:' .. id)
    if #h > 0 then out[#out + 1] = h end
  end
  return out
end

