-- Every live registration of a room. KEYS: room set. ARGV: prefix. Returns rows.
return room_rows(ARGV[1], KEYS[1])
