-- creds.lua - wrk script for bench/database.py: each thread stops after
-- CREDS_MAX responses (0: run for the whole duration). The guide's direct
-- GRANT keeps one ACL entry per live user in the table's catalog row, which
-- PostgreSQL caps at one page (about 2,400 users): the guide scenario stops
-- before that instead of measuring "row is too big" errors.
local max = tonumber(os.getenv("CREDS_MAX") or "0")
local n = 0

function response(status, headers, body)
	n = n + 1
	if max > 0 and n >= max then
		wrk.thread:stop()
	end
end
