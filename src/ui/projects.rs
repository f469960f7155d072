//! Which project the dashboard manages: each operator session remembers the one it chose
//! (tower-sessions, so it lasts until sign-out), the header switches it, `/projects` lists
//! and creates projects. Every page, form and download then reads and changes that project
//! only; a session that chose nothing, or whose project is gone, manages `proj_default`.
//!
//! The middleware [`choose_project`] resolves the choice once per request. Pages find it in
//! the request's extensions ([`ProjectChoice`], read by `PageContext`); form handlers and
//! downloads through [`current_project`], which reads the same value from a task-local scope
//! around the handler, so the form helpers need no extra argument.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Form, Router};
use leptos::prelude::*;
use tower_sessions::Session;

use crate::auth::operators::OperatorSession;
use crate::db::projects::{Project, DEFAULT_PROJECT_ID};
use crate::domain::projects::NewProject;
use crate::error::AppError;
use crate::server::AppState;
use crate::ui::components::CsrfField;
use crate::ui::forms::{form_action, to, FORM_FIELD};

/// Where the session keeps the id of the project it manages.
const SESSION_KEY: &str = "project";

/// The form on `/projects` that creates one.
pub const NEW_PROJECT_FORM: &str = "project-new";

/// The project a request manages, and every project it could switch to.
#[derive(Debug, Clone)]
pub struct ProjectChoice {
    pub current: Arc<Project>,
    pub all: Arc<Vec<Project>>,
}

tokio::task_local! {
    static CURRENT: Arc<Project>;
}

pub fn router() -> Router<AppState> {
    Router::new().route("/projects/switch", post(switch)).route("/projects/create", post(create))
}

/// Resolves the signed-in operator's project for the request (requests without a session
/// pass untouched: they only reach the sign-in and setup pages).
pub async fn choose_project(
    State(state): State<AppState>,
    session: Session,
    mut request: Request,
    next: Next,
) -> Response {
    if request.extensions().get::<OperatorSession>().is_none() {
        return next.run(request).await;
    }
    let chosen = match session.get::<String>(SESSION_KEY).await {
        Ok(chosen) => chosen,
        Err(err) => {
            tracing::warn!(error = %err, "could not read the session's project; managing the default one");
            None
        }
    };
    let mut all = match state.engine.db().projects().await {
        Ok(all) => all,
        Err(err) => return AppError::from(err).into_response(),
    };
    // The default project first, then by name, as the switcher lists them.
    all.sort_by_cached_key(|p| (p.id != DEFAULT_PROJECT_ID, p.name.to_lowercase(), p.id.clone()));
    let Some(current) = chosen_or_default(&all, chosen.as_deref()).cloned() else {
        return AppError::Internal(anyhow::anyhow!("the default project is missing")).into_response();
    };
    let current = Arc::new(current);
    request.extensions_mut().insert(ProjectChoice { current: current.clone(), all: Arc::new(all) });
    CURRENT.scope(current, next.run(request)).await
}

/// The chosen project if it still exists, else the default one (else any, should the default
/// ever be gone).
fn chosen_or_default<'a>(all: &'a [Project], chosen: Option<&str>) -> Option<&'a Project> {
    let by_id = |id: &str| all.iter().find(|project| project.id == id);
    chosen.and_then(by_id).or_else(|| by_id(DEFAULT_PROJECT_ID)).or_else(|| all.first())
}

/// The project the current dashboard request manages. Only inside a request that passed
/// [`choose_project`]; elsewhere an internal error, never a silent default.
pub fn current_project() -> Result<Arc<Project>, AppError> {
    CURRENT
        .try_with(Arc::clone)
        .map_err(|_| AppError::Internal(anyhow::anyhow!("no project was chosen for this request")))
}

/// The project choice of the request being rendered, if it has a session.
pub fn request_choice() -> Option<ProjectChoice> {
    use_context::<Parts>().and_then(|parts| parts.extensions.get::<ProjectChoice>().cloned())
}

/// The page of the same section to land on after switching: list pages stay where they are;
/// a page about one record of the old project (a customer, an endpoint, a confirmation) goes
/// back to its list, and anything unknown to the overview, so `back` cannot lead elsewhere.
fn landing_page(back: &str) -> &'static str {
    let section = back.strip_prefix('/').unwrap_or_default().split(['/', '?', '#']).next().unwrap_or_default();
    match section {
        "customers" => "/customers",
        "meters" => "/meters",
        "limits" => "/limits",
        "events" => "/events",
        "webhooks" => "/webhooks",
        "exports" => "/exports",
        "api-keys" => "/api-keys",
        "access-tokens" => "/access-tokens",
        "projects" => "/projects",
        _ => "/",
    }
}

