-- write.lua - wrk script for the timed KV v2 write scenarios (bench/bench.py).
--
-- Arguments (after `--`): PREFIX KEYSPACE TOKEN
--   PREFIX    request path prefix, e.g. /v1/secret/data/w
--   KEYSPACE  0: every request writes a new key (a new secret per request);
--             N: each wrk thread cycles over its own N keys, so after the
--             first N writes every write adds a version to an existing secret
--   TOKEN     the X-Vault-Token
-- Keys are PREFIX/<thread id>-<n>: threads never contend on one key's lock.
-- No response() function: wrk then skips body parsing, as for the GET runs.

local next_id = 0

function setup(thread)
	thread:set("id", next_id)
	next_id = next_id + 1
end

local prefix, keyspace, headers
local sent = 0
local body = '{"data":{"value":"' .. string.rep("x", 100) .. '"}}'

function init(args)
	prefix = args[1]
	keyspace = tonumber(args[2])
	headers = {["X-Vault-Token"] = args[3], ["Content-Type"] = "application/json"}
end

function request()
	local n = sent
	if keyspace > 0 then
		n = n % keyspace
	end
	sent = sent + 1
	return wrk.format("POST", prefix .. "/" .. id .. "-" .. n, headers, body)
end
