//! Date handling for polled resources: Java `SimpleDateFormat` patterns,
//! epoch formats, time zones and `${…}` URL templates.
//!
//! Poll resources in the Open Connectors format carry a `datesConfiguration`
//! (`updatedDateFormat`, `updatedDateTimezone`, …) written for Java's
//! `SimpleDateFormat`, and URLs such as
//! `/hubs/crm/contacts?where=lastUpdated>'${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}'`.
//! This module maps those onto [`jiff`]; no calendar arithmetic is done here.
//!
//! # Java patterns
//!
//! [`JavaPattern::parse`] compiles a pattern once into tokens. Formatting goes
//! through jiff's `strftime` ([`jiff::fmt::strtime`]); parsing scans the text
//! token by token and builds a [`jiff::civil::DateTime`], which jiff validates
//! and converts to an instant.
//!
//! | Java | meaning | strftime used to format |
//! | --- | --- | --- |
//! | `yyyy`, `y` | year (padded to the letter count) | `%0NY` |
//! | `yy` | two-digit year; parsing maps 69–99 to 19xx, 00–68 to 20xx (POSIX rule, not Java's "now − 80 years") | `%y` |
//! | `MM`, `M` (and `L`) | month number | `%0Nm` / `%-m` |
//! | `MMM`, `MMMM` | `Jan`, `January` (English) | `%b`, `%B` |
//! | `dd`, `d` | day of month | `%0Nd` / `%-d` |
//! | `HH`, `H` | hour 0–23 | `%0NH` / `%-H` |
//! | `hh`, `h` | hour 1–12 (without `a`, parsing takes it as AM) | `%0NI` / `%-I` |
//! | `a` | `AM` / `PM` | `%p` |
//! | `mm`, `m` / `ss`, `s` | minute / second | `%0NM` / `%0NS` |
//! | `S`…`SSSSSSSSS` | fraction of a second with that many digits (`SSS` = milliseconds) | `%Nf` |
//! | `EEE`, `EEEE` | `Mon`, `Monday` (English; parsed and then ignored, like Java) | `%a`, `%A` |
//! | `Z` | `+0000` | `%z` |
//! | `X`, `XX`, `XXX` | `-04` / `-0400` / `-04:00`, and `Z` for a zero offset | `%:::z`, `%z`, `%:z` |
//! | `z` | zone abbreviation (`GMT`, `UTC`, `EST`, …) | `%Z` |
//! | `'text'`, `''` | quoted literal, escaped quote | literal (`%` escaped as `%%`) |
//! | any non-letter | literal | literal |
//!
//! Other pattern letters (`G`, `Y`, `w`, `W`, `D`, `F`, `u`, `k`, `K`, …) are
//! rejected with [`PatternError::UnknownLetter`].
//!
//! Java's `S` counts milliseconds (`S` formats 5 ms as `5`); here `S`… is a
//! fraction of a second, which is the same for the usual `SSS` and lets a
//! parse of `SSS` accept any number of fractional digits from 1 to 9
//! (`.5` is 500 ms, `.123456` keeps its microseconds).
//!
//! ## Parsing rules
//!
//! * Numeric fields take all consecutive digits, except when the next token is
//!   numeric too (`yyyyMMdd`): then they take exactly the letter count.
//! * Literals must match exactly, except a quoted `'Z'`: vendors write the
//!   literal `Z` or a real offset there (Keap sends `…57.000+0000` for
//!   `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`), so that place accepts `Z` (UTC),
//!   `+0000`, `+00:00`, `+00` and zone names like `GMT`, and the offset read is
//!   honoured.
//! * `Z`, `X`, `XX`, `XXX` and `z` all accept the same forms: `Z`, `+HHMM`,
//!   `+HH:MM`, `+HH`, `GMT`/`UTC`/`UT` optionally followed by an offset, and
//!   the US abbreviations `EST`, `EDT`, `CST`, `CDT`, `MST`, `MDT`, `PST`, `PDT`.
//! * After the whole pattern, the text may still carry a fraction of a second
//!   (when the pattern had none) and/or an offset (when the pattern had none,
//!   optionally after one space): `yyyy-MM-dd'T'HH:mm:ss` accepts
//!   `2024-01-01T00:00:00.000+0000`. Any other trailing text is an error.
//! * A text with an offset is taken at that offset; otherwise the time zone
//!   given to the parse applies (a wall-clock time skipped by a DST gap moves
//!   forward, one repeated by a DST fold takes the earlier instant).
//! * Missing fields default like Java: 1970-01-01 00:00:00.
//!
//! # Special formats
//!
//! [`DateFormat`] adds, besides Java patterns: `epoch` and `epoch:ms`
//! (milliseconds since the Unix epoch), `epoch:s` (seconds), `epoch:us`
//! (microseconds), each written as an integer and read from a number or a
//! numeric string (a decimal fraction is accepted); and `iso` (or an empty
//! pattern): RFC 3339 / ISO 8601 text.
//!
//! # Time zones
//!
//! [`parse_time_zone`] accepts `GMT`, `UTC`, `Z`, IANA names
//! (`America/New_York`, looked up in the system time zone database), and fixed
//! offsets (`+0530`, `+05:30`, `GMT+05:30`, `UTC-8`).
//!
//! # URL templates
//!
//! [`render_template`] replaces `${gmtDate:<pattern>}`, `${date:<pattern>}`,
//! `${epoch}`, `${epoch:s}`, `${epoch:ms}` and `${epoch:us}`. The rendered
//! values are inserted verbatim, **not** URL-encoded: a caller that needs
//! encoding (e.g. for `+` in an offset) must do it itself.

use std::fmt;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// An invalid date pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    /// The pattern uses a letter that is not supported.
    UnknownLetter {
        /// The whole pattern.
        pattern: String,
        /// The unsupported letter.
        letter: char,
        /// Byte offset of the letter in the pattern.
        position: usize,
    },
    /// A quoted section (`'…`) is never closed.
    UnterminatedQuote {
        /// The whole pattern.
        pattern: String,
        /// Byte offset of the opening quote.
        position: usize,
    },
    /// A letter is repeated more often than supported (`XXXX`, ten `S`).
    TooManyLetters {
        /// The whole pattern.
        pattern: String,
        /// The repeated letter.
        letter: char,
        /// How often it is repeated.
        count: usize,
        /// The largest supported count.
        max: usize,
    },
    /// `epoch:<unit>` with a unit other than `s`, `ms` or `us`.
    UnknownEpochUnit {
        /// The whole format, e.g. `epoch:ns`.
        pattern: String,
    },
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownLetter {
                pattern,
                letter,
                position,
            } => write!(
                f,
                "unsupported letter '{letter}' at byte {position} in date pattern {pattern:?}"
            ),
            Self::UnterminatedQuote { pattern, position } => write!(
                f,
                "unterminated quote starting at byte {position} in date pattern {pattern:?}"
            ),
            Self::TooManyLetters {
                pattern,
                letter,
                count,
                max,
            } => write!(
                f,
                "'{letter}' repeated {count} times in date pattern {pattern:?} (at most {max})"
            ),
            Self::UnknownEpochUnit { pattern } => write!(
                f,
                "unknown epoch unit in date format {pattern:?}: expected epoch:s, epoch:ms or epoch:us"
            ),
        }
    }
}

impl std::error::Error for PatternError {}

/// A date text (or JSON value) that could not be read with its format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateError {
    /// The text does not match the pattern.
    Mismatch {
        /// The pattern (or special format such as `epoch:ms`).
        pattern: String,
        /// The text that was parsed.
        text: String,
        /// Byte offset in the text where matching failed.
        position: usize,
        /// What the pattern expected there.
        expected: String,
    },
    /// The text matches the pattern but names no valid instant
    /// (month 13, February 30, year out of range, …).
    Invalid {
        /// The pattern (or special format).
        pattern: String,
        /// The text that was parsed.
        text: String,
        /// Why the date is invalid.
        reason: String,
    },
    /// A JSON value of a kind that the format cannot read
    /// (e.g. an object, or a number for a Java pattern).
    UnexpectedValue {
        /// The pattern (or special format).
        pattern: String,
        /// The JSON value, serialized.
        value: String,
    },
}

