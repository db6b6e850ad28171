//! Wall-clock time as the API reports it: milliseconds since the Unix epoch, and RFC 3339.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch. A clock set before 1970 reads as 0.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `ms` since the epoch as an RFC 3339 UTC timestamp with milliseconds,
/// e.g. `2023-10-24T18:03:07.123Z` (what JavaScript's `Date.toISOString` prints).
pub fn rfc3339_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let ms_of_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_date(days);
    let secs = ms_of_day / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ms_of_day % 1000
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01.
///
/// Works in 400-year eras (146,097 days each), counted from 0000-03-01 so that the leap day
/// is the last day of the shifted year.
fn civil_date(days: i64) -> (i64, u32, u32) {
    const DAYS_PER_ERA: i64 = 146_097;
    // 1970-01-01 is 719,468 days after 0000-03-01.
    let z = days + 719_468;
    let era = z.div_euclid(DAYS_PER_ERA);
    let day_of_era = z.rem_euclid(DAYS_PER_ERA);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March: 0 = March … 11 = February.
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants_like_javascript_to_iso_string() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        // Values checked against `new Date(ms).toISOString()` in Node.
        assert_eq!(rfc3339_ms(1_698_170_587_123), "2023-10-24T18:03:07.123Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_ms(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
        assert_eq!(rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn every_day_of_four_centuries_follows_the_previous_one() {
        let mut prev = civil_date(-1);
        for d in 0..146_097 {
            let next = civil_date(d);
            let (y, m, day) = prev;
            let expected_next_day = if next.2 == 1 {
                next.1 != m || next.0 != y
            } else {
                next == (y, m, day + 1)
            };
            assert!(expected_next_day, "{prev:?} -> {next:?}");
            prev = next;
        }
        assert_eq!(civil_date(146_097 - 1), (2369, 12, 31));
    }
}
