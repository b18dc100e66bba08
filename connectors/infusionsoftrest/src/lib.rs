//! Infusionsoft / Keap REST: OAuth2 (authorization code and refresh) and polling of the CRM
//! REST API v1 (`appointments`, `contacts`, `tasks`, `opportunities`, `orders`) by
//! `since`/`until` window, following Keap's absolute `next` page URLs.
//!
//! Decisions where no source settles the behaviour:
//! - The token endpoint defaults to the origin of `base.url` + `/token`, so a loopback
//!   stand-in serves both the API and the token exchange.
//! - A page cursor is Keap's absolute `next` URL, sent as is, but only to the origin of
//!   `base.url`: the Bearer token is never sent to another host.
//! - Extra query pairs in the hub URL (`/hubs/crm/contacts?order=id`) pass through to Keap;
//!   `since`, `until`, `limit` and `offset` are the connector's and are not overridden.
//! - A refresh answer without a `refresh_token` keeps the refresh token that was used.
//! - Vendor messages quoted in errors have the client secret, the tokens and the grant being
//!   exchanged masked (values of four characters or more), before being shortened.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use guest_sdk::prelude::*;
use serde_json::Value;

/// The Infusionsoft / Keap REST connector.
pub struct InfusionsoftRest;

const DEFAULT_BASE_URL: &str = "https://api.infusionsoft.com/crm/rest/v1";
const API_KEY: &str = "oauth.api.key";
const API_SECRET: &str = "oauth.api.secret";
const CALLBACK_URL: &str = "oauth.callback.url";
const BASE_URL: &str = "base.url";
const TOKEN_URL: &str = "oauth.token.url";
const PAGE_SIZE: u32 = 1000;
/// The query parameters the connector sets itself on a first page.
const OWN_PARAMS: [&str; 4] = ["since", "until", "limit", "offset"];
/// Longest vendor message quoted in an error.
const MAX_MESSAGE: usize = 200;

/// The default resources: name, updated-date field, created-date field, date format.
const RESOURCES: [(&str, &str, &str, &str); 5] = [
    (
        "appointments",
        "modification_date",
        "creation_date",
        "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'",
    ),
    (
        "contacts",
        "last_updated",
        "date_created",
        "yyyy-MM-dd'T'HH:mm:ss.SSSZ",
    ),
    (
        "tasks",
        "modification_date",
        "creation_date",
        "yyyy-MM-dd'T'HH:mm:ss.SSSZ",
    ),
    (
        "opportunities",
        "last_updated",
        "date_created",
        "yyyy-MM-dd'T'HH:mm:ss.SSSZ",
    ),
    (
        "orders",
        "modification_date",
        "creation_date",
        "yyyy-MM-dd'T'HH:mm:ss.SSSZ",
    ),
];

impl Connector for InfusionsoftRest {
    fn info() -> ConnectorInfo {
        let mut info = ConnectorInfo::new("infusionsoftrest", "Infusionsoft REST", "crm")
            .polling()
            .key(ConfigKey::required(
                API_KEY,
                "Keap app client id (Key Name)",
            ))
            .key(ConfigKey::required(API_SECRET, "Keap app client secret").secret())
            .key(
                ConfigKey::optional(
                    CALLBACK_URL,
                    "OAuth2 redirect URI registered with the Keap app",
                )
                .typed(ValueType::Url),
            )
            .key(
                ConfigKey::optional(
                    BASE_URL,
                    "REST API base URL (default https://api.infusionsoft.com/crm/rest/v1)",
                )
                .typed(ValueType::Url),
            )
            .key(
                ConfigKey::optional(
                    TOKEN_URL,
                    "OAuth2 token URL (default: the origin of base.url + /token)",
                )
                .typed(ValueType::Url),
            );
        for (name, updated, created, format) in RESOURCES {
            info = info.resource(
                PollResource::new(name, &format!("/hubs/crm/{name}"), "id", updated, format)
                    .created(created)
                    .timezone("GMT"),
            );
        }
        info
    }

    fn validate_config(config: &Config) -> Result<(), Error> {
        config.require(API_KEY)?;
        config.require(API_SECRET)?;
        for key in [BASE_URL, TOKEN_URL] {
            if let Some(url) = config.non_empty(key)
                && origin(url).is_none()
            {
                return Err(Error::invalid_config(
                    key,
                    "must be an absolute http:// or https:// URL",
                ));
            }
        }
        Ok(())
    }

