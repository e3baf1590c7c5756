//! Tests of the gateway's HTTP contract. Most drive the router in process
//! with an in-memory publisher; those that need PostgreSQL create their own
//! databases (the order and inventory ones with those services' real
//! migrations) and fail (never pass) when it is down; `kafka` and
//! `public_surface` run the whole application against the real local stack.

mod cancel;
mod databases;
mod docs_and_health;
mod error_codes;
mod errors;
mod exit;
mod group_commit;
mod helpers;
mod inventory;
mod jwks;
mod jwt_rotation;
mod kafka;
mod key_expiry;
mod limits;
mod list_orders;
mod list_orders_plans;
mod openapi;
mod openapi_check;
mod openapi_file;
mod openapi_statuses;
mod orders;
mod public_surface;
mod running;
mod spans;
mod status;
mod supervision;
