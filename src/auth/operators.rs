//! Dashboard access: operator passwords (argon2), sessions (tower-sessions, stored in the
//! service's database, signed cookies), CSRF tokens, the slow-down of repeated failed logins,
//! and the middleware that keeps every page behind a session.

use std::net::IpAddr;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::Duration;
use rand::RngCore;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;
use tokio::task::JoinHandle;
use tower_cookies::Cookies;
use tower_sessions::cookie::{time, Cookie, Key, SameSite};
use tower_sessions::service::SignedCookie;
use tower_sessions::session_store::ExpiredDeletion;
use tower_sessions::{session, Expiry, Session, SessionManagerLayer};

use crate::db::operators::Operator;
use crate::db::sessions::SessionRows;
use crate::db::Db;
use crate::domain::customers::validate_email;
use crate::domain::ids::new_id;
use crate::domain::FieldError;
use crate::server::AppState;

pub const SESSION_COOKIE: &str = "limitry_session";
/// Double-submit token for the forms shown before there is a session (login, setup).
pub const LOGIN_CSRF_COOKIE: &str = "limitry_login_csrf";
/// The hidden form field every dashboard form carries.
pub const CSRF_FIELD: &str = "_csrf";
/// A session ends this long after its last change (the sign-in, or a form that left a message).
pub const SESSION_LIFETIME: time::Duration = time::Duration::days(7);
/// How long the login and setup forms' double-submit cookie lives.
const LOGIN_CSRF_LIFETIME: time::Duration = time::Duration::hours(12);
/// How often sessions past their expiry are deleted.
const SESSION_CLEANUP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10 * 60);
/// Where a session keeps its operator, and the message for its next page.
const OPERATOR_KEY: &str = "operator";
const FLASH_KEY: &str = "flash";
pub const MIN_PASSWORD_LENGTH: usize = 10;
/// The longest email an operator can have (RFC 5321's path limit); longer input is refused
/// before it costs a hash or a row.
pub const MAX_EMAIL_LENGTH: usize = 254;
/// Failed logins for one email from one address before each further attempt has to wait.
const FREE_FAILURES: i64 = 3;
/// Failed logins from one address, whatever the emails, before it has to wait: generous, as
/// several operators may share an address, but it stops one address guessing across emails.
const FREE_ADDRESS_FAILURES: i64 = 20;
const MAX_LOGIN_WAIT_SECONDS: i64 = 15 * 60;
/// Failures older than this are forgotten and their rows deleted.
const LOGIN_FAILURE_MEMORY: Duration = Duration::hours(24);

/// A random token: 256 bits, URL-safe.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default().hash_password(password.as_bytes(), &salt)?.to_string())
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Argon2 takes tens of milliseconds of CPU by design: run it on the blocking pool so a burst
/// of logins cannot stall the async workers serving the API.
async fn hash_password_off_thread(password: &str) -> Result<String, String> {
    let password = password.to_string();
    match tokio::task::spawn_blocking(move || hash_password(&password)).await {
        Ok(hashed) => hashed.map_err(|e| e.to_string()),
        Err(err) => Err(err.to_string()),
    }
}

/// Verifies against `hash`, or against [`DUMMY_HASH`] when there is none (an unknown email),
/// which then still fails. The dummy is made on first use, on the blocking pool too.
async fn verify_password_off_thread(password: &str, hash: Option<&str>) -> bool {
    let (password, hash) = (password.to_string(), hash.map(str::to_string));
    let verify = move || match &hash {
        Some(hash) => verify_password(&password, hash),
        None => {
            verify_password(&password, &DUMMY_HASH);
            false
        }
    };
    tokio::task::spawn_blocking(verify).await.unwrap_or(false)
}

/// Verified in place of an operator's hash when the email is unknown, so that answering
/// takes as long as for a known email and the timing does not tell which emails exist.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password(&random_token()).unwrap_or_default());

/// Normalises and checks an operator's email and password.
pub fn validate_credentials(email: &str, password: &str) -> Result<String, FieldError> {
    let email = email.trim().to_lowercase();
    if email.is_empty() {
        return Err(FieldError::missing("email"));
    }
    if email.chars().count() > MAX_EMAIL_LENGTH {
        return Err(FieldError::invalid("email", format!("must be at most {MAX_EMAIL_LENGTH} characters")));
    }
    validate_email(&email, "email")?;
    if password.chars().count() < MIN_PASSWORD_LENGTH {
        return Err(FieldError::invalid("password", format!("must be at least {MIN_PASSWORD_LENGTH} characters")));
    }
    Ok(email)
}

