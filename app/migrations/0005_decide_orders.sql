-- Step 1 of the worker's effect for a whole received batch in one statement (app.worker.Worker.process_batch):
-- one round trip and one commit per batch, where one call of decide_order (migration 0004) per message took
-- one each.
--
-- Each message is decided by decide_order in a block of its own (a subtransaction): an order that does not
-- exist rolls back that message's writes only and is reported as 'missing', its detail the error's message;
-- the rest of the batch is decided. The locks are taken first and in one order for every batch (the orders by
-- id, then the products by id), whatever order its messages came in: concurrent batches never deadlock.
-- p_items holds, per message, its [product_id, quantity] pairs, product ids distinct and ascending.
CREATE OR REPLACE FUNCTION decide_orders(
    p_message_ids UUID[],
    p_event_types TEXT[],
    p_order_ids   UUID[],
    p_items       JSONB
) RETURNS TABLE (message_id UUID, outcome TEXT, detail TEXT, email TEXT, reserved BIGINT[])
LANGUAGE plpgsql AS $$
DECLARE
    k        INTEGER;
    decision RECORD;
BEGIN
    PERFORM 1 FROM orders o WHERE o.id = ANY (p_order_ids) ORDER BY o.id FOR UPDATE;
    PERFORM 1 FROM products p
    WHERE p.id IN (
        SELECT (line ->> 0)::BIGINT FROM jsonb_array_elements(p_items) lines, jsonb_array_elements(lines) line
    )
    ORDER BY p.id FOR UPDATE;

    FOR k IN 1 .. coalesce(array_length(p_message_ids, 1), 0) LOOP
        message_id := p_message_ids[k];
        BEGIN
            SELECT d.outcome, d.detail, d.email, d.reserved INTO decision
            FROM decide_order(
                p_message_ids[k],
                p_event_types[k],
                p_order_ids[k],
                ARRAY(SELECT (l.line ->> 0)::BIGINT
                      FROM jsonb_array_elements(p_items -> (k - 1)) WITH ORDINALITY l(line, n) ORDER BY l.n),
                ARRAY(SELECT (l.line ->> 1)::INTEGER
                      FROM jsonb_array_elements(p_items -> (k - 1)) WITH ORDINALITY l(line, n) ORDER BY l.n)
            ) d;
            outcome := decision.outcome;
            detail := decision.detail;
            email := decision.email;
            reserved := decision.reserved;
        EXCEPTION WHEN no_data_found THEN
            outcome := 'missing';
            detail := SQLERRM;
            email := NULL;
            reserved := '{}';
        END;
        RETURN NEXT;
    END LOOP;
END;
$$;
