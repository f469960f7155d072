//! HTTP integration tests against the real app. Run on SQLite by default and on PostgreSQL
//! with `LIMITRY_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres`.

mod helpers;

mod audit;
mod balances;
mod cli;
mod client_tokens;
mod compat;
mod concurrency;
mod consume;
mod crash;
mod customers;
mod dashboard;
mod dashboard_views;
mod deploy;
mod events;
mod group_commit;
mod hardening_core;
mod hardening_edge;
mod hardening_input;
mod instances;
mod limit_usage;
mod limits;
mod meters;
mod metrics;
mod observability;
mod quickstart;
mod rate_limits;
mod reservations;
mod rolling;
mod service;
mod shutdown;
mod validation;
mod webhooks;
mod windows;
