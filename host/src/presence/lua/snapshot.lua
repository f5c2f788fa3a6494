-- Every live registration in a room. KEYS: room set, seen zset, then the registration
-- hash of every member the caller's roster names. ARGV: key base of the room, room.
-- Returns {1, {registrations, ids}} (prelude: room_snapshot), or {-3, ids} when a member's hash was not declared (ids:
-- the room's member set, to declare on the retry).
local stale = undeclared_roster(ARGV[1], KEYS[1])
if stale then return {-3, stale} end
return {1, room_snapshot(ARGV[1], KEYS[2], KEYS[1], ARGV[2])}
