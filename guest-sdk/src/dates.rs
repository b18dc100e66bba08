//! Vendor date formats, on the `time` crate.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

use crate::Error;

fn from_ms(ms: i64) -> Result<OffsetDateTime, Error> {
    // Whole seconds and milliseconds in i64: the nanosecond constructor takes an i128,
    // which is a software division on wasm32.
    let millis = ms.rem_euclid(1000) as u16;
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .and_then(|t| t.replace_millisecond(millis))
        .map_err(|_| Error::bad_request(format!("timestamp {ms} ms is out of range")))
}

/// The error for a date the format cannot print (RFC 3339 has no years before 0). A fixed
/// text: formatting the `time` crate's error would bring its messages (and `std::io`'s,
/// which they include) into every connector's data image.
fn unformattable(ms: i64) -> Error {
    Error::bad_request(format!("timestamp {ms} ms cannot be formatted"))
}

/// RFC 3339 in UTC with seconds, e.g. `2024-01-01T00:00:00Z`, from unix seconds.
pub fn rfc3339_from_unix_seconds(secs: i64) -> Result<String, Error> {
    rfc3339_from_ms(secs.saturating_mul(1000))
}

/// RFC 3339 in UTC, e.g. `2024-01-01T00:00:00Z`, from unix milliseconds (whole seconds
/// only when the milliseconds are zero).
pub fn rfc3339_from_ms(ms: i64) -> Result<String, Error> {
    from_ms(ms)?.format(&Rfc3339).map_err(|_| unformattable(ms))
}

/// `yyyy-MM-dd HH:mm:ss` in UTC, as Pardot's `updated_after` takes it.
pub fn sql_datetime_from_ms(ms: i64) -> Result<String, Error> {
    let f = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    from_ms(ms)?.format(&f).map_err(|_| unformattable(ms))
}

/// `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'` in UTC, as Keap's `since`/`until` take it.
pub fn iso_millis_from_ms(ms: i64) -> Result<String, Error> {
    let f =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    from_ms(ms)?
        .to_offset(UtcOffset::UTC)
        .format(&f)
        .map_err(|_| unformattable(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_vendor_dates() {
        let ms = 1_483_309_079_039; // 2017-01-01T22:17:59.039Z
        assert_eq!(iso_millis_from_ms(ms).unwrap(), "2017-01-01T22:17:59.039Z");
        assert_eq!(sql_datetime_from_ms(ms).unwrap(), "2017-01-01 22:17:59");
        assert_eq!(
            rfc3339_from_unix_seconds(1_234_567).unwrap(),
            "1970-01-15T06:56:07Z"
        );
        assert_eq!(rfc3339_from_ms(ms).unwrap(), "2017-01-01T22:17:59.039Z");
        // Before 1970 the milliseconds still count forward from the whole second.
        assert_eq!(rfc3339_from_ms(-1).unwrap(), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            iso_millis_from_ms(-1_500).unwrap(),
            "1969-12-31T23:59:58.500Z"
        );
        assert!(rfc3339_from_ms(i64::MAX).is_err());
        // Year -1199: a time, but not one RFC 3339 can write.
        match rfc3339_from_ms(-100_000_000_000_000) {
            Err(Error::BadRequest(m)) => {
                assert_eq!(m, "timestamp -100000000000000 ms cannot be formatted")
            }
            other => panic!("expected a bad-request error, got {other:?}"),
        }
    }
}