type Fields = HashMap<String, String>;

/// Remembers another project for the session, then shows the same section of it.
async fn switch(
    State(state): State<AppState>,
    Extension(operator): Extension<OperatorSession>,
    session: Session,
    Form(fields): Form<Fields>,
) -> Response {
    let back = landing_page(fields.get("back").map(String::as_str).unwrap_or_default());
    form_action(&operator, &fields, back, || async {
        let id = fields.get("project").map(|id| id.trim()).unwrap_or_default();
        let project = state.engine.db().project(id).await?.ok_or_else(|| AppError::not_found("project", id))?;
        remember(&session, &project).await?;
        to(back, format!("Now managing the project {}.", project.name))
    })
    .await
}

/// Creates a project (through `NewProject::parse`, as `limitry projects create` does) and
/// switches the session to it.
async fn create(
    State(state): State<AppState>,
    Extension(operator): Extension<OperatorSession>,
    session: Session,
    Form(fields): Form<Fields>,
) -> Response {
    let mut fields = fields;
    fields.entry(FORM_FIELD.to_string()).or_insert_with(|| NEW_PROJECT_FORM.to_string());
    form_action(&operator, &fields, "/projects", || async {
        let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
        let new = NewProject::parse(field("name"), field("timezone"))?;
        let now_ms = state.engine.now().timestamp_millis();
        let project = state.engine.db().create_project(&new, now_ms).await?;
        tracing::info!(project_id = %project.id, operator = %operator.email, "project created from the dashboard");
        remember(&session, &project).await?;
        to("/", format!("Project {} created. You are now managing it.", project.name))
    })
    .await
}

async fn remember(session: &Session, project: &Project) -> Result<(), AppError> {
    session.insert(SESSION_KEY, &project.id).await.map_err(|err| AppError::Internal(err.into()))
}

/// The header's project switcher: a plain form, so it works without JavaScript.
#[component]
pub fn ProjectSwitcher(csrf: String) -> impl IntoView {
    let choice = request_choice();
    let back = use_context::<Parts>().map(|parts| parts.uri.path().to_string()).unwrap_or_default();
    choice.map(|choice| {
        let options = choice
            .all
            .iter()
            .map(|project| {
                view! {
                    <option value=project.id.clone() selected=project.id == choice.current.id>{project.name.clone()}</option>
                }
            })
            .collect_view();
        view! {
            <form method="post" action="/projects/switch" class="project-switch">
                <CsrfField token=csrf/>
                <input type="hidden" name="back" value=back/>
                <label for="project-switch">"Project"</label>
                <select id="project-switch" name="project">{options}</select>
                <button type="submit">"Switch"</button>
            </form>
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(id: &str) -> Project {
        Project { id: id.to_string(), name: id.to_string(), timezone: chrono_tz::Tz::UTC }
    }

    #[test]
    fn a_chosen_project_that_is_gone_falls_back_to_the_default() {
        let all = [project(DEFAULT_PROJECT_ID), project("proj_staging")];
        assert_eq!(chosen_or_default(&all, Some("proj_staging")).unwrap().id, "proj_staging");
        assert_eq!(chosen_or_default(&all, Some("proj_gone")).unwrap().id, DEFAULT_PROJECT_ID);
        assert_eq!(chosen_or_default(&all, None).unwrap().id, DEFAULT_PROJECT_ID);
        assert_eq!(chosen_or_default(&[], None), None);
    }

    #[test]
    fn switching_lands_on_a_list_page_of_the_dashboard_and_nowhere_else() {
        assert_eq!(landing_page("/customers"), "/customers");
        assert_eq!(landing_page("/customers/cust_123"), "/customers");
        assert_eq!(landing_page("/webhooks/whk_1"), "/webhooks");
        assert_eq!(landing_page("/confirm/delete-limit/lmt_1"), "/");
        assert_eq!(landing_page("//evil.example/customers"), "/");
        assert_eq!(landing_page("https://evil.example/"), "/");
        assert_eq!(landing_page(""), "/");
    }
}
