//! The browser pages of `web/`, embedded into the binary at build time: `/` (index.html),
//! `/room/{name}` (room.html, the same page for every room), `/diagnostics` and
//! `/static/{file}`. Every page carries the security headers of [`page`].

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// `Content-Security-Policy` of the pages: everything from this origin only; the signaling
/// WebSocket (`ws:`/`wss:`) besides.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

/// `Content-Type` of HTML.
const HTML: &str = "text/html; charset=utf-8";
/// `Content-Type` of CSS.
const CSS: &str = "text/css; charset=utf-8";
/// `Content-Type` of JavaScript (RFC 9239).
const JS: &str = "text/javascript; charset=utf-8";

/// The pages and their static files: (name under `web/`, content type, body).
const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        HTML,
        include_str!("../../../../web/index.html"),
    ),
    ("room.html", HTML, include_str!("../../../../web/room.html")),
    (
        "diagnostics.html",
        HTML,
        include_str!("../../../../web/diagnostics.html"),
    ),
    (
        "static/style.css",
        CSS,
        include_str!("../../../../web/static/style.css"),
    ),
    (
        "static/signaling.js",
        JS,
        include_str!("../../../../web/static/signaling.js"),
    ),
    (
        "static/room.js",
        JS,
        include_str!("../../../../web/static/room.js"),
    ),
    (
        "static/diagnostics.js",
        JS,
        include_str!("../../../../web/static/diagnostics.js"),
    ),
];

/// `GET /`.
pub async fn index() -> Response {
    file("index.html")
}

/// `GET /room/{name}`: one page for every room; the script reads the name from the URL.
pub async fn room() -> Response {
    file("room.html")
}

/// `GET /diagnostics`.
pub async fn diagnostics() -> Response {
    file("diagnostics.html")
}

/// `GET /static/{file}`: only the files of the fixed list, 404 for anything else.
pub async fn static_file(Path(name): Path<String>) -> Response {
    file(&format!("static/{name}"))
}

/// The embedded file `name` with its content type, or 404.
fn file(name: &str) -> Response {
    match FILES.iter().find(|(file, ..)| *file == name) {
        Some((_, content_type, body)) => page(content_type, body),
        None => not_found(),
    }
}

/// A 200 response with the security headers: no MIME sniffing, the CSP, no framing, no
/// referrer; revalidated on every load, so that an upgraded server serves its own pages.
fn page(content_type: &'static str, body: &'static str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, body).into_response()
}

/// 404 with a short text body.
pub fn not_found() -> Response {
    let headers = [(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    )];
    (StatusCode::NOT_FOUND, headers, "not found\n").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_served_with_its_type_and_unknown_ones_are_not() {
        for (name, content_type, _) in FILES {
            let response = file(name);
            assert_eq!(response.status(), StatusCode::OK, "{name}");
            assert_eq!(response.headers()[header::CONTENT_TYPE], *content_type);
            assert_eq!(
                response.headers()[header::X_CONTENT_TYPE_OPTIONS],
                "nosniff"
            );
        }
        for name in [
            "static/../index.html",
            "static/",
            "nope.html",
            "static/x.js",
        ] {
            assert_eq!(file(name).status(), StatusCode::NOT_FOUND, "{name}");
        }
    }
}
