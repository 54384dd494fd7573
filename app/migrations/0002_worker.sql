-- The worker's exactly-once guard and its stock reservations.
CREATE TABLE IF NOT EXISTS processed_messages (
    message_id   UUID PRIMARY KEY,
    event_type   TEXT NOT NULL,
    -- 'notify:<STATUS>' once the stock is decided, '<STATUS>' once the order is marked.
    outcome      TEXT NOT NULL,
    detail       TEXT,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS processed_messages_processed_at_idx ON processed_messages (processed_at);

CREATE TABLE IF NOT EXISTS stock_reservations (
    order_id    UUID NOT NULL REFERENCES orders (id),
    product_id  BIGINT NOT NULL,
    quantity    INTEGER NOT NULL CHECK (quantity > 0),
    reserved_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, product_id)
);

ALTER TABLE orders ADD COLUMN IF NOT EXISTS decided_at TIMESTAMPTZ;
ALTER TABLE orders ADD COLUMN IF NOT EXISTS reject_reason TEXT;
