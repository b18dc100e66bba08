//! Which resources an instance polls, and how each record's id and dates are read.
//!
//! From `event.poller.configuration` (a JSON object, or its JSON text), else from
//! `event.poller.urls` (names that select the connector's default resources, or the legacy
//! per-line `name|url|idField|updatedField|format` form), else the connector's defaults.

use jiff::tz::TimeZone;
use serde_json::{Map, Value};

use crate::instances::settings::{FieldError, POLLER_CONFIGURATION, POLLER_URLS, json_object};
use dates::{DateFormat, parse_time_zone};
use runtime::types::{ConnectorInfo, DatesConfiguration, PollResource};

/// Where a record's date is and how it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct DateField {
    /// Dotted path in the record, e.g. `_info.lastUpdated`.
    pub path: String,
    /// How the value is written.
    pub format: DateFormat,
    /// The zone of values without an offset.
    pub zone: TimeZone,
}

/// One resource to poll.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// The name; also the event object type.
    pub name: String,
    /// The hub URL, possibly with `${…}` templates.
    pub url: String,
    /// Dotted path of the record id.
    pub id_field: String,
    /// The last-updated date, if configured.
    pub updated: Option<DateField>,
    /// The creation date, if configured.
    pub created: Option<DateField>,
    /// Skip records not updated after the window start (default true).
    pub filter_by_updated_date: bool,
    /// Skip records dated after the poll started (default false).
    pub filter_by_current_date: bool,
    /// Updated within this many milliseconds of created counts as CREATED.
    pub created_check_tolerance_ms: i64,
    /// Page size asked of the connector.
    pub page_size: Option<u32>,
    /// Milliseconds taken off the last poll time for the window start.
    pub poll_delay_ms: i64,
}

/// The largest `pollDelay` accepted, in seconds (either sign): a year.
pub const MAX_POLL_DELAY_SECONDS: f64 = 31_536_000.0;

fn date_field(
    key: &str,
    path: Option<&str>,
    format: Option<&str>,
    zone: Option<&str>,
) -> Result<Option<DateField>, FieldError> {
    let Some(path) = path.filter(|p| !p.trim().is_empty()) else {
        return Ok(None);
    };
    let format = DateFormat::parse(format.unwrap_or(""))
        .map_err(|e| FieldError::config(key, e.to_string()))?;
    let zone = parse_time_zone(zone.unwrap_or("GMT"))
        .map_err(|e| FieldError::config(key, e.to_string()))?;
    Ok(Some(DateField {
        path: path.to_string(),
        format,
        zone,
    }))
}

fn from_default(p: &PollResource) -> Result<Resource, FieldError> {
    let key = format!("{POLLER_URLS}.{}", p.name);
    Ok(Resource {
        name: p.name.clone(),
        url: p.url.clone(),
        id_field: p.id_field.clone(),
        updated: dates_updated(&key, &p.dates)?,
        created: date_field(
            &key,
            p.dates.created_date_field.as_deref(),
            p.dates
                .created_date_format
                .as_deref()
                .or(Some(&p.dates.updated_date_format)),
            p.dates
                .created_date_timezone
                .as_deref()
                .or(p.dates.updated_date_timezone.as_deref()),
        )?,
        filter_by_updated_date: true,
        filter_by_current_date: false,
        created_check_tolerance_ms: 1000,
        page_size: None,
        poll_delay_ms: 0,
    })
}

fn dates_updated(key: &str, d: &DatesConfiguration) -> Result<Option<DateField>, FieldError> {
    date_field(
        key,
        Some(&d.updated_date_field),
        Some(&d.updated_date_format),
        d.updated_date_timezone.as_deref(),
    )
}

fn str_at<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}

fn bool_at(m: &Map<String, Value>, k: &str, key: &str) -> Result<Option<bool>, FieldError> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
        _ => Err(FieldError::config(
            &format!("{key}.{k}"),
            "must be true or false",
        )),
    }
}

fn number_at(m: &Map<String, Value>, k: &str, key: &str) -> Result<Option<f64>, FieldError> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| FieldError::config(&format!("{key}.{k}"), "must be a number")),
        _ => Err(FieldError::config(
            &format!("{key}.{k}"),
            "must be a number",
        )),
    }
}