impl fmt::Display for DateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mismatch {
                pattern,
                text,
                position,
                expected,
            } => write!(
                f,
                "date {text:?} does not match pattern {pattern:?}: expected {expected} at byte {position}"
            ),
            Self::Invalid {
                pattern,
                text,
                reason,
            } => write!(
                f,
                "date {text:?} (pattern {pattern:?}) is not a valid date: {reason}"
            ),
            Self::UnexpectedValue { pattern, value } => write!(
                f,
                "JSON value {value} cannot be read as a date with pattern {pattern:?}"
            ),
        }
    }
}

impl std::error::Error for DateError {}

/// A time zone name that could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeZoneError {
    /// Not a known zone or offset (or the time zone database is missing).
    Unknown {
        /// The name as given.
        name: String,
        /// What jiff reported.
        reason: String,
    },
}

impl fmt::Display for TimeZoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown { name, reason } => {
                write!(f, "unknown time zone {name:?}: {reason}")
            }
        }
    }
}

impl std::error::Error for TimeZoneError {}

/// A URL template that could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// A `${` without its closing `}` (outside quotes).
    Unclosed {
        /// Byte offset of the `${` in the URL.
        position: usize,
        /// The text from `${` to the end of the URL.
        template: String,
    },
    /// `${name…}` with a name other than `gmtDate`, `date` or `epoch`.
    UnknownName {
        /// The name found.
        name: String,
    },
    /// `${epoch:unit}` with a unit other than `s`, `ms` or `us`.
    UnknownEpochUnit {
        /// The unit found.
        unit: String,
    },
    /// The pattern of a `${gmtDate:…}` or `${date:…}` is invalid.
    Pattern {
        /// The template name (`gmtDate` or `date`).
        name: String,
        /// The pattern error.
        source: PatternError,
    },
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unclosed { position, template } => write!(
                f,
                "unclosed URL template at byte {position}: {template:?} has no closing '}}'"
            ),
            Self::UnknownName { name } => write!(
                f,
                "unknown URL template ${{{name}}}: expected gmtDate, date or epoch"
            ),
            Self::UnknownEpochUnit { unit } => write!(
                f,
                "unknown epoch unit {unit:?} in URL template: expected s, ms or us"
            ),
            Self::Pattern { name, source } => {
                write!(f, "invalid pattern in URL template ${{{name}:…}}: {source}")
            }
        }
    }
}

impl std::error::Error for TemplateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Pattern { source, .. } => Some(source),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Time zones
// ---------------------------------------------------------------------------

/// The GMT zone: UTC, but abbreviated `GMT` (as Java's `z` writes it).
fn gmt() -> TimeZone {
    TimeZone::posix("GMT0").unwrap_or(TimeZone::UTC)
}

/// Resolves a configured time zone name (`updatedDateTimezone`, …).
///
/// Accepts `GMT` (also an empty name, the Open Connectors default), `UTC`,
/// `UT`, `Z`, fixed offsets (`+0530`, `+05:30`, `-08`, `GMT+05:30`,
/// `UTC-8`) and IANA names (`America/New_York`) from the system database.
pub fn parse_time_zone(name: &str) -> Result<TimeZone, TimeZoneError> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("GMT") {
        return Ok(gmt());
    }
    if ["UTC", "UT", "Z"]
        .iter()
        .any(|n| trimmed.eq_ignore_ascii_case(n))
    {
        return Ok(TimeZone::UTC);
    }
    if let Some((offset, len)) = parse_zone_prefix(trimmed)
        && len == trimmed.len()
    {
        return Ok(TimeZone::fixed(offset));
    }
    TimeZone::get(trimmed).map_err(|e| TimeZoneError::Unknown {
        name: name.to_string(),
        reason: e.to_string(),
    })
}

/// Parses `+HH`, `+HHMM`, `+HH:MM` (and seconds the same way) at the start of
/// `s`; with `short_hour`, a one-digit hour is allowed (`GMT+5`).
fn parse_numeric_offset(s: &str, short_hour: bool) -> Option<(Offset, usize)> {
    let b = s.as_bytes();
    let sign: i32 = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let mut pos = 1;
    let hour_digits = count_digits(&b[pos..]).min(2);
    if hour_digits == 0 || (hour_digits == 1 && !short_hour) {
        return None;
    }
    let hours = digits_value(&b[pos..pos + hour_digits]);
    pos += hour_digits;
    let mut seconds = hours * 3600;
    // Minutes, then seconds: with a colon before each, or none at all.
    let colon = b.get(pos) == Some(&b':');
    for unit in [60, 1] {
        let start = pos + usize::from(colon);
        if count_digits(&b[start.min(b.len())..]) >= 2 {
            seconds += digits_value(&b[start..start + 2]) * unit;
            pos = start + 2;
        } else {
            break;
        }
        if colon && b.get(pos) != Some(&b':') {
            break;
        }
    }
    let seconds = i32::try_from(seconds).ok()?;
    Offset::from_seconds(sign * seconds)
        .ok()
        .map(|offset| (offset, pos))
}

/// Parses a zone at the start of `s`: `Z`, a numeric offset, `GMT`/`UTC`/`UT`
/// with an optional offset, or a US zone abbreviation.
fn parse_zone_prefix(s: &str) -> Option<(Offset, usize)> {
    if s.starts_with(['Z', 'z']) {
        return Some((Offset::UTC, 1));
    }
    if let Some(found) = parse_numeric_offset(s, false) {
        return Some(found);
    }
    for name in ["UTC", "GMT", "UT"] {
        if starts_with_ignore_case(s, name) {
            let rest = &s[name.len()..];
            return Some(match parse_numeric_offset(rest, true) {
                Some((offset, len)) => (offset, name.len() + len),
                None => (Offset::UTC, name.len()),
            });
        }
    }
    const ABBREVIATIONS: [(&str, i8); 8] = [
        ("EST", -5),
        ("EDT", -4),
        ("CST", -6),
        ("CDT", -5),
        ("MST", -7),
        ("MDT", -6),
        ("PST", -8),
        ("PDT", -7),
    ];
    ABBREVIATIONS
        .iter()
        .find(|(name, _)| starts_with_ignore_case(s, name))
        .map(|&(name, hours)| (Offset::constant(hours), name.len()))
}

// ---------------------------------------------------------------------------
// Small scanning helpers
// ---------------------------------------------------------------------------

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

fn count_digits(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit()).count()
}

/// Value of a run of ASCII digits (callers keep it to at most 18 digits).
fn digits_value(b: &[u8]) -> i64 {
    b.iter().fold(0, |acc, d| acc * 10 + i64::from(d - b'0'))
}

/// Nanoseconds of a fraction given by up to 9 digits (`"5"` → 500 ms).
fn fraction_nanos(b: &[u8]) -> i64 {
    let mut value = digits_value(b);
    for _ in b.len()..9 {
        value *= 10;
    }
    value
}

/// Finds the longest (case-insensitive) name in `names` that starts `s`;
/// returns its index and length.
fn match_name(s: &str, names: &[&str]) -> Option<(usize, usize)> {
    names
        .iter()
        .enumerate()
        .filter(|(_, name)| starts_with_ignore_case(s, name))
        .max_by_key(|(_, name)| name.len())
        .map(|(i, name)| (i, name.len()))
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

// ---------------------------------------------------------------------------
// Java patterns
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Year,
    Month,
    Day,
    Hour24,
    Hour12,
    AmPm,
    Minute,
    Second,
    Fraction,
    Weekday,
    /// `Z`
    OffsetRfc822,
    /// `X`, `XX`, `XXX`
    OffsetIso,
    /// `z`
    ZoneName,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    /// A quoted `'Z'`: written as `Z`, parsed as `Z` or an offset.
    QuotedZ,
    Field {
        kind: Kind,
        width: usize,
    },
}

