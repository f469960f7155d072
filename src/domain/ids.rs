//! Prefixed, time-ordered identifiers such as `cust_01jd…`: a ULID (the `ulid` crate) in
//! lower case after the prefix.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, UNIX_EPOCH};

use ulid::{Generator, Ulid, ULID_LEN};

/// Hands out ULIDs that increase strictly within this process, also within one millisecond.
static GENERATOR: Mutex<Generator> = Mutex::new(Generator::new());

/// A new identifier: `prefix_` + a ULID (48 bits of milliseconds, 80 random bits) in lower-case
/// Crockford base32, 26 characters, so ids sort by creation time when compared as strings.
/// Within one millisecond (or if the clock steps back) the ULID counts up from the last one.
pub fn new_id(prefix: &str, now_ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(now_ms.max(0) as u64);
    // The generator fails only when the 80 random bits of one millisecond are used up.
    let ulid = GENERATOR
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .generate_from_datetime(at)
        .unwrap_or_else(|_| Ulid::from_datetime(at));
    format!("{prefix}_{}", lower_case(ulid).as_str())
}

/// Whether `text` is an id made by [`new_id`] with this prefix: the prefix, `_`, and a ULID
/// exactly as `new_id` writes it (lower case, no aliases, no overflowing first character).
pub fn is_id(prefix: &str, text: &str) -> bool {
    text.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|body| Ulid::from_string(body).is_ok_and(|ulid| lower_case(ulid).as_str() == body))
}

/// A ULID's text in lower case, without allocating.
struct LowerCase([u8; ULID_LEN]);

impl LowerCase {
    fn as_str(&self) -> &str {
        // Crockford base32 is ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

fn lower_case(ulid: Ulid) -> LowerCase {
    let mut text = [0u8; ULID_LEN];
    ulid.array_to_str(&mut text).make_ascii_lowercase();
    LowerCase(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_sort_by_time() {
        let a = new_id("cust", 1_700_000_000_000);
        let b = new_id("cust", 1_700_000_000_001);
        assert!(a.starts_with("cust_"));
        assert_eq!(a.len(), 5 + 26);
        assert!(a < b);
        assert!(is_id("cust", &a));
        assert!(!is_id("cust", "cust_"));
        assert!(!is_id("lmt", &a));
        assert!(!is_id("cust", &format!("cust_{}", a[5..].to_uppercase())));
    }

    #[test]
    fn ids_made_in_the_same_millisecond_still_sort_in_order() {
        let ids: Vec<String> = (0..100).map(|_| new_id("evt", 1_700_000_000_000)).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(ids.iter().all(|id| is_id("evt", id)));
        assert!(!is_id("evt", "evt_zzzzzzzzzzzzzzzzzzzzzzzzzz"), "more than 128 bits");
        assert!(!is_id("evt", "evt_0000000000000000000000000i"), "an alias of 1 is not how ids are written");
    }
}
