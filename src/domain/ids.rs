//! Prefixed, time-ordered identifiers such as `cust_01jd…`.

use rand::Rng;

/// Crockford base32, lower case: ids sort by creation time when compared as strings.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A new identifier: `prefix_` + 48 bits of milliseconds + 80 random bits, 26 characters.
pub fn new_id(prefix: &str, now_ms: i64) -> String {
    let random: u128 = rand::thread_rng().gen::<u128>() & ((1u128 << 80) - 1);
    let value = ((now_ms.max(0) as u128 & ((1u128 << 48) - 1)) << 80) | random;
    let mut out = String::with_capacity(prefix.len() + 27);
    out.push_str(prefix);
    out.push('_');
    for i in (0..26).rev() {
        out.push(ALPHABET[((value >> (i * 5)) & 31) as usize] as char);
    }
    out
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
    }
}
