//! `GET /v1/project`: the calling key's project, and a credentials check.

use axum::Json;

use crate::auth::keys::ApiProject;
use crate::db::projects::Project;
use crate::error::ErrorBody;

#[utoipa::path(get, path = "/v1/project", operation_id = "getProject", tag = "project", security(("bearer" = [])),
    responses((status = 200, body = Project), (status = 401, body = ErrorBody)))]
pub async fn get_project(ApiProject(project): ApiProject) -> Json<Project> {
    Json(project.as_ref().clone())
}