fn from_configuration(
    info: &ConnectorInfo,
    name: &str,
    r: &Map<String, Value>,
) -> Result<Resource, FieldError> {
    let key = format!("{POLLER_CONFIGURATION}.{name}");
    let default = info.poll_resources.iter().find(|p| p.name == name);
    let url = str_at(r, "url")
        .ok_or_else(|| FieldError::config(&format!("{key}.url"), "is required"))?
        .to_string();
    let id_field = str_at(r, "idField")
        .ok_or_else(|| FieldError::config(&format!("{key}.idField"), "is required"))?
        .to_string();
    let (updated, created) = match r.get("datesConfiguration") {
        Some(Value::Object(d)) => {
            let dkey = format!("{key}.datesConfiguration");
            (
                date_field(
                    &dkey,
                    str_at(d, "updatedDateField"),
                    str_at(d, "updatedDateFormat"),
                    str_at(d, "updatedDateTimezone"),
                )?,
                date_field(
                    &dkey,
                    str_at(d, "createdDateField"),
                    str_at(d, "createdDateFormat").or(str_at(d, "updatedDateFormat")),
                    str_at(d, "createdDateTimezone").or(str_at(d, "updatedDateTimezone")),
                )?,
            )
        }
        None | Some(Value::Null) => match default {
            Some(p) => {
                let d = from_default(p)?;
                (d.updated, d.created)
            }
            None => (None, None),
        },
        Some(_) => {
            return Err(FieldError::config(
                &format!("{key}.datesConfiguration"),
                "must be an object",
            ));
        }
    };
    let tolerance = number_at(r, "createdCheckTolerance", &key)?.unwrap_or(1.0);
    let delay = number_at(r, "pollDelay", &key)?.unwrap_or(0.0);
    // The poll cycle takes the delay off the last poll time: an unbounded one overflowed
    // there (`-1e300` became i64::MIN milliseconds).
    if !(delay.is_finite() && delay.abs() <= MAX_POLL_DELAY_SECONDS) {
        return Err(FieldError::config(
            &format!("{key}.pollDelay"),
            format!("must be a number of seconds, at most {MAX_POLL_DELAY_SECONDS} either way"),
        ));
    }
    let page_size = number_at(r, "pageSize", &key)?;
    Ok(Resource {
        name: name.to_string(),
        url,
        id_field,
        updated,
        created,
        filter_by_updated_date: bool_at(r, "filterByUpdatedDate", &key)?.unwrap_or(true),
        filter_by_current_date: bool_at(r, "filterByCurrentDate", &key)?.unwrap_or(false),
        created_check_tolerance_ms: (tolerance * 1000.0) as i64,
        page_size: page_size.filter(|n| *n >= 1.0).map(|n| n as u32),
        poll_delay_ms: (delay * 1000.0) as i64,
    })
}

fn from_urls(info: &ConnectorInfo, urls: &str) -> Result<Vec<Resource>, FieldError> {
    let mut out = Vec::new();
    for line in urls.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        if fields.len() >= 2 && fields[1].starts_with('/') {
            // Legacy per-line form: name|url|idField|updatedField|format.
            let key = format!("{POLLER_URLS}.{}", fields[0]);
            out.push(Resource {
                name: fields[0].to_string(),
                url: fields[1].to_string(),
                id_field: fields
                    .get(2)
                    .filter(|s| !s.is_empty())
                    .unwrap_or(&"id")
                    .to_string(),
                updated: date_field(&key, fields.get(3).copied(), fields.get(4).copied(), None)?,
                created: None,
                filter_by_updated_date: true,
                filter_by_current_date: false,
                created_check_tolerance_ms: 1000,
                page_size: None,
                poll_delay_ms: 0,
            });
            continue;
        }
        for name in fields.iter().filter(|n| !n.is_empty()) {
            let p = info
                .poll_resources
                .iter()
                .find(|p| p.name == *name)
                .ok_or_else(|| {
                    let known: Vec<&str> = info
                        .poll_resources
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect();
                    FieldError::config(
                        POLLER_URLS,
                        format!(
                            "`{name}` is not a resource of `{}`; it has: {}",
                            info.key,
                            known.join(", ")
                        ),
                    )
                })?;
            out.push(from_default(p)?);
        }
    }
    Ok(out)
}

