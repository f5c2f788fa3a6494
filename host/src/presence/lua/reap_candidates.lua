-- The entries the reaper may remove, read first so their keys can be declared to
-- reap.lua. KEYS: seen zset. ARGV: ttl_ms, lookback_ms, limit. Returns the oldest
-- members ('<id> <room> <user>') whose lastSeen is past the cutoff, at most limit.
local now = now_ms()
local cutoff = now - math.min(tonumber(ARGV[1]), tonumber(ARGV[2]))
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. cutoff, 'LIMIT', 0, tonumber(ARGV[3]))
