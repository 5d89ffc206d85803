-- wrk -s limits.lua URL : one request over and over, for the rate-limit
-- benchmark (bench/limits.sh).  env: LIM_HOST (the server), LIM_METHOD
-- (GET: the pay page; POST: /v1/payments with PAY_KEY, an Idempotency-Key
-- and a body; POSTBAD: the same with an invalid Idempotency-Key).
function init(args)
  local host = os.getenv("LIM_HOST")
  local m = os.getenv("LIM_METHOD")
  if m == "POST" or m == "POSTBAD" then
    req = wrk.format("POST", "/v1/payments", {
      ["Host"] = host,
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. os.getenv("PAY_KEY"),
      -- POSTBAD: a key of 300 characters, refused (400) after the API key
      ["Idempotency-Key"] = m == "POST" and "bench-limits" or string.rep("k", 300)},
      "{}")
  else
    req = wrk.format("GET", "/v1/checkouts/co_bench/pay?t=x", { ["Host"] = host })
  end
end
request = function() return req end
done = function(summary, latency, requests)
  local s = summary.status or {}
  io.write(string.format("p50=%.2fms p99=%.2fms errors=%d\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout))
end
