//! The `dates` crate: Java patterns, epoch formats, ISO, zones and `${…}` templates.
//!
//! An input is lines: the format (`yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`, `epoch:s`, `iso`, …),
//! the zone, a date text to parse, a URL template, an instant in epoch milliseconds; the
//! rest is a JSON value read as a record's date (`DateFormat::parse_json`).

use arbitrary::Unstructured;
use dates::{DateFormat, EpochUnit, JavaPattern, parse_time_zone, render_template};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::pick_or_text;
use crate::{Target, Trace, split_lines, text};

/// The target.
pub struct Dates;

/// Instants every format is tried at besides the input's: the range's ends, the epoch,
/// a leap day, a date before year 1000 and one after 9999.
const INSTANTS: [i64; 5] = [
    0,
    951_782_400_123,
    -62_135_596_800_000,
    253_402_300_800_000,
    1,
];

impl Target for Dates {
    fn name(&self) -> &'static str {
        "dates"
    }

    fn run(&self, data: &[u8]) -> u64 {
        let mut trace = Trace::default();
        let (lines, rest) = split_lines(data, 5);
        let (spec, zone, date, template) = (
            text(lines[0]),
            text(lines[1]),
            text(lines[2]),
            text(lines[3]),
        );
        let at = text(lines[4])
            .trim()
            .parse::<i64>()
            .ok()
            .map(|ms| {
                Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
                    Timestamp::MIN
                } else {
                    Timestamp::MAX
                })
            })
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let mut instants = vec![at, Timestamp::MIN, Timestamp::MAX];
        instants.extend(
            INSTANTS
                .iter()
                .filter_map(|ms| Timestamp::from_millisecond(*ms).ok()),
        );

        let tz = match parse_time_zone(&zone) {
            Ok(tz) => {
                trace.hit(1);
                tz
            }
            Err(e) => {
                trace.error(&e.to_string());
                TimeZone::UTC
            }
        };
        match DateFormat::parse(&spec) {
            Ok(format) => {
                trace.hit(format_kind(&format));
                for &ts in &instants {
                    let written = format.format(ts, &tz);
                    let back = format.parse_date(&written, &tz);
                    round_trip(&format, ts, &tz, &written, back);
                }
                match format.parse_date(&date, &tz) {
                    Ok(ts) => {
                        trace.hit(2);
                        let _ = format.format(ts, &tz);
                    }
                    Err(e) => trace.error(&e.to_string()),
                }
                if let Ok(value) = serde_json::from_slice::<serde_json::Value>(rest) {
                    trace.hit(3);
                    if let Err(e) = format.parse_json(&value, &tz) {
                        trace.error(&e.to_string());
                    }
                }
            }
            Err(e) => trace.error(&e.to_string()),
        }
        // The pattern alone, as a Java pattern (what `DateFormat` falls back to).
        if let Ok(p) = JavaPattern::parse(&spec) {
            assert_eq!(p.as_str(), spec);
            let _ = p.to_string();
        }
        for &ts in &instants[..2] {
            match render_template(&template, ts) {
                Ok(url) => {
                    trace.hit(4);
                    if !template.contains("${") {
                        assert_eq!(url, template, "a template without `${{` changed");
                    }
                }
                Err(e) => trace.error(&e.to_string()),
            }
        }
        trace.finish()
    }

    fn generate(&self, u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
        const PIECES: &[&str] = &[
            "yyyy",
            "yy",
            "y",
            "MM",
            "MMM",
            "MMMM",
            "M",
            "L",
            "dd",
            "d",
            "HH",
            "H",
            "hh",
            "h",
            "a",
            "mm",
            "m",
            "ss",
            "s",
            "S",
            "SSS",
            "SSSSSSSSS",
            "SSSSSSSSSS",
            "EEE",
            "EEEE",
            "Z",
            "X",
            "XX",
            "XXX",
            "XXXX",
            "z",
            "'T'",
            "'Z'",
            "''",
            "'",
            "-",
            ":",
            " ",
            ".",
            "G",
            "w",
            "%",
            "{",
            "}",
        ];
        let mut spec = String::new();
        match u.int_in_range(0..=5)? {
            0 => spec.push_str(u.choose(&[
                "epoch", "epoch:s", "epoch:ms", "epoch:us", "epoch:x", "iso", "",
            ])?),
            _ => {
                for _ in 0..u.int_in_range(1..=10)? {
                    spec.push_str(&pick_or_text(u, PIECES)?);
                }
            }
        }
        let zone = pick_or_text(
            u,
            &[
                "GMT",
                "UTC",
                "Z",
                "America/New_York",
                "Europe/Paris",
                "+0530",
                "-08",
                "GMT+05:30",
                "UTC-8",
                "+99:99",
                "Asia/Kathmandu",
                "",
            ],
        )?;
        let mut date = String::new();
        for _ in 0..u.int_in_range(0..=8)? {
            date.push_str(&pick_or_text(
                u,
                &[
                    "2024",
                    "-",
                    "01",
                    "31",
                    "T",
                    ":",
                    "59",
                    "60",
                    ".",
                    "000",
                    "123456789",
                    "+0000",
                    "Z",
                    "GMT",
                    "PST",
                    " ",
                    "Jan",
                    "Monday",
                    "AM",
                    "PM",
                    "99999999999",
                ],
            )?);
        }
        let mut template = String::from("/hubs/x?where=");
        for _ in 0..u.int_in_range(0..=3)? {
            template.push_str("${");
            template.push_str(&pick_or_text(
                u,
                &[
                    "gmtDate:", "date:", "epoch", "epoch:s", "epoch:us", "epoch:ns", "other",
                ],
            )?);
            template.push_str(&spec);
            if u.ratio(7, 8)? {
                template.push('}');
            }
            template.push_str(&pick_or_text(u, &["&", "'", "", "$", "${"])?);
        }
        let at: i64 = u.arbitrary()?;
        let json = pick_or_text(
            u,
            &[
                "\"2024-01-01T00:00:00Z\"",
                "1700000000",
                "1.5e300",
                "-1",
                "null",
                "[]",
                "{}",
                "\"\"",
                "17e3",
            ],
        )?;
        Ok(format!("{spec}\n{zone}\n{date}\n{template}\n{at}\n{json}").into_bytes())
    }

    fn dictionary(&self) -> &'static [&'static str] {
        &[
            "yyyy",
            "MM",
            "dd",
            "HH",
            "hh",
            "mm",
            "ss",
            "SSS",
            "EEE",
            "MMM",
            "a",
            "Z",
            "X",
            "XXX",
            "z",
            "'",
            "'T'",
            "'Z'",
            "epoch",
            "epoch:",
            "iso",
            "${",
            "}",
            "${gmtDate:",
            "${date:",
            "${epoch",
            "GMT",
            "UTC",
            "+",
            "-",
            ":",
            "/",
            "America/",
            "\n",
        ]
    }
}