/// Creates an operator (the first-run setup page and `limitry admin create`).
pub async fn create_operator(db: &Db, email: &str, password: &str, now_ms: i64) -> Result<String, CreateOperatorError> {
    let email = validate_credentials(email, password)?;
    let hash = hash_password_off_thread(password).await.map_err(CreateOperatorError::Hash)?;
    db.create_operator(&new_id("op", now_ms), &email, &hash, now_ms).await?;
    Ok(email)
}

/// Creates the first operator (the setup page): `None` when an operator already exists or a
/// concurrent setup created one first — exactly one setup ever succeeds.
pub async fn create_first_operator(
    db: &Db,
    email: &str,
    password: &str,
    now_ms: i64,
) -> Result<Option<Operator>, CreateOperatorError> {
    let email = validate_credentials(email, password)?;
    let hash = hash_password_off_thread(password).await.map_err(CreateOperatorError::Hash)?;
    let id = new_id("op", now_ms);
    if !db.create_first_operator(&id, &email, &hash, now_ms).await? {
        return Ok(None);
    }
    Ok(Some(Operator { id, email, password_hash: hash }))
}

/// Why a login did not start a session.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    // The words an operator sees are in `ui::components::public_error`, chosen by code.
    #[error("wrong email or password")]
    WrongCredentials,
    #[error("too many failed sign-ins; wait {0} s")]
    TooManyAttempts(i64),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
}

/// Checks an operator's email and password, throttled per email at the client's address and
/// per address. The attempt is counted as a failure before the (slow) password check, in one
/// transaction, so concurrent guesses cannot all slip in before the count goes up; a success
/// takes it back. An email someone else keeps failing from elsewhere stays usable.
pub async fn log_in(db: &Db, email: &str, password: &str, client: IpAddr, now_ms: i64) -> Result<Operator, LoginError> {
    let email = email.trim().to_lowercase();
    if email.is_empty() || email.chars().count() > MAX_EMAIL_LENGTH {
        tracing::info!(client = %client, "failed dashboard sign-in: unusable email");
        return Err(LoginError::WrongCredentials);
    }
    let address = throttle_address(client);
    let (address_key, pair_key) = (format!("address:{address}"), format!("login:{address}:{email}"));
    let expires_at = now_ms + LOGIN_FAILURE_MEMORY.num_milliseconds();
    let wait = |free: i64, failures: i64, last: i64| {
        login_wait(failures, free, last, now_ms).map(|wait| wait.num_milliseconds())
    };
    let counters = [(address_key.as_str(), FREE_ADDRESS_FAILURES), (pair_key.as_str(), FREE_FAILURES)];
    if let Err(wait_ms) = db.claim_login_attempt(&counters, now_ms, expires_at, wait).await? {
        tracing::info!(client = %client, email = %email, "dashboard sign-in refused: too many failures");
        return Err(LoginError::TooManyAttempts((wait_ms + 999) / 1000));
    }
    let operator = db.operator_by_email(&email).await?;
    let verified = verify_password_off_thread(password, operator.as_ref().map(|o| o.password_hash.as_str())).await;
    match operator {
        Some(operator) if verified => {
            db.settle_login_success(&pair_key, &address_key).await?;
            Ok(operator)
        }
        _ => {
            tracing::info!(client = %client, email = %email, "failed dashboard sign-in");
            Err(LoginError::WrongCredentials)
        }
    }
}

