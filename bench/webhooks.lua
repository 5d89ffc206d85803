-- wrk -s webhooks.lua URL : replays pre-signed Stripe events (EVENTS file,
-- "<Stripe-Signature>\t<body>" per line), each once, split across threads.
local nthreads = 0
function setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
  thread:set("nthreads_total", 0)
end
function init(args)
  events = {}
  local i = 0
  for line in io.lines(os.getenv("EVENTS")) do
    if i % 2 == tid then                  -- wrk -t2: each thread its half
      local sig, body = line:match("^([^\t]+)\t(.*)$")
      events[#events + 1] = {sig, body}
    end
    i = i + 1
  end
  n = 0
  path = "/v1/webhooks/" .. (os.getenv("PAY_PSP") or "stripe")
end
request = function()
  n = n + 1
  local e = events[((n - 1) % #events) + 1]   -- past the end: duplicates
  return wrk.format("POST", path, {["Content-Type"] = "application/json",
                                   ["Stripe-Signature"] = e[1]}, e[2])
end
done = function(summary, latency, requests)
  io.write(string.format("p50=%.2fms p99=%.2fms non2xx=%d\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status))
end
