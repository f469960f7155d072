//! The command line: keys are created, listed and revoked against the service's database.

use std::process::Command;

use crate::helpers::postgres_admin_url;

fn limitry(args: &[&str], database_url: &str) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_limitry"))
        .args(args)
        .args(["--database-url", database_url])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    (output.status.success(), String::from_utf8(output.stdout).unwrap(), String::from_utf8(output.stderr).unwrap())
}

#[tokio::test]
async fn keys_created_on_the_command_line_work_until_revoked() {
    if postgres_admin_url().is_some() {
        return; // The command line talks to the same code on both; this runs on SQLite.
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());

    let (ok, stdout, stderr) = limitry(&["keys", "create", "--name", "dev"], &url);
    assert!(ok, "{stderr}");
    let lines: Vec<_> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "the key is the only line on stdout: {stdout:?}");
    let secret = lines[0].to_string();
    assert!(secret.starts_with("limitry_sk_"));
    let (_, second, _) = limitry(&["keys", "create", "--name", "ci"], &url);

    let (ok, listing, _) = limitry(&["keys", "list"], &url);
    assert!(ok);
    assert!(listing.contains("\tdev\t") && listing.contains("\tci\t"), "{listing}");
    assert!(!listing.contains(&secret), "secrets are never listed");
    let ci_id = listing.lines().find(|l| l.contains("\tci\t")).unwrap().split('\t').next().unwrap().to_string();
    let (ok, _, stderr) = limitry(&["keys", "revoke", &ci_id], &url);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = limitry(&["keys", "revoke", "key_unknown"], &url);
    assert!(!ok && stderr.contains("not found"), "{stderr}");

    let config = limitry::config::Config::new("127.0.0.1:0".parse().unwrap(), &url);
    let server = limitry::server::spawn(&config, std::sync::Arc::new(limitry::clock::SystemClock)).await.unwrap();
    let client = reqwest::Client::new();
    let call = |key: String| client.get(format!("http://{}/v1/project", server.addr)).bearer_auth(key).send();
    assert_eq!(call(secret).await.unwrap().status(), 200);
    let revoked = call(second.trim().to_string()).await.unwrap();
    assert_eq!(revoked.status(), 401);
    let body: serde_json::Value = revoked.json().await.unwrap();
    assert_eq!(body["error"]["code"], "expired_api_key");
    server.shutdown().await;
}

#[test]
fn projects_can_be_created_for_more_tenants() {
    if postgres_admin_url().is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let (ok, stdout, stderr) = limitry(&["projects", "create", "--name", "Second"], &url);
    assert!(ok, "{stderr}");
    let id = stdout.trim();
    assert!(id.starts_with("proj_"));
    let (ok, _, stderr) = limitry(&["keys", "create", "--name", "k", "--project", id], &url);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = limitry(&["keys", "create", "--name", "k", "--project", "proj_missing"], &url);
    assert!(!ok, "a key for a missing project is refused: {stderr}");
}
