-- Shared helpers, prepended to every script by presence.mjs.
--
-- A registration is the hash <prefix>conn:<connId> with the fields roomId, userId,
-- state (the JSON object as sent), epoch, lastSeen (ms), node and owner (the Socket.IO
-- id of the socket holding it). <prefix>room:<roomId> is the set of connIds in a room;
-- <prefix>seen scores '<connId> <roomId> <userId>' by lastSeen, so the reaper can still
-- name a registration whose hash already expired (ids never contain spaces).

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Every live registration of a room, flat: connId, userId, state, epoch, lastSeen, ...
local function room_rows(prefix, room_key)
  local out = {}
  for _, id in ipairs(redis.call('SMEMBERS', room_key)) do
    local h = redis.call('HMGET', prefix .. 'conn:' .. id, 'userId', 'state', 'epoch', 'lastSeen')
    if h[3] then
      out[#out + 1] = id
      out[#out + 1] = h[1]
      out[#out + 1] = h[2]
      out[#out + 1] = h[3]
      out[#out + 1] = h[4]
    end
  end
  return out
end

