//! Serving a router on a plain TCP listener of our own (the metrics and admin listeners): HTTP/1.1
//! with the same request-head deadline as the public HTTP server, so that a client trickling its
//! headers cannot hold a connection there either (`axum::serve` sets no deadline).

use axum::Router;
use tokio::net::TcpListener;

use super::HEADER_READ_TIMEOUT;

/// Serves `router` on `listener` for ever; `what` names the listener in debug lines.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    what: &'static str,
) -> anyhow::Result<()> {
    use tower::ServiceExt as _;
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE and the like: the listener stays; the next accept may work.
                tracing::warn!(error = %e, listener = what, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let router = router.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                move |request: axum::http::Request<hyper::body::Incoming>| {
                    router.clone().oneshot(request)
                },
            );
            let served = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
            if let Err(error) = served {
                tracing::debug!(%remote, %error, listener = what, "connection ended");
            }
        });
    }
}
