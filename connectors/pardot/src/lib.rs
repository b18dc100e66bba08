//! Pardot: polling of prospects (`contacts`) and opportunities (`leads`) through the
//! legacy API v4, after an api-key login with the account's email, password and user key.
//!
//! Behaviour no source settles, chosen here:
//! - a login answer with `stat: fail` is `unauthorized` for credential errors (codes 1 and 15,
//!   or no code) and a vendor error for the rest (a rate limit is not a wrong password);
//! - the poll target's page size is ignored: Pardot pages hold at most 200 records and the
//!   query is sent without `limit`, so the default of 200 applies;
//! - a cursor is the decimal offset of the next page; anything else is a bad request.

use guest_sdk::prelude::*;
use serde_json::Value;

/// The Pardot connector.
pub struct Pardot;

const DEFAULT_BASE_URL: &str = "https://pi.pardot.com";
const USER_NAME: &str = "apikey.user.name";
const USER_PASSWORD: &str = "apikey.user.password";
const USER_KEY: &str = "apikey.user.key";
const PROVIDER_VERSION: &str = "provider.version";
const BASE_URL: &str = "base.url";
/// Seconds a Pardot api key stays valid after login.
const API_KEY_LIFETIME_SECS: u64 = 3600;
/// Pardot error codes that mean "log in again": invalid api key or user key, login failed.
const CREDENTIAL_ERROR_CODES: [i64; 2] = [1, 15];

impl Connector for Pardot {
    fn info() -> ConnectorInfo {
        ConnectorInfo::new("pardot", "Pardot", "marketing")
            .polling()
            .key(ConfigKey::required(USER_NAME, "Pardot user email"))
            .key(ConfigKey::required(USER_PASSWORD, "Pardot user password").secret())
            .key(ConfigKey::required(USER_KEY, "Pardot user key").secret())
            .key(
                ConfigKey::optional(PROVIDER_VERSION, "Pardot API version (only 4 is supported)")
                    .typed(ValueType::Integer),
            )
            .key(
                ConfigKey::optional(
                    BASE_URL,
                    "Pardot API base URL (default https://pi.pardot.com)",
                )
                .typed(ValueType::Url),
            )
            .resource(resource("contacts", "/hubs/marketing/contacts"))
            .resource(resource("leads", "/hubs/marketing/leads"))
    }

    fn validate_config(config: &Config) -> Result<(), Error> {
        config.require(USER_NAME)?;
        config.require(USER_PASSWORD)?;
        config.require(USER_KEY)?;
        if let Some(version) = config.non_empty(PROVIDER_VERSION)
            && version != "4"
        {
            return Err(Error::invalid_config(
                PROVIDER_VERSION,
                "only version 4 is supported",
            ));
        }
        if let Some(base) = config.non_empty(BASE_URL)
            && !(base.starts_with("https://") || base.starts_with("http://"))
        {
            return Err(Error::invalid_config(
                BASE_URL,
                "must start with https:// or http://",
            ));
        }
        Ok(())
    }

    fn build_auth_request(ctx: &Context, step: &AuthStep) -> Result<Option<HttpRequest>, Error> {
        if !matches!(step, AuthStep::Login) {
            return Ok(None);
        }
        let base = ctx.config.base_url(BASE_URL, DEFAULT_BASE_URL);
        let email = ctx.config.require(USER_NAME)?;
        let password = ctx.config.require(USER_PASSWORD)?;
        let user_key = ctx.config.require(USER_KEY)?;
        Ok(Some(HttpRequest::post_form(
            format!("{base}/api/login/version/4"),
            &[
                ("email", email),
                ("password", password),
                ("user_key", user_key),
                ("format", "json"),
            ],
        )))
    }

