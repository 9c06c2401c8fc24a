storage "inmem" {}
default_lease_ttl = "1h"
max_lease_ttl = 86400
max_request_duration = 5
