-- post.lua - wrk script for the transit scenarios (bench/bench.py): every
-- request POSTs one fixed JSON body.
--
-- Arguments (after `--`): PATH TOKEN BODYFILE
--   PATH      request path, e.g. /v1/transit/encrypt/bench
--   TOKEN     the X-Vault-Token
--   BODYFILE  a file holding the JSON body (written by bench.py)
-- No response() function: wrk then skips body parsing, as for the GET runs.

local path, headers, body

function init(args)
	path = args[1]
	headers = {["X-Vault-Token"] = args[2], ["Content-Type"] = "application/json"}
	local f = assert(io.open(args[3], "rb"))
	body = f:read("*a")
	f:close()
end

function request()
	return wrk.format("POST", path, headers, body)
end