    fn parse_auth_response(
        _ctx: &Context,
        step: &AuthStep,
        resp: &HttpResponse,
    ) -> Result<Credentials, Error> {
        if !matches!(step, AuthStep::Login) {
            return Err(Error::unsupported(
                "Pardot has only the login authentication step",
            ));
        }
        let body = json::from_slice(&resp.body).ok();
        if let Some(failure) = body.as_ref().and_then(failure) {
            return Err(if failure.is_credential_error() {
                Error::unauthorized(format!("Pardot login refused: {}", failure.message()))
            } else {
                Error::vendor(format!("Pardot login failed: {}", failure.message()))
            });
        }
        if !(200..=299).contains(&resp.status) {
            return Err(Error::vendor(format!(
                "Pardot login answered {}",
                resp.status
            )));
        }
        let body = body.ok_or_else(|| Error::vendor("Pardot login answer is not valid JSON"))?;
        let api_key = json::string_at(&body, "api_key")
            .filter(|k| !k.is_empty())
            .ok_or_else(|| Error::vendor("Pardot login answer has no api_key"))?;
        Ok(Credentials {
            access_token: api_key,
            refresh_token: None,
            expires_in_secs: Some(API_KEY_LIFETIME_SECS),
        })
    }

    fn build_poll_request(
        ctx: &Context,
        target: &PollTarget,
        window: &PollWindow,
        cursor: Option<&str>,
    ) -> Result<HttpRequest, Error> {
        let (object, _) = object_of(&target.name)?;
        let api_key = ctx.access_token()?;
        let user_key = ctx.config.require(USER_KEY)?;
        let base = ctx.config.base_url(BASE_URL, DEFAULT_BASE_URL);
        let since = dates::sql_datetime_from_ms(window.since_ms)?;
        let offset = offset_of(cursor)?.to_string();
        let url = form::with_query(
            &format!("{base}/api/{object}/version/4/do/query"),
            &[
                ("format", "json"),
                ("updated_after", &since),
                ("sort_by", "updated_at"),
                ("sort_order", "ascending"),
                ("offset", &offset),
            ],
        );
        Ok(HttpRequest::get(url).header(
            "authorization",
            format!("Pardot api_key={api_key}, user_key={user_key}"),
        ))
    }

    fn parse_poll_response(
        _ctx: &Context,
        target: &PollTarget,
        cursor: Option<&str>,
        resp: &HttpResponse,
    ) -> Result<PollPage, Error> {
        let (_, records_path) = object_of(&target.name)?;
        if matches!(resp.status, 401 | 403) {
            return Err(Error::unauthorized(format!(
                "Pardot answered {}",
                resp.status
            )));
        }
        let parsed = json::from_slice(&resp.body);
        if let Some(failure) = parsed.as_ref().ok().and_then(failure) {
            return Err(if failure.is_credential_error() {
                Error::unauthorized(format!("Pardot refused the api key: {}", failure.message()))
            } else {
                Error::vendor(format!("Pardot query failed: {}", failure.message()))
            });
        }
        if !(200..=299).contains(&resp.status) {
            return Err(Error::vendor(format!("Pardot answered {}", resp.status)));
        }
        let body =
            parsed.map_err(|e| Error::vendor(format!("Pardot answer is not valid JSON: {e}")))?;
        let records: Vec<Value> = json::records_at(&body, records_path)
            .into_iter()
            .cloned()
            .collect();
        let offset = offset_of(cursor)?;
        let total = json::i64_at(&body, "result.total_results")
            .and_then(|t| u64::try_from(t).ok())
            .unwrap_or(0);
        let reached = offset.saturating_add(records.len() as u64);
        let next = (!records.is_empty() && reached < total).then(|| reached.to_string());
        Ok(PollPage::new(&records, next))
    }
}

/// A default poll resource with Pardot's record fields and date format.
fn resource(name: &str, url: &str) -> PollResource {
    PollResource::new(name, url, "id", "updated_at", "yyyy-MM-dd HH:mm:ss")
        .created("created_at")
        .timezone("GMT")
}

/// The Pardot object of a resource name and where its records are in a query answer.
fn object_of(name: &str) -> Result<(&'static str, &'static str), Error> {
    match name {
        "contacts" => Ok(("prospect", "result.prospect")),
        "leads" => Ok(("opportunity", "result.opportunity")),
        other => Err(Error::unsupported(format!(
            "unknown resource {other}; Pardot polls contacts and leads"
        ))),
    }
}