/// The part of a client address one party controls: the address for IPv4, the /64 network
/// for IPv6 (one host usually has a whole /64 to rotate through).
fn throttle_address(client: IpAddr) -> String {
    match client {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CreateOperatorError {
    #[error("{0}")]
    Invalid(#[from] FieldError),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
}

/// How long a login with these failures must still wait, if at all: free for the first
/// `free`, then doubling from one second up to fifteen minutes.
pub fn login_wait(failures: i64, free: i64, last_failure_ms: i64, now_ms: i64) -> Option<Duration> {
    if failures < free {
        return None;
    }
    let wait_seconds = 1i64.checked_shl((failures - free).min(20) as u32).unwrap_or(i64::MAX);
    let wait = Duration::seconds(wait_seconds.min(MAX_LOGIN_WAIT_SECONDS));
    let ready_at = last_failure_ms + wait.num_milliseconds();
    (now_ms < ready_at).then(|| Duration::milliseconds(ready_at - now_ms))
}

/// What a session holds about its operator.
#[derive(serde::Serialize, serde::Deserialize)]
struct SignedIn {
    operator_id: String,
    email: String,
    csrf_token: String,
}

/// The operator signed in on a request, with the session that carries their messages.
#[derive(Debug, Clone)]
pub struct OperatorSession {
    pub operator_id: String,
    pub email: String,
    /// The anti-forgery token every form of this session must send back.
    pub csrf_token: String,
    session: Session,
}

impl OperatorSession {
    /// Leaves a message for the session's next page; the session is saved as the answer leaves.
    pub async fn leave_flash(&self, flash: &Flash) -> Result<(), session::Error> {
        self.session.insert(FLASH_KEY, flash).await
    }

    /// Signs out: the session is deleted from the database now, and the answer removes its cookie.
    pub async fn end(&self) -> Result<(), session::Error> {
        self.session.flush().await
    }
}

/// The key that signs session cookies, derived from the session secret (of any length).
pub fn session_key(secret: &str) -> Key {
    Key::from(&Sha512::digest(secret.as_bytes()))
}

/// The dashboard's session layer: sessions stored in the service's database, one signed
/// cookie (`HttpOnly`, `SameSite=Lax`, `Secure` as configured) that lives as long as its session.
pub fn session_layer(ui: &UiSettings) -> SessionManagerLayer<SessionRows, SignedCookie> {
    SessionManagerLayer::new(ui.sessions.clone())
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(ui.cookie_secure)
        .with_expiry(Expiry::OnInactivity(SESSION_LIFETIME))
        .with_signed(ui.session_key.clone())
}

/// Starts a session for an operator: a fresh id (never one the browser already had), nothing
/// kept of what it held before, and a new CSRF token. The cookie goes out with the answer.
pub async fn start_session(session: &Session, operator_id: &str, email: &str) -> Result<(), session::Error> {
    if session.id().is_some() {
        session.cycle_id().await?;
    }
    session.clear().await;
    let signed_in =
        SignedIn { operator_id: operator_id.to_string(), email: email.to_string(), csrf_token: random_token() };
    session.insert(OPERATOR_KEY, signed_in).await
}

/// The operator signed in on this session, if any (an unknown or expired session has none).
async fn signed_in(session: &Session) -> Result<Option<OperatorSession>, session::Error> {
    Ok(session.get::<SignedIn>(OPERATOR_KEY).await?.map(|s| OperatorSession {
        operator_id: s.operator_id,
        email: s.email,
        csrf_token: s.csrf_token,
        session: session.clone(),
    }))
}

/// Reads and forgets the session's message. Only a session that held one is written back.
async fn take_flash(session: &Session) -> Result<Option<Flash>, session::Error> {
    if session.get_value(FLASH_KEY).await?.is_none() {
        return Ok(None);
    }
    session.remove(FLASH_KEY).await
}

/// The double-submit cookie of the login and setup forms.
fn login_csrf_cookie(token: String, secure: bool) -> Cookie<'static> {
    Cookie::build((LOGIN_CSRF_COOKIE, token))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(LOGIN_CSRF_LIFETIME)
        .build()
}

/// Whether a login or setup form sent back the token of its double-submit cookie.
pub fn login_csrf_ok(cookies: &Cookies, sent: Option<&str>) -> bool {
    match (cookies.get(LOGIN_CSRF_COOKIE), sent) {
        (Some(cookie), Some(sent)) => same_secret(cookie.value(), sent),
        _ => false,
    }
}

/// Compares a secret with what a client sent in constant time (`subtle`), so the time taken
/// does not tell how much of a guess was right. (Lengths are not secret: tokens have one size.)
pub fn same_secret(expected: &str, sent: &str) -> bool {
    expected.as_bytes().ct_eq(sent.as_bytes()).into()
}

/// Deletes expired sessions every few minutes with the store's `delete_expired`. (Its
/// `continuously_delete_expired` stops at the first failure; this logs it and goes on.)
pub fn spawn_session_cleanup(sessions: SessionRows) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(SESSION_CLEANUP_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(err) = sessions.delete_expired().await {
                tracing::warn!(error = %err, "could not delete expired sessions");
            }
        }
    })
}

/// Pages anyone may reach: signing in and first-run setup.
fn is_public(path: &str) -> bool {
    matches!(path, "/login" | "/setup")
}

