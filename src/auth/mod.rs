//! Who is calling: API keys for the JSON API.

pub mod keys;
