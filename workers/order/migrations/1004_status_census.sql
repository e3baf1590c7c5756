-- The census of orders by status (the `chorus_orders{status}` gauge) without
-- counting every order. Each statement that writes `orders` appends, in its
-- own transaction, how many orders entered and left each status to
-- order_census_changes: a few rows per statement, only ever inserted, so
-- concurrent transactions never wait on a shared counter row. The census
-- (every 15 s) folds those rows into order_census and reads it: work in
-- proportion to the statements since the last census, not to the number of
-- orders. Triggers rather than application code, so every writer of
-- `orders` (any worker version, an operator's statement) is counted.

CREATE TABLE order_census (
    -- 'none': the order's events seen, its OrderPlaced not yet
    status TEXT PRIMARY KEY,
    orders BIGINT NOT NULL
);

-- Folded into order_census and deleted by each census.
CREATE TABLE order_census_changes (
    status TEXT NOT NULL,
    delta  BIGINT NOT NULL
);

CREATE FUNCTION order_census_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO order_census_changes (status, delta)
    SELECT COALESCE(status, 'none'), count(*) FROM inserted GROUP BY 1;
    RETURN NULL;
END
$$;

CREATE FUNCTION order_census_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Rows whose status did not change add and remove one: no row at all.
    INSERT INTO order_census_changes (status, delta)
    SELECT status, sum(delta)
    FROM (
        SELECT COALESCE(status, 'none') AS status, 1 AS delta FROM updated
        UNION ALL
        SELECT COALESCE(status, 'none'), -1 FROM replaced
    ) AS moves
    GROUP BY status
    HAVING sum(delta) <> 0;
    RETURN NULL;
END
$$;

CREATE FUNCTION order_census_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO order_census_changes (status, delta)
    SELECT COALESCE(status, 'none'), -count(*) FROM deleted GROUP BY 1;
    RETURN NULL;
END
$$;

CREATE FUNCTION order_census_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM order_census_changes;
    DELETE FROM order_census;
    RETURN NULL;
END
$$;

-- No write to `orders` between the count below and the triggers taking over.
LOCK TABLE orders IN SHARE ROW EXCLUSIVE MODE;

CREATE TRIGGER order_census_insert AFTER INSERT ON orders
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION order_census_inserted();
CREATE TRIGGER order_census_update AFTER UPDATE ON orders
    REFERENCING OLD TABLE AS replaced NEW TABLE AS updated
    FOR EACH STATEMENT EXECUTE FUNCTION order_census_updated();
CREATE TRIGGER order_census_delete AFTER DELETE ON orders
    REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION order_census_deleted();
CREATE TRIGGER order_census_truncate AFTER TRUNCATE ON orders
    FOR EACH STATEMENT EXECUTE FUNCTION order_census_truncated();

-- The orders already there: counted once, here.
INSERT INTO order_census (status, orders)
SELECT COALESCE(status, 'none'), count(*) FROM orders GROUP BY 1;
