-- wrk script of tests/daemon/soak.py: cycles through a plan of requests (valid ones and every kind
-- of bad one), tags each with X-Request-Id "<plan index>-<n>", and checks each answer against
-- the plan by that id (wrk interleaves the connections of a thread, so order cannot be used):
-- the expected status, and for valid requests the expected labels in order.
--   wrk ... -s tests/daemon/soak.lua URL -- PLAN_FILE
-- PLAN_FILE lines: METHOD \t PATH \t CONTENT_TYPE|- \t STATUS \t LABELS|- \t BODY_HEX|-
local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
   table.insert(threads, thread)
end

local function unhex(s)
   return (s:gsub("..", function(h) return string.char(tonumber(h, 16)) end))
end

function init(args)
   plan = {}
   for line in io.lines(args[1]) do
      local method, path, ctype, status, labels, body = line:match("^(%S+)\t(%S+)\t(%S+)\t(%d+)\t(%S+)\t(%S+)$")
      table.insert(plan, {method = method, path = path, ctype = ctype, status = tonumber(status),
                          labels = labels, body = body ~= "-" and unhex(body) or nil})
   end
   next_item = (id * 7919) % #plan + 1
   sent = 0
   ok, wrong_status, wrong_label, server_errors, untagged = 0, 0, 0, 0, 0
   first_problem = ""
end

function request()
   local i = next_item
   next_item = next_item % #plan + 1
   sent = sent + 1
   local p = plan[i]
   local headers = {["X-Request-Id"] = i .. "-" .. id .. "-" .. sent}
   if p.ctype ~= "-" then
      headers["Content-Type"] = p.ctype
   end
   return wrk.format(p.method, p.path, headers, p.body)
end

local function problem(what)
   if first_problem == "" then
      first_problem = what
   end
end

function response(status, headers, body)
   if status >= 500 then
      server_errors = server_errors + 1
      problem("status " .. status .. ": " .. body:sub(1, 200))
   end
   local rid = headers["X-Request-Id"] or headers["x-request-id"]
   local i = rid and tonumber(rid:match("^(%d+)-"))
   local p = i and plan[i]
   if not p then
      untagged = untagged + 1
      problem("answer without our X-Request-Id, status " .. status)
      return
   end
   if status ~= p.status then
      wrong_status = wrong_status + 1
      problem(p.method .. " " .. p.path .. ": status " .. status .. ", expected " .. p.status)
      return
   end
   if p.labels ~= "-" then
      local got = {}
      -- bertserve shapes: "prediction":"x"; TEI's list: the first "label" is the top one.
      for label in body:gmatch('"prediction":"([^"]*)"') do
         table.insert(got, label)
      end
      if #got == 0 then
         got[1] = body:match('"label":"([^"]*)"')
      end
      local joined = table.concat(got, ",")
      if joined ~= p.labels then
         wrong_label = wrong_label + 1
         problem("labels " .. joined .. ", expected " .. p.labels)
         return
      end
   end
   ok = ok + 1
end

function done(summary, latency, requests)
   local t = {ok = 0, wrong_status = 0, wrong_label = 0, server_errors = 0, untagged = 0}
   local first = ""
   for _, th in ipairs(threads) do
      for k in pairs(t) do
         t[k] = t[k] + th:get(k)
      end
      if first == "" then
         first = th:get("first_problem")
      end
   end
   local e = summary.errors
   io.write(string.format(
      '{"requests": %d, "seconds": %.3f, "ok": %d, "wrong_status": %d, "wrong_label": %d, ' ..
      '"server_errors": %d, "untagged": %d, "socket_errors": %d, "timeouts": %d, "p99_us": %d, ' ..
      '"first_problem": "%s"}\n',
      summary.requests, summary.duration / 1e6, t.ok, t.wrong_status, t.wrong_label, t.server_errors,
      t.untagged, e.connect + e.read + e.write, e.timeout, latency:percentile(99),
      first:gsub('[%c"\\]', "?")))
end
