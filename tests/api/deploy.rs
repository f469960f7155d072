//! What deployment relies on: the binary needs no file beside it (the container image holds
//! nothing else), and the systemd unit is well-formed.

use std::process::Command;

use reqwest::StatusCode;

use crate::helpers::postgres_admin_url;
use crate::observability::Service;

#[tokio::test]
async fn the_binary_serves_everything_from_an_empty_directory_with_no_environment() {
    if postgres_admin_url().is_some() {
        return; // About the binary's files, not the database: runs on SQLite.
    }
    let empty = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_limitry"));
    command.current_dir(empty.path()).env_clear();
    let mut service = Service::start_with(command, &format!("sqlite://{}", data.path().join("limitry.db").display()));
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for (path, content_type) in [
        ("/style.css", "text/css"),
        ("/favicon.svg", "image/svg+xml"),
        ("/v1/openapi.json", "application/json"),
        ("/healthz", "text/plain"),
        ("/readyz", "text/plain"),
        ("/setup", "text/html"),
    ] {
        let response = client.get(format!("{}{path}", service.base)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let kind = response.headers()["content-type"].to_str().unwrap().to_string();
        assert!(kind.starts_with(content_type), "{path}: {kind}");
        assert!(!response.bytes().await.unwrap().is_empty(), "{path}");
    }
    assert!(service.terminate().success());
    let left: Vec<_> = std::fs::read_dir(empty.path()).unwrap().collect();
    assert!(left.is_empty(), "nothing is written to the working directory: {left:?}");
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    if postgres_admin_url().is_some() || Command::new("systemd-analyze").arg("--version").output().is_err() {
        return; // Needs systemd's tools (Debian: apt-get install systemd); checked once, on SQLite.
    }
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/limitry.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/limitry serve"), "the unit runs the installed binary");
    // `verify` checks that the executable exists: point it at the one under test.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("limitry.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/limitry", env!("CARGO_BIN_EXE_limitry"))).unwrap();
    let verify = Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap();
    let complaints = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success() && complaints.trim().is_empty(), "{complaints}");
}