    fn build_auth_request(ctx: &Context, step: &AuthStep) -> Result<Option<HttpRequest>, Error> {
        let client_id = ctx.config.require(API_KEY)?;
        let client_secret = ctx.config.require(API_SECRET)?;
        let url = token_url(&ctx.config)?;
        match step {
            AuthStep::Login => Ok(None),
            AuthStep::ExchangeCode(code) => {
                let redirect = ctx.config.non_empty(CALLBACK_URL).unwrap_or("");
                Ok(Some(HttpRequest::post_form(
                    url,
                    &[
                        ("client_id", client_id),
                        ("client_secret", client_secret),
                        ("code", code),
                        ("grant_type", "authorization_code"),
                        ("redirect_uri", redirect),
                    ],
                )))
            }
            AuthStep::Refresh(refresh_token) => {
                let basic = STANDARD.encode(format!("{client_id}:{client_secret}"));
                Ok(Some(
                    HttpRequest::post_form(
                        url,
                        &[
                            ("grant_type", "refresh_token"),
                            ("refresh_token", refresh_token),
                        ],
                    )
                    .header("authorization", format!("Basic {basic}")),
                ))
            }
        }
    }

    fn parse_auth_response(
        ctx: &Context,
        step: &AuthStep,
        resp: &HttpResponse,
    ) -> Result<Credentials, Error> {
        let body = json::from_slice(&resp.body).ok();
        if !(200..=299).contains(&resp.status) {
            let error = body.as_ref().and_then(|b| json::string_at(b, "error"));
            let description = body
                .as_ref()
                .and_then(|b| json::string_at(b, "error_description"))
                .or_else(|| error.clone())
                .unwrap_or_else(|| "no error description".into());
            let description = redact(&secrets(ctx, Some(step)), &description);
            return Err(
                if matches!(resp.status, 400 | 401) && error.as_deref() == Some("invalid_grant") {
                    Error::unauthorized(format!("Keap refused the grant: {description}"))
                } else {
                    Error::vendor(format!(
                        "Keap token endpoint answered {}: {description}",
                        resp.status
                    ))
                },
            );
        }
        let body = body.ok_or_else(|| Error::vendor("Keap token answer is not valid JSON"))?;
        let access_token = json::string_at(&body, "access_token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::vendor("Keap token answer has no access_token"))?;
        let refresh_token = json::string_at(&body, "refresh_token")
            .filter(|t| !t.is_empty())
            .or_else(|| match step {
                AuthStep::Refresh(used) => Some(used.clone()),
                _ => None,
            });
        let expires_in_secs = json::i64_at(&body, "expires_in").and_then(|s| u64::try_from(s).ok());
        Ok(Credentials {
            access_token,
            refresh_token,
            expires_in_secs,
        })
    }

    fn build_poll_request(
        ctx: &Context,
        target: &PollTarget,
        window: &PollWindow,
        cursor: Option<&str>,
    ) -> Result<HttpRequest, Error> {
        let token = ctx.access_token()?;
        let base = ctx.config.base_url(BASE_URL, DEFAULT_BASE_URL);
        let url = match cursor {
            Some(next) => {
                let base_origin = origin(base)
                    .ok_or_else(|| Error::invalid_config(BASE_URL, "must be an absolute URL"))?;
                match origin(next) {
                    Some(o) if o.eq_ignore_ascii_case(base_origin) => next.to_string(),
                    _ => {
                        return Err(Error::vendor(format!(
                            "refusing to follow a next page outside {base_origin}"
                        )));
                    }
                }
            }
            None => {
                let name = resource(&target.name)?;
                let since = dates::iso_millis_from_ms(window.since_ms)?;
                let until = dates::iso_millis_from_ms(window.until_ms)?;
                let limit = target.page_size.unwrap_or(PAGE_SIZE).max(1).to_string();
                let mut pairs: Vec<(&str, &str)> = vec![
                    ("since", &since),
                    ("until", &until),
                    ("limit", &limit),
                    ("offset", "0"),
                ];
                let extra = target
                    .url
                    .split_once('?')
                    .map(|(_, q)| form::parse(q))
                    .unwrap_or_default();
                pairs.extend(
                    extra
                        .iter()
                        .filter(|(k, _)| !OWN_PARAMS.contains(&k.as_str()))
                        .map(|(k, v)| (k.as_str(), v.as_str())),
                );
                form::with_query(&format!("{base}/{name}"), &pairs)
            }
        };
        Ok(HttpRequest::get(url).header("authorization", format!("Bearer {token}")))
    }

    fn parse_poll_response(
        ctx: &Context,
        target: &PollTarget,
        cursor: Option<&str>,
        resp: &HttpResponse,
    ) -> Result<PollPage, Error> {
        match resp.status {
            200..=299 => {}
            401 => {
                return Err(Error::unauthorized(format!(
                    "Keap answered 401{}",
                    vendor_message(ctx, resp)
                )));
            }
            429 => {
                return Err(Error::vendor(format!(
                    "Keap answered 429: rate limit exceeded{}",
                    vendor_message(ctx, resp)
                )));
            }
            s => {
                return Err(Error::vendor(format!(
                    "Keap answered {s}{}",
                    vendor_message(ctx, resp)
                )));
            }
        }
        let name = resource(&target.name)?;
        let body = resp.json()?;
        if !body.is_object() {
            return Err(Error::vendor("Keap answer is not a JSON object"));
        }
        let records: Vec<Value> = json::records_at(&body, name).into_iter().cloned().collect();
        let next = json::string_at(&body, "next").filter(|n| !n.is_empty());
        let next_cursor = next.filter(|next| {
            has_next_page(
                next,
                cursor,
                records.len(),
                json::i64_at(&body, "count"),
                target.page_size,
            )
        });
        Ok(PollPage::new(&records, next_cursor))
    }
}

/// The resource name when it is one this connector knows, else `unsupported`.
fn resource(name: &str) -> Result<&'static str, Error> {
    RESOURCES
        .iter()
        .map(|r| r.0)
        .find(|r| *r == name)
        .ok_or_else(|| Error::unsupported(format!("unknown Infusionsoft REST resource {name}")))
}

