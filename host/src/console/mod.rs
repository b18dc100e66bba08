//! The web console at `/console`: a one-page app built into the binary, its sessions, and
//! `/console/api/<path>`, which runs the API's route `/elements/api-v2/<path>` with the
//! session's `Authorization` value.
//!
//! - `POST /console/session` `{"authorization"}` signs in: the value is checked as the API
//!   checks it, kept on the host only, and the browser gets an HttpOnly, SameSite=Strict
//!   cookie with a random id and a CSRF token in the answer. `GET` answers the token again
//!   for a live cookie (a reload keeps the session); `DELETE` signs out.
//! - Every request but a `GET` (and sign-out) carries `X-CSRF-Token`, else a 403.

pub mod session;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::api::error::ApiError;
use crate::api::{self, App, PREFIX, Req};
use session::{Session, cookie_value};

/// The header a change carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The console's pages may load only its own script, style and images; no frame may hold
/// them.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");
const ICON_SVG: &str = include_str!("assets/icon.svg");

/// True for the paths the console serves: `/console` and everything under `/console/`.
pub fn serves(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/")
}

/// Answers a request for a console path.
pub async fn handle(app: &App, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    if matches!(*req.method(), Method::GET | Method::HEAD)
        && let Some(asset) = asset(&path)
    {
        return asset;
    }
    let req = match api::read_within(app, req).await {
        Ok(req) => req,
        Err(e) => return error(&e),
    };
    let secure = app.console.config().secure_cookie
        || req
            .headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    if path == "/console/session" {
        return session_call(app, &req, secure).await;
    }
    if let Some(rest) = path.strip_prefix("/console/api/") {
        let rest = rest.to_string();
        return api_call(app, req, &rest, secure).await;
    }
    error(&ApiError::NotFound(format!("no console page {path}")))
}

/// A built-in file, by path.
fn asset(path: &str) -> Option<Response<Full<Bytes>>> {
    let (body, content_type) = match path {
        "/console" | "/console/" | "/console/index.html" => {
            (INDEX_HTML, "text/html; charset=utf-8")
        }
        "/console/app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "/console/style.css" => (STYLE_CSS, "text/css; charset=utf-8"),
        "/console/icon.svg" => (ICON_SVG, "image/svg+xml"),
        _ => return None,
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Revalidated on every load, so a new host's console is never mixed with an old one's.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secure_headers(headers);
    Some(response)
}

/// The headers of every console answer.
fn secure_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// A JSON answer of the session or API calls: never cached.
fn json(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = api::json_response(status, body);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    secure_headers(headers);
    response
}

fn error(e: &ApiError) -> Response<Full<Bytes>> {
    let mut response = json(e.status(), &e.body());
    if let Some(secs) = e.retry_after_secs() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, secs.into());
    }
    response
}

