//! RFC 3339 for the engine's `Millis` (milliseconds since the Unix epoch): the one
//! formatter (UTC, `YYYY-MM-DDTHH:MM:SS.mmmZ`) and parser that the server, its Kafka
//! events and `stockd-wal` all use, so no date crate is needed.

use crate::Millis;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_millis(ms: Millis) -> String {
    let secs = (ms / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, ms % 1000)
}

fn digits(s: &[u8], at: usize, n: usize) -> Option<i64> {
    let part = s.get(at..at + n)?;
    if !part.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(part.iter().fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0')))
}

/// Parses an RFC 3339 date-time (`2026-01-01T12:00:00Z`, `...T12:00:00.250+02:00`,
/// lowercase `t`/`z` or a space separator accepted). Fractions below a millisecond
/// are truncated.
pub fn parse_rfc3339(text: &str) -> Result<Millis, String> {
    let bad = || format!("`{text}` is not an RFC 3339 time (e.g. 2026-01-01T12:00:00Z)");
    let s = text.as_bytes();
    if s.len() < 20
        || s[4] != b'-'
        || s[7] != b'-'
        || !matches!(s[10], b'T' | b't' | b' ')
        || s[13] != b':'
        || s[16] != b':'
    {
        return Err(bad());
    }
    let (y, mo, d) =
        (digits(s, 0, 4).ok_or_else(bad)?, digits(s, 5, 2).ok_or_else(bad)?, digits(s, 8, 2).ok_or_else(bad)?);
    let (h, mi, se) =
        (digits(s, 11, 2).ok_or_else(bad)?, digits(s, 14, 2).ok_or_else(bad)?, digits(s, 17, 2).ok_or_else(bad)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&mo) || d < 1 || d > month_days[(mo - 1) as usize] || h > 23 || mi > 59 || se > 60 {
        return Err(bad());
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if s.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < s.len() && s[i].is_ascii_digit() {
            if i - start < 3 {
                frac_ms = frac_ms * 10 + i64::from(s[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
        for _ in (i - start)..3 {
            frac_ms *= 10;
        }
    }
    let offset_secs = match s.get(i) {
        Some(b'Z' | b'z') if i + 1 == s.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == s.len() && s[i + 3] == b':' => {
            let (oh, om) = (digits(s, i + 1, 2).ok_or_else(bad)?, digits(s, i + 4, 2).ok_or_else(bad)?);
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return Err(bad()),
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se.min(59) - offset_secs;
    if secs < 0 {
        return Err(format!("`{text}` is before 1970"));
    }
    Ok(secs as u64 * 1000 + frac_ms as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for ms in [0, 1_767_225_600_000, 1_767_225_600_123, 951_782_400_999, 4_102_444_799_000] {
            assert_eq!(parse_rfc3339(&format_millis(ms)).unwrap(), ms, "{}", format_millis(ms));
        }
        assert_eq!(format_millis(1_767_225_600_000), "2026-01-01T00:00:00.000Z");
        assert_eq!(parse_rfc3339("2026-01-01T02:00:00.5+02:00").unwrap(), 1_767_225_600_500);
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z").unwrap(), 1_709_164_800_000);
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01T25:00:00Z",
            "2026-01-01T00:00:00.Z",
        ] {
            assert!(parse_rfc3339(s).is_err(), "{s}");
        }
    }
}
