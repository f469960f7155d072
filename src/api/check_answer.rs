//! The check answer's JSON, written directly: the very bytes serde writes for `CheckResponse`
//! (its `Serialize` stays the reference, and the tests hold the two together), at a fraction
//! of the instructions. Every model call of every customer waits for a check, and going
//! through serde's serializer a token at a time (numbers through `serde_json::Number`, times
//! through chrono's formatter) cost a check more than the engine's judgement.

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use serde::Serialize;

use crate::domain::limits::LimitStatus;
use crate::domain::quantity::Quantity;
use crate::engine::{BalanceStatus, CheckResponse};

/// A check's answer as an `application/json` response.
pub struct CheckAnswer(pub CheckResponse);

impl IntoResponse for CheckAnswer {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(expected_len(&self.0));
        write_check_response(&self.0, &mut body);
        let mut response = Body::from(body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

/// Room for a typical answer, so that the buffer is allocated once.
fn expected_len(answer: &CheckResponse) -> usize {
    160 + answer.customer_id.len() + answer.limits.len() * 256 + answer.balances.len() * 128
}

/// Appends `answer` as serde_json writes it: the fields in declaration order, the ones serde
/// skips left out alike.
pub fn write_check_response(answer: &CheckResponse, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"allowed\":");
    write_bool(out, answer.allowed);
    if let Some(reason) = &answer.reason {
        out.extend_from_slice(b",\"reason\":");
        write_str(out, reason);
    }
    out.extend_from_slice(b",\"customerId\":");
    write_str(out, &answer.customer_id);
    out.extend_from_slice(b",\"limits\":");
    write_array(out, &answer.limits, write_limit);
    if !answer.balances.is_empty() {
        out.extend_from_slice(b",\"balances\":");
        write_array(out, &answer.balances, write_balance);
    }
    out.extend_from_slice(b",\"asOf\":");
    write_instant(out, answer.as_of);
    if let Some(event_id) = &answer.event_id {
        out.extend_from_slice(b",\"eventId\":");
        write_str(out, event_id);
    }
    if let Some(duplicate) = answer.duplicate {
        out.extend_from_slice(b",\"duplicate\":");
        write_bool(out, duplicate);
    }
    if let Some(reservation_id) = &answer.reservation_id {
        out.extend_from_slice(b",\"reservationId\":");
        write_str(out, reservation_id);
    }
    if let Some(expires_at) = answer.expires_at {
        out.extend_from_slice(b",\"expiresAt\":");
        write_instant(out, expires_at);
    }
    out.push(b'}');
}

fn write_limit(out: &mut Vec<u8>, limit: &LimitStatus) {
    out.extend_from_slice(b"{\"id\":");
    write_str(out, &limit.id);
    out.extend_from_slice(b",\"name\":");
    write_str(out, &limit.name);
    out.extend_from_slice(b",\"meterId\":");
    write_str(out, &limit.meter_id);
    out.extend_from_slice(b",\"period\":\"");
    // Period names are plain lower-case words: nothing to escape.
    out.extend_from_slice(limit.period.as_str().as_bytes());
    out.extend_from_slice(b"\",\"limit\":");
    write_quantity(out, limit.limit);
    out.extend_from_slice(b",\"used\":");
    write_quantity(out, limit.used);
    if !limit.held.is_zero() {
        out.extend_from_slice(b",\"held\":");
        write_quantity(out, limit.held);
    }
    out.extend_from_slice(b",\"remaining\":");
    write_quantity(out, limit.remaining);
    out.extend_from_slice(b",\"exceeded\":");
    write_bool(out, limit.exceeded);
    out.extend_from_slice(b",\"reset\":");
    match limit.reset {
        Some(reset) => write_integer(out, reset),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"failMode\":\"");
    out.extend_from_slice(limit.fail_mode.as_str().as_bytes());
    out.extend_from_slice(b"\"}");
}

fn write_balance(out: &mut Vec<u8>, balance: &BalanceStatus) {
    out.extend_from_slice(b"{\"name\":");
    write_str(out, &balance.name);
    out.extend_from_slice(b",\"balanceId\":");
    match &balance.balance_id {
        Some(id) => write_str(out, id),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"amount\":");
    write_integer(out, balance.amount);
    out.extend_from_slice(b",\"availableBalance\":");
    write_integer(out, balance.available_balance);
    out.extend_from_slice(b",\"sufficient\":");
    write_bool(out, balance.sufficient);
    out.push(b'}');
}

fn write_array<T>(out: &mut Vec<u8>, items: &[T], write_item: fn(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_item(out, item);
    }
    out.push(b']');
}

fn write_bool(out: &mut Vec<u8>, value: bool) {
    out.extend_from_slice(if value { b"true" } else { b"false" });
}

fn write_integer(out: &mut Vec<u8>, value: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Whole amounts are integers, as `Quantity::to_json` makes them; fractions (rare) go through
/// serde_json's own float formatting.
fn write_quantity(out: &mut Vec<u8>, quantity: Quantity) {
    if quantity.0 % Quantity::SCALE == 0 {
        write_integer(out, quantity.0 / Quantity::SCALE);
    } else {
        write_with_serde(out, &quantity.to_json());
    }
}

/// A string needing no escape is copied as is; one that needs any is left to serde_json,
/// whose escapes are the reference.
fn write_str(out: &mut Vec<u8>, text: &str) {
    if needs_escape(text.as_bytes()) {
        write_with_serde(out, text);
        return;
    }
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
}

/// Whether any byte is one JSON escapes: a control character, `"` or a backslash. Eight bytes
/// at a time, with the classic word trick (some byte of `x` is below `n` exactly when
/// `(x - n·ONES) & !x` has a top bit set; a byte equal to `b` is a byte of `x ^ b·ONES` below
/// 1): one byte at a time cost more than the rest of the answer.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOPS: u64 = 0x8080_8080_8080_8080;
    let has_below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & TOPS != 0;
    let has_byte = |word: u64, b: u8| has_below(word ^ (ONES * u64::from(b)), 1);
    let mut words = bytes.chunks_exact(8);
    for chunk in &mut words {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        if has_below(word, 0x20) || has_byte(word, b'"') || has_byte(word, b'\\') {
            return true;
        }
    }
    words.remainder().iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// An instant as chrono's `Serialize` writes it (RFC 3339, `Z`, as many fraction digits as
/// needed: none, 3, 6 or 9). Years outside 0–9999 and leap seconds take chrono's own path.
fn write_instant(out: &mut Vec<u8>, at: DateTime<Utc>) {
    let naive = at.naive_utc();
    let nanos = naive.nanosecond();
    let Ok(year) = u32::try_from(naive.year()) else {
        return write_instant_with_chrono(out, at);
    };
    if year > 9999 || nanos >= 1_000_000_000 {
        return write_instant_with_chrono(out, at);
    }
    let mut text = *b"\"0000-00-00T00:00:00";
    put_digits(&mut text[1..5], year);
    put_digits(&mut text[6..8], naive.month());
    put_digits(&mut text[9..11], naive.day());
    put_digits(&mut text[12..14], naive.hour());
    put_digits(&mut text[15..17], naive.minute());
    put_digits(&mut text[18..20], naive.second());
    out.extend_from_slice(&text);
    let (digits, fraction) = match nanos {
        0 => (0, 0),
        n if n % 1_000_000 == 0 => (3, n / 1_000_000),
        n if n % 1_000 == 0 => (6, n / 1_000),
        n => (9, n),
    };
    if digits > 0 {
        let mut decimals = [b'.', b'0', b'0', b'0', b'0', b'0', b'0', b'0', b'0', b'0'];
        put_digits(&mut decimals[1..=digits], fraction);
        out.extend_from_slice(&decimals[..=digits]);
    }
    out.extend_from_slice(b"Z\"");
}

/// Writes `value` into `slot` in decimal, zero-padded to its width.
fn put_digits(slot: &mut [u8], mut value: u32) {
    for digit in slot.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

fn write_instant_with_chrono(out: &mut Vec<u8>, at: DateTime<Utc>) {
    write_with_serde(out, &at.to_rfc3339_opts(SecondsFormat::AutoSi, true));
}

fn write_with_serde<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing a string or a number into memory cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::limits::FailMode;
    use crate::domain::windows::Period;

    fn status(id: &str, period: Period, used: i64, held: i64, reset: Option<i64>) -> LimitStatus {
        LimitStatus {
            id: id.into(),
            name: format!("{id} tokens"),
            meter_id: "mtr_01".into(),
            period,
            limit: Quantity(1_000_000),
            used: Quantity(used),
            held: Quantity(held),
            remaining: Quantity(1_000_000 - used),
            exceeded: used >= 1_000_000,
            reset,
            fail_mode: if used % 2 == 0 { FailMode::Open } else { FailMode::Closed },
        }
    }

    fn answer(as_of: DateTime<Utc>) -> CheckResponse {
        CheckResponse {
            allowed: true,
            reason: None,
            customer_id: "cust_01JD".into(),
            limits: vec![status("lmt_a", Period::Day, 600_000, 0, Some(1_795_564_800))],
            balances: Vec::new(),
            as_of,
            event_id: None,
            duplicate: None,
            reservation_id: None,
            expires_at: None,
        }
    }

    fn written(answer: &CheckResponse) -> String {
        let mut out = Vec::new();
        write_check_response(answer, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn assert_same_as_serde(answer: &CheckResponse) {
        assert_eq!(written(answer), serde_json::to_string(answer).unwrap());
    }

    fn at_millis(millis: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(millis).unwrap()
    }

    #[test]
    fn a_plain_answer_is_written_as_serde_writes_it() {
        let plain = answer(at_millis(1_795_564_800_123));
        assert_same_as_serde(&plain);
        assert!(written(&plain).ends_with(r#""failMode":"open"}],"asOf":"2026-11-25T00:00:00.123Z"}"#));
    }

    #[test]
    fn every_optional_field_is_written_or_left_out_as_serde_does() {
        let mut full = answer(at_millis(1_795_564_800_000));
        full.allowed = false;
        full.reason = Some("insufficient_balance".into());
        full.limits = vec![
            status("lmt_a", Period::Minute, 999_999, 1, Some(60)),
            status("lmt_b", Period::AllTime, 1_000_000, 250_500, None),
            status("lmt_c", Period::Concurrent, 0, 0, None),
            status("lmt_d", Period::Month, -2_500, 0, Some(-1)),
        ];
        full.balances = vec![
            BalanceStatus {
                name: "credits".into(),
                balance_id: Some("bal_1".into()),
                amount: 5,
                available_balance: -200,
                sufficient: false,
            },
            BalanceStatus {
                name: "gpu \"hours\"".into(),
                balance_id: None,
                amount: i64::MAX,
                available_balance: 0,
                sufficient: false,
            },
        ];
        full.event_id = Some("evt_1".into());
        full.duplicate = Some(true);
        full.reservation_id = Some("lres_1".into());
        full.expires_at = Some(at_millis(1_795_565_100_001));
        assert_same_as_serde(&full);
        for period in Period::ALL {
            full.limits[0].period = period;
            assert_same_as_serde(&full);
        }
        full.duplicate = Some(false);
        full.event_id = None;
        full.limits.clear();
        assert_same_as_serde(&full);
    }

    #[test]
    fn fractional_and_extreme_amounts_are_written_as_serde_does() {
        let mut odd = answer(at_millis(0));
        for (used, held) in [(1, 0), (1_500, 1), (-1, -1_001), (i64::MAX, 0), (i64::MIN + 1, 7), (123_456_789, 999)] {
            odd.limits[0].used = Quantity(used);
            odd.limits[0].held = Quantity(held);
            odd.limits[0].limit = Quantity(used / 3);
            odd.limits[0].remaining = Quantity(held.saturating_mul(1000));
            odd.limits[0].reset = Some(used);
            assert_same_as_serde(&odd);
        }
    }

    #[test]
    fn strings_are_escaped_as_serde_escapes_them() {
        let mut odd = answer(at_millis(1));
        for text in ["", "a\"b", "back\\slash", "tab\tnew\nline\r", "\u{1}\u{1f}\u{7f}", "é 日本 🎉", "</script>"]
        {
            odd.customer_id = text.into();
            odd.limits[0].name = format!("{text}{text}");
            odd.limits[0].id = text.into();
            odd.reason = Some(text.into());
            assert_same_as_serde(&odd);
        }
    }

    #[test]
    fn every_byte_json_escapes_is_found_wherever_it_lies() {
        for at in 0..20 {
            let mut text = vec![b'a'; 20];
            assert!(!needs_escape(&text));
            for byte in 0..=255u8 {
                text[at] = byte;
                let escaped = byte < 0x20 || byte == b'"' || byte == b'\\';
                assert_eq!(needs_escape(&text), escaped, "byte {byte} at {at}");
            }
        }
    }

    #[test]
    fn instants_are_written_as_chrono_serializes_them() {
        let instants = [
            at_millis(0),
            at_millis(-1),
            at_millis(-86_400_001),
            at_millis(1_795_564_859_999),
            at_millis(253_402_300_799_999),
            at_millis(253_402_300_800_000),
            DateTime::from_timestamp(1_795_564_800, 123_456_789).unwrap(),
            DateTime::from_timestamp(1_795_564_800, 123_456_000).unwrap(),
            DateTime::from_timestamp(1_795_564_800, 1).unwrap(),
            // A leap second, as chrono holds it: more than a second of nanoseconds.
            DateTime::from_timestamp(1_483_228_799, 1_500_000_000).unwrap(),
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
        ];
        for at in instants {
            let mut timed = answer(at);
            timed.expires_at = Some(at);
            assert_same_as_serde(&timed);
        }
    }
}
