//! Time as every component reads and prints it: the current instant, and an age as `kubectl get` shows it.
//!
//! Two crates meet here. `k8s-openapi` holds `metav1.Time` as a `jiff::Timestamp` (serialized to the second,
//! like Kubernetes), so [`now`] returns one; the printers compute ages with `chrono`, so [`human_duration`] takes
//! a `chrono::TimeDelta`. Each was written twice before (in the controller manager and the kubelet, in the
//! apiserver's tables and the CLI); this module is the one copy.

use chrono::TimeDelta;
use k8s_openapi::jiff::Timestamp;
use std::time::SystemTime;

/// The current time, as the API's timestamps hold it. Pure functions take their "now" as a parameter (a test
/// passes a fixed instant); the I/O shell calls this. (`jiff`'s own clock is behind a feature `k8s-openapi` does
/// not enable; the system clock is all it would read.)
pub fn now() -> Timestamp {
    let since_epoch = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let seconds = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    // `subsec_nanos` is below 10⁹, which always fits an i32.
    let nanos = i32::try_from(since_epoch.subsec_nanos()).unwrap_or(0);
    Timestamp::new(seconds, nanos).unwrap_or(Timestamp::MAX)
}

/// Formats `elapsed` exactly as `kubectl get` shows an age on a real cluster: `5s`, `2m30s`, `3h`, `12d`.
///
/// This is `duration.HumanDuration` from `k8s.io/apimachinery/pkg/util/duration`, rule for rule. It keeps about
/// two significant figures: seconds up to two minutes, minutes and seconds up to ten minutes, then minutes, hours
/// and minutes, hours, days and hours, days, years and days, years. Clocks of different machines disagree a
/// little, so a timestamp up to a second in the future still reads `0s`; further than that it is `<invalid>`.
///
/// Go truncates durations towards zero when it divides them; so does [`TimeDelta::num_seconds`], so the
/// arithmetic below reads like the Go code it mirrors.
pub fn human_duration(elapsed: TimeDelta) -> String {
    let seconds = elapsed.num_seconds();
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return with_remainder(minutes, "m", seconds % 60, "s");
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return with_remainder(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return with_remainder(days, "d", hours % 24, "h");
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        return with_remainder(years, "y", days % 365, "d");
    }
    format!("{years}y")
}

/// `2m30s`, or just `2m` when the smaller unit is zero.
fn with_remainder(big: i64, big_unit: &str, small: i64, small_unit: &str) -> String {
    if small == 0 { format!("{big}{big_unit}") } else { format!("{big}{big_unit}{small}{small_unit}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(seconds: i64) -> String {
        human_duration(TimeDelta::seconds(seconds))
    }

    #[test]
    fn seconds_are_shown_up_to_two_minutes() {
        assert_eq!(age(0), "0s");
        assert_eq!(age(5), "5s");
        assert_eq!(age(119), "119s");
        assert_eq!(age(120), "2m");
    }

    #[test]
    fn minutes_keep_their_seconds_below_ten_minutes() {
        assert_eq!(age(150), "2m30s");
        assert_eq!(age(9 * 60 + 59), "9m59s");
        assert_eq!(age(10 * 60 + 59), "10m");
        assert_eq!(age(179 * 60 + 59), "179m");
    }

    #[test]
    fn hours_keep_their_minutes_below_eight_hours() {
        assert_eq!(age(3 * 3600), "3h");
        assert_eq!(age(3 * 3600 + 5 * 60), "3h5m");
        assert_eq!(age(8 * 3600 + 5 * 60), "8h");
        assert_eq!(age(47 * 3600 + 59 * 60), "47h");
    }

    #[test]
    fn days_keep_their_hours_below_eight_days() {
        assert_eq!(age(48 * 3600), "2d");
        assert_eq!(age(3 * 86400 + 4 * 3600), "3d4h");
        assert_eq!(age(8 * 86400 + 4 * 3600), "8d");
        assert_eq!(age(729 * 86400), "729d");
    }

    #[test]
    fn years_keep_their_days_below_eight_years() {
        assert_eq!(age(730 * 86400), "2y");
        assert_eq!(age(800 * 86400), "2y70d");
        assert_eq!(age(9 * 365 * 86400), "9y");
    }

    #[test]
    fn a_timestamp_slightly_in_the_future_reads_zero_and_further_is_invalid() {
        assert_eq!(human_duration(TimeDelta::milliseconds(-1500)), "0s");
        assert_eq!(age(-2), "<invalid>");
    }

    #[test]
    fn now_is_after_2020() {
        assert!(now() > Timestamp::from_second(1_577_836_800).unwrap());
    }
}
