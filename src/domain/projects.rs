//! Projects (tenants): what a new one must be. The command line (`limitry projects create`)
//! and the dashboard's "New project" form both go through [`NewProject::parse`], and
//! `Db::create_project` takes only its result, so no path creates a project unchecked.

use chrono_tz::Tz;

use super::{optional_text, parse_timezone, required_text, FieldError};

/// Longest project name accepted.
pub const MAX_PROJECT_NAME: usize = 128;

/// A checked request for a new project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProject {
    name: String,
    timezone: Tz,
}

impl NewProject {
    /// Checks a name (1 to 128 characters once trimmed, no control characters) and an IANA
    /// timezone, `UTC` when empty: the zone its customers' windows follow unless they have
    /// their own.
    pub fn parse(name: &str, timezone: &str) -> Result<NewProject, FieldError> {
        let name = required_text(Some(name.to_string()), "name", MAX_PROJECT_NAME)?;
        let timezone = match optional_text(Some(timezone.to_string()), "timezone", 64)? {
            None => Tz::UTC,
            Some(zone) => parse_timezone(&zone, "timezone")?,
        };
        Ok(NewProject { name, timezone })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn timezone(&self) -> Tz {
        self.timezone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_and_a_timezone_make_a_project() {
        let new = NewProject::parse("  Staging ", "Europe/Paris").unwrap();
        assert_eq!(new.name(), "Staging");
        assert_eq!(new.timezone(), chrono_tz::Europe::Paris);
    }

    #[test]
    fn an_empty_timezone_means_utc() {
        assert_eq!(NewProject::parse("Staging", " ").unwrap().timezone(), Tz::UTC);
    }

    #[test]
    fn a_missing_or_overlong_name_and_an_unknown_timezone_are_refused_by_field() {
        assert_eq!(NewProject::parse("  ", "UTC").unwrap_err(), FieldError::missing("name"));
        assert_eq!(NewProject::parse(&"x".repeat(MAX_PROJECT_NAME + 1), "UTC").unwrap_err().field(), "name");
        assert_eq!(NewProject::parse("a\u{0}b", "UTC").unwrap_err().field(), "name");
        assert_eq!(
            NewProject::parse("Staging", "Mars/Olympus").unwrap_err(),
            FieldError::invalid("timezone", "must be an IANA timezone such as Europe/Paris")
        );
    }
}
