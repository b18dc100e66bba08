-- wrk script: Ecwid order.created webhooks (FACTS.md's shape), a new order id per request.
-- Each wrk thread numbers its own requests; the thread id keeps ids unique across threads.
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

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write("status " .. status .. ": " .. body .. "\n")
  end
end
