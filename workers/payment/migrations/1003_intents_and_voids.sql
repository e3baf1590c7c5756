-- The provider is called outside any transaction: a payments row is first
-- the intent (status `authorizing` or `voiding`, leased to the process that
-- makes the call), then the answer. A cancelled order voids its
-- authorization (`voiding` → `voided`) and is never authorized afterwards
-- (`cancelled`: the order was cancelled before anything was asked).
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments DROP CONSTRAINT payments_check;
ALTER TABLE payments
    ADD CONSTRAINT payments_status_check CHECK (status IN
        ('authorizing', 'authorized', 'declined', 'unavailable', 'voiding', 'voided', 'cancelled')),
    ADD CONSTRAINT payments_authorized_has_an_id CHECK
        (status <> 'authorized' OR authorization_id IS NOT NULL),
    ALTER COLUMN attempts SET DEFAULT 0,
    DROP CONSTRAINT payments_attempts_check,
    ADD CONSTRAINT payments_attempts_check CHECK (attempts >= 0),
    -- the sealed payment token, kept only while the authorization is asked for
    ADD COLUMN token TEXT,
    ADD COLUMN token_key_id TEXT,
    -- the order was cancelled (its reason) while the authorization was asked for
    ADD COLUMN cancel_reason TEXT,
    -- why the authorization is voided (the cancellation's reason, or payment_unavailable)
    ADD COLUMN void_reason TEXT,
    -- the process making the pending call holds it until then
    ADD COLUMN lease_until TIMESTAMPTZ,
    -- the StockReserved that asked: the answer events are caused by it
    ADD COLUMN cause_event_id TEXT,
    ADD COLUMN correlation_id TEXT,
    ADD COLUMN traceparent TEXT,
    ADD COLUMN updated_at TIMESTAMPTZ NOT NULL DEFAULT now();

CREATE INDEX payments_pending ON payments (lease_until)
    WHERE status IN ('authorizing', 'voiding');

-- The sandbox voids like a provider would, and records no payment token.
ALTER TABLE sandbox_charges ADD COLUMN voided_at TIMESTAMPTZ;
ALTER TABLE sandbox_calls DROP COLUMN token;
ALTER TABLE sandbox_calls ADD COLUMN kind TEXT NOT NULL DEFAULT 'authorize';