impl Token {
    fn is_numeric(&self) -> bool {
        match self {
            Token::Field { kind, width } => match kind {
                Kind::Month => *width <= 2,
                Kind::Year
                | Kind::Day
                | Kind::Hour24
                | Kind::Hour12
                | Kind::Minute
                | Kind::Second
                | Kind::Fraction => true,
                _ => false,
            },
            _ => false,
        }
    }
}

/// A compiled Java `SimpleDateFormat` pattern, e.g. `yyyy-MM-dd'T'HH:mm:ss'Z'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JavaPattern {
    source: String,
    tokens: Vec<Token>,
    /// strftime for a non-zero offset.
    strftime: String,
    /// strftime for a zero offset (`X` fields write `Z`).
    strftime_utc: String,
}

fn numeric_directive(out: &mut String, conv: char, width: usize) {
    if width <= 1 {
        out.push_str("%-");
    } else {
        out.push_str(&format!("%0{width}"));
    }
    out.push(conv);
}

fn push_literal(tokens: &mut Vec<Token>, text: &str) {
    if let Some(Token::Literal(prev)) = tokens.last_mut() {
        prev.push_str(text);
    } else {
        tokens.push(Token::Literal(text.to_string()));
    }
}

impl JavaPattern {
    /// Compiles a Java `SimpleDateFormat` pattern (see the module docs for the
    /// supported letters).
    pub fn parse(pattern: &str) -> Result<JavaPattern, PatternError> {
        let mut tokens = Vec::new();
        let chars: Vec<(usize, char)> = pattern.char_indices().collect();
        let mut i = 0;
        while i < chars.len() {
            let (pos, c) = chars[i];
            if c == '\'' {
                // `''` is a literal quote.
                if chars.get(i + 1).map(|&(_, c)| c) == Some('\'') {
                    push_literal(&mut tokens, "'");
                    i += 2;
                    continue;
                }
                let mut text = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => {
                            return Err(PatternError::UnterminatedQuote {
                                pattern: pattern.to_string(),
                                position: pos,
                            });
                        }
                        Some(&(_, '\'')) => {
                            if chars.get(j + 1).map(|&(_, c)| c) == Some('\'') {
                                text.push('\'');
                                j += 2;
                            } else {
                                j += 1;
                                break;
                            }
                        }
                        Some(&(_, c)) => {
                            text.push(c);
                            j += 1;
                        }
                    }
                }
                if text == "Z" {
                    tokens.push(Token::QuotedZ);
                } else if !text.is_empty() {
                    push_literal(&mut tokens, &text);
                }
                i = j;
                continue;
            }
            if !c.is_ascii_alphabetic() {
                push_literal(&mut tokens, c.encode_utf8(&mut [0; 4]));
                i += 1;
                continue;
            }
            let mut width = 1;
            while chars.get(i + width).map(|&(_, d)| d) == Some(c) {
                width += 1;
            }
            let too_many = |max: usize| PatternError::TooManyLetters {
                pattern: pattern.to_string(),
                letter: c,
                count: width,
                max,
            };
            let kind = match c {
                'y' => Kind::Year,
                'M' | 'L' => Kind::Month,
                'd' => Kind::Day,
                'H' => Kind::Hour24,
                'h' => Kind::Hour12,
                'a' => Kind::AmPm,
                'm' => Kind::Minute,
                's' => Kind::Second,
                'S' if width > 9 => return Err(too_many(9)),
                'S' => Kind::Fraction,
                'E' => Kind::Weekday,
                'Z' => Kind::OffsetRfc822,
                'X' if width > 3 => return Err(too_many(3)),
                'X' => Kind::OffsetIso,
                'z' => Kind::ZoneName,
                letter => {
                    return Err(PatternError::UnknownLetter {
                        pattern: pattern.to_string(),
                        letter,
                        position: pos,
                    });
                }
            };
            tokens.push(Token::Field { kind, width });
            i += width;
        }
        let (strftime, strftime_utc) = Self::compile_strftime(&tokens);
        Ok(JavaPattern {
            source: pattern.to_string(),
            tokens,
            strftime,
            strftime_utc,
        })
    }

    fn compile_strftime(tokens: &[Token]) -> (String, String) {
        let mut other = String::new();
        let mut utc = String::new();
        for token in tokens {
            let mut common = String::new();
            match token {
                Token::Literal(text) => common.push_str(&text.replace('%', "%%")),
                Token::QuotedZ => common.push('Z'),
                Token::Field { kind, width } => {
                    let width = *width;
                    match kind {
                        Kind::Year if width == 2 => common.push_str("%y"),
                        Kind::Year => numeric_directive(&mut common, 'Y', width),
                        Kind::Month if width >= 4 => common.push_str("%B"),
                        Kind::Month if width == 3 => common.push_str("%b"),
                        Kind::Month => numeric_directive(&mut common, 'm', width),
                        Kind::Day => numeric_directive(&mut common, 'd', width),
                        Kind::Hour24 => numeric_directive(&mut common, 'H', width),
                        Kind::Hour12 => numeric_directive(&mut common, 'I', width),
                        Kind::AmPm => common.push_str("%p"),
                        Kind::Minute => numeric_directive(&mut common, 'M', width),
                        Kind::Second => numeric_directive(&mut common, 'S', width),
                        Kind::Fraction => common.push_str(&format!("%{width}f")),
                        Kind::Weekday if width >= 4 => common.push_str("%A"),
                        Kind::Weekday => common.push_str("%a"),
                        Kind::OffsetRfc822 => common.push_str("%z"),
                        Kind::ZoneName => common.push_str("%Z"),
                        Kind::OffsetIso => {
                            utc.push('Z');
                            other.push_str(match width {
                                1 => "%:::z",
                                2 => "%z",
                                _ => "%:z",
                            });
                            continue;
                        }
                    }
                }
            }
            other.push_str(&common);
            utc.push_str(&common);
        }
        (other, utc)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Formats `ts` as seen in `tz`.
    pub fn format(&self, ts: Timestamp, tz: &TimeZone) -> String {
        let zoned = ts.to_zoned(tz.clone());
        let fmt = if zoned.offset() == Offset::UTC {
            &self.strftime_utc
        } else {
            &self.strftime
        };
        // The compiled string only uses directives that every `Zoned` can
        // supply, so this does not fail; fall back to RFC 3339 regardless.
        jiff::fmt::strtime::format(fmt, &zoned).unwrap_or_else(|_| format_iso(ts, tz))
    }

    fn mismatch(&self, text: &str, position: usize, expected: impl Into<String>) -> DateError {
        DateError::Mismatch {
            pattern: self.source.clone(),
            text: text.to_string(),
            position,
            expected: expected.into(),
        }
    }

    fn invalid(&self, text: &str, reason: impl fmt::Display) -> DateError {
        DateError::Invalid {
            pattern: self.source.clone(),
            text: text.to_string(),
            reason: reason.to_string(),
        }
    }

    /// Parses `text` with this pattern; `tz` applies when the text carries no
    /// offset.
    pub fn parse_date(&self, text: &str, tz: &TimeZone) -> Result<Timestamp, DateError> {
        let b = text.as_bytes();
        let mut pos = 0;
        let mut f = Fields::default();
        for (i, token) in self.tokens.iter().enumerate() {
            let rest = &text[pos..];
            match token {
                Token::Literal(lit) => {
                    if !rest.starts_with(lit.as_str()) {
                        return Err(self.mismatch(text, pos, format!("{lit:?}")));
                    }
                    pos += lit.len();
                }
                Token::QuotedZ => {
                    let (offset, len) = parse_zone_prefix(rest)
                        .ok_or_else(|| self.mismatch(text, pos, "\"Z\" or an offset like +0000"))?;
                    f.offset = Some(offset);
                    pos += len;
                }
                Token::Field { kind, width } => {
                    let width = *width;
                    if token.is_numeric() {
                        let abutting = self.tokens.get(i + 1).is_some_and(Token::is_numeric);
                        let available = count_digits(&b[pos..]);
                        let len = if abutting {
                            width.max(if *kind == Kind::Year && width != 2 {
                                4
                            } else {
                                1
                            })
                        } else {
                            available
                        };
                        let what = kind_name(*kind);
                        if available == 0 || available < len {
                            return Err(self.mismatch(text, pos, what));
                        }
                        let limit = if *kind == Kind::Fraction { 9 } else { 6 };
                        if len > limit {
                            return Err(self.mismatch(
                                text,
                                pos,
                                format!("{what} of at most {limit} digits"),
                            ));
                        }
                        let digits = &b[pos..pos + len];
                        let value = digits_value(digits);
                        match kind {
                            Kind::Year if width == 2 && len == 2 => {
                                f.year = Some(if value >= 69 {
                                    1900 + value
                                } else {
                                    2000 + value
                                })
                            }
                            Kind::Year => f.year = Some(value),
                            Kind::Month => f.month = Some(value),
                            Kind::Day => f.day = Some(value),
                            Kind::Hour24 => f.hour24 = Some(value),
                            Kind::Hour12 => f.hour12 = Some(value),
                            Kind::Minute => f.minute = Some(value),
                            Kind::Second => f.second = Some(value),
                            _ => f.nanos = Some(fraction_nanos(digits)),
                        }
                        pos += len;
                        continue;
                    }
                    match kind {
                        Kind::Month => {
                            let (index, len) = match_name(rest, &MONTHS)
                                .or_else(|| {
                                    let abbrev: Vec<&str> =
                                        MONTHS.iter().map(|m| &m[..3]).collect();
                                    match_name(rest, &abbrev)
                                })
                                .ok_or_else(|| self.mismatch(text, pos, "a month name"))?;
                            f.month = Some(index as i64 + 1);
                            pos += len;
                        }
                        Kind::Weekday => {
                            let (_, len) = match_name(rest, &WEEKDAYS)
                                .or_else(|| {
                                    let abbrev: Vec<&str> =
                                        WEEKDAYS.iter().map(|m| &m[..3]).collect();
                                    match_name(rest, &abbrev)
                                })
                                .ok_or_else(|| self.mismatch(text, pos, "a weekday name"))?;
                            pos += len;
                        }
                        Kind::AmPm => {
                            let (index, len) = match_name(rest, &["AM", "PM"])
                                .ok_or_else(|| self.mismatch(text, pos, "AM or PM"))?;
                            f.pm = Some(index == 1);
                            pos += len;
                        }
                        _ => {
                            let (offset, len) = parse_zone_prefix(rest)
                                .ok_or_else(|| self.mismatch(text, pos, "a time zone offset"))?;
                            f.offset = Some(offset);
                            pos += len;
                        }
                    }
                }
            }
        }
        if pos < text.len() {
            pos = self.parse_trailing(text, pos, &mut f)?;
        }
        debug_assert_eq!(pos, text.len());
        self.resolve(text, &f, tz)
    }

    /// Accepts a fraction and/or an offset the pattern did not mention.
    fn parse_trailing(&self, text: &str, start: usize, f: &mut Fields) -> Result<usize, DateError> {
        let b = text.as_bytes();
        let mut pos = start;
        if f.nanos.is_none() && f.second.is_some() && b[pos] == b'.' {
            let n = count_digits(&b[pos + 1..]);
            if (1..=9).contains(&n) {
                f.nanos = Some(fraction_nanos(&b[pos + 1..pos + 1 + n]));
                pos += 1 + n;
            }
        }
        if pos < text.len() && f.offset.is_none() && f.hour24.or(f.hour12).is_some() {
            let skip = usize::from(b[pos] == b' ');
            if let Some((offset, len)) = parse_zone_prefix(&text[pos + skip..])
                && pos + skip + len == text.len()
            {
                f.offset = Some(offset);
                pos = text.len();
            }
        }
        if pos < text.len() {
            return Err(self.mismatch(text, start, "end of text"));
        }
        Ok(pos)
    }

    fn resolve(&self, text: &str, f: &Fields, tz: &TimeZone) -> Result<Timestamp, DateError> {
        let hour = match (f.hour24, f.hour12) {
            (Some(h), _) => h,
            (None, Some(h)) if h > 12 => {
                return Err(self.invalid(text, format!("hour {h} is not on a 12-hour clock")));
            }
            (None, Some(h)) => h % 12 + if f.pm == Some(true) { 12 } else { 0 },
            (None, None) => 0,
        };
        let narrow = |value: i64, what: &str| {
            i8::try_from(value)
                .map_err(|_| self.invalid(text, format!("{what} {value} out of range")))
        };
        let year = i16::try_from(f.year.unwrap_or(1970))
            .map_err(|_| self.invalid(text, "year out of range"))?;
        let nanos = i32::try_from(f.nanos.unwrap_or(0))
            .map_err(|_| self.invalid(text, "fraction out of range"))?;
        let dt = DateTime::new(
            year,
            narrow(f.month.unwrap_or(1), "month")?,
            narrow(f.day.unwrap_or(1), "day")?,
            narrow(hour, "hour")?,
            narrow(f.minute.unwrap_or(0), "minute")?,
            narrow(f.second.unwrap_or(0), "second")?,
            nanos,
        )
        .map_err(|e| self.invalid(text, e))?;
        match f.offset {
            Some(offset) => offset.to_timestamp(dt),
            None => tz.to_ambiguous_timestamp(dt).compatible(),
        }
        .map_err(|e| self.invalid(text, e))
    }
}