/// The offset a cursor stands for: 0 without a cursor.
fn offset_of(cursor: Option<&str>) -> Result<u64, Error> {
    match cursor.map(str::trim) {
        None | Some("") => Ok(0),
        Some(c) => c
            .parse()
            .map_err(|_| Error::bad_request(format!("cursor {c:?} is not an offset"))),
    }
}

/// A Pardot `stat: fail` answer.
struct Failure {
    code: Option<i64>,
    text: Option<String>,
}

impl Failure {
    fn is_credential_error(&self) -> bool {
        self.code
            .is_none_or(|code| CREDENTIAL_ERROR_CODES.contains(&code))
    }

    fn message(&self) -> String {
        let text = self.text.as_deref().unwrap_or("unknown error");
        match self.code {
            Some(code) => format!("{text} (error code {code})"),
            None => text.to_string(),
        }
    }
}

/// The failure a Pardot answer reports, if `@attributes.stat` is `fail`.
fn failure(body: &Value) -> Option<Failure> {
    let attributes = body.get("@attributes")?;
    if json::string_at(attributes, "stat").as_deref() != Some("fail") {
        return None;
    }
    Some(Failure {
        code: json::i64_at(attributes, "err_code"),
        text: json::string_at(body, "err"),
    })
}

guest_sdk::export_connector!(Pardot);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SINCE_MS: i64 = 1_714_541_188_000; // 2024-05-01T05:26:28Z

    fn config(extra: &[(&str, &str)]) -> Config {
        let mut pairs = vec![
            (USER_NAME, "marketing+ops@example.com"),
            (USER_PASSWORD, "p&ss=w0rd secret"),
            (USER_KEY, "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4"),
        ];
        pairs.extend_from_slice(extra);
        Config::new(pairs)
    }

    fn ctx() -> Context {
        Context::new(config(&[])).with_token("c6ff1ffbb3a9c8a1d77e5d6a8e0b2c11")
    }

    fn target(name: &str) -> PollTarget {
        PollTarget {
            name: name.into(),
            url: format!("/hubs/marketing/{name}"),
            page_size: None,
        }
    }

    fn window() -> PollWindow {
        PollWindow {
            since_ms: SINCE_MS,
            until_ms: SINCE_MS + 60_000,
        }
    }

    fn response(status: u16, body: &Value) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    fn prospect(id: i64) -> Value {
        json!({"id": id, "campaign_id": 1234, "salutation": null, "first_name": "Ada",
               "last_name": "Lovelace", "email": format!("ada{id}@example.com"),
               "company": "Analytical Engines", "score": 20, "grade": "B",
               "created_at": "2024-04-30 17:02:11", "updated_at": "2024-05-01 05:26:28"})
    }

    fn opportunity(id: i64) -> Value {
        json!({"id": id, "campaign_id": 1234, "name": "Engine upgrade", "value": 25000,
               "probability": 60, "type": "New Business", "stage": "Proposal",
               "status": "open", "closed_at": null,
               "created_at": "2024-04-29 09:15:00", "updated_at": "2024-05-01 05:30:00"})
    }

    fn query_answer(key: &str, records: Value, total: i64) -> Value {
        json!({"@attributes": {"stat": "ok", "version": 1},
               "result": {"total_results": total, key: records}})
    }

    #[test]
    fn info_declares_polling_keys_and_resources() {
        let info = Pardot::info();
        assert_eq!(
            (
                info.key.as_str(),
                info.display_name.as_str(),
                info.hub.as_str()
            ),
            ("pardot", "Pardot", "marketing")
        );
        assert_eq!(info.modes, guest_sdk::Modes::POLLING);
        let secret: Vec<_> = info
            .config_keys
            .iter()
            .filter(|k| k.value_type == ValueType::Secret)
            .map(|k| k.key.as_str())
            .collect();
        assert_eq!(secret, vec![USER_PASSWORD, USER_KEY]);
        let names: Vec<_> = info.poll_resources.iter().map(|r| &r.url).collect();
        assert_eq!(
            names,
            vec!["/hubs/marketing/contacts", "/hubs/marketing/leads"]
        );
        let dates = &info.poll_resources[0].dates;
        assert_eq!(dates.updated_date_field, "updated_at");
        assert_eq!(dates.created_date_field.as_deref(), Some("created_at"));
        assert_eq!(dates.updated_date_format, "yyyy-MM-dd HH:mm:ss");
        assert_eq!(dates.updated_date_timezone.as_deref(), Some("GMT"));
        assert!(info.instance_finder.is_none());
    }

    #[test]
    fn login_posts_the_form_with_escaped_credentials() {
        let req = Pardot::build_auth_request(&ctx(), &AuthStep::Login)
            .unwrap()
            .unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.url, "https://pi.pardot.com/api/login/version/4");
        assert_eq!(
            req.headers,
            vec![(
                "content-type".to_string(),
                "application/x-www-form-urlencoded".to_string()
            )]
        );
        let body = String::from_utf8(req.body.unwrap()).unwrap();
        assert_eq!(
            body,
            "email=marketing%2Bops%40example.com&password=p%26ss%3Dw0rd%20secret\
             &user_key=a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4&format=json"
        );
        let fields = form::parse(&body);
        assert_eq!(
            fields[0],
            ("email".into(), "marketing+ops@example.com".into())
        );
        assert_eq!(fields[1], ("password".into(), "p&ss=w0rd secret".into()));
        assert_eq!(fields[3], ("format".into(), "json".into()));
    }

    #[test]
    fn login_follows_base_url_and_other_steps_need_nothing() {
        let ctx = Context::new(config(&[(BASE_URL, "http://127.0.0.1:9/")]));
        let req = Pardot::build_auth_request(&ctx, &AuthStep::Login)
            .unwrap()
            .unwrap();
        assert_eq!(req.url, "http://127.0.0.1:9/api/login/version/4");
        assert_eq!(
            Pardot::build_auth_request(&ctx, &AuthStep::Refresh("r".into())).unwrap(),
            None
        );
        assert_eq!(
            Pardot::build_auth_request(&ctx, &AuthStep::ExchangeCode("c".into())).unwrap(),
            None
        );
    }

    #[test]
    fn login_success_yields_an_api_key_valid_for_an_hour() {
        let resp = response(
            200,
            &json!({"@attributes": {"stat": "ok", "version": 1},
                    "api_key": "c6ff1ffbb3a9c8a1d77e5d6a8e0b2c11"}),
        );
        let creds = Pardot::parse_auth_response(&ctx(), &AuthStep::Login, &resp).unwrap();
        assert_eq!(
            creds,
            Credentials {
                access_token: "c6ff1ffbb3a9c8a1d77e5d6a8e0b2c11".into(),
                refresh_token: None,
                expires_in_secs: Some(3600),
            }
        );
    }

    #[test]
    fn login_failure_is_unauthorized_without_the_password() {
        let resp = response(
            200,
            &json!({"@attributes": {"stat": "fail", "version": 1, "err_code": 15},
                    "err": "Login failed"}),
        );
        let err = Pardot::parse_auth_response(&ctx(), &AuthStep::Login, &resp).unwrap_err();
        let Error::Unauthorized(msg) = err else {
            panic!("expected unauthorized, got {err:?}");
        };
        assert!(msg.contains("Login failed"), "{msg}");
        assert!(!msg.contains("p&ss"), "{msg}");
    }

    #[test]
    fn login_rate_limit_bad_status_and_garbage_are_vendor_errors() {
        let limited = response(
            200,
            &json!({"@attributes": {"stat": "fail", "version": 1, "err_code": 122},
                    "err": "Daily API rate limit met."}),
        );
        let err = Pardot::parse_auth_response(&ctx(), &AuthStep::Login, &limited).unwrap_err();
        assert!(matches!(err, Error::VendorError(m) if m.contains("rate limit")));
        let down = HttpResponse {
            status: 503,
            headers: vec![],
            body: b"<html>Service Unavailable</html>".to_vec(),
        };
        assert!(matches!(
            Pardot::parse_auth_response(&ctx(), &AuthStep::Login, &down),
            Err(Error::VendorError(_))
        ));
        let garbage = HttpResponse {
            status: 200,
            headers: vec![],
            body: b"not json".to_vec(),
        };
        assert!(matches!(
            Pardot::parse_auth_response(&ctx(), &AuthStep::Login, &garbage),
            Err(Error::VendorError(_))
        ));
        let no_key = response(200, &json!({"@attributes": {"stat": "ok", "version": 1}}));
        assert!(matches!(
            Pardot::parse_auth_response(&ctx(), &AuthStep::Login, &no_key),
            Err(Error::VendorError(_))
        ));
    }

    #[test]
    fn polls_prospects_and_opportunities_by_update_time() {
        let auth = "Pardot api_key=c6ff1ffbb3a9c8a1d77e5d6a8e0b2c11, \
                    user_key=a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4";
        for (name, object) in [("contacts", "prospect"), ("leads", "opportunity")] {
            let req = Pardot::build_poll_request(&ctx(), &target(name), &window(), None).unwrap();
            assert_eq!(req.method, "GET");
            assert_eq!(
                req.url,
                format!(
                    "https://pi.pardot.com/api/{object}/version/4/do/query?format=json\
                     &updated_after=2024-05-01%2005%3A26%3A28&sort_by=updated_at\
                     &sort_order=ascending&offset=0"
                )
            );
            assert_eq!(
                req.headers,
                vec![("authorization".to_string(), auth.to_string())]
            );
            assert_eq!(req.body, None);

            let req =
                Pardot::build_poll_request(&ctx(), &target(name), &window(), Some("200")).unwrap();
            assert!(req.url.ends_with("&offset=200"), "{}", req.url);
        }
    }

    #[test]
    fn poll_request_follows_base_url() {
        let ctx = Context::new(config(&[(BASE_URL, "http://127.0.0.1:9")])).with_token("k");
        let req =
            Pardot::build_poll_request(&ctx, &target("leads"), &window(), Some("400")).unwrap();
        assert_eq!(
            req.url,
            "http://127.0.0.1:9/api/opportunity/version/4/do/query?format=json\
             &updated_after=2024-05-01%2005%3A26%3A28&sort_by=updated_at\
             &sort_order=ascending&offset=400"
        );
        assert_eq!(
            req.headers[0].1,
            "Pardot api_key=k, user_key=a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4"
        );
    }

    #[test]
    fn poll_request_needs_a_key_a_known_resource_and_a_numeric_cursor() {
        let no_key = Context::new(config(&[]));
        assert!(matches!(
            Pardot::build_poll_request(&no_key, &target("contacts"), &window(), None),
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            Pardot::build_poll_request(&ctx(), &target("accounts"), &window(), None),
            Err(Error::Unsupported(_))
        ));
        assert!(matches!(
            Pardot::build_poll_request(&ctx(), &target("contacts"), &window(), Some("abc")),
            Err(Error::BadRequest(_))
        ));
    }

    #[test]
    fn a_full_page_with_more_to_come_yields_the_next_offset() {
        let records = json!([prospect(1001), prospect(1002), prospect(1003)]);
        let resp = response(200, &query_answer("prospect", records, 450));
        let page =
            Pardot::parse_poll_response(&ctx(), &target("contacts"), Some("200"), &resp).unwrap();
        assert_eq!(page.records.len(), 3);
        let first: Value = serde_json::from_str(&page.records[0]).unwrap();
        assert_eq!(first, prospect(1001));
        assert_eq!(page.next_cursor.as_deref(), Some("203"));

        let page = Pardot::parse_poll_response(&ctx(), &target("contacts"), None, &resp).unwrap();
        assert_eq!(page.next_cursor.as_deref(), Some("3"));
    }

    #[test]
    fn exactly_one_record_comes_as_an_object() {
        let resp = response(200, &query_answer("opportunity", opportunity(77), 1));
        let page = Pardot::parse_poll_response(&ctx(), &target("leads"), None, &resp).unwrap();
        assert_eq!(page.records.len(), 1);
        let record: Value = serde_json::from_str(&page.records[0]).unwrap();
        assert_eq!(record["name"], "Engine upgrade");
        assert_eq!(record["probability"], 60);
        assert_eq!(page.next_cursor, None);
    }

    #[test]
    fn no_records_is_an_empty_last_page() {
        let resp = response(
            200,
            &json!({"@attributes": {"stat": "ok"}, "result": {"total_results": 0}}),
        );
        for name in ["contacts", "leads"] {
            let page = Pardot::parse_poll_response(&ctx(), &target(name), None, &resp).unwrap();
            assert!(page.records.is_empty());
            assert_eq!(page.next_cursor, None);
        }
        let null = response(200, &query_answer("prospect", Value::Null, 0));
        let page = Pardot::parse_poll_response(&ctx(), &target("contacts"), None, &null).unwrap();
        assert!(page.records.is_empty());
    }

    #[test]
    fn the_last_page_has_no_next_cursor() {
        let records = json!([opportunity(1), opportunity(2)]);
        let resp = response(200, &query_answer("opportunity", records, 402));
        let page =
            Pardot::parse_poll_response(&ctx(), &target("leads"), Some("400"), &resp).unwrap();
        assert_eq!(page.records.len(), 2);
        assert_eq!(page.next_cursor, None);
    }

    #[test]
    fn expired_keys_are_unauthorized_and_other_failures_vendor_errors() {
        for code in [1, 15] {
            let resp = response(
                200,
                &json!({"@attributes": {"stat": "fail", "version": 1, "err_code": code},
                        "err": "Invalid API key or user key"}),
            );
            let err =
                Pardot::parse_poll_response(&ctx(), &target("contacts"), None, &resp).unwrap_err();
            assert!(
                matches!(&err, Error::Unauthorized(m) if m.contains("Invalid API key")),
                "{err:?}"
            );
        }
        for status in [401, 403] {
            let resp = HttpResponse {
                status,
                headers: vec![],
                body: Vec::new(),
            };
            assert!(matches!(
                Pardot::parse_poll_response(&ctx(), &target("leads"), None, &resp),
                Err(Error::Unauthorized(_))
            ));
        }
        let limited = response(
            200,
            &json!({"@attributes": {"stat": "fail", "version": 1, "err_code": 66},
                    "err": "You have exceeded your concurrent request limit."}),
        );
        let err =
            Pardot::parse_poll_response(&ctx(), &target("leads"), None, &limited).unwrap_err();
        assert!(matches!(&err, Error::VendorError(m) if m.contains("concurrent")));
        let down = HttpResponse {
            status: 500,
            headers: vec![],
            body: b"oops".to_vec(),
        };
        assert!(matches!(
            Pardot::parse_poll_response(&ctx(), &target("leads"), None, &down),
            Err(Error::VendorError(_))
        ));
    }

    #[test]
    fn validate_config_names_the_bad_key() {
        assert!(Pardot::validate_config(&config(&[])).is_ok());
        assert!(Pardot::validate_config(&config(&[(PROVIDER_VERSION, "4")])).is_ok());
        for missing in [USER_NAME, USER_PASSWORD, USER_KEY] {
            let pairs: Vec<_> = config(&[])
                .entries()
                .iter()
                .filter(|(k, _)| k != missing)
                .cloned()
                .collect();
            let err = Pardot::validate_config(&Config::new(pairs)).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidConfig(f) if f.key == missing),
                "{err:?}"
            );
        }
        let err = Pardot::validate_config(&config(&[(PROVIDER_VERSION, "3")])).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(f) if f.key == PROVIDER_VERSION));
        let err = Pardot::validate_config(&config(&[(BASE_URL, "pi.pardot.com")])).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(f) if f.key == BASE_URL));
    }
}
