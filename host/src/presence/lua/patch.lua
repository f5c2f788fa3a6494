-- Shallow-merge a state patch under an epoch compare-and-set. KEYS: conn hash, seen zset.
-- ARGV: owner, epoch ('' when not sent), ttl_ms, max_state_bytes, seen member, state pairs...
-- Returns {0} gone, {-1, epoch} stale or fenced, {-2, size} too large, {1, hash} done.
local cur = redis.call('HMGET', KEYS[1], 'owner', 'epoch', 'id', 'room')
if not cur[2] then return {0} end
local stored = tonumber(cur[2])
if cur[1] ~= ARGV[1] or (ARGV[2] ~= '' and tonumber(ARGV[2]) < stored) then return {-1, stored} end
-- Serialized size of the merged object: 2 braces, key:value per field, commas between.
local sizes = {}
local h = redis.call('HGETALL', KEYS[1])
for i = 1, #h, 2 do
  if is_state_field(h[i]) then sizes[h[i]] = #h[i + 1] end
end
for i = 6, #ARGV, 2 do sizes[ARGV[i]] = #ARGV[i + 1] end
local total, n = 2, 0
for f, len in pairs(sizes) do
  total = total + (#f - 2) + 1 + len
  n = n + 1
end
if n > 1 then total = total + n - 1 end
if total > tonumber(ARGV[4]) then return {-2, total} end
set_pairs(KEYS[1], 6)
redis.call('HSET', KEYS[1], 'epoch', stored + 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], 'XX', now_ms(), ARGV[5])
return {1, with_seen(redis.call('HGETALL', KEYS[1]), KEYS[2], cur[3], cur[4])}
