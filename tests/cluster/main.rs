//! Tests that take a broker of the stack's Kafka cluster away. They run in a
//! test binary of their own, so no other test shares the cluster while one
//! of its brokers is down. They need three brokers (`make test` runs them;
//! by hand: `CHORUS_STACK_BROKERS=3 make up`).

mod broker_failover;
