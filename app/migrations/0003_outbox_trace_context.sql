-- The W3C trace context of the request that wrote the event, so the worker's span links to it.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS traceparent TEXT;
