-- place_order (migration 0006) with an order's lines of one product checked against its stock together: two
-- lines of 60 against a stock of 100 are refused at checkout (422, naming the line where the sum first goes
-- over), as one line of 120 is, instead of being accepted here and rejected by the worker later.
-- Everything else is as in 0006: see there for the outcomes and the key's lock.
CREATE OR REPLACE FUNCTION place_order(
    p_scope          TEXT,
    p_key            TEXT,
    p_request_hash   TEXT,
    p_ttl_seconds    INTEGER,
    p_order_id       UUID,
    p_event_id       UUID,
    p_email          TEXT,
    p_products       BIGINT[],   -- the items, in request order
    p_quantities     INTEGER[],
    p_correlation_id TEXT,
    p_traceparent    TEXT
) RETURNS TABLE (outcome TEXT, status_code INTEGER, body JSONB)
LANGUAGE plpgsql AS $$
DECLARE
    stored     RECORD;
    product    RECORD;
    n          INTEGER;
    lines      JSONB := '[]';
    total      BIGINT := 0;
    currencies TEXT[] := '{}';
    bad_index  INTEGER;
    bad_field  TEXT;
    problem    TEXT;
    wanted_by  JSONB := '{}';  -- product id -> quantity wanted by the lines so far
    wanted     BIGINT;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtextextended(p_scope || ':' || p_key, 0)) THEN
        outcome := 'in-flight';
        RETURN NEXT;
        RETURN;
    END IF;

    SELECT k.request_hash, k.status_code, k.response_body INTO stored
    FROM idempotency_keys k WHERE k.scope = p_scope AND k.key = p_key AND k.expires_at > now();
    IF FOUND THEN
        outcome := CASE WHEN stored.request_hash = p_request_hash THEN 'replayed' ELSE 'reused' END;
        IF outcome = 'replayed' THEN
            status_code := stored.status_code;
            body := stored.response_body;
        END IF;
        RETURN NEXT;
        RETURN;
    END IF;

    FOR n IN 1 .. coalesce(array_length(p_products, 1), 0) LOOP
        SELECT p.price_cents, p.currency, p.stock INTO product FROM products p WHERE p.id = p_products[n];
        IF NOT FOUND THEN
            bad_index := n - 1;
            bad_field := 'product_id';
            problem := format('product %s does not exist', p_products[n]);
        ELSE
            wanted := coalesce((wanted_by ->> p_products[n]::TEXT)::BIGINT, 0) + p_quantities[n];
            wanted_by := wanted_by || jsonb_build_object(p_products[n]::TEXT, wanted);
            IF wanted > product.stock THEN
                bad_index := n - 1;
                bad_field := 'quantity';
                problem := CASE WHEN wanted = p_quantities[n]
                    THEN format('only %s in stock', product.stock)
                    ELSE format('only %s in stock; the order''s lines of product %s want %s together',
                                product.stock, p_products[n], wanted)
                END;
            END IF;
        END IF;
        EXIT WHEN problem IS NOT NULL;
        total := total + product.price_cents::BIGINT * p_quantities[n];
        IF NOT product.currency = ANY (currencies) THEN
            currencies := currencies || product.currency::TEXT;
        END IF;
        lines := lines || jsonb_build_object(
            'product_id', p_products[n], 'quantity', p_quantities[n], 'price_cents', product.price_cents
        );
    END LOOP;
    IF problem IS NULL AND cardinality(currencies) > 1 THEN
        bad_index := 0;
        bad_field := 'product_id';
        problem := 'all items must share one currency';
    END IF;

    IF problem IS NOT NULL THEN
        outcome := 'rejected';
        status_code := 422;
        body := jsonb_build_object(
            'title', 'Invalid order',
            'status', 422,
            'detail', format('''items[%s].%s'': %s', bad_index, bad_field, problem),
            'errors', jsonb_build_array(jsonb_build_object(
                'field', format('items[%s].%s', bad_index, bad_field), 'in', 'body', 'message', problem
            ))
        );
    ELSE
        outcome := 'placed';
        status_code := 202;
        body := jsonb_build_object(
            'id', p_order_id, 'status', 'PENDING', 'total_cents', total, 'currency', currencies[1]
        );
        INSERT INTO orders (id, status, customer_email, items, total_cents, currency, correlation_id)
        VALUES (p_order_id, 'PENDING', p_email, lines, total, currencies[1], p_correlation_id);
        INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, correlation_id, traceparent)
        VALUES (
            p_event_id, 'order', p_order_id::TEXT, 'order.placed',
            jsonb_build_object('order_id', p_order_id, 'email', p_email, 'items', lines, 'total_cents', total),
            p_correlation_id, p_traceparent
        );
    END IF;

    INSERT INTO idempotency_keys (key, scope, request_hash, status_code, response_body, expires_at)
    VALUES (p_key, p_scope, p_request_hash, status_code, body, now() + make_interval(secs => p_ttl_seconds))
    ON CONFLICT (scope, key) DO UPDATE SET request_hash = EXCLUDED.request_hash,
        status_code = EXCLUDED.status_code, response_body = EXCLUDED.response_body,
        created_at = now(), expires_at = EXCLUDED.expires_at;
    RETURN NEXT;
END;
$$;
