//! Limitry: self-hosted usage metering, limit enforcement and prepaid credits for AI products.
//!
//! Layers, top to bottom: `api` (JSON under `/v1`) and `ui` (server-rendered dashboard) call
//! `engine` (the hot path: record and check over pre-aggregated window counters) and `db`
//! (SQLite or PostgreSQL, the only SQL), which build on the pure rules in `domain`.
#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod charts;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod engine;
pub mod error;
pub mod export;
pub mod server;
pub mod telemetry;
pub mod ui;
pub mod webhooks;
