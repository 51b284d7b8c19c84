//! Times as Zoho writes them in `Created_Time` and `Modified_Time`:
//! ISO 8601 to the second with a numeric offset, e.g.
//! `2024-03-09T14:05:00+05:30`. This server always answers in UTC
//! (`+00:00`), which is a valid instance of the same format.

use std::time::{SystemTime, UNIX_EPOCH};

const SECONDS_PER_DAY: u64 = 24 * 60 * 60;

/// The current time, formatted.
pub(crate) fn now() -> String {
    // A clock set before 1970 is broken; 1970 is as good an answer as any
    // for a test server.
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    format_unix(seconds)
}

/// `seconds` after the Unix epoch, formatted.
pub(crate) fn format_unix(seconds: u64) -> String {
    let (mut days, of_day) = (seconds / SECONDS_PER_DAY, seconds % SECONDS_PER_DAY);
    let mut year = 1970;
    loop {
        let length = if is_leap(year) { 366 } else { 365 };
        if days < length {
            break;
        }
        days -= length;
        year += 1;
    }
    let february = if is_leap(year) { 29 } else { 28 };
    let lengths = [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut month = 1;
    for length in lengths {
        if days < length {
            break;
        }
        days -= length;
        month += 1;
    }
    let (hour, minute, second) = (of_day / 3600, of_day / 60 % 60, of_day % 60);
    format!(
        "{year:04}-{month:02}-{:02}T{hour:02}:{minute:02}:{second:02}+00:00",
        days + 1
    )
}

fn is_leap(year: u64) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_unix(0), "1970-01-01T00:00:00+00:00");
        // 2000 is a leap year, 2100 is not.
        assert_eq!(format_unix(951_782_400), "2000-02-29T00:00:00+00:00");
        assert_eq!(format_unix(951_868_799), "2000-02-29T23:59:59+00:00");
        assert_eq!(format_unix(1_709_993_100), "2024-03-09T14:05:00+00:00");
        assert_eq!(format_unix(1_735_689_599), "2024-12-31T23:59:59+00:00");
        assert_eq!(format_unix(4_107_542_400), "2100-03-01T00:00:00+00:00");
    }
}