impl fmt::Display for JavaPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Year => "a year",
        Kind::Month => "a month",
        Kind::Day => "a day of the month",
        Kind::Hour24 | Kind::Hour12 => "an hour",
        Kind::Minute => "minutes",
        Kind::Second => "seconds",
        Kind::Fraction => "fractional seconds",
        _ => "a field",
    }
}

/// Fields read from a text, before validation.
#[derive(Debug, Default)]
struct Fields {
    year: Option<i64>,
    month: Option<i64>,
    day: Option<i64>,
    hour24: Option<i64>,
    hour12: Option<i64>,
    pm: Option<bool>,
    minute: Option<i64>,
    second: Option<i64>,
    nanos: Option<i64>,
    offset: Option<Offset>,
}

// ---------------------------------------------------------------------------
// Special formats
// ---------------------------------------------------------------------------

/// Unit of an epoch format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochUnit {
    /// `epoch:s`: seconds since the Unix epoch.
    Seconds,
    /// `epoch` or `epoch:ms`: milliseconds since the Unix epoch.
    Milliseconds,
    /// `epoch:us`: microseconds since the Unix epoch.
    Microseconds,
}

impl EpochUnit {
    /// The unit named after `epoch:` (`s`, `ms`, `us`; `None` means `ms`).
    pub fn from_suffix(suffix: Option<&str>) -> Option<EpochUnit> {
        match suffix.map(str::trim) {
            None | Some("ms") => Some(EpochUnit::Milliseconds),
            Some("s") => Some(EpochUnit::Seconds),
            Some("us") => Some(EpochUnit::Microseconds),
            _ => None,
        }
    }

