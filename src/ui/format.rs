//! How the dashboard writes numbers, units, periods and times for people: thousands
//! separators, the meter's unit, "in 14 h", the customer's local time. Also reads numbers the
//! way operators type them ("36,000").

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::domain::limits::LimitStatus;
use crate::domain::meters::{Aggregation, Meter};
use crate::domain::quantity::Quantity;
use crate::domain::windows::Period;

/// An integer with thousands separators: `458377` → `458,377`.
pub fn grouped(value: i128) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if value < 0 {
        out.push('-');
    }
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// An exact amount with thousands separators and up to three decimals: `1234.5`.
pub fn quantity(value: Quantity) -> String {
    let whole = i128::from(value.0) / i128::from(Quantity::SCALE);
    let fraction = (i128::from(value.0) % i128::from(Quantity::SCALE)).unsigned_abs();
    let sign = if value.0 < 0 && whole == 0 { "-" } else { "" };
    if fraction == 0 {
        return format!("{sign}{}", grouped(whole));
    }
    let decimals = format!("{fraction:03}");
    format!("{sign}{}.{}", grouped(whole), decimals.trim_end_matches('0'))
}

/// A count of something with its unit: `458,377 tokens`.
pub fn with_unit(value: Quantity, unit: &str) -> String {
    if unit.is_empty() {
        quantity(value)
    } else {
        format!("{} {unit}", quantity(value))
    }
}

/// What a meter counts, in words: the value key of its field (`values.tokens` → `tokens`),
/// or `events` for a count.
pub fn meter_unit(meter: &Meter) -> String {
    if meter.aggregation == Aggregation::Count {
        return "events".into();
    }
    meter.field.strip_prefix("values.").unwrap_or(&meter.field).replace('_', " ")
}

/// A period as a phrase after an amount: "per day", "in total".
pub fn period_phrase(period: Period) -> &'static str {
    match period {
        Period::Minute => "per minute",
        Period::Hour => "per hour",
        Period::Day => "per day",
        Period::Week => "per week",
        Period::Month => "per month",
        Period::Annual => "per year",
        Period::AllTime => "in total",
        Period::Concurrent => "at once",
    }
}

/// A rolling period as a phrase after an amount: "in any 24 hours".
pub fn rolling_phrase(period: Period) -> &'static str {
    match period {
        Period::Minute => "in any 60 seconds",
        Period::Hour => "in any 60 minutes",
        Period::Day => "in any 24 hours",
        Period::Week => "in any 7 days",
        Period::Month => "in any 30 days",
        Period::Annual | Period::AllTime | Period::Concurrent => period_phrase(period),
    }
}

/// How far back a rolling window reaches, as a phrase after the usage in it: "in the last 24
/// hours".
pub fn last_period_phrase(period: Period) -> &'static str {
    match period {
        Period::Minute => "in the last 60 seconds",
        Period::Hour => "in the last 60 minutes",
        Period::Day => "in the last 24 hours",
        Period::Week => "in the last 7 days",
        Period::Month => "in the last 30 days",
        Period::Annual | Period::AllTime | Period::Concurrent => period_phrase(period),
    }
}

/// A period's name in a form's choices.
pub fn period_name(period: Period) -> &'static str {
    match period {
        Period::Minute => "per minute (UTC minutes)",
        Period::Hour => "hourly (UTC hours)",
        Period::Day => "daily",
        Period::Week => "weekly (from Monday)",
        Period::Month => "monthly",
        Period::Annual => "yearly",
        Period::AllTime => "all time (never resets)",
        Period::Concurrent => "at once (reservations in flight)",
    }
}

/// Usage as a whole percentage of a limit, rounded down (so 99.9 % never reads as 100 %).
pub fn percent_of(used: Quantity, limit: Quantity) -> i64 {
    if limit.0 <= 0 {
        return 0;
    }
    let share = i128::from(used.0.max(0)) * 100 / i128::from(limit.0);
    i64::try_from(share).unwrap_or(i64::MAX)
}

/// How far a limit's usage stands, in words that do not rely on colour: "over by 398,377
/// tokens (664 %)", "limit reached (100 %)" or "1,200 tokens left (60 % used)".
pub fn limit_standing(status: &LimitStatus, unit: &str) -> String {
    let percent = percent_of(status.used, status.limit);
    let over = status.used.saturating_sub(status.limit);
    if over.0 > 0 {
        format!("Over by {} ({} % of the limit)", with_unit(over, unit), grouped(i128::from(percent)))
    } else if status.exceeded {
        format!("Limit reached ({} %)", grouped(i128::from(percent)))
    } else {
        format!("{} left ({percent} % used)", with_unit(status.remaining, unit))
    }
}

/// A duration until `at`, short and rounded to the nearest unit: "in 14 h", "in 35 min",
/// "in 3 days"; past instants read "now".
pub fn time_until(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let seconds = (at - now).num_seconds();
    match seconds {
        s if s <= 0 => "now".into(),
        s if s < 60 => format!("in {s} s"),
        s if s < 3570 => format!("in {} min", (s + 30) / 60),
        s if s < 47 * 3600 + 1800 => format!("in {} h", (s + 1800) / 3600),
        s => format!("in {} days", (s + 43_200) / 86_400),
    }
}

/// A duration since `at`, short: "5 min ago".
pub fn time_since(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds();
    match seconds {
        s if s < 60 => "just now".into(),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 48 * 3600 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86_400),
    }
}

/// An instant in a timezone, with the zone's abbreviation: "2026-11-27 00:00 CET".
pub fn local_time(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone).format("%Y-%m-%d %H:%M %Z").to_string()
}

