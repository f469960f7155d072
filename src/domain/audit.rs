//! The audit log as pure types: who acted, on what kind of thing, what they did, in words an
//! operator reads. Entries are written by the shared functions that API handlers and dashboard
//! forms both call (`engine::audit`), so a change is logged whichever way it was made.

use chrono::{DateTime, Utc};

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An operator signed in to the dashboard, by email.
    Operator { email: String },
    /// A request made with an API key, by the key's public prefix (`limitry_sk_ab12`).
    ApiKey { prefix: String },
    /// A request made with an operator's personal access token, by its public prefix.
    AccessToken { prefix: String },
    /// The `limitry` command on the server.
    CommandLine,
}

impl Actor {
    /// As the audit log shows it: "ops@example.com", "API key limitry_sk_ab12".
    pub fn label(&self) -> String {
        match self {
            Actor::Operator { email } => email.clone(),
            Actor::ApiKey { prefix } => format!("API key {prefix}"),
            Actor::AccessToken { prefix } => format!("access token {prefix}"),
            Actor::CommandLine => "command line".to_string(),
        }
    }
}

/// What kind of thing an entry is about; the audit page filters by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditKind {
    Balance,
    Limit,
    Meter,
    Customer,
    Webhook,
    ApiKey,
    AccessToken,
}

impl AuditKind {
    pub const ALL: [AuditKind; 7] = [
        AuditKind::Balance,
        AuditKind::Limit,
        AuditKind::Meter,
        AuditKind::Customer,
        AuditKind::Webhook,
        AuditKind::ApiKey,
        AuditKind::AccessToken,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Balance => "balance",
            AuditKind::Limit => "limit",
            AuditKind::Meter => "meter",
            AuditKind::Customer => "customer",
            AuditKind::Webhook => "webhook",
            AuditKind::ApiKey => "api_key",
            AuditKind::AccessToken => "access_token",
        }
    }

    pub fn parse(text: &str) -> Option<AuditKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Plural, as a filter label: "Balances", "API keys".
    pub fn label(self) -> &'static str {
        match self {
            AuditKind::Balance => "Balances",
            AuditKind::Limit => "Limits",
            AuditKind::Meter => "Meters",
            AuditKind::Customer => "Customers",
            AuditKind::Webhook => "Webhook endpoints",
            AuditKind::ApiKey => "API keys",
            AuditKind::AccessToken => "Access tokens",
        }
    }
}

/// One change to log: on what (`kind`, `subject_id`), what was done (`action`, a past-tense
/// verb such as "credited" or "rotated secret"), and a sentence with the details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditChange {
    pub kind: AuditKind,
    pub action: &'static str,
    pub subject_id: String,
    pub summary: String,
}

impl AuditChange {
    pub fn new(kind: AuditKind, action: &'static str, subject_id: &str, summary: impl Into<String>) -> AuditChange {
        AuditChange { kind, action, subject_id: subject_id.to_string(), summary: summary.into() }
    }
}

/// A stored entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: String,
    pub project_id: String,
    pub created_at: DateTime<Utc>,
    /// [`Actor::label`] at the time of the change.
    pub actor: String,
    /// [`AuditKind::as_str`]; an unknown kind (from a newer version) is kept as text.
    pub kind: String,
    pub action: String,
    pub subject_id: String,
    pub summary: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_back_from_their_names() {
        for kind in AuditKind::ALL {
            assert_eq!(AuditKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(AuditKind::parse("nothing"), None);
    }

    #[test]
    fn actors_are_named_as_an_operator_reads_them() {
        assert_eq!(Actor::Operator { email: "ops@example.com".into() }.label(), "ops@example.com");
        assert_eq!(Actor::ApiKey { prefix: "limitry_sk_ab12".into() }.label(), "API key limitry_sk_ab12");
        assert_eq!(Actor::CommandLine.label(), "command line");
    }
}
