//! HTTP requests by route and status: a middleware on the HTTP router. The route is the
//! router's pattern (`/room/{name}`, not the path asked for), or `unmatched`, so that the label
//! set stays small whatever clients ask for.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// The labels of one series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route pattern, or `unmatched`.
    pub route: String,
    /// The response status code.
    pub status: u16,
}

/// The counter family, registered as `turnpike_http_requests_total`.
pub type HttpRequests = Family<HttpLabels, Counter>;

/// Counts one request once its response is ready. A WebSocket counts when it is upgraded
/// (status 101).
pub async fn count(State(requests): State<HttpRequests>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let labels = HttpLabels {
        route,
        status: response.status().as_u16(),
    };
    requests.get_or_create(&labels).inc();
    response
}
