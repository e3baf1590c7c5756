//! Payment tests against real PostgreSQL (started by `make up`; each test gets
//! its own database) and against stub HTTP providers on 127.0.0.1:0.

mod handler;
mod http_provider;
mod sandbox;
mod sandbox_batches;
mod support;
