//! Who is calling: API keys (and their rate limits) for the JSON API, client tokens for
//! browsers, operators for the dashboard.

pub mod actor;
pub mod client_tokens;
pub mod keys;
pub mod operators;
pub mod personal_tokens;
pub mod rate_limit;
