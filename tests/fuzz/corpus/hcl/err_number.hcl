ttl = 1h
