//! The dashboard's token check: `Authorization: Bearer TOKEN` (Prometheus, scripts), the
//! `concur_token` cookie (the browser), or `?token=TOKEN` on any page, which sets that cookie
//! so the page's own requests and its event stream carry it. Compared in constant time.

use super::Http;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

const COOKIE: &str = "concur_token";

fn matches(presented: &str, expected: &str) -> bool {
    presented.as_bytes().ct_eq(expected.as_bytes()).into()
}

fn query_token(request: &Request) -> Option<String> {
    request.uri().query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == "token").then(|| percent_decode(value))
    })
}

/// Tokens are printable ASCII; only `%XX` escapes need undoing.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn header_token(request: &Request) -> Option<String> {
    let headers = request.headers();
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim().to_string());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == COOKIE).then(|| value.to_string())
        })
}

/// Lets a request through when no token is configured or it carries the right one.
pub(super) async fn check(State(http): State<Http>, request: Request, next: Next) -> Response {
    if let Some(active) = http.shared.standby_of() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("this coordinator is a standby; the active coordinator is {active}\n"),
        )
            .into_response();
    }
    let Some(token) = &http.token else {
        return next.run(request).await;
    };
    let expected = token.expose();
    if header_token(&request).is_some_and(|t| matches(&t, expected)) {
        return next.run(request).await;
    }
    if query_token(&request).is_some_and(|t| matches(&t, expected)) {
        let mut response = next.run(request).await;
        // The page's own requests (and EventSource, which cannot set headers) carry it on.
        if let Ok(cookie) =
            format!("{COOKIE}={expected}; Path=/; HttpOnly; SameSite=Strict").parse()
        {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        return response;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "missing or wrong token: open the dashboard as http://HOST:PORT/?token=TOKEN, or send \
         Authorization: Bearer TOKEN\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_in_a_query_token_are_undone() {
        assert_eq!(percent_decode("a%2Fb%3D"), "a/b=");
        assert_eq!(percent_decode("plain"), "plain");
        assert_eq!(percent_decode("bad%zz"), "bad%zz");
    }
}
