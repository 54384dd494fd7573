-- The saga's compensation (app.worker.orders.compensate): an order whose message failed for good - its retries
-- spent on the last receive, the notification breaker open past its limit, or the message dead-lettered - gives
-- back the stock it reserved and ends FAILED with the reason, in one statement (autocommit: one commit).
--
-- Exactly once: the orders are locked first, then the products they reserved, each in id order (the lock order
-- of decide_orders, migration 0005, so the two never deadlock); only an order still PENDING is compensated, its
-- reservations deleted as they are released, so a second call (or a redelivered or redriven copy of the message)
-- finds it settled and touches no stock. The message's processed_messages row is made final ('FAILED', or the
-- settled order's status): a later delivery of it is a duplicate, and one that stopped after step 1
-- ('notify:<STATUS>') never resumes into a notification for an order that failed.
-- Returns per message: 'compensated' (this call released `released` and failed the order), 'settled' (the order
-- was no longer PENDING: nothing done) or 'missing' (no such order: nothing done).
CREATE OR REPLACE FUNCTION compensate_orders(
    p_message_ids UUID[],
    p_event_types TEXT[],
    p_order_ids   UUID[],
    p_reasons     TEXT[]
) RETURNS TABLE (message_id UUID, order_id UUID, outcome TEXT, released BIGINT[])
LANGUAGE plpgsql AS $$
DECLARE
    k         INTEGER;
    status    TEXT;
    final     TEXT;
BEGIN
    PERFORM 1 FROM orders o WHERE o.id = ANY (p_order_ids) ORDER BY o.id FOR UPDATE;
    PERFORM 1 FROM products p
    WHERE p.id IN (SELECT r.product_id FROM stock_reservations r WHERE r.order_id = ANY (p_order_ids))
    ORDER BY p.id FOR UPDATE;

    FOR k IN 1 .. coalesce(array_length(p_message_ids, 1), 0) LOOP
        message_id := p_message_ids[k];
        order_id := p_order_ids[k];
        released := '{}';
        SELECT o.status INTO status FROM orders o WHERE o.id = p_order_ids[k];
        IF status IS NULL THEN
            outcome := 'missing';
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF status = 'PENDING' THEN
            WITH gone AS (
                DELETE FROM stock_reservations r WHERE r.order_id = p_order_ids[k]
                RETURNING r.product_id, r.quantity
            ), back AS (
                UPDATE products p SET stock = p.stock + gone.quantity, updated_at = now()
                FROM gone WHERE p.id = gone.product_id
                RETURNING p.id
            )
            SELECT coalesce(array_agg(back.id ORDER BY back.id), '{}') INTO released FROM back;
            UPDATE orders o SET status = 'FAILED', decided_at = now(), reject_reason = p_reasons[k]
            WHERE o.id = p_order_ids[k];
            outcome := 'compensated';
            final := 'FAILED';
        ELSE
            outcome := 'settled';
            final := status;
        END IF;
        INSERT INTO processed_messages AS pm (message_id, event_type, outcome, detail)
        VALUES (p_message_ids[k], p_event_types[k], final, p_reasons[k])
        ON CONFLICT ON CONSTRAINT processed_messages_pkey DO UPDATE
        SET outcome = EXCLUDED.outcome, detail = EXCLUDED.detail
        WHERE pm.outcome = 'deciding' OR pm.outcome LIKE 'notify:%';
        RETURN NEXT;
    END LOOP;
END;
$$;