fn with_cookie(mut response: Response<Full<Bytes>>, cookie: String) -> Response<Full<Bytes>> {
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// The live session of the request's cookie: its id and the session.
fn session_of(app: &App, req: &Req) -> Option<(String, Session)> {
    let id = req
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(cookie_value)?
        .to_string();
    let session = app.console.touch(&id)?;
    Some((id, session))
}

fn signed_out() -> ApiError {
    ApiError::Unauthorized("not signed in to the console, or the session has ended".into())
}

/// A 403 unless the request carries the session's CSRF token.
fn csrf_refusal(req: &Req, session: &Session) -> Option<Response<Full<Bytes>>> {
    let sent = req
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if session::token_matches(sent, &session.csrf) {
        return None;
    }
    let message = if sent.is_empty() {
        "a change needs the X-CSRF-Token header (the token GET /console/session answers)"
    } else {
        "the X-CSRF-Token header does not match the session's token"
    };
    Some(json(
        StatusCode::FORBIDDEN,
        &json!({"status": 403, "error": "Forbidden", "message": message, "field": "X-CSRF-Token"}),
    ))
}

/// `/console/session`: sign in, the token again, sign out.
async fn session_call(app: &App, req: &Req, secure: bool) -> Response<Full<Bytes>> {
    match req.method {
        Method::POST => sign_in(app, req, secure).await,
        Method::GET => match session_of(app, req) {
            Some((_, s)) => json(StatusCode::OK, &json!({"csrf": s.csrf})),
            None => with_cookie(error(&signed_out()), session::clear_cookie(secure)),
        },
        Method::DELETE => {
            let Some((id, s)) = session_of(app, req) else {
                return with_cookie(error(&signed_out()), session::clear_cookie(secure));
            };
            if let Some(refused) = csrf_refusal(req, &s) {
                return refused;
            }
            app.console.remove(&id);
            tracing::info!("console: signed out");
            with_cookie(
                json(StatusCode::OK, &json!({"signedOut": true})),
                session::clear_cookie(secure),
            )
        }
        _ => error(&ApiError::MethodNotAllowed),
    }
}

async fn sign_in(app: &App, req: &Req, secure: bool) -> Response<Full<Bytes>> {
    // A cross-site form cannot send JSON without a preflight: no sign-in from another site.
    let is_json = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !is_json {
        return error(&ApiError::bad(
            "sign in with a JSON body `{\"authorization\": \"…\"}` and Content-Type: application/json",
        ));
    }
    let body = match req.json_object() {
        Ok(b) => b,
        Err(e) => return error(&e),
    };
    let Some(authorization) = body
        .get("authorization")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|v| !v.is_empty())
    else {
        return error(&ApiError::field(
            "authorization",
            "`authorization` is required: the organization's Authorization value (`User …, Organization …`)",
        ));
    };
    let Ok(value) = HeaderValue::from_str(authorization) else {
        return error(&ApiError::field(
            "authorization",
            "`authorization` holds characters a header value cannot",
        ));
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, value);
    let caller = match api::auth::authorize(app, &headers).await {
        Ok(c) => c,
        Err(e) => {
            tracing::info!("console: a sign-in was refused");
            return error(&e);
        }
    };
    let (id, session) = app.console.create(authorization.to_string());
    tracing::info!(org = caller.org_id().0, "console: signed in");
    let kind = match caller {
        api::auth::Caller::Org(_) => "organization",
        api::auth::Caller::Instance { .. } => "instance",
    };
    with_cookie(
        json(
            StatusCode::OK,
            &json!({"csrf": session.csrf, "caller": kind}),
        ),
        session::set_cookie(&id, app.console.config().idle, secure),
    )
}

/// `/console/api/<rest>`: the API's route `/elements/api-v2/<rest>` with the session's
/// `Authorization` value.
async fn api_call(app: &App, req: Req, rest: &str, secure: bool) -> Response<Full<Bytes>> {
    let Some((_, session)) = session_of(app, &req) else {
        return with_cookie(error(&signed_out()), session::clear_cookie(secure));
    };
    if !matches!(req.method, Method::GET | Method::HEAD)
        && let Some(refused) = csrf_refusal(&req, &session)
    {
        return refused;
    }
    let mut headers = HeaderMap::new();
    let Ok(authorization) = HeaderValue::from_str(&session.authorization) else {
        return error(&signed_out());
    };
    headers.insert(header::AUTHORIZATION, authorization);
    if let Some(ct) = req.headers.get(header::CONTENT_TYPE) {
        headers.insert(header::CONTENT_TYPE, ct.clone());
    }
    let inner = Req {
        method: req.method,
        path: format!("{PREFIX}/{rest}"),
        query: req.query,
        headers,
        body: req.body,
    };
    match api::route(app, inner).await {
        Ok((status, mut body)) => {
            // An instance's token is shown once by the API; the console never shows one.
            if let Some(o) = body.as_object_mut() {
                o.remove("token");
            }
            json(status, &body)
        }
        Err(e) => error(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_paths() {
        for p in ["/console", "/console/", "/console/api/instances"] {
            assert!(serves(p), "{p}");
        }
        for p in ["/consoles", "/", "/elements/api-v2/console", "/console.js"] {
            assert!(!serves(p), "{p}");
        }
    }

    #[test]
    fn assets_carry_the_security_headers() {
        for p in ["/console", "/console/app.js", "/console/style.css"] {
            let r = asset(p).unwrap();
            let h = r.headers();
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
            assert!(
                h[header::CONTENT_SECURITY_POLICY]
                    .to_str()
                    .unwrap()
                    .contains("frame-ancestors 'none'")
            );
        }
        assert!(asset("/console/nope.js").is_none());
    }

    #[test]
    fn the_page_has_no_inline_script() {
        assert!(INDEX_HTML.contains("<script type=\"module\" src=\"/console/app.js\">"));
        assert_eq!(INDEX_HTML.matches("<script").count(), 1);
        for handler in [
            "onclick=",
            "onload=",
            "onerror=",
            "onsubmit=",
            "javascript:",
        ] {
            assert!(!INDEX_HTML.contains(handler), "no inline handler {handler}");
        }
    }
}