fn format_kind(f: &DateFormat) -> u64 {
    match f {
        DateFormat::Java(_) => 10,
        DateFormat::Epoch(u) => 11 + *u as u64,
        DateFormat::Iso => 20,
    }
}

/// What the crate documents: an epoch count reads back as the instant truncated to its
/// unit, and ISO text as the instant itself, except in an offset with seconds (a local
/// mean time before standard zones, `Europe/Paris` before 1911): RFC 3339 has no place for
/// them, and `iso` writes the local time with the offset cut to minutes (left as it is;
/// the host formats in GMT only).
fn round_trip(
    format: &DateFormat,
    ts: Timestamp,
    tz: &TimeZone,
    written: &str,
    back: Result<Timestamp, dates::DateError>,
) {
    match format {
        DateFormat::Epoch(unit) => {
            let per = match unit {
                EpochUnit::Seconds => 1_000_000_000,
                EpochUnit::Milliseconds => 1_000_000,
                EpochUnit::Microseconds => 1_000,
            };
            let n = ts.as_nanosecond();
            let expected = n - n % per;
            let back = back.unwrap_or_else(|e| panic!("{written:?} does not read back: {e}"));
            assert_eq!(
                back.as_nanosecond(),
                expected,
                "{written:?} read back wrong"
            );
        }
        DateFormat::Iso if tz.to_offset(ts).seconds() % 60 == 0 => {
            let back = back.unwrap_or_else(|e| panic!("{written:?} does not read back: {e}"));
            assert_eq!(back, ts, "{written:?} read back wrong");
        }
        DateFormat::Iso | DateFormat::Java(_) => {}
    }
}
