-- wrk script for several hosts on one database (wrk-cluster.sh): Ecwid order.created
-- webhooks as in ecwid.lua, with wrk's threads spread over the hosts. WRK_HOSTS lists the
-- hosts (`127.0.0.1:18080,127.0.0.1:18082`); thread i connects to host i mod their count
-- (run wrk with -t a multiple of it). Order ids carry the thread's number, unique across
-- the threads, so no webhook repeats another (which idempotent intake would not notify).
-- `thread_id` numbers the threads in setup (the main state); each thread's own state gets
-- its number as the global `tid` (a `local` here would stay 0 in every thread's state).
local counter = 0
local thread_id = 0
tid = 0
local hosts = {}
for h in string.gmatch(os.getenv("WRK_HOSTS") or "", "[^,]+") do
  table.insert(hosts, h)
end

function setup(thread)
  thread:set("tid", thread_id)
  if #hosts > 0 then
    local h = hosts[(thread_id % #hosts) + 1]
    local name, port = string.match(h, "^(.+):(%d+)$")
    thread.addr = wrk.lookup(name, port)[1]
  end
  thread_id = thread_id + 1
end

function init(args)
  store = args[1] or "2000"
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function request()
  counter = counter + 1
  local id = "c" .. tid .. "-" .. counter
  local body = '{"eventId":"evt-' .. id .. '","eventCreated":1234567,"storeId":' .. store ..
    ',"entityId":103878161,"eventType":"order.created","data":{"orderId":"' .. id ..
    '","oldPaymentStatus":"AWAITING_PAYMENT","newPaymentStatus":"PAID"}}'
  return wrk.format(nil, nil, nil, body)
end
