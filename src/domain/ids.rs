//! Prefixed, time-ordered identifiers such as `cust_01jd…`.

use std::sync::Mutex;

use rand::Rng;

/// The last id value handed out, so ids made in the same millisecond still sort in order.
static LAST: Mutex<u128> = Mutex::new(0);

/// Crockford base32, lower case: ids sort by creation time when compared as strings.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A new identifier: `prefix_` + 48 bits of milliseconds + 80 random bits, 26 characters,
/// strictly increasing within this process.
pub fn new_id(prefix: &str, now_ms: i64) -> String {
    let random: u128 = rand::thread_rng().gen::<u128>() & ((1u128 << 80) - 1);
    let mut value = ((now_ms.max(0) as u128 & ((1u128 << 48) - 1)) << 80) | random;
    if let Ok(mut last) = LAST.lock() {
        // Within one millisecond (or if the clock steps back), count up from the last id.
        if value >> 80 <= *last >> 80 {
            value = *last + 1 + (random & 0xffff);
        }
        *last = value;
    }
    let mut out = String::with_capacity(prefix.len() + 27);
    out.push_str(prefix);
    out.push('_');
    for i in (0..26).rev() {
        out.push(ALPHABET[((value >> (i * 5)) & 31) as usize] as char);
    }
    out
}

/// Whether `text` is an id made by [`new_id`] with this prefix.
pub fn is_id(prefix: &str, text: &str) -> bool {
    text.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|body| body.len() == 26 && body.bytes().all(|b| ALPHABET.contains(&b)))
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
}
