-- wrk script for bench/serve_load.sh: POSTs /v1/classify bodies read from
-- $BODIES (one JSON body per line), each thread cycling through them from
-- its own offset.
local bodies = {}
for line in io.lines(os.getenv("BODIES")) do bodies[#bodies + 1] = line end
local counter = 0
local headers = { ["Content-Type"] = "application/json" }

function setup(thread)
  counter = counter + 1
  thread:set("offset", counter * 997)
end

local i = 0
function request()
  i = i + 1
  return wrk.format("POST", "/v1/classify", headers, bodies[(offset + i) % #bodies + 1])
end
