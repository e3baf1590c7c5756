-- The gateway lists orders newest first (GET /v1/orders): a customer's own,
-- or, for an admin, anyone's. A page starts where the previous one ended,
-- by keyset on (created_at, order_id): created_at (when the order service
-- first recorded the order) never changes, and order_id breaks the ties of
-- orders recorded by one batch, which share its transaction's timestamp.
-- With these indexes a page reads `limit` index entries from its starting
-- point, whether it is the first page or the thousandth and however many
-- orders there are. Only orders the read model shows (their OrderPlaced
-- known) are indexed.
--
-- A plain CREATE INDEX blocks writes to `orders` while it builds (seconds
-- at a million orders, see BENCHMARKS.md); an operator with far more orders
-- can create the indexes CONCURRENTLY before upgrading, and this migration
-- then finds them (IF NOT EXISTS).
--
-- The gateway reads through the order_status view (its read-only role has
-- SELECT on the view, granted in 1002), which the planner expands into a
-- scan of `orders`: the indexes serve it without a grant of their own.

-- One customer's orders (the customer's list, and an admin's `customer=`).
CREATE INDEX IF NOT EXISTS orders_by_customer ON orders (customer_id, created_at, order_id)
    WHERE customer_id IS NOT NULL;

-- Everyone's orders (an admin's list without `customer=`).
CREATE INDEX IF NOT EXISTS orders_by_created ON orders (created_at, order_id)
    WHERE customer_id IS NOT NULL;

-- Everyone's orders with one status (an admin's `status=` without
-- `customer=`): PENDING orders are few among a million, and found through
-- the customer-less index only after reading the others. A customer's list
-- with `status=` reads that customer's orders and skips the other statuses:
-- work bounded by the customer's orders, not by all of them.
CREATE INDEX IF NOT EXISTS orders_by_status ON orders (status, created_at, order_id)
    WHERE customer_id IS NOT NULL;
