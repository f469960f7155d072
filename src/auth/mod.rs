//! Who is calling: API keys for the JSON API, operators for the dashboard.

pub mod keys;
pub mod operators;
