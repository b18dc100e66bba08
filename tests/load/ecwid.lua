-- wrk script: Ecwid order.created webhooks (FACTS.md's shape), a new order id per request.
-- Each wrk thread numbers its own requests; the thread id keeps ids unique across threads.
-- No `response` hook: it would make wrk hand every answer to Lua, a tenth of wrk's CPU on a
-- machine it shares with the host; wrk itself counts answers that are not 2xx, and
-- wrk-ingest.sh fails the run on any.
local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  store = args[1] or "2000"
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function request()
  counter = counter + 1
  local id = "w" .. thread_id .. "-" .. counter
  local body = '{"eventId":"evt-' .. id .. '","eventCreated":1234567,"storeId":' .. store ..
    ',"entityId":103878161,"eventType":"order.created","data":{"orderId":"' .. id ..
    '","oldPaymentStatus":"AWAITING_PAYMENT","newPaymentStatus":"PAID"}}'
  return wrk.format(nil, nil, nil, body)
end
