//! The route table: every route the gateway serves, in one list that builds
//! the router and that the OpenAPI document is checked against.

pub mod cancel;
pub mod health;
pub mod inventory;
pub mod list_orders;
pub mod openapi;
pub mod order_status;
pub mod orders;

use axum::handler::Handler;
use axum::http::{Method, Uri};
use axum::routing::{MethodFilter, MethodRouter, on};

use crate::AppState;
use crate::error::AppError;

/// Where a route is served: the gateway process serves operators' routes on
/// `CHORUS_ADMIN_ADDR`, apart from the API (in-process tests may put every
/// route on one address, [`crate::app`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// The public API.
    Api,
    /// Operators only: readiness and metrics.
    Admin,
    /// Both: liveness.
    Both,
}

pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub surface: Surface,
    pub(crate) handler: MethodRouter<AppState>,
}

impl Route {
    fn on(mut self, surface: Surface) -> Route {
        self.surface = surface;
        self
    }
}

fn route<H, T>(method: Method, path: &'static str, handler: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let mut filter = MethodFilter::try_from(method.clone()).expect("a standard method");
    if method == Method::GET {
        // As axum's `get`: HEAD runs the GET handler and the body is dropped.
        filter = filter.or(MethodFilter::HEAD);
    }
    Route {
        method,
        path,
        surface: Surface::Api,
        handler: on(filter, handler),
    }
}

pub fn table() -> Vec<Route> {
    vec![
        route(Method::POST, "/v1/orders", orders::place_order),
        route(Method::GET, "/v1/orders", list_orders::list_orders),
        route(
            Method::GET,
            "/v1/orders/{order_id}",
            order_status::get_order,
        ),
        route(
            Method::POST,
            "/v1/orders/{order_id}/cancel",
            cancel::cancel_order,
        ),
        route(
            Method::PUT,
            "/v1/admin/inventory/{sku}",
            inventory::set_stock,
        ),
        route(
            Method::GET,
            "/v1/admin/inventory/{sku}",
            inventory::get_stock,
        ),
        route(Method::GET, "/healthz", health::healthz).on(Surface::Both),
        route(Method::GET, "/readyz", health::readyz).on(Surface::Admin),
        route(Method::GET, "/metrics", health::metrics).on(Surface::Admin),
        route(Method::GET, "/openapi.json", openapi::openapi_json),
    ]
}

/// `(method, path)` of every route, for tests and documentation checks.
pub fn route_list() -> Vec<(Method, &'static str)> {
    table().into_iter().map(|r| (r.method, r.path)).collect()
}

pub async fn not_found(method: Method, uri: Uri) -> AppError {
    AppError::NotFound(format!("no route for {method} {}", uri.path()))
}

pub async fn method_not_allowed(method: Method, uri: Uri) -> AppError {
    AppError::MethodNotAllowed(format!("{} does not accept {method}", uri.path()))
}
