//! Notification tests against stub receivers (axum webhook and a tiny SMTP
//! server on 127.0.0.1:0) and the real stack (`make up`): the worker runs in
//! the test's process through the runtime's own entry point, with its own
//! topics and database.

mod deliveries;
mod redrive;
mod smtp;
mod stubs;
mod webhook;
mod worker;
