-- fill.lua - wrk script that stores an exact number of KV v2 secrets (the
-- footprint measurement in bench/bench.py).
--
-- Arguments (after `--`): PREFIX QUOTA TOKEN DONEDIR
--   PREFIX  request path prefix, e.g. /v1/secret/data/fill
--   QUOTA   writes this wrk thread sends; each creates a new 100-byte secret
--           PREFIX/<thread id>-<n>
--   TOKEN   the X-Vault-Token
--   DONEDIR a directory; a thread that has all its writes answered creates
--           DONEDIR/done-<thread id> (wrk itself always runs for its whole
--           -d duration, so bench.py interrupts it once every thread is done)
-- After its quota a thread sends only GETs of sys/health (wrk cannot leave a
-- connection idle) and stops once every write has been answered. A write's
-- answer is told from a health answer by its body. wrk's non-2xx count
-- covers failed writes; bench.py refuses to report a fill that had any.

local next_id = 0

function setup(thread)
	thread:set("id", next_id)
	next_id = next_id + 1
end

local prefix, quota, headers, donedir
local finished = false
-- wrk calls request() once on thread 0's state to check the script before the
-- thread starts, and discards the result; that call must not use up a key
local verified = false
local sent, writes_answered = 0, 0
local body = '{"data":{"value":"' .. string.rep("x", 100) .. '"}}'

function init(args)
	prefix = args[1]
	quota = tonumber(args[2])
	headers = {["X-Vault-Token"] = args[3], ["Content-Type"] = "application/json"}
	donedir = args[4]
end

function request()
	if id == 0 and not verified then
		verified = true
		return wrk.format("GET", "/v1/sys/health")
	end
	if sent >= quota then
		return wrk.format("GET", "/v1/sys/health")
	end
	local n = sent
	sent = sent + 1
	return wrk.format("POST", prefix .. "/" .. id .. "-" .. n, headers, body)
end

function response(status, hdrs, b)
	if not string.find(b, '"initialized"', 1, true) then
		writes_answered = writes_answered + 1
	end
	if writes_answered >= quota and not finished then
		finished = true
		local f = io.open(donedir .. "/done-" .. id, "w")
		f:write("done\n")
		f:close()
		wrk.thread:stop()
	end
end