/// The resources an instance with this configuration polls.
pub fn resolve(
    info: &ConnectorInfo,
    config: &[(String, String)],
) -> Result<Vec<Resource>, FieldError> {
    let get = |key: &str| crate::instances::settings::get(config, key);
    let resources = if let Some(v) = get(POLLER_CONFIGURATION) {
        let m = json_object(POLLER_CONFIGURATION, v)?;
        let mut out = Vec::new();
        for (name, r) in &m {
            let Value::Object(r) = r else {
                return Err(FieldError::config(
                    &format!("{POLLER_CONFIGURATION}.{name}"),
                    "must be an object with url and idField",
                ));
            };
            out.push(from_configuration(info, name, r)?);
        }
        out
    } else if let Some(v) = get(POLLER_URLS) {
        from_urls(info, v)?
    } else {
        info.poll_resources
            .iter()
            .map(from_default)
            .collect::<Result<_, _>>()?
    };
    if resources.is_empty() {
        return Err(FieldError::config(
            POLLER_CONFIGURATION,
            "names no resource to poll",
        ));
    }
    Ok(resources)
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtime::types::{Modes, PollResource};

    fn info() -> ConnectorInfo {
        let dates = DatesConfiguration {
            updated_date_field: "updated_at".into(),
            updated_date_format: "yyyy-MM-dd HH:mm:ss".into(),
            updated_date_timezone: Some("GMT".into()),
            created_date_field: Some("created_at".into()),
            created_date_format: None,
            created_date_timezone: None,
        };
        let resource = |name: &str| PollResource {
            name: name.into(),
            url: format!("/hubs/marketing/{name}"),
            id_field: "id".into(),
            dates: dates.clone(),
        };
        ConnectorInfo {
            poll_resources: vec![resource("contacts"), resource("leads")],
            modes: Modes::POLLING,
            key: "pardot".into(),
            ..ConnectorInfo::unknown()
        }
    }

    fn config(key: &str, value: &str) -> Vec<(String, String)> {
        vec![(key.to_string(), value.to_string())]
    }

    #[test]
    fn urls_select_the_connector_defaults_by_name() {
        let r = resolve(&info(), &config(POLLER_URLS, "contacts|leads")).unwrap();
        let names: Vec<&str> = r.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["contacts", "leads"]);
        assert_eq!(r[0].created.as_ref().unwrap().path, "created_at");
        let err = resolve(&info(), &config(POLLER_URLS, "contacts|deals")).unwrap_err();
        assert!(
            err.reason.contains("deals") && err.reason.contains("contacts, leads"),
            "{err:?}"
        );
    }

    #[test]
    fn the_legacy_per_line_form_names_url_id_and_date() {
        let r = resolve(
            &info(),
            &config(
                POLLER_URLS,
                "contacts|/hubs/marketing/contacts?x=1|id|updated_at|yyyy-MM-dd HH:mm:ss\nleads",
            ),
        )
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].url, "/hubs/marketing/contacts?x=1");
        assert_eq!(r[0].updated.as_ref().unwrap().path, "updated_at");
        assert_eq!(r[1].name, "leads");
    }

    #[test]
    fn a_poll_delay_is_a_finite_number_of_seconds_within_a_year() {
        // Found by the fuzzer (`fuzz`, target `instance`): `-1e300` became i64::MIN ms, and
        // the poll cycle's `last - poll_delay_ms` overflowed.
        let with_delay = |d: &str| {
            resolve(
                &info(),
                &config(
                    POLLER_CONFIGURATION,
                    &format!(
                        r#"{{"contacts": {{"url": "/c", "idField": "id", "pollDelay": {d}}}}}"#
                    ),
                ),
            )
        };
        for bad in [
            "-1e300",
            "1e300",
            "\"-inf\"",
            "\"NaN\"",
            "31536001",
            "-31536001",
        ] {
            let err = with_delay(bad).unwrap_err();
            assert_eq!(
                err.field,
                format!("configuration.{POLLER_CONFIGURATION}.contacts.pollDelay"),
                "{bad}"
            );
        }
        for (good, ms) in [
            ("31536000", 31_536_000_000),
            ("-60", -60_000),
            ("\"1.5\"", 1_500),
        ] {
            assert_eq!(with_delay(good).unwrap()[0].poll_delay_ms, ms, "{good}");
        }
    }

    #[test]
    fn configuration_overrides_and_defaults_fill_in() {
        let r = resolve(
            &info(),
            &config(
                POLLER_CONFIGURATION,
                r#"{"contacts": {"url": "/hubs/marketing/contacts", "idField": "id", "pollDelay": 30, "pageSize": "50", "filterByUpdatedDate": "false"}}"#,
            ),
        )
        .unwrap();
        assert_eq!(r[0].poll_delay_ms, 30_000);
        assert_eq!(r[0].page_size, Some(50));
        assert!(!r[0].filter_by_updated_date);
        // No datesConfiguration: the connector's default for that name.
        assert_eq!(r[0].updated.as_ref().unwrap().path, "updated_at");
        // Nothing configured: every default.
        assert_eq!(resolve(&info(), &[]).unwrap().len(), 2);
    }
}