/// Keeps every dashboard page, form and download behind a session. The session goes into the
/// request's extensions for the pages; public pages get a login CSRF cookie instead.
pub async fn require_operator(
    State(state): State<AppState>,
    session: Session,
    cookies: Cookies,
    mut request: Request,
    next: Next,
) -> Response {
    if request.uri().path() == "/setup" {
        match state.engine.db().operator_count().await {
            // Setup exists only until the first operator does.
            Ok(0) => {}
            Ok(_) => return (StatusCode::NOT_FOUND, "Not found").into_response(),
            Err(err) => return crate::error::AppError::Internal(err.into()).into_response(),
        }
    }
    let operator = match signed_in(&session).await {
        Ok(operator) => operator,
        Err(err) => {
            tracing::error!(error = %err, "could not read the session");
            return crate::error::AppError::Internal(err.into()).into_response();
        }
    };
    let path = request.uri().path().to_string();
    let has_session = operator.is_some();
    if let Some(operator) = operator {
        request.extensions_mut().insert(operator);
    }
    if is_public(&path) {
        let existing = cookies.get(LOGIN_CSRF_COOKIE).map(|cookie| cookie.value().to_string());
        let token = existing.clone().unwrap_or_else(random_token);
        request.extensions_mut().insert(LoginCsrf(token.clone()));
        if existing.is_none() {
            cookies.add(login_csrf_cookie(token, state.ui.cookie_secure));
        }
        return next.run(request).await;
    }
    if has_session {
        // Taken here rather than while the page renders: rendering may start twice, and
        // a message shown once must not be consumed by a render nobody sees.
        if request.method() == Method::GET {
            match take_flash(&session).await {
                Ok(Some(flash)) => {
                    request.extensions_mut().insert(flash);
                }
                Ok(None) => {}
                Err(err) => tracing::warn!(error = %err, "could not read the session's message"),
            }
        }
        return next.run(request).await;
    }
    let to_setup = request.method() == Method::GET && state.engine.db().operator_count().await.unwrap_or(1) == 0;
    Redirect::to(if to_setup { "/setup" } else { "/login" }).into_response()
}

/// A one-time message for the session's next page: how a form post went and, once, a new
/// secret. It travels in the session, never in the URL, so no link can make a page say
/// something the service did not.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Flash {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The form field the error concerns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// A new API key or signing secret, shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The form whose post failed (its `_form` field), so its page fills it in again with
    /// what was typed and shows the error beside it rather than beside a namesake field of
    /// another form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<String>,
    /// What was typed into that form, field by field (never its anti-forgery token).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub values: std::collections::BTreeMap<String, String>,
}

/// The double-submit CSRF token of the login and setup forms.
#[derive(Debug, Clone)]
pub struct LoginCsrf(pub String);

/// Dashboard settings that live for the process.
pub struct UiSettings {
    pub sessions: SessionRows,
    pub session_key: Key,
    pub cookie_secure: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_session_id_verifies_and_a_tampered_one_does_not() {
        use tower_sessions::cookie::CookieJar;
        let key = session_key("secret");
        let mut jar = CookieJar::new();
        jar.signed_mut(&key).add(Cookie::new(SESSION_COOKIE, "abc"));
        let value = jar.get(SESSION_COOKIE).unwrap().value().to_string();
        let read = |key: &Key, value: &str| {
            let mut jar = CookieJar::new();
            jar.add_original(Cookie::new(SESSION_COOKIE, value.to_string()));
            jar.signed(key).get(SESSION_COOKIE).map(|cookie| cookie.value().to_string())
        };
        assert_eq!(read(&key, &value).as_deref(), Some("abc"));
        assert_eq!(read(&key, &value.replace("abc", "abd")), None);
        assert_eq!(read(&session_key("other"), &value), None);
        assert_eq!(read(&key, "abc"), None);
    }

    #[test]
    fn failed_logins_wait_longer_and_longer_after_three() {
        assert_eq!(login_wait(2, 3, 1_000, 1_000), None);
        assert_eq!(login_wait(3, 3, 1_000, 1_500), Some(Duration::milliseconds(500)));
        assert_eq!(login_wait(3, 3, 1_000, 2_000), None);
        assert_eq!(login_wait(5, 3, 0, 0), Some(Duration::seconds(4)));
        assert_eq!(login_wait(40, 3, 0, 0), Some(Duration::minutes(15)));
        assert_eq!(login_wait(19, FREE_ADDRESS_FAILURES, 0, 0), None);
    }

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("wrong horse battery", &hash));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn credentials_are_normalised_and_checked() {
        assert_eq!(validate_credentials(" Ops@Example.com ", "long enough pw").unwrap(), "ops@example.com");
        assert_eq!(validate_credentials("ops@example.com", "short").unwrap_err().field(), "password");
        assert_eq!(validate_credentials("nope", "long enough pw").unwrap_err().field(), "email");
        let long = format!("{}@example.com", "a".repeat(MAX_EMAIL_LENGTH));
        assert_eq!(validate_credentials(&long, "long enough pw").unwrap_err().field(), "email");
    }

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(same_secret("token", "token"));
        assert!(!same_secret("token", "tokem"));
        assert!(!same_secret("token", "token2"));
        assert!(!same_secret("token", ""));
    }

    #[test]
    fn ipv6_clients_are_throttled_by_their_network() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let other: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(throttle_address(one), throttle_address(other));
        assert_eq!(throttle_address("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
    }

    #[test]
    fn cookies_are_http_only_lax_and_secure_when_asked() {
        let text = login_csrf_cookie("b".into(), true).to_string();
        assert!(text.contains("HttpOnly") && text.contains("SameSite=Lax") && text.contains("; Secure"), "{text}");
        assert!(!login_csrf_cookie("b".into(), false).to_string().contains("Secure"));
    }
}
