//! Refuses state-changing requests from another origin (cross-site request forgery): the
//! session cookie is `SameSite=Strict`, but a page on another *port* of the same host is
//! same-site, so a bodyless form POST from it carried the cookie and paused a chat.
//!
//! For `POST`, `PUT`, `PATCH` and `DELETE`: a browser's `Sec-Fetch-Site` must be
//! `same-origin` (or `none`: typed by the user); without it, an `Origin` must name this
//! host (scheme aside). Requests with neither header come from programs, not pages (a
//! browser sends at least one on every cross-origin POST), and go on.

use axum::extract::Request;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The middleware.
pub(crate) async fn same_origin_only(request: Request, next: Next) -> Response {
    let changes_state =
        matches!(*request.method(), Method::POST | Method::PUT | Method::PATCH | Method::DELETE);
    if changes_state && let Some(reason) = cross_origin(request.headers()) {
        return ApiError::new(axum::http::StatusCode::FORBIDDEN, "cross_origin", reason)
            .into_response();
    }
    next.run(request).await
}

/// Why the request comes from another origin, if it does.
fn cross_origin(headers: &HeaderMap) -> Option<String> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(site) = text("sec-fetch-site") {
        return (!matches!(site, "same-origin" | "none"))
            .then(|| format!("a {site} request may not change anything here"));
    }
    let origin = text(header::ORIGIN.as_str())?;
    let host = text(header::HOST.as_str()).unwrap_or("");
    let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest).trim_end_matches('/');
    (origin == "null" || !origin_host.eq_ignore_ascii_case(host))
        .then(|| format!("requests from {origin} may not change anything here"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().expect("value"));
        }
        map
    }

    #[test]
    fn same_origin_passes_and_other_origins_do_not() {
        let here = [("host", "127.0.0.1:8080")];
        assert_eq!(cross_origin(&headers(&here)), None, "no browser headers: a program");
        for ok in [
            vec![("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")],
            vec![("host", "127.0.0.1:8080"), ("sec-fetch-site", "same-origin")],
            vec![("host", "127.0.0.1:8080"), ("sec-fetch-site", "none")],
        ] {
            assert_eq!(cross_origin(&headers(&ok)), None, "{ok:?}");
        }
        for bad in [
            vec![("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:9999")],
            vec![("host", "127.0.0.1:8080"), ("origin", "null")],
            vec![("host", "127.0.0.1:8080"), ("origin", "http://evil.example")],
            vec![("host", "127.0.0.1:8080"), ("sec-fetch-site", "same-site")],
            vec![("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site")],
            vec![
                ("host", "127.0.0.1:8080"),
                ("sec-fetch-site", "cross-site"),
                ("origin", "http://127.0.0.1:8080"),
            ],
        ] {
            assert!(cross_origin(&headers(&bad)).is_some(), "{bad:?}");
        }
    }
}