    /// The format's name: `epoch:s`, `epoch:ms` or `epoch:us`.
    pub fn name(self) -> &'static str {
        match self {
            EpochUnit::Seconds => "epoch:s",
            EpochUnit::Milliseconds => "epoch:ms",
            EpochUnit::Microseconds => "epoch:us",
        }
    }

    fn nanos_per_unit(self) -> i128 {
        match self {
            EpochUnit::Seconds => 1_000_000_000,
            EpochUnit::Milliseconds => 1_000_000,
            EpochUnit::Microseconds => 1_000,
        }
    }

    /// Writes `ts` as an integer count of this unit (truncated).
    pub fn format(self, ts: Timestamp) -> String {
        match self {
            EpochUnit::Seconds => ts.as_second().to_string(),
            EpochUnit::Milliseconds => ts.as_millisecond().to_string(),
            EpochUnit::Microseconds => ts.as_microsecond().to_string(),
        }
    }

    /// Reads a count of this unit: an optional `-`, digits, and an optional
    /// decimal fraction (`1700000000.5` for seconds).
    pub fn parse(self, text: &str) -> Result<Timestamp, DateError> {
        let mismatch = |position: usize| DateError::Mismatch {
            pattern: self.name().to_string(),
            text: text.to_string(),
            position,
            expected: "a number".to_string(),
        };
        let trimmed = text.trim();
        let lead = text.len() - text.trim_start().len();
        let b = trimmed.as_bytes();
        let negative = b.first() == Some(&b'-');
        let mut pos = usize::from(negative || b.first() == Some(&b'+'));
        let int_len = count_digits(&b[pos..]);
        if int_len == 0 {
            return Err(mismatch(lead + pos));
        }
        let too_large = || DateError::Invalid {
            pattern: self.name().to_string(),
            text: text.to_string(),
            reason: "number too large".to_string(),
        };
        if int_len > 30 {
            return Err(too_large());
        }
        let int: i128 = b[pos..pos + int_len]
            .iter()
            .fold(0, |acc, d| acc * 10 + i128::from(d - b'0'));
        pos += int_len;
        // 30 digits of seconds overflow an i128 of nanoseconds.
        let mut nanos = int
            .checked_mul(self.nanos_per_unit())
            .ok_or_else(too_large)?;
        if b.get(pos) == Some(&b'.') {
            let frac_len = count_digits(&b[pos + 1..]);
            if frac_len == 0 {
                return Err(mismatch(lead + pos + 1));
            }
            // Keep digits down to the nanosecond; ignore the rest.
            let mut frac: i128 = 0;
            let mut scale = self.nanos_per_unit();
            for d in &b[pos + 1..pos + 1 + frac_len] {
                scale /= 10;
                frac += i128::from(d - b'0') * scale;
            }
            nanos = nanos.checked_add(frac).ok_or_else(too_large)?;
            pos += 1 + frac_len;
        }
        if pos != b.len() {
            return Err(mismatch(lead + pos));
        }
        if negative {
            nanos = -nanos;
        }
        Timestamp::from_nanosecond(nanos).map_err(|e| DateError::Invalid {
            pattern: self.name().to_string(),
            text: text.to_string(),
            reason: e.to_string(),
        })
    }
}

/// A configured date format: a Java pattern, an epoch count, or ISO 8601.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateFormat {
    /// A Java `SimpleDateFormat` pattern.
    Java(JavaPattern),
    /// `epoch`, `epoch:s`, `epoch:ms`, `epoch:us`.
    Epoch(EpochUnit),
    /// `iso` (or an empty pattern): RFC 3339 / ISO 8601 text.
    Iso,
}

impl DateFormat {
    /// Reads a configured format: `epoch[:s|:ms|:us]`, `iso` (also
    /// `iso8601`, `rfc3339`, or empty), or else a Java pattern.
    pub fn parse(spec: &str) -> Result<DateFormat, PatternError> {
        let trimmed = spec.trim();
        if trimmed.is_empty()
            || ["iso", "iso8601", "iso-8601", "rfc3339"]
                .iter()
                .any(|name| trimmed.eq_ignore_ascii_case(name))
        {
            return Ok(DateFormat::Iso);
        }
        if trimmed.eq_ignore_ascii_case("epoch") {
            return Ok(DateFormat::Epoch(EpochUnit::Milliseconds));
        }
        if starts_with_ignore_case(trimmed, "epoch:") {
            return EpochUnit::from_suffix(Some(&trimmed[6..]))
                .map(DateFormat::Epoch)
                .ok_or_else(|| PatternError::UnknownEpochUnit {
                    pattern: spec.to_string(),
                });
        }
        JavaPattern::parse(spec).map(DateFormat::Java)
    }

    fn name(&self) -> &str {
        match self {
            DateFormat::Java(pattern) => pattern.as_str(),
            DateFormat::Epoch(unit) => unit.name(),
            DateFormat::Iso => "iso",
        }
    }

    /// Formats `ts` (in `tz` for Java patterns and ISO; epochs ignore it).
    pub fn format(&self, ts: Timestamp, tz: &TimeZone) -> String {
        match self {
            DateFormat::Java(pattern) => pattern.format(ts, tz),
            DateFormat::Epoch(unit) => unit.format(ts),
            DateFormat::Iso => format_iso(ts, tz),
        }
    }

    /// Parses `text`; `tz` applies when the text carries no offset.
    pub fn parse_date(&self, text: &str, tz: &TimeZone) -> Result<Timestamp, DateError> {
        match self {
            DateFormat::Java(pattern) => pattern.parse_date(text, tz),
            DateFormat::Epoch(unit) => unit.parse(text),
            DateFormat::Iso => parse_iso(text, tz),
        }
    }

    /// Parses a JSON value taken from a record: a string with any format, or
    /// a number with an epoch format.
    pub fn parse_json(
        &self,
        value: &serde_json::Value,
        tz: &TimeZone,
    ) -> Result<Timestamp, DateError> {
        match (self, value) {
            (_, serde_json::Value::String(text)) => self.parse_date(text, tz),
            (DateFormat::Epoch(unit), serde_json::Value::Number(n)) => unit.parse(&n.to_string()),
            _ => Err(DateError::UnexpectedValue {
                pattern: self.name().to_string(),
                value: value.to_string(),
            }),
        }
    }
}

/// RFC 3339 in `tz`'s offset: `2024-01-02T03:04:05Z`, `…-05:00`.
fn format_iso(ts: Timestamp, tz: &TimeZone) -> String {
    let offset = tz.to_offset(ts);
    if offset == Offset::UTC {
        ts.to_string()
    } else {
        ts.display_with_offset(offset).to_string()
    }
}

/// RFC 3339 / ISO 8601: with an offset it is honoured, without one (or for a
/// bare date) `tz` applies.
fn parse_iso(text: &str, tz: &TimeZone) -> Result<Timestamp, DateError> {
    let trimmed = text.trim();
    let civil = match trimmed.parse::<Timestamp>() {
        Ok(ts) => return Ok(ts),
        Err(_) => trimmed.parse::<DateTime>(),
    };
    let invalid = |reason: String| DateError::Invalid {
        pattern: "iso".to_string(),
        text: text.to_string(),
        reason,
    };
    match civil {
        Ok(dt) => tz
            .to_ambiguous_timestamp(dt)
            .compatible()
            .map_err(|e| invalid(e.to_string())),
        Err(e) => Err(DateError::Mismatch {
            pattern: "iso".to_string(),
            text: text.to_string(),
            position: 0,
            expected: format!("an ISO 8601 date-time ({e})"),
        }),
    }
}

// ---------------------------------------------------------------------------
// URL templates
// ---------------------------------------------------------------------------

