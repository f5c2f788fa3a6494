-- Every live registration in a room. KEYS: room set. ARGV: prefix.
return room_snapshot(ARGV[1], KEYS[1])
