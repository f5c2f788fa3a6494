-- Every live registration in a room. KEYS: room set, seen zset. ARGV: prefix, room.
return room_snapshot(ARGV[1], KEYS[2], KEYS[1], ARGV[2])
