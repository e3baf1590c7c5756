//! Notification tests against stub receivers (axum webhook and a tiny SMTP
//! server on 127.0.0.1:0) and real PostgreSQL (started by `make up`; each test
//! gets its own database).

mod handler;
mod smtp;
mod stubs;
mod webhook;
