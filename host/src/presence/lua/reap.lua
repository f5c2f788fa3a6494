-- Remove lapsed registrations. KEYS: seen zset, then for each candidate that
-- reap_candidates.lua named its conn hash, room set and occupancy hash. ARGV: key base of
-- the bucket, ttl_ms, lookback_ms, limit. An entry that lapsed since that read has
-- undeclared keys and waits for the next round.
-- Read and delete happen in this one atomic step, so a racing heartbeat either refreshed
-- the entry first (and it is skipped) or comes after (and finds it gone); each removal is
-- returned to exactly one node. Returns {id, room, user, epoch, hash, moves} items: epoch
-- 0 when the hash had expired, -1 for an entry whose registration was since re-joined as
-- another user (nothing to announce but its occupancy moves).
-- The score is lastSeen: a live hash is removed once it is older than the lookback.
local now = now_ms()
local ttl, lookback = tonumber(ARGV[2]), tonumber(ARGV[3])
local cutoff = now - math.min(ttl, lookback)
local out = {}
local cands = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. cutoff, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[4]))
for k = 1, #cands, 2 do
  local m, seen = cands[k], tonumber(cands[k + 1])
  local id, room, user = string.match(m, '^(%S+) (%S+) (%S+)$')
  if not id then
    redis.call('ZREM', KEYS[1], m)
  else
    local key, rkey, ukey = ARGV[1] .. 'conn:' .. id, ARGV[1] .. 'room:' .. room, ARGV[1] .. 'users:' .. room
    if is_declared(key) and is_declared(rkey) and is_declared(ukey) then
      local cur = redis.call('HMGET', key, 'epoch', 'room', 'user')
      local moves = {}
      if not cur[1] then
        drop_seen(KEYS[1], ukey, id, room, user, moves)
        redis.call('SREM', rkey, id)
        out[#out + 1] = {id, room, user, 0, {}, moves}
      elseif cur[2] ~= room or cur[3] ~= user then
        drop_seen(KEYS[1], ukey, id, room, user, moves)
        if #moves > 0 then out[#out + 1] = {id, room, user, -1, {}, moves} end
      elseif seen < now - lookback then
        local h = with_seen(redis.call('HGETALL', key), KEYS[1], id, room)
        redis.call('DEL', key)
        drop_seen(KEYS[1], ukey, id, room, user, moves)
        redis.call('SREM', rkey, id)
        out[#out + 1] = {id, room, user, tonumber(cur[1]), h, moves}
      end
    end
  end
end
return out
