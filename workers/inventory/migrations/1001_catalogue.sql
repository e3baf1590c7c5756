-- The catalogue: what can be sold, at which price, and where every unit is.
-- `available` can be reserved; `reserved` is held for orders in flight;
-- `sold` left with confirmed orders. The CHECKs are the last line of defence
-- behind the row locks: stock can never go negative, whatever the code does.
CREATE TABLE catalogue (
    sku        TEXT PRIMARY KEY CHECK (sku <> ''),
    name       TEXT NOT NULL,
    unit_price NUMERIC NOT NULL CHECK (unit_price >= 0),
    available  INT NOT NULL CHECK (available >= 0),
    reserved   INT NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    sold       INT NOT NULL DEFAULT 0 CHECK (sold >= 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
