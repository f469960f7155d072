//! One module per dashboard page.

pub mod access_tokens;
pub mod alerts;
pub mod api_keys;
pub mod audit;
pub mod balances;
pub mod confirm;
pub mod customer_usage;
pub mod customers;
pub mod events;
pub mod exports;
pub mod home;
pub mod limits;
pub mod login;
pub mod meters;
pub mod projects;
pub mod webhooks;
