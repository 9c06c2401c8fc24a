-- put.lua - wrk script for the storage ceilings of bench/extstorage.py: one
-- durable put of a fresh 150-byte value per request, straight to the store.
--
-- Arguments (after `--`): MODE
--   etcd    POST /v3/kv/put (etcd's JSON gateway) {"key": b64, "value": b64}
--   consul  PUT /v1/kv/bench/<thread>-<n> with the raw value
-- Keys are per thread and per request, so nothing contends on one key.

local next_id = 0

function setup(thread)
	thread:set("id", next_id)
	next_id = next_id + 1
end

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function b64(s)
	local out = {}
	for i = 1, #s, 3 do
		local a, b, c = s:byte(i, i + 2)
		local n = a * 65536 + (b or 0) * 256 + (c or 0)
		local q = {}
		for j = 3, 0, -1 do
			local k = math.floor(n / 64 ^ j) % 64
			q[#q + 1] = b64chars:sub(k + 1, k + 1)
		end
		if not b then
			q[3], q[4] = "=", "="
		elseif not c then
			q[4] = "="
		end
		out[#out + 1] = table.concat(q)
	end
	return table.concat(out)
end

local mode
local sent = 0
local value = string.rep("v", 150)
local value64 = b64(value)

function init(args)
	mode = args[1]
end

function request()
	local key = "bench/" .. id .. "-" .. sent
	sent = sent + 1
	if mode == "etcd" then
		return wrk.format("POST", "/v3/kv/put", {["Content-Type"] = "application/json"},
			'{"key":"' .. b64(key) .. '","value":"' .. value64 .. '"}')
	end
	return wrk.format("PUT", "/v1/kv/" .. key, nil, value)
end