/// When a limit starts again, in the customer's local time and from now:
/// "resets 2026-11-27 00:00 CET (in 14 h)"; an all-time limit never does.
pub fn reset_phrase(reset_unix_seconds: Option<i64>, zone: Tz, now: DateTime<Utc>) -> String {
    match reset_unix_seconds.and_then(|s| DateTime::from_timestamp(s, 0)) {
        Some(at) => format!("resets {} ({})", local_time(at, zone), time_until(now, at)),
        None => "never resets".into(),
    }
}

/// What a rolling limit's `reset` means, in the customer's time: a rolling window never
/// resets, its usage leaves a bucket at a time. While the limit is reached, `reset` is when
/// enough has left for any request; otherwise when the oldest recorded usage leaves.
pub fn rolling_reset_phrase(status: &LimitStatus, zone: Tz, now: DateTime<Utc>) -> String {
    let Some(at) = status.reset.and_then(|s| DateTime::from_timestamp(s, 0)) else {
        return "never resets".into();
    };
    let when = format!("{} ({})", local_time(at, zone), time_until(now, at));
    if status.exceeded {
        format!("room again {when}")
    } else if status.used == status.held {
        "nothing recorded in the window yet".into()
    } else {
        format!("oldest usage leaves the window {when}")
    }
}

/// A number as an operator types it: surrounding spaces, thousands separated by commas
/// ("36,000", "1,234.5"), underscores or spaces ("36 000"). Returns the plain form
/// ("36000") for the API's parser, or `None` if the separators are not thousands groups
/// ("3,60" is a typo or a decimal comma, not 360).
pub fn plain_number(typed: &str) -> Option<String> {
    let typed = typed.trim();
    let (sign, rest) = match typed.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", typed),
    };
    let (whole, fraction) = match rest.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (rest, None),
    };
    let groups: Vec<&str> = whole.split([',', '_', ' ', '\u{a0}', '\u{202f}']).collect();
    let grouped_ok = groups.len() == 1
        || (!groups[0].is_empty() && groups[0].len() <= 3 && groups[1..].iter().all(|g| g.len() == 3));
    let digits_ok = groups.iter().all(|g| g.chars().all(|c| c.is_ascii_digit())) && !whole.is_empty();
    let fraction_ok = fraction.is_none_or(|f| !f.is_empty() && f.chars().all(|c| c.is_ascii_digit()));
    if !(grouped_ok && digits_ok && fraction_ok) {
        return None;
    }
    let mut plain = format!("{sign}{}", groups.concat());
    if let Some(fraction) = fraction {
        plain.push('.');
        plain.push_str(fraction);
    }
    Some(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_get_thousands_separators() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(458_377), "458,377");
        assert_eq!(grouped(-1_234_567), "-1,234,567");
    }

    #[test]
    fn quantities_keep_their_decimals() {
        assert_eq!(quantity(Quantity(60_000_000)), "60,000");
        assert_eq!(quantity(Quantity(1_234_500)), "1,234.5");
        assert_eq!(quantity(Quantity(-500)), "-0.5");
        assert_eq!(quantity(Quantity(1)), "0.001");
    }

    #[test]
    fn typed_numbers_accept_thousands_separators_only_in_groups_of_three() {
        assert_eq!(plain_number("36,000").as_deref(), Some("36000"));
        assert_eq!(plain_number(" 1,234,567.25 ").as_deref(), Some("1234567.25"));
        assert_eq!(plain_number("36 000").as_deref(), Some("36000"));
        assert_eq!(plain_number("-1_000").as_deref(), Some("-1000"));
        assert_eq!(plain_number("42").as_deref(), Some("42"));
        assert_eq!(plain_number("3,60"), None);
        assert_eq!(plain_number("1,2345"), None);
        assert_eq!(plain_number(",000"), None);
        assert_eq!(plain_number("ten"), None);
        assert_eq!(plain_number("1."), None);
        assert_eq!(plain_number(""), None);
    }

    #[test]
    fn durations_read_as_people_say_them() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(time_until(now, now + chrono::Duration::hours(14) + chrono::Duration::minutes(5)), "in 14 h");
        assert_eq!(time_until(now, now + chrono::Duration::minutes(35)), "in 35 min");
        assert_eq!(time_until(now, now + chrono::Duration::days(3)), "in 3 days");
        assert_eq!(time_until(now, now + chrono::Duration::hours(11) - chrono::Duration::seconds(3)), "in 11 h");
        assert_eq!(time_until(now, now - chrono::Duration::days(3)), "now");
        assert_eq!(time_since(now, now - chrono::Duration::minutes(5)), "5 min ago");
    }

    #[test]
    fn resets_are_shown_in_the_customers_zone() {
        let now = DateTime::from_timestamp(1_795_500_000, 0).unwrap();
        let midnight_paris = DateTime::parse_from_rfc3339("2026-11-27T00:00:00+01:00").unwrap().timestamp();
        let phrase = reset_phrase(Some(midnight_paris), chrono_tz::Europe::Paris, now);
        assert!(phrase.starts_with("resets 2026-11-27 00:00 CET (in "), "{phrase}");
        assert_eq!(reset_phrase(None, chrono_tz::UTC, now), "never resets");
    }

    #[test]
    fn percentages_round_down() {
        assert_eq!(percent_of(Quantity(999), Quantity(1000)), 99);
        assert_eq!(percent_of(Quantity(458_377_000), Quantity(60_000_000)), 763);
        assert_eq!(percent_of(Quantity(5), Quantity(0)), 0);
    }
}
