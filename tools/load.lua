-- wrk script of tools/bench_load.py: POSTs the JSON bodies of a file (one per line) to
-- /predict, each connection starting at its own place in the file, and checks every answer:
-- a 200 whose "prediction" is one of the model's labels. Anything else counts as an error.
--   wrk ... -s tools/load.lua URL -- BODIES_FILE LABEL [LABEL...]
local bodies, labels = {}, {}
local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
   table.insert(threads, thread)
end

function init(args)
   for line in io.lines(args[1]) do
      table.insert(bodies, line)
   end
   for i = 2, #args do
      labels[args[i]] = true
   end
   next_body = (id * 7919) % #bodies + 1
   errors, checked = 0, 0
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   local body = bodies[next_body]
   next_body = next_body % #bodies + 1
   return wrk.format(nil, "/predict", nil, body)
end

function response(status, headers, body)
   local label = status == 200 and body:match('"prediction":"([^"]*)"')
   if label and labels[label] then
      checked = checked + 1
   else
      errors = errors + 1
   end
end

function done(summary, latency, requests)
   local errors_total, checked_total = 0, 0
   for _, t in ipairs(threads) do
      errors_total = errors_total + t:get("errors")
      checked_total = checked_total + t:get("checked")
   end
   -- One JSON line for the driver; latencies in microseconds.
   io.write(string.format(
      '{"requests": %d, "seconds": %.3f, "checked": %d, "errors": %d, "socket_errors": %d, ' ..
      '"mean_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}\n',
      summary.requests, summary.duration / 1e6, checked_total, errors_total,
      summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout +
      summary.errors.status,
      latency.mean, latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