/// The token endpoint: `oauth.token.url`, or the origin of `base.url` + `/token`.
fn token_url(config: &Config) -> Result<String, Error> {
    if let Some(url) = config.non_empty(TOKEN_URL) {
        return Ok(url.to_string());
    }
    let base = config.base_url(BASE_URL, DEFAULT_BASE_URL);
    let origin = origin(base)
        .ok_or_else(|| Error::invalid_config(BASE_URL, "must be an absolute http(s) URL"))?;
    Ok(format!("{origin}/token"))
}

/// `scheme://host[:port]` of an absolute http(s) URL.
fn origin(url: &str) -> Option<&str> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let host_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if host_len == 0 {
        return None;
    }
    Some(&url[..scheme.len() + 3 + host_len])
}

/// The value of query parameter `name` in `url`, as a number.
fn query_number(url: &str, name: &str) -> Option<i64> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or("");
    form::parse(query)
        .into_iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.trim().parse().ok())
}

/// Whether Keap's `next` leads to more records. Keap returns `next` even on the last page,
/// so it is followed only when this page had records, it moves forward, and, when `count`
/// (the total of matches) is known, its offset is below it; without `count`, only when
/// this page was full.
fn has_next_page(
    next: &str,
    cursor: Option<&str>,
    page_len: usize,
    count: Option<i64>,
    page_size: Option<u32>,
) -> bool {
    if page_len == 0 || origin(next).is_none() {
        return false;
    }
    let Some(next_offset) = query_number(next, "offset") else {
        return false;
    };
    let current_offset = cursor.and_then(|c| query_number(c, "offset")).unwrap_or(0);
    if next_offset <= current_offset {
        return false;
    }
    match count {
        Some(total) => next_offset < total,
        None => {
            let limit = query_number(next, "limit")
                .or_else(|| cursor.and_then(|c| query_number(c, "limit")))
                .unwrap_or(i64::from(page_size.unwrap_or(PAGE_SIZE)));
            page_len as i64 >= limit
        }
    }
}

/// `: <message>` from a Keap error body (`message` or `fault.faultstring`), with the
/// instance's secrets masked and then shortened.
fn vendor_message(ctx: &Context, resp: &HttpResponse) -> String {
    let Ok(body) = json::from_slice(&resp.body) else {
        return String::new();
    };
    json::string_at(&body, "message")
        .or_else(|| json::string_at(&body, "fault.faultstring"))
        .or_else(|| json::string_at(&body, "error_description"))
        .map(|m| format!(": {}", redact(&secrets(ctx, None), &m)))
        .unwrap_or_default()
}

