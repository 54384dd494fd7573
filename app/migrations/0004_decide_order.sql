-- Step 1 of the worker's effect (app.worker.Worker.apply) as one statement: called in autocommit it is one
-- round trip and one commit, where the same steps as separate statements took five round trips.
--
-- The unique `processed_messages` row, the order's lock, the stock reservation per product (in id order, one
-- lock order for every worker: no deadlocks) or, when an item is short, the rejection with a compensation
-- that releases what this order had reserved, and the decision recorded on the row as 'notify:<STATUS>'.
-- Returns the outcome: 'notify:<STATUS>' (decided now, or by an earlier delivery that stopped before
-- step 3: resume there) or 'duplicate' (already finished). An order that does not exist raises
-- no_data_found (SQLSTATE P0002) and writes nothing.
CREATE OR REPLACE FUNCTION decide_order(
    p_message_id UUID,
    p_event_type TEXT,
    p_order_id   UUID,
    p_products   BIGINT[],  -- distinct, ascending
    p_quantities INTEGER[]  -- the quantity wanted of each
) RETURNS TABLE (outcome TEXT, detail TEXT, email TEXT, reserved BIGINT[])
LANGUAGE plpgsql AS $$
DECLARE
    claimed    BOOLEAN;
    order_row  RECORD;
    i          INTEGER;
BEGIN
    INSERT INTO processed_messages (message_id, event_type, outcome)
    VALUES (p_message_id, p_event_type, 'deciding')
    ON CONFLICT (message_id) DO NOTHING;
    claimed := FOUND;
    SELECT o.status, o.customer_email INTO order_row FROM orders o WHERE o.id = p_order_id FOR UPDATE;
    email := order_row.customer_email;
    reserved := '{}';

    IF NOT claimed THEN
        -- Another delivery of this message: resume after its step 1, or skip it once it finished.
        SELECT pm.outcome, pm.detail INTO outcome, detail
        FROM processed_messages pm WHERE pm.message_id = p_message_id FOR UPDATE;
        IF outcome IS NULL OR outcome NOT LIKE 'notify:%' THEN
            outcome := 'duplicate';
        END IF;
        RETURN NEXT;
        RETURN;
    END IF;

    IF order_row.status IS NULL THEN
        RAISE EXCEPTION 'order % does not exist', p_order_id USING ERRCODE = 'no_data_found';
    END IF;

    IF order_row.status <> 'PENDING' THEN
        outcome := 'notify:already-decided';
    ELSE
        outcome := 'notify:CONFIRMED';
        FOR i IN 1 .. coalesce(array_length(p_products, 1), 0) LOOP
            UPDATE products SET stock = stock - p_quantities[i], updated_at = now()
            WHERE id = p_products[i] AND stock >= p_quantities[i];
            IF NOT FOUND THEN
                -- Compensation: release every reservation this order made before it met the short item.
                UPDATE products p SET stock = p.stock + r.quantity, updated_at = now()
                FROM stock_reservations r WHERE r.order_id = p_order_id AND p.id = r.product_id;
                DELETE FROM stock_reservations r WHERE r.order_id = p_order_id;
                outcome := 'notify:REJECTED';
                detail := format('product %s: not enough stock', p_products[i]);
                reserved := '{}';
                EXIT;
            END IF;
            INSERT INTO stock_reservations (order_id, product_id, quantity)
            VALUES (p_order_id, p_products[i], p_quantities[i]);
            reserved := reserved || p_products[i];
        END LOOP;
    END IF;

    UPDATE processed_messages pm SET outcome = decide_order.outcome, detail = decide_order.detail
    WHERE pm.message_id = p_message_id;
    RETURN NEXT;
END;
$$;
