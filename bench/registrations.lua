-- wrk -s registrations.lua URL : POST /v1/payments, every request its own
-- Idempotency-Key and checkout (so every one is a real registration).
-- env: PAY_KEY (the merchant API key), PAY_PSP (default "stripe");
-- PAY_ROUTE_CURRENCY: no "psp", the orders in that currency, so that the
-- payments_route for it chooses (bench/nginx.conf.in)
local nthreads = 0
function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)          -- the global `tid` inside that thread
end
function init(args)
  counter = 0
  local f = io.open("/proc/sys/kernel/random/uuid"); run = f:read("*l"):sub(1, 8); f:close()
  key = os.getenv("PAY_KEY")
  psp = os.getenv("PAY_PSP") or "stripe"
  routed = os.getenv("PAY_ROUTE_CURRENCY")
end
request = function()
  counter = counter + 1
  -- letters between the numbers: a 13-19 digit run passing Luhn is card data
  local id = string.format("%s-t%02d-n%09d", run, tid, counter)
  local cur = routed or "USD"
  local body = string.format('{"checkout_id":"co_%s","payment_orders":[' ..
    '{"payment_order_id":"po_%s_a","seller_account":"seller_42","amount":"%d.00","currency":"%s"},' ..
    '{"payment_order_id":"po_%s_b","seller_account":"seller_77","amount":"5.00","currency":"%s"}],' ..
    '"success_url":"https://shop.example/thanks","cancel_url":"https://shop.example/cart"%s}',
    id, id, 10 + counter % 97, cur, id, cur,
    routed and "" or string.format(',"psp":"%s"', psp))
  return wrk.format("POST", "/v1/payments", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. key,
    ["Idempotency-Key"] = '"' .. id .. '"'}, body)
end
done = function(summary, latency, requests)
  io.write(string.format("p50=%.2fms p99=%.2fms p99.9=%.2fms non2xx=%d\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, summary.errors.status))
end