/// Shortest value masked by [`redact`]. Masking a one- to three-character value would turn
/// ordinary letters and words of the message into `***` everywhere they occur, garbling it
/// and, through the pattern of masks, giving the value away anyway; from four characters on a
/// value is masked (real Keap secrets and tokens are far longer).
const MIN_SECRET_LEN: usize = 4;

/// The values [`redact`] masks: the client secret, the access and refresh tokens the host
/// passed in, and during authentication the code or refresh token being exchanged.
fn secrets<'a>(ctx: &'a Context, step: Option<&'a AuthStep>) -> Vec<&'a str> {
    let grant = match step {
        Some(AuthStep::ExchangeCode(code)) => Some(code.as_str()),
        Some(AuthStep::Refresh(token)) => Some(token.as_str()),
        Some(AuthStep::Login) | None => None,
    };
    let credentials = ctx.credentials.as_ref();
    [
        ctx.config.non_empty(API_SECRET),
        credentials.map(|c| c.access_token.as_str()),
        credentials.and_then(|c| c.refresh_token.as_deref()),
        grant,
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// `message` with every secret of at least [`MIN_SECRET_LEN`] characters replaced by `***`,
/// then shortened to [`MAX_MESSAGE`] characters. Masking comes first so that a secret cut by
/// the shortening cannot leave a readable prefix; longer secrets are masked before shorter
/// ones so that a secret containing another is masked whole.
fn redact(secrets: &[&str], message: &str) -> String {
    let mut secrets: Vec<&str> = secrets
        .iter()
        .copied()
        .filter(|s| s.chars().count() >= MIN_SECRET_LEN)
        .collect();
    secrets.sort_unstable_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    secrets.dedup();
    let mut out = message.to_string();
    for secret in secrets {
        out = out.replace(secret, "***");
    }
    out.chars().take(MAX_MESSAGE).collect()
}

guest_sdk::export_connector!(InfusionsoftRest);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BASE: &str = "http://127.0.0.1:9/crm/rest/v1";

    fn config() -> Config {
        Config::new([
            (API_KEY, "Rand0MAP1-key"),
            (API_SECRET, "fak3AP1-s3Cr3t"),
            (CALLBACK_URL, "https://mycoolapp.com"),
            (BASE_URL, BASE),
        ])
    }

    fn ctx() -> Context {
        Context::new(config()).with_token("tok123")
    }

    fn target(name: &str, page_size: Option<u32>) -> PollTarget {
        PollTarget {
            name: name.into(),
            url: format!("/hubs/crm/{name}"),
            page_size,
        }
    }

    fn window() -> PollWindow {
        PollWindow {
            since_ms: 1_483_309_079_039, // 2017-01-01T22:17:59.039Z
            until_ms: 1_483_310_000_000, // 2017-01-01T22:33:20.000Z
        }
    }

    fn response(status: u16, body: &Value) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    fn body_text(req: &HttpRequest) -> String {
        String::from_utf8(req.body.clone().unwrap()).unwrap()
    }

    fn appointment(id: i64) -> Value {
        json!({
            "id": id,
            "title": format!("Demo call {id}"),
            "notes": "Walk through the onboarding",
            "location": "Zoom",
            "start_date": "2017-01-02T15:00:00.000Z",
            "end_date": "2017-01-02T15:30:00.000Z",
            "contact_id": 3014,
            "user": 1,
            "remind_time": 15,
            "creation_date": "2017-01-01T22:20:01.000Z",
            "modification_date": "2017-01-01T22:25:43.000Z"
        })
    }

    fn contact(id: i64) -> Value {
        json!({
            "id": id,
            "given_name": "Ada",
            "family_name": "Lovelace",
            "email_addresses": [{"email": format!("ada{id}@example.com"), "field": "EMAIL1"}],
            "email_status": "SingleOptIn",
            "date_created": "2021-10-14T00:22:57.000+0000",
            "last_updated": "2021-10-15T08:01:12.000+0000"
        })
    }

    #[test]
    fn info_lists_polling_resources_and_keys() {
        let info = InfusionsoftRest::info();
        assert_eq!(info.key, "infusionsoftrest");
        assert_eq!(info.display_name, "Infusionsoft REST");
        assert_eq!(info.hub, "crm");
        assert_eq!(info.modes, guest_sdk::Modes::POLLING);
        let secret = info.config_keys.iter().find(|k| k.key == API_SECRET);
        assert!(secret.is_some_and(|k| k.value_type == ValueType::Secret && k.required));
        let names: Vec<&str> = info
            .poll_resources
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "appointments",
                "contacts",
                "tasks",
                "opportunities",
                "orders"
            ]
        );
        let appointments = &info.poll_resources[0];
        assert_eq!(appointments.url, "/hubs/crm/appointments");
        assert_eq!(appointments.id_field, "id");
        assert_eq!(appointments.dates.updated_date_field, "modification_date");
        assert_eq!(
            appointments.dates.updated_date_format,
            "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"
        );
        assert_eq!(
            appointments.dates.created_date_field.as_deref(),
            Some("creation_date")
        );
        assert_eq!(
            appointments.dates.updated_date_timezone.as_deref(),
            Some("GMT")
        );
        let contacts = &info.poll_resources[1];
        assert_eq!(contacts.dates.updated_date_field, "last_updated");
        assert_eq!(
            contacts.dates.created_date_format.as_deref(),
            Some("yyyy-MM-dd'T'HH:mm:ss.SSSZ")
        );
    }

    #[test]
    fn code_exchange_posts_the_form_to_the_token_url() {
        let step = AuthStep::ExchangeCode("c0de/1".into());
        let req = InfusionsoftRest::build_auth_request(&Context::new(config()), &step)
            .unwrap()
            .unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.url, "http://127.0.0.1:9/token");
        assert_eq!(
            req.headers,
            vec![(
                "content-type".to_string(),
                "application/x-www-form-urlencoded".to_string()
            )]
        );
        assert_eq!(
            body_text(&req),
            "client_id=Rand0MAP1-key&client_secret=fak3AP1-s3Cr3t&code=c0de%2F1\
             &grant_type=authorization_code&redirect_uri=https%3A%2F%2Fmycoolapp.com"
        );
    }

    #[test]
    fn token_url_defaults_to_keap_and_can_be_configured() {
        let step = AuthStep::ExchangeCode("abc".into());
        let defaults = Config::new([(API_KEY, "k"), (API_SECRET, "s")]);
        let req = InfusionsoftRest::build_auth_request(&Context::new(defaults), &step)
            .unwrap()
            .unwrap();
        assert_eq!(req.url, "https://api.infusionsoft.com/token");
        assert!(body_text(&req).ends_with("&redirect_uri="));

        let custom = Config::new([
            (API_KEY, "k"),
            (API_SECRET, "s"),
            (TOKEN_URL, "http://127.0.0.1:9/oauth/token"),
        ]);
        let req = InfusionsoftRest::build_auth_request(&Context::new(custom), &step)
            .unwrap()
            .unwrap();
        assert_eq!(req.url, "http://127.0.0.1:9/oauth/token");
    }

    #[test]
    fn refresh_uses_basic_auth_and_the_refresh_grant() {
        let step = AuthStep::Refresh("rt-1".into());
        let req = InfusionsoftRest::build_auth_request(&Context::new(config()), &step)
            .unwrap()
            .unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.url, "http://127.0.0.1:9/token");
        assert_eq!(
            body_text(&req),
            "grant_type=refresh_token&refresh_token=rt-1"
        );
        // base64("Rand0MAP1-key:fak3AP1-s3Cr3t")
        let auth = req
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.as_str());
        assert_eq!(auth, Some("Basic UmFuZDBNQVAxLWtleTpmYWszQVAxLXMzQ3IzdA=="));
        assert!(!body_text(&req).contains("fak3AP1"));
    }

    #[test]
    fn login_needs_no_request() {
        let req = InfusionsoftRest::build_auth_request(&Context::new(config()), &AuthStep::Login);
        assert_eq!(req, Ok(None));
    }

    #[test]
    fn token_answer_becomes_credentials() {
        let resp = response(
            200,
            &json!({"access_token": "at-1", "token_type": "bearer", "expires_in": 86400,
                    "refresh_token": "rt-1", "scope": "full|abc.infusionsoft.com"}),
        );
        let step = AuthStep::ExchangeCode("code".into());
        let creds =
            InfusionsoftRest::parse_auth_response(&Context::new(config()), &step, &resp).unwrap();
        assert_eq!(
            creds,
            Credentials {
                access_token: "at-1".into(),
                refresh_token: Some("rt-1".into()),
                expires_in_secs: Some(86400),
            }
        );
    }

    #[test]
    fn refresh_answer_without_refresh_token_keeps_the_old_one() {
        let resp = response(200, &json!({"access_token": "at-2", "expires_in": 3600}));
        let step = AuthStep::Refresh("rt-old".into());
        let creds =
            InfusionsoftRest::parse_auth_response(&Context::new(config()), &step, &resp).unwrap();
        assert_eq!(creds.access_token, "at-2");
        assert_eq!(creds.refresh_token.as_deref(), Some("rt-old"));
    }

    #[test]
    fn invalid_grant_is_unauthorized_without_the_secret() {
        let resp = response(
            400,
            &json!({"error": "invalid_grant",
                    "error_description": "Invalid authorization code for client fak3AP1-s3Cr3t"}),
        );
        // A realistic code: a grant of just "code" would (rightly) mask the word "code".
        let step = AuthStep::ExchangeCode("Gx7kQ2mVb9".into());
        let err = InfusionsoftRest::parse_auth_response(&Context::new(config()), &step, &resp)
            .unwrap_err();
        let Error::Unauthorized(msg) = err else {
            panic!("expected unauthorized, got {err:?}");
        };
        assert!(msg.contains("Invalid authorization code"));
        assert!(!msg.contains("fak3AP1-s3Cr3t"));
    }

    #[test]
    fn other_token_failures_are_vendor_errors() {
        let ctx = Context::new(config());
        let step = AuthStep::Refresh("rt".into());
        let err = InfusionsoftRest::parse_auth_response(
            &ctx,
            &step,
            &response(401, &json!({"error": "invalid_client"})),
        )
        .unwrap_err();
        assert!(matches!(err, Error::VendorError(m) if m.contains("401")));
        let err = InfusionsoftRest::parse_auth_response(
            &ctx,
            &step,
            &response(200, &json!({"token_type": "bearer"})),
        )
        .unwrap_err();
        assert!(matches!(err, Error::VendorError(_)));
    }

    #[test]
    fn first_page_url_and_bearer_header() {
        let req = InfusionsoftRest::build_poll_request(
            &ctx(),
            &target("appointments", None),
            &window(),
            None,
        )
        .unwrap();
        assert_eq!(req.method, "GET");
        assert_eq!(
            req.url,
            "http://127.0.0.1:9/crm/rest/v1/appointments\
             ?since=2017-01-01T22%3A17%3A59.039Z&until=2017-01-01T22%3A33%3A20.000Z\
             &limit=1000&offset=0"
        );
        assert_eq!(
            req.headers,
            vec![("authorization".to_string(), "Bearer tok123".to_string())]
        );
        assert_eq!(req.body, None);
    }

    #[test]
    fn page_size_and_extra_hub_query_pass_through() {
        let mut t = target("contacts", Some(50));
        t.url = "/hubs/crm/contacts?order=id&order_direction=ASCENDING&limit=7".into();
        let req = InfusionsoftRest::build_poll_request(&ctx(), &t, &window(), None).unwrap();
        assert_eq!(
            req.url,
            "http://127.0.0.1:9/crm/rest/v1/contacts\
             ?since=2017-01-01T22%3A17%3A59.039Z&until=2017-01-01T22%3A33%3A20.000Z\
             &limit=50&offset=0&order=id&order_direction=ASCENDING"
        );
    }

    #[test]
    fn cursor_is_used_verbatim() {
        let next = "http://127.0.0.1:9/crm/rest/v1/appointments/?limit=2&offset=2\
                    &since=2017-01-01T22:17:59.039Z&until=2017-01-01T22:33:20.000Z";
        let req = InfusionsoftRest::build_poll_request(
            &ctx(),
            &target("appointments", Some(2)),
            &window(),
            Some(next),
        )
        .unwrap();
        assert_eq!(req.url, next);
        assert_eq!(
            req.headers,
            vec![("authorization".to_string(), "Bearer tok123".to_string())]
        );
    }

    #[test]
    fn cursor_to_another_host_is_refused() {
        let err = InfusionsoftRest::build_poll_request(
            &ctx(),
            &target("appointments", None),
            &window(),
            Some("https://evil.example/crm/rest/v1/appointments?offset=2"),
        )
        .unwrap_err();
        assert!(matches!(err, Error::VendorError(_)));
    }

    #[test]
    fn missing_token_is_unauthorized() {
        let err = InfusionsoftRest::build_poll_request(
            &Context::new(config()),
            &target("appointments", None),
            &window(),
            None,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Unauthorized(_)));
    }

    #[test]
    fn full_page_with_next_page() {
        let records: Vec<Value> = (1..=3).map(appointment).collect();
        let next = "http://127.0.0.1:9/crm/rest/v1/appointments/?limit=3&offset=3\
                    &since=2017-01-01T22:17:59.039Z";
        let resp = response(
            200,
            &json!({"appointments": records, "count": 7, "next": next, "previous": null}),
        );
        let t = target("appointments", Some(3));
        let page = InfusionsoftRest::parse_poll_response(&ctx(), &t, None, &resp).unwrap();
        assert_eq!(page.records.len(), 3);
        let first: Value = serde_json::from_str(&page.records[0]).unwrap();
        assert_eq!(first["id"], 1);
        assert_eq!(first["contact_id"], 3014);
        assert_eq!(first["modification_date"], "2017-01-01T22:25:43.000Z");
        assert_eq!(page.next_cursor.as_deref(), Some(next));
    }

    #[test]
    fn last_page_ends_although_next_is_present() {
        let current = "http://127.0.0.1:9/crm/rest/v1/contacts/?limit=3&offset=3";
        let next = "http://127.0.0.1:9/crm/rest/v1/contacts/?limit=3&offset=6";
        let resp = response(
            200,
            &json!({"contacts": [contact(4), contact(5), contact(6)], "count": 6,
                    "next": next, "previous": current}),
        );
        let t = target("contacts", Some(3));
        let page = InfusionsoftRest::parse_poll_response(&ctx(), &t, Some(current), &resp).unwrap();
        assert_eq!(page.records.len(), 3);
        let last: Value = serde_json::from_str(&page.records[2]).unwrap();
        assert_eq!(last["email_addresses"][0]["email"], "ada6@example.com");
        assert_eq!(page.next_cursor, None);
    }

    #[test]
    fn without_count_only_a_full_page_continues() {
        let t = target("contacts", None);
        let next = "http://127.0.0.1:9/crm/rest/v1/contacts/?limit=2&offset=2";
        let full = response(
            200,
            &json!({"contacts": [contact(1), contact(2)], "next": next}),
        );
        let page = InfusionsoftRest::parse_poll_response(&ctx(), &t, None, &full).unwrap();
        assert_eq!(page.next_cursor.as_deref(), Some(next));
        let short = response(200, &json!({"contacts": [contact(1)], "next": next}));
        let page = InfusionsoftRest::parse_poll_response(&ctx(), &t, None, &short).unwrap();
        assert_eq!(page.next_cursor, None);
    }

    #[test]
    fn empty_page_has_no_next() {
        let resp = response(
            200,
            &json!({"appointments": [], "count": 0,
                    "next": "http://127.0.0.1:9/crm/rest/v1/appointments/?limit=1000&offset=1000"}),
        );
        let page = InfusionsoftRest::parse_poll_response(
            &ctx(),
            &target("appointments", None),
            None,
            &resp,
        )
        .unwrap();
        assert!(page.records.is_empty());
        assert_eq!(page.next_cursor, None);
    }

    #[test]
    fn poll_errors_map_to_host_errors() {
        let t = target("appointments", None);
        let expired = response(
            401,
            &json!({"fault": {"faultstring": "Invalid Access Token",
                    "detail": {"errorcode": "keymanagement.service.invalid_access_token"}}}),
        );
        let err = InfusionsoftRest::parse_poll_response(&ctx(), &t, None, &expired).unwrap_err();
        assert!(matches!(err, Error::Unauthorized(m) if m.contains("Invalid Access Token")));

        let limited = response(429, &json!({"message": "Too many requests"}));
        let err = InfusionsoftRest::parse_poll_response(&ctx(), &t, None, &limited).unwrap_err();
        assert!(matches!(err, Error::VendorError(m) if m.contains("rate limit")));

        let broken = response(500, &json!({"message": "Internal error"}));
        let err = InfusionsoftRest::parse_poll_response(&ctx(), &t, None, &broken).unwrap_err();
        assert!(matches!(err, Error::VendorError(m) if m.contains("500")));

        let garbage = HttpResponse {
            status: 200,
            headers: vec![],
            body: b"<html>oops</html>".to_vec(),
        };
        let err = InfusionsoftRest::parse_poll_response(&ctx(), &t, None, &garbage).unwrap_err();
        assert!(matches!(err, Error::VendorError(_)));
    }

    #[test]
    fn secret_cut_by_the_message_limit_is_fully_masked() {
        // The secret starts 5 characters before the 200-character limit: shortening first
        // would leave "fak3A", too short to be recognised as the secret and masked.
        let description = format!("{}fak3AP1-s3Cr3t and more", "é".repeat(MAX_MESSAGE - 5));
        let resp = response(
            400,
            &json!({"error": "invalid_request", "error_description": description}),
        );
        let step = AuthStep::ExchangeCode("code".into());
        let err = InfusionsoftRest::parse_auth_response(&Context::new(config()), &step, &resp)
            .unwrap_err();
        let Error::VendorError(msg) = err else {
            panic!("expected a vendor error, got {err:?}");
        };
        assert!(!msg.contains("fak3A"), "{msg}");
        // Masked first, then shortened to 200 characters on a char boundary.
        let quoted = msg.split_once(": ").unwrap().1;
        assert_eq!(quoted, format!("{}*** a", "é".repeat(MAX_MESSAGE - 5)));
    }

    #[test]
    fn short_secrets_are_masked_from_four_characters() {
        let short = Config::new([(API_KEY, "k"), (API_SECRET, "s3Cr")]);
        let resp = response(400, &json!({"error_description": "bad client s3Cr"}));
        let step = AuthStep::Refresh("rt7".into());
        let err =
            InfusionsoftRest::parse_auth_response(&Context::new(short), &step, &resp).unwrap_err();
        assert!(
            matches!(&err, Error::VendorError(m) if m.ends_with(": bad client ***")),
            "{err:?}"
        );
        assert_eq!(redact(&["s3Cr", "rt7"], "s3Cr rt7"), "*** rt7");
        assert_eq!(redact(&["", "ab"], "a b ab"), "a b ab");
    }

    #[test]
    fn poll_error_messages_do_not_quote_the_tokens_or_the_secret() {
        let t = target("appointments", None);
        let mut ctx = Context::new(config());
        ctx.credentials = Some(Credentials {
            access_token: "KeapAccessTok3n-42".into(),
            refresh_token: Some("KeapRefreshTok3n-7".into()),
            expires_in_secs: None,
        });
        let expired = response(
            401,
            &json!({"fault": {"faultstring": "Invalid Access Token KeapAccessTok3n-42"}}),
        );
        let err = InfusionsoftRest::parse_poll_response(&ctx, &t, None, &expired).unwrap_err();
        let Error::Unauthorized(msg) = err else {
            panic!("expected unauthorized, got {err:?}");
        };
        assert_eq!(msg, "Keap answered 401: Invalid Access Token ***");

        let limited = response(429, &json!({"message": "slow down KeapAccessTok3n-42"}));
        let err = InfusionsoftRest::parse_poll_response(&ctx, &t, None, &limited).unwrap_err();
        assert!(
            matches!(&err, Error::VendorError(m) if !m.contains("KeapAccessTok3n")),
            "{err:?}"
        );

        let broken = response(
            500,
            &json!({"message": "echo KeapRefreshTok3n-7 fak3AP1-s3Cr3t KeapAccessTok3n-42"}),
        );
        let err = InfusionsoftRest::parse_poll_response(&ctx, &t, None, &broken).unwrap_err();
        let Error::VendorError(msg) = err else {
            panic!("expected a vendor error, got {err:?}");
        };
        assert_eq!(msg, "Keap answered 500: echo *** *** ***");
    }

    #[test]
    fn unknown_resource_is_unsupported() {
        let err = InfusionsoftRest::build_poll_request(
            &ctx(),
            &target("invoices", None),
            &window(),
            None,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Unsupported(m) if m.contains("invoices")));
    }

    #[test]
    fn validate_config_names_the_missing_key() {
        assert_eq!(InfusionsoftRest::validate_config(&config()), Ok(()));
        let err = InfusionsoftRest::validate_config(&Config::new([(API_KEY, "k")])).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(f) if f.key == API_SECRET));
        let err = InfusionsoftRest::validate_config(&Config::new([(API_SECRET, "s")])).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(f) if f.key == API_KEY));
        let bad_base = Config::new([(API_KEY, "k"), (API_SECRET, "s"), (BASE_URL, "api/v1")]);
        let err = InfusionsoftRest::validate_config(&bad_base).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(f) if f.key == BASE_URL));
    }
}