/// Byte offset of the `}` that closes a template body, skipping `}` inside
/// single-quoted sections.
fn closing_brace(body: &str) -> Option<usize> {
    let mut quoted = false;
    for (i, c) in body.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

fn render_one(body: &str, at: Timestamp) -> Result<String, TemplateError> {
    let (name, arg) = match body.split_once(':') {
        Some((name, arg)) => (name, Some(arg)),
        None => (body, None),
    };
    match name {
        "gmtDate" | "date" => {
            // `date` is the server's zone, which is GMT for this host.
            let format =
                DateFormat::parse(arg.unwrap_or("")).map_err(|source| TemplateError::Pattern {
                    name: name.to_string(),
                    source,
                })?;
            Ok(format.format(at, &gmt()))
        }
        "epoch" => EpochUnit::from_suffix(arg)
            .map(|unit| unit.format(at))
            .ok_or_else(|| TemplateError::UnknownEpochUnit {
                unit: arg.unwrap_or_default().to_string(),
            }),
        _ => Err(TemplateError::UnknownName {
            name: name.to_string(),
        }),
    }
}

/// Renders a poll URL at instant `at`, replacing every `${gmtDate:<pattern>}`
/// (formatted in GMT), `${date:<pattern>}` (the server's zone, GMT on this
/// host), `${epoch}` / `${epoch:ms}` (milliseconds), `${epoch:s}` and
/// `${epoch:us}`. A pattern may also be `epoch…` or `iso` as for
/// [`DateFormat::parse`]; `}` inside a quoted part of a pattern does not
/// close the template. Text outside templates is copied unchanged.
///
/// The values are inserted verbatim, not URL-encoded: encoding (if any) is
/// the caller's job.
pub fn render_template(url: &str, at: Timestamp) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(url.len() + 16);
    let mut done = 0;
    while let Some(found) = url[done..].find("${") {
        let start = done + found;
        out.push_str(&url[done..start]);
        let body_start = start + 2;
        let len = closing_brace(&url[body_start..]).ok_or_else(|| TemplateError::Unclosed {
            position: start,
            template: url[start..].to_string(),
        })?;
        out.push_str(&render_one(&url[body_start..body_start + len], at)?);
        done = body_start + len + 1;
    }
    out.push_str(&url[done..]);
    Ok(out)
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn utc() -> TimeZone {
        parse_time_zone("GMT").unwrap()
    }

    fn new_york() -> TimeZone {
        parse_time_zone("America/New_York").unwrap()
    }

    fn pat(p: &str) -> JavaPattern {
        JavaPattern::parse(p).unwrap()
    }

    #[test]
    fn seed_pattern_seconds_round_trips() {
        let p = pat("yyyy-MM-dd'T'HH:mm:ss'Z'");
        let at = ts("2024-01-02T03:04:05Z");
        assert_eq!(p.format(at, &utc()), "2024-01-02T03:04:05Z");
        assert_eq!(p.parse_date("2024-01-02T03:04:05Z", &utc()).unwrap(), at);
        // The literal 'Z' means UTC even when the configured zone is not.
        assert_eq!(
            p.parse_date("2024-01-02T03:04:05Z", &new_york()).unwrap(),
            at
        );
    }

    #[test]
    fn seed_pattern_millis_round_trips() {
        let p = pat("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'");
        let at = ts("2024-11-30T23:59:58.123Z");
        assert_eq!(p.format(at, &utc()), "2024-11-30T23:59:58.123Z");
        assert_eq!(
            p.parse_date("2024-11-30T23:59:58.123Z", &utc()).unwrap(),
            at
        );
        // Sub-millisecond digits are truncated when formatting.
        assert_eq!(
            p.format(ts("2024-11-30T23:59:58.123987Z"), &utc()),
            "2024-11-30T23:59:58.123Z"
        );
    }

    #[test]
    fn fraction_accepts_any_digit_count_up_to_nine() {
        let p = pat("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'");
        let z = utc();
        assert_eq!(
            p.parse_date("2024-01-01T00:00:00.5Z", &z).unwrap(),
            ts("2024-01-01T00:00:00.5Z")
        );
        assert_eq!(
            p.parse_date("2024-01-01T00:00:00.123456Z", &z).unwrap(),
            ts("2024-01-01T00:00:00.123456Z")
        );
        assert_eq!(
            p.parse_date("2024-01-01T00:00:00.123456789Z", &z).unwrap(),
            ts("2024-01-01T00:00:00.123456789Z")
        );
        let err = p
            .parse_date("2024-01-01T00:00:00.1234567891Z", &z)
            .unwrap_err();
        assert!(
            matches!(err, DateError::Mismatch { position: 20, .. }),
            "{err}"
        );
        assert!(p.parse_date("2024-01-01T00:00:00.Z", &z).is_err());
    }

    #[test]
    fn pardot_pattern_in_gmt() {
        let p = pat("yyyy-MM-dd HH:mm:ss");
        let at = ts("2024-07-01T12:30:45Z");
        assert_eq!(p.format(at, &utc()), "2024-07-01 12:30:45");
        assert_eq!(p.parse_date("2024-07-01 12:30:45", &utc()).unwrap(), at);
    }

    #[test]
    fn pardot_pattern_in_new_york_across_dst() {
        let p = pat("yyyy-MM-dd HH:mm:ss");
        let ny = new_york();
        // Summer (EDT, UTC-4).
        let summer = ts("2024-07-01T16:30:45Z");
        assert_eq!(p.parse_date("2024-07-01 12:30:45", &ny).unwrap(), summer);
        assert_eq!(p.format(summer, &ny), "2024-07-01 12:30:45");
        // Winter (EST, UTC-5).
        let winter = ts("2024-01-15T17:30:45Z");
        assert_eq!(p.parse_date("2024-01-15 12:30:45", &ny).unwrap(), winter);
        assert_eq!(p.format(winter, &ny), "2024-01-15 12:30:45");
        // In the spring-forward gap, the wall-clock time moves forward.
        assert_eq!(
            p.parse_date("2024-03-10 02:30:00", &ny).unwrap(),
            ts("2024-03-10T07:30:00Z")
        );
        // In the fall-back fold, the earlier instant (EDT) wins.
        assert_eq!(
            p.parse_date("2024-11-03 01:30:00", &ny).unwrap(),
            ts("2024-11-03T05:30:00Z")
        );
    }

    #[test]
    fn ecwid_rfc822_offset() {
        let p = pat("yyyy-MM-dd HH:mm:ss Z");
        assert_eq!(
            p.parse_date("2024-05-01 05:26:28 +0000", &new_york())
                .unwrap(),
            ts("2024-05-01T05:26:28Z")
        );
        assert_eq!(
            p.parse_date("2024-05-01 05:26:28 -0400", &utc()).unwrap(),
            ts("2024-05-01T09:26:28Z")
        );
        assert_eq!(
            p.format(ts("2024-05-01T05:26:28Z"), &utc()),
            "2024-05-01 05:26:28 +0000"
        );
        assert_eq!(
            p.format(ts("2024-05-01T05:26:28Z"), &new_york()),
            "2024-05-01 01:26:28 -0400"
        );
    }

    #[test]
    fn keap_numeric_offset_under_quoted_z() {
        let p = pat("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'");
        assert_eq!(
            p.parse_date("2021-10-14T00:22:57.000+0000", &new_york())
                .unwrap(),
            ts("2021-10-14T00:22:57Z")
        );
        assert_eq!(
            p.parse_date("2021-10-14T00:22:57.000+00:00", &new_york())
                .unwrap(),
            ts("2021-10-14T00:22:57Z")
        );
        // A non-zero offset is honoured.
        assert_eq!(
            p.parse_date("2021-10-14T05:52:57.000+05:30", &utc())
                .unwrap(),
            ts("2021-10-14T00:22:57Z")
        );
        assert_eq!(
            p.parse_date("2021-10-13T20:22:57.000-0400", &utc())
                .unwrap(),
            ts("2021-10-14T00:22:57Z")
        );
    }

    #[test]
    fn iso_offset_letters() {
        let at = ts("2024-07-01T12:00:00Z");
        let xxx = pat("yyyy-MM-dd'T'HH:mm:ssXXX");
        assert_eq!(xxx.format(at, &utc()), "2024-07-01T12:00:00Z");
        assert_eq!(xxx.format(at, &new_york()), "2024-07-01T08:00:00-04:00");
        assert_eq!(
            xxx.parse_date("2024-07-01T08:00:00-04:00", &utc()).unwrap(),
            at
        );
        assert_eq!(
            xxx.parse_date("2024-07-01T12:00:00Z", &new_york()).unwrap(),
            at
        );
        assert_eq!(
            xxx.parse_date("2024-07-01T14:00:00+0200", &utc()).unwrap(),
            at
        );
        let xx = pat("yyyy-MM-dd'T'HH:mm:ssXX");
        assert_eq!(xx.format(at, &new_york()), "2024-07-01T08:00:00-0400");
        assert_eq!(xx.format(at, &utc()), "2024-07-01T12:00:00Z");
        let x = pat("HH:mmX");
        assert_eq!(x.format(at, &new_york()), "08:00-04");
        assert_eq!(x.format(at, &utc()), "12:00Z");
        let india = parse_time_zone("+05:30").unwrap();
        assert_eq!(xxx.format(at, &india), "2024-07-01T17:30:00+05:30");
    }

    #[test]
    fn zone_names_and_text_fields() {
        let p = pat("EEE, dd MMM yyyy HH:mm:ss z");
        let at = ts("2024-01-02T03:04:05Z");
        assert_eq!(p.format(at, &utc()), "Tue, 02 Jan 2024 03:04:05 GMT");
        assert_eq!(
            p.parse_date("Tue, 02 Jan 2024 03:04:05 GMT", &new_york())
                .unwrap(),
            at
        );
        assert_eq!(
            p.parse_date("tue, 02 jan 2024 03:04:05 UTC", &new_york())
                .unwrap(),
            at
        );
        assert_eq!(
            p.parse_date("Mon, 01 Jan 2024 22:04:05 EST", &utc())
                .unwrap(),
            at
        );
        assert_eq!(p.format(at, &new_york()), "Mon, 01 Jan 2024 22:04:05 EST");
        let long = pat("EEEE d MMMM yyyy");
        assert_eq!(long.format(at, &utc()), "Tuesday 2 January 2024");
        assert_eq!(
            long.parse_date("Tuesday 2 January 2024", &utc()).unwrap(),
            ts("2024-01-02T00:00:00Z")
        );
        // A month pattern of three letters also reads full names.
        assert_eq!(
            pat("dd MMM yyyy")
                .parse_date("02 January 2024", &utc())
                .unwrap(),
            ts("2024-01-02T00:00:00Z")
        );
    }

    #[test]
    fn twelve_hour_clock_and_quotes() {
        let p = pat("M/d/yy h:mm a 'o''clock'");
        let at = ts("2024-03-05T15:07:00Z");
        assert_eq!(p.format(at, &utc()), "3/5/24 3:07 PM o'clock");
        assert_eq!(p.parse_date("3/5/24 3:07 PM o'clock", &utc()).unwrap(), at);
        assert_eq!(
            p.parse_date("3/5/24 12:07 AM o'clock", &utc()).unwrap(),
            ts("2024-03-05T00:07:00Z")
        );
        assert_eq!(
            p.parse_date("12/31/99 12:00 pm o'clock", &utc()).unwrap(),
            ts("1999-12-31T12:00:00Z")
        );
        assert_eq!(pat("''yy''").format(at, &utc()), "'24'");
        assert_eq!(pat("yyyy'%'MM'%d'").format(at, &utc()), "2024%03%d");
        assert_eq!(
            pat("yyyy'%'MM").parse_date("2024%03", &utc()).unwrap(),
            ts("2024-03-01T00:00:00Z")
        );
    }

    #[test]
    fn abutting_numeric_fields() {
        let p = pat("yyyyMMddHHmmss");
        let at = ts("2024-01-02T03:04:05Z");
        assert_eq!(p.format(at, &utc()), "20240102030405");
        assert_eq!(p.parse_date("20240102030405", &utc()).unwrap(), at);
        assert!(p.parse_date("202401020304", &utc()).is_err());
        assert!(p.parse_date("2024-10203040", &utc()).is_err());
    }

    #[test]
    fn trailing_fraction_and_offset_are_accepted() {
        let p = pat("yyyy-MM-dd'T'HH:mm:ss");
        assert_eq!(
            p.parse_date("2024-01-01T10:00:00.250+0200", &utc())
                .unwrap(),
            ts("2024-01-01T08:00:00.25Z")
        );
        assert_eq!(
            p.parse_date("2024-01-01T10:00:00Z", &new_york()).unwrap(),
            ts("2024-01-01T10:00:00Z")
        );
        assert_eq!(
            pat("yyyy-MM-dd HH:mm:ss")
                .parse_date("2024-05-01 05:26:28 +0000", &new_york())
                .unwrap(),
            ts("2024-05-01T05:26:28Z")
        );
        let err = p
            .parse_date("2024-01-01T10:00:00 garbage", &utc())
            .unwrap_err();
        assert!(
            matches!(err, DateError::Mismatch { position: 19, .. }),
            "{err}"
        );
    }

    #[test]
    fn date_only_pattern_uses_zone_midnight() {
        let p = pat("yyyy-MM-dd");
        assert_eq!(
            p.parse_date("2024-07-04", &new_york()).unwrap(),
            ts("2024-07-04T04:00:00Z")
        );
    }

    #[test]
    fn mismatch_names_pattern_and_text() {
        let p = pat("yyyy-MM-dd HH:mm:ss");
        let err = p.parse_date("2024/01/02 03:04:05", &utc()).unwrap_err();
        assert_eq!(
            err,
            DateError::Mismatch {
                pattern: "yyyy-MM-dd HH:mm:ss".to_string(),
                text: "2024/01/02 03:04:05".to_string(),
                position: 4,
                expected: "\"-\"".to_string(),
            }
        );
        let message = err.to_string();
        assert!(message.contains("yyyy-MM-dd HH:mm:ss"), "{message}");
        assert!(message.contains("2024/01/02 03:04:05"), "{message}");
        let err = p.parse_date("", &utc()).unwrap_err();
        assert!(matches!(err, DateError::Mismatch { position: 0, .. }));
    }

    #[test]
    fn invalid_dates_are_rejected() {
        let p = pat("yyyy-MM-dd");
        let err = p.parse_date("2024-02-30", &utc()).unwrap_err();
        match &err {
            DateError::Invalid { pattern, text, .. } => {
                assert_eq!(pattern, "yyyy-MM-dd");
                assert_eq!(text, "2024-02-30");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(p.parse_date("2024-13-01", &utc()).is_err());
        assert!(pat("HH:mm").parse_date("24:00", &utc()).is_err());
        assert!(pat("hh:mm a").parse_date("13:00 PM", &utc()).is_err());
    }

    #[test]
    fn pattern_errors() {
        let err = JavaPattern::parse("yyyy-MM-dd Q").unwrap_err();
        assert_eq!(
            err,
            PatternError::UnknownLetter {
                pattern: "yyyy-MM-dd Q".to_string(),
                letter: 'Q',
                position: 11,
            }
        );
        assert!(err.to_string().contains("'Q'"), "{err}");
        assert!(matches!(
            JavaPattern::parse("YYYY-MM-dd"),
            Err(PatternError::UnknownLetter { letter: 'Y', .. })
        ));
        assert!(matches!(
            JavaPattern::parse("yyyy-MM-dd'T"),
            Err(PatternError::UnterminatedQuote { position: 10, .. })
        ));
        assert!(matches!(
            JavaPattern::parse("HH:mmXXXX"),
            Err(PatternError::TooManyLetters {
                letter: 'X',
                count: 4,
                max: 3,
                ..
            })
        ));
        assert!(matches!(
            JavaPattern::parse("ss.SSSSSSSSSS"),
            Err(PatternError::TooManyLetters {
                letter: 'S',
                count: 10,
                ..
            })
        ));
    }

    #[test]
    fn epoch_formats() {
        let at = ts("2024-01-02T03:04:05.678901Z");
        let ms = DateFormat::parse("epoch").unwrap();
        assert_eq!(ms, DateFormat::parse("epoch:ms").unwrap());
        assert_eq!(ms.format(at, &utc()), "1704164645678");
        assert_eq!(
            DateFormat::parse("epoch:s").unwrap().format(at, &utc()),
            "1704164645"
        );
        assert_eq!(
            DateFormat::parse("epoch:us").unwrap().format(at, &utc()),
            "1704164645678901"
        );
        let z = utc();
        assert_eq!(
            ms.parse_date("1704164645678", &z).unwrap(),
            ts("2024-01-02T03:04:05.678Z")
        );
        assert_eq!(
            ms.parse_json(&serde_json::json!(1704164645678_i64), &z)
                .unwrap(),
            ts("2024-01-02T03:04:05.678Z")
        );
        assert_eq!(
            ms.parse_json(&serde_json::json!("1704164645678"), &z)
                .unwrap(),
            ts("2024-01-02T03:04:05.678Z")
        );
        let s = DateFormat::Epoch(EpochUnit::Seconds);
        assert_eq!(
            s.parse_json(&serde_json::json!(1704164645), &z).unwrap(),
            ts("2024-01-02T03:04:05Z")
        );
        assert_eq!(
            s.parse_json(&serde_json::json!(1704164645.5), &z).unwrap(),
            ts("2024-01-02T03:04:05.5Z")
        );
        assert_eq!(s.parse_date("-1", &z).unwrap(), ts("1969-12-31T23:59:59Z"));
        let us = DateFormat::parse("epoch:us").unwrap();
        assert_eq!(
            us.parse_date("1704164645678901", &z).unwrap(),
            ts("2024-01-02T03:04:05.678901Z")
        );
        let err = ms.parse_date("17041x", &z).unwrap_err();
        assert!(
            matches!(&err, DateError::Mismatch { pattern, position: 5, .. } if pattern == "epoch:ms")
        );
        assert!(matches!(
            DateFormat::parse("epoch:ns"),
            Err(PatternError::UnknownEpochUnit { pattern }) if pattern == "epoch:ns"
        ));
        assert_eq!(
            render_template("${gmtDate:epoch:s}", ts("2024-01-02T03:04:05Z")).unwrap(),
            "1704164645"
        );
        assert!(matches!(
            ms.parse_json(&serde_json::json!(null), &z),
            Err(DateError::UnexpectedValue { .. })
        ));
        assert!(matches!(
            DateFormat::parse("yyyy")
                .unwrap()
                .parse_json(&serde_json::json!(2024), &z),
            Err(DateError::UnexpectedValue { .. })
        ));
    }

    #[test]
    fn an_epoch_too_large_for_nanoseconds_is_refused_not_wrapped() {
        // Found by the fuzzer (`fuzz`, target `dates`): 30 digits of seconds are more
        // nanoseconds than an i128 holds. The multiplication panicked in a debug build and
        // wrapped in a release one: this value, 2^128 ns + 0.23 s, read as 1970-01-01
        // 00:00:00.23.
        let s = DateFormat::Epoch(EpochUnit::Seconds);
        for text in [
            "340282366920938463463374607432",
            "249684953459190440899999999999",
            "-340282366920938463463374607432.5",
        ] {
            let err = s.parse_date(text, &utc()).unwrap_err();
            assert!(
                matches!(&err, DateError::Invalid { reason, .. } if reason == "number too large"),
                "{text}: {err:?}"
            );
        }
    }

    #[test]
    fn iso_format() {
        let z = utc();
        for spec in ["", "iso"] {
            let f = DateFormat::parse(spec).unwrap();
            assert_eq!(f, DateFormat::Iso);
            assert_eq!(
                f.parse_date("2024-01-02T03:04:05Z", &z).unwrap(),
                ts("2024-01-02T03:04:05Z")
            );
            assert_eq!(
                f.parse_date("2024-01-02T03:04:05.5+01:00", &z).unwrap(),
                ts("2024-01-02T02:04:05.5Z")
            );
            assert_eq!(
                f.parse_date("2024-07-02T03:04:05", &new_york()).unwrap(),
                ts("2024-07-02T07:04:05Z")
            );
            assert_eq!(
                f.parse_date("2024-07-02", &new_york()).unwrap(),
                ts("2024-07-02T04:00:00Z")
            );
            assert!(matches!(
                f.parse_date("yesterday", &z),
                Err(DateError::Mismatch { .. })
            ));
        }
        let f = DateFormat::Iso;
        assert_eq!(
            f.format(ts("2024-01-02T03:04:05Z"), &z),
            "2024-01-02T03:04:05Z"
        );
        assert_eq!(
            f.format(ts("2024-07-02T07:04:05Z"), &new_york()),
            "2024-07-02T03:04:05-04:00"
        );
    }

    #[test]
    fn time_zones() {
        let at = ts("2024-07-01T12:00:00Z");
        for name in ["GMT", "gmt", "UTC", "Z", ""] {
            assert_eq!(
                parse_time_zone(name).unwrap().to_offset(at),
                Offset::UTC,
                "{name}"
            );
        }
        let plus_530 = Offset::from_seconds(5 * 3600 + 1800).unwrap();
        for name in ["+0530", "+05:30", "GMT+05:30", "UTC+0530", "GMT+5:30"] {
            assert_eq!(
                parse_time_zone(name).unwrap().to_offset(at),
                plus_530,
                "{name}"
            );
        }
        assert_eq!(
            parse_time_zone("-08").unwrap().to_offset(at),
            Offset::constant(-8)
        );
        assert_eq!(
            parse_time_zone("UTC-8").unwrap().to_offset(at),
            Offset::constant(-8)
        );
        assert_eq!(
            parse_time_zone("America/New_York").unwrap().to_offset(at),
            Offset::constant(-4)
        );
        let err = parse_time_zone("Mars/Olympus_Mons").unwrap_err();
        assert!(err.to_string().contains("Mars/Olympus_Mons"), "{err}");
        assert!(parse_time_zone("+99:00").is_err());
    }

    #[test]
    fn template_seed_example() {
        let url = "/hubs/crm/contacts?where=lastUpdated>'${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}'";
        assert_eq!(
            render_template(url, ts("2024-01-02T03:04:05Z")).unwrap(),
            "/hubs/crm/contacts?where=lastUpdated>'2024-01-02T03:04:05Z'"
        );
    }

    #[test]
    fn template_several_in_one_url() {
        let at = ts("2024-01-02T03:04:05.678Z");
        let url = "/x?from=${gmtDate:yyyy-MM-dd}&t=${date:HH:mm:ss.SSS}&ms=${epoch}&s=${epoch:s}&us=${epoch:us}&also=${epoch:ms}";
        assert_eq!(
            render_template(url, at).unwrap(),
            "/x?from=2024-01-02&t=03:04:05.678&ms=1704164645678&s=1704164645&us=1704164645678000&also=1704164645678"
        );
        assert_eq!(
            render_template("/a?since=${epoch:s}", at).unwrap(),
            "/a?since=1704164645"
        );
        // Offsets are not URL-encoded, and `z` writes GMT.
        assert_eq!(
            render_template("${gmtDate:Z z XXX}", at).unwrap(),
            "+0000 GMT Z"
        );
        assert_eq!(
            render_template("${gmtDate:iso}", at).unwrap(),
            "2024-01-02T03:04:05.678Z"
        );
    }

    #[test]
    fn template_brace_inside_quotes_and_plain_text() {
        let at = ts("2024-01-02T03:04:05Z");
        assert_eq!(
            render_template("{a}${gmtDate:yyyy'}'MM}$b {}", at).unwrap(),
            "{a}2024}01$b {}"
        );
        assert_eq!(
            render_template("/no/templates?x=$1", at).unwrap(),
            "/no/templates?x=$1"
        );
        assert_eq!(render_template("", at).unwrap(), "");
    }

    #[test]
    fn template_errors() {
        let at = ts("2024-01-02T03:04:05Z");
        assert_eq!(
            render_template("/x?a=${gmtDate:yyyy-MM-dd", at).unwrap_err(),
            TemplateError::Unclosed {
                position: 5,
                template: "${gmtDate:yyyy-MM-dd".to_string(),
            }
        );
        // A `}` inside quotes does not close it.
        assert!(matches!(
            render_template("${gmtDate:yyyy'}", at),
            Err(TemplateError::Unclosed { position: 0, .. })
        ));
        let err = render_template("/x?a=${lastPoll:yyyy}", at).unwrap_err();
        assert!(matches!(&err, TemplateError::UnknownName { name } if name == "lastPoll"));
        assert!(err.to_string().contains("lastPoll"), "{err}");
        assert!(matches!(
            render_template("${epoch:ns}", at),
            Err(TemplateError::UnknownEpochUnit { unit }) if unit == "ns"
        ));
        let err = render_template("${gmtDate:yyyy-QQ}", at).unwrap_err();
        assert!(matches!(
            &err,
            TemplateError::Pattern {
                source: PatternError::UnknownLetter { letter: 'Q', .. },
                ..
            }
        ));
        assert!(std::error::Error::source(&err).is_some());
    }
}
