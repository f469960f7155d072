//! Webhooks: endpoints, the durable outbox (an event and one delivery per subscribed endpoint,
//! written in the transaction of the change that caused it), delivery attempts, and the
//! records that make alerts fire once.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Sqlite};

use super::attention::DeliveryFilter;
use super::{ms_to_time, with_store, Db, DbError, DbResult, PgStore, SqliteStore, Store, WriteTx};
use crate::domain::ids::new_id;
use crate::domain::webhooks::{excerpt, EventType, SummaryFrequency, WebhookEndpoint};

macro_rules! endpoint_columns {
    () => {
        "id, url, description, event_types, enabled, summary_frequency, failing_since, disabled_reason, created_at, \
         updated_at, previous_secret_expires_at"
    };
}

const SELECT_ENDPOINT: &str =
    concat!("select ", endpoint_columns!(), " from webhook_endpoints where project_id = $1 and id = $2");
const SELECT_ENDPOINTS: &str =
    concat!("select ", endpoint_columns!(), " from webhook_endpoints where project_id = $1 order by id");
const SELECT_ENABLED_ENDPOINTS: &str = concat!(
    "select ",
    endpoint_columns!(),
    " from webhook_endpoints where project_id = $1 and enabled = 1 order by id"
);
const SELECT_SUMMARY_ENDPOINTS: &str = concat!(
    "select ",
    endpoint_columns!(),
    ", project_id from webhook_endpoints where enabled = 1 and summary_frequency is not null order by id"
);
const INSERT_ENDPOINT: &str = "insert into webhook_endpoints (id, project_id, url, description, event_types, enabled, \
     secret, summary_frequency, created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)";
const UPDATE_ENDPOINT: &str =
    "update webhook_endpoints set url = $3, description = $4, event_types = $5, enabled = $6, \
     summary_frequency = $7, failing_since = $8, disabled_reason = $9, updated_at = $10 \
     where project_id = $1 and id = $2";
// The secret being replaced keeps signing until `$5` (null: it stops at once). Assignments
// read the row as it was, so `previous_secret = secret` keeps the old one.
const UPDATE_SECRET: &str = "update webhook_endpoints set previous_secret = case when $5 is null then null else \
     secret end, previous_secret_expires_at = $5, secret = $3, updated_at = $4 where project_id = $1 and id = $2";
const DELETE_ENDPOINT_ATTEMPTS: &str = "delete from webhook_attempts where delivery_id in \
     (select id from webhook_deliveries where endpoint_id = $1)";
const DELETE_ENDPOINT_DELIVERIES: &str = "delete from webhook_deliveries where endpoint_id = $1";
const DELETE_ENDPOINT_SUMMARIES: &str = "delete from usage_summaries_sent where endpoint_id = $1";
const DELETE_ENDPOINT: &str = "delete from webhook_endpoints where id = $1";
const INSERT_EVENT: &str =
    "insert into webhook_events (id, project_id, event_type, payload, created_at) values ($1, $2, $3, $4, $5)";
const INSERT_DELIVERY: &str = "insert into webhook_deliveries (id, event_id, endpoint_id, status, attempts, \
     next_attempt_at, created_at) values ($1, $2, $3, 'pending', 0, $4, $4)";
const SELECT_DUE_DELIVERIES: &str = "select d.id, d.next_attempt_at from webhook_deliveries d \
     join webhook_endpoints e on e.id = d.endpoint_id \
     where d.status = 'pending' and d.next_attempt_at <= $1 and e.enabled = 1 order by d.next_attempt_at limit $2";
const COUNT_PENDING_DELIVERIES: &str = "select count(*) from webhook_deliveries where status = 'pending'";
// A conditional update is the claim: whoever moves `next_attempt_at` first owns the attempt
// until the lease ends (a crash mid-attempt only delays it).
const CLAIM_DELIVERY: &str = "update webhook_deliveries set next_attempt_at = $3 \
     where id = $1 and next_attempt_at = $2 and status = 'pending'";
const SELECT_DELIVERY_JOB: &str = "select d.id, d.attempts, ev.id, ev.payload, e.id, e.url, e.secret, \
     e.previous_secret, e.previous_secret_expires_at \
     from webhook_deliveries d join webhook_events ev on ev.id = d.event_id \
     join webhook_endpoints e on e.id = d.endpoint_id where d.id = $1";
const RECORD_ATTEMPT: &str = "insert into webhook_attempts (id, delivery_id, attempted_at, status_code, error, \
     duration_ms, response_body) values ($1, $2, $3, $4, $5, $6, $7)";
const SETTLE_DELIVERY: &str = "update webhook_deliveries set status = $2, attempts = attempts + 1, \
     next_attempt_at = $3, last_attempt_at = $4, last_status_code = $5 where id = $1";
const ENDPOINT_SUCCEEDED: &str = "update webhook_endpoints set failing_since = null where id = $1";
const ENDPOINT_FAILED: &str = "update webhook_endpoints set failing_since = coalesce(failing_since, $2) where id = $1";
const DISABLE_FAILING_ENDPOINT: &str = "update webhook_endpoints set enabled = 0, disabled_reason = $3 \
     where id = $1 and enabled = 1 and failing_since is not null and failing_since <= $2";
const SELECT_DELIVERIES_PAGE: &str = "select d.id, d.event_id, ev.event_type, ev.payload, d.status, d.attempts, \
     d.next_attempt_at, d.last_attempt_at, d.last_status_code, d.created_at \
     from webhook_deliveries d join webhook_events ev on ev.id = d.event_id \
     where d.endpoint_id = $1 and ($2 = '' or d.id < $2) and {filter} order by d.id desc limit $3";
const SELECT_ATTEMPTS: &str = "select id, attempted_at, status_code, error, duration_ms, response_body \
     from webhook_attempts where delivery_id = $1 order by id";
const REDELIVER: &str = "update webhook_deliveries set status = 'pending', next_attempt_at = $3 \
     where id = $1 and endpoint_id = $2";
const RECORD_ALERT: &str = "insert into alerts_fired (limit_id, customer_id, window_start, threshold, fired_at) \
     values ($1, $2, $3, $4, $5) on conflict (limit_id, customer_id, window_start, threshold) do nothing";
const SELECT_SUMMARY_SENT: &str =
    "select count(*) from usage_summaries_sent where endpoint_id = $1 and period_start = $2";
const RECORD_SUMMARY_SENT: &str = "insert into usage_summaries_sent (endpoint_id, period_start) values ($1, $2) \
     on conflict (endpoint_id, period_start) do nothing";

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: String,
    url: String,
    description: Option<String>,
    event_types: String,
    enabled: i64,
    summary_frequency: Option<String>,
    failing_since: Option<i64>,
    disabled_reason: Option<String>,
    created_at: i64,
    updated_at: i64,
    previous_secret_expires_at: Option<i64>,
}

impl TryFrom<EndpointRow> for WebhookEndpoint {
    type Error = DbError;
    fn try_from(row: EndpointRow) -> DbResult<WebhookEndpoint> {
        let names: Vec<String> = serde_json::from_str(&row.event_types)?;
        Ok(WebhookEndpoint {
            event_types: names.iter().filter_map(|n| EventType::parse(n)).collect(),
            summary_frequency: row.summary_frequency.as_deref().and_then(SummaryFrequency::parse),
            id: row.id,
            url: row.url,
            description: row.description,
            enabled: row.enabled != 0,
            failing_since: row.failing_since.map(ms_to_time),
            disabled_reason: row.disabled_reason,
            created_at: ms_to_time(row.created_at),
            updated_at: ms_to_time(row.updated_at),
            previous_secret_expires_at: row.previous_secret_expires_at.map(ms_to_time),
        })
    }
}

fn event_types_json(endpoint: &WebhookEndpoint) -> String {
    serde_json::to_string(&endpoint.event_types.iter().map(|t| t.as_str()).collect::<Vec<_>>()).unwrap_or_default()
}

/// One delivery as the log shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: String,
    /// The `webhook-id` header and the body's `id`: the same on every attempt.
    pub event_id: String,
    pub event_type: String,
    /// The exact body sent.
    pub payload: String,
    /// `pending`, `delivered` or `failed` (retries used up).
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub attempt_log: Vec<Attempt>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub id: String,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
    /// The first 256 bytes of the receiver's answer, for diagnosis; never the whole answer.
    pub response_excerpt: Option<String>,
}

/// What the worker needs to send one delivery.
#[derive(Debug, Clone)]
pub struct DeliveryJob {
    pub delivery_id: String,
    pub attempts: i64,
    pub event_id: String,
    pub payload: String,
    pub endpoint_id: String,
    pub url: String,
    pub secret: String,
    /// The secret a rotation replaced, with the end of its grace period: until then it signs
    /// deliveries beside `secret`.
    pub previous_secret: Option<(String, DateTime<Utc>)>,
}

impl DeliveryJob {
    /// The secrets that sign a delivery sent at `now`: the current one, and the previous one
    /// while its grace period lasts.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let Some((previous, until)) = &self.previous_secret {
            if now < *until {
                secrets.push(previous);
            }
        }
        secrets
    }
}

/// How an attempt ended.
pub struct AttemptResult {
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub response_body: Option<String>,
}

/// What happens to the delivery after an attempt.
pub enum NextStep {
    Delivered,
    RetryAt(DateTime<Utc>),
    GiveUp,
}

macro_rules! webhook_transaction_helpers {
    ($store:ty, $database:ty) => {
        impl $store {
            /// Writes an event and a pending delivery for every enabled endpoint of the project
            /// that subscribes to its type (or only `only_endpoint`). Returns the event id, or
            /// `None` when no endpoint wants it.
            pub(crate) async fn enqueue_tx(
                &self,
                tx: &mut WriteTx<$database>,
                project_id: &str,
                event_type: EventType,
                data: serde_json::Value,
                only_endpoint: Option<&str>,
                now: DateTime<Utc>,
            ) -> DbResult<Option<String>> {
                let endpoints = sqlx::query_as::<_, EndpointRow>(SELECT_ENABLED_ENDPOINTS)
                    .bind(project_id)
                    .fetch_all(&mut **tx)
                    .await?
                    .into_iter()
                    .map(WebhookEndpoint::try_from)
                    .collect::<DbResult<Vec<_>>>()?;
                let targets: Vec<_> = endpoints
                    .iter()
                    .filter(|e| only_endpoint.is_none_or(|only| only == e.id) && e.subscribes_to(event_type))
                    .collect();
                if targets.is_empty() {
                    return Ok(None);
                }
                let now_ms = now.timestamp_millis();
                let event_id = new_id("evt", now_ms);
                let created_at = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                // The Standard Webhooks envelope, plus Limitry's documented `event` and
                // `timestamp`, so receivers written for either read it unchanged.
                let payload = serde_json::json!({
                    "id": event_id,
                    "type": event_type.as_str(),
                    "createdAt": created_at,
                    "event": event_type.as_str(),
                    "timestamp": created_at,
                    "data": data,
                })
                .to_string();
                sqlx::query(INSERT_EVENT)
                    .bind(&event_id)
                    .bind(project_id)
                    .bind(event_type.as_str())
                    .bind(&payload)
                    .bind(now_ms)
                    .execute(&mut **tx)
                    .await?;
                for endpoint in targets {
                    sqlx::query(INSERT_DELIVERY)
                        .bind(new_id("dlv", now_ms))
                        .bind(&event_id)
                        .bind(&endpoint.id)
                        .bind(now_ms)
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(Some(event_id))
            }

            /// Records that an alert fired; false if it already had in this window.
            pub(crate) async fn record_alert_tx(
                &self,
                tx: &mut WriteTx<$database>,
                limit_id: &str,
                customer_id: &str,
                window_start: i64,
                threshold: u8,
                now_ms: i64,
            ) -> DbResult<bool> {
                let inserted = sqlx::query(RECORD_ALERT)
                    .bind(limit_id)
                    .bind(customer_id)
                    .bind(window_start)
                    .bind(i64::from(threshold))
                    .bind(now_ms)
                    .execute(&mut **tx)
                    .await?;
                Ok(inserted.rows_affected() == 1)
            }
        }
    };
}
webhook_transaction_helpers!(SqliteStore, Sqlite);
webhook_transaction_helpers!(PgStore, Postgres);

impl Db {
    pub async fn create_endpoint(&self, project_id: &str, endpoint: &WebhookEndpoint, secret: &str) -> DbResult<()> {
        with_store!(self, s => sqlx::query(INSERT_ENDPOINT)
            .bind(&endpoint.id)
            .bind(project_id)
            .bind(&endpoint.url)
            .bind(&endpoint.description)
            .bind(event_types_json(endpoint))
            .bind(i64::from(endpoint.enabled))
            .bind(secret)
            .bind(endpoint.summary_frequency.map(SummaryFrequency::as_str))
            .bind(endpoint.created_at.timestamp_millis())
            .execute(s.pool())
            .await
            .map(|_| ()))?;
        Ok(())
    }

    pub async fn endpoint(&self, project_id: &str, id: &str) -> DbResult<Option<WebhookEndpoint>> {
        let row = with_store!(self, s => sqlx::query_as::<_, EndpointRow>(SELECT_ENDPOINT)
            .bind(project_id)
            .bind(id)
            .fetch_optional(s.pool())
            .await)?;
        row.map(WebhookEndpoint::try_from).transpose()
    }

    pub async fn endpoints(&self, project_id: &str) -> DbResult<Vec<WebhookEndpoint>> {
        let rows = with_store!(self, s => sqlx::query_as::<_, EndpointRow>(SELECT_ENDPOINTS)
            .bind(project_id)
            .fetch_all(s.pool())
            .await)?;
        rows.into_iter().map(WebhookEndpoint::try_from).collect()
    }

    pub async fn update_endpoint(&self, project_id: &str, endpoint: &WebhookEndpoint) -> DbResult<()> {
        with_store!(self, s => sqlx::query(UPDATE_ENDPOINT)
            .bind(project_id)
            .bind(&endpoint.id)
            .bind(&endpoint.url)
            .bind(&endpoint.description)
            .bind(event_types_json(endpoint))
            .bind(i64::from(endpoint.enabled))
            .bind(endpoint.summary_frequency.map(SummaryFrequency::as_str))
            .bind(endpoint.failing_since.map(|t| t.timestamp_millis()))
            .bind(&endpoint.disabled_reason)
            .bind(endpoint.updated_at.timestamp_millis())
            .execute(s.pool())
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Replaces an endpoint's signing secret; the one replaced keeps signing until
    /// `previous_until` (`None`: not at all). The audit entry is written in the same transaction.
    pub async fn rotate_endpoint_secret(
        &self,
        project_id: &str,
        id: &str,
        secret: &str,
        previous_until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        audit: (&str, &crate::domain::audit::AuditChange),
    ) -> DbResult<()> {
        let (actor, change) = audit;
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            let updated = sqlx::query(UPDATE_SECRET)
                .bind(project_id)
                .bind(id)
                .bind(secret)
                .bind(now.timestamp_millis())
                .bind(previous_until.map(|t| t.timestamp_millis()))
                .execute(&mut *tx)
                .await?;
            if updated.rows_affected() == 0 {
                return Err(DbError::NotFound { resource: "webhook", id: id.to_string() });
            }
            s.insert_audit_tx(&mut tx, project_id, actor, change, now).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Deletes an endpoint with its delivery log.
    pub async fn delete_endpoint(&self, id: &str) -> DbResult<()> {
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            for sql in [DELETE_ENDPOINT_ATTEMPTS, DELETE_ENDPOINT_DELIVERIES, DELETE_ENDPOINT_SUMMARIES, DELETE_ENDPOINT] {
                sqlx::query(sql).bind(id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Queues an event in its own transaction (test events, usage summaries).
    pub async fn enqueue(
        &self,
        project_id: &str,
        event_type: EventType,
        data: serde_json::Value,
        only_endpoint: Option<&str>,
        now: DateTime<Utc>,
    ) -> DbResult<Option<String>> {
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            let id = s.enqueue_tx(&mut tx, project_id, event_type, data, only_endpoint, now).await?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// Queues one endpoint's usage summary for a closed period, once.
    pub async fn enqueue_summary_once(
        &self,
        project_id: &str,
        endpoint_id: &str,
        period_start_ms: i64,
        data: serde_json::Value,
        now: DateTime<Utc>,
    ) -> DbResult<bool> {
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            let first = sqlx::query(RECORD_SUMMARY_SENT).bind(endpoint_id).bind(period_start_ms).execute(&mut *tx).await?;
            if first.rows_affected() == 1 {
                s.enqueue_tx(&mut tx, project_id, EventType::UsageSummary, data, Some(endpoint_id), now).await?;
            }
            tx.commit().await?;
            Ok(first.rows_affected() == 1)
        })
    }

    pub async fn summary_sent(&self, endpoint_id: &str, period_start_ms: i64) -> DbResult<bool> {
        let count: i64 = with_store!(self, s => sqlx::query_scalar(SELECT_SUMMARY_SENT)
            .bind(endpoint_id)
            .bind(period_start_ms)
            .fetch_one(s.pool())
            .await)?;
        Ok(count > 0)
    }

    /// Enabled endpoints with a usage summary subscription, with their project id.
    pub async fn summary_endpoints(&self) -> DbResult<Vec<(String, WebhookEndpoint)>> {
        let rows = with_store!(self, s => sqlx::query_as::<_, EndpointRowWithProject>(SELECT_SUMMARY_ENDPOINTS)
            .fetch_all(s.pool())
            .await)?;
        rows.into_iter().map(|r| Ok((r.project_id.clone(), WebhookEndpoint::try_from(r.endpoint)?))).collect()
    }

    /// Deliveries whose time has come, oldest first.
    pub async fn due_deliveries(&self, now: DateTime<Utc>, limit: i64) -> DbResult<Vec<(String, i64)>> {
        Ok(with_store!(self, s => sqlx::query_as(SELECT_DUE_DELIVERIES)
            .bind(now.timestamp_millis())
            .bind(limit)
            .fetch_all(s.pool())
            .await)?)
    }

    /// Deliveries waiting for their first attempt or a retry, across projects.
    pub async fn pending_deliveries(&self) -> DbResult<i64> {
        Ok(with_store!(self, s => sqlx::query_scalar(COUNT_PENDING_DELIVERIES).fetch_one(s.pool()).await)?)
    }

    /// Takes a due delivery for one attempt; false if another worker took it first.
    pub async fn claim_delivery(
        &self,
        id: &str,
        seen_next_attempt_at: i64,
        lease_until: DateTime<Utc>,
    ) -> DbResult<bool> {
        let claimed = with_store!(self, s => sqlx::query(CLAIM_DELIVERY)
            .bind(id)
            .bind(seen_next_attempt_at)
            .bind(lease_until.timestamp_millis())
            .execute(s.pool())
            .await
            .map(|r| r.rows_affected()))?;
        Ok(claimed == 1)
    }

    pub async fn delivery_job(&self, id: &str) -> DbResult<Option<DeliveryJob>> {
        type Row = (String, i64, String, String, String, String, String, Option<String>, Option<i64>);
        let row: Option<Row> =
            with_store!(self, s => sqlx::query_as(SELECT_DELIVERY_JOB).bind(id).fetch_optional(s.pool()).await)?;
        Ok(row.map(|(delivery_id, attempts, event_id, payload, endpoint_id, url, secret, previous, until)| {
            DeliveryJob {
                delivery_id,
                attempts,
                event_id,
                payload,
                endpoint_id,
                url,
                secret,
                previous_secret: previous.zip(until.map(ms_to_time)),
            }
        }))
    }

    /// Logs an attempt, moves the delivery on, and tracks the endpoint's health: an endpoint
    /// failing since before `disable_before` is disabled.
    pub async fn record_attempt(
        &self,
        job: &DeliveryJob,
        result: &AttemptResult,
        next: &NextStep,
        now: DateTime<Utc>,
        disable_before: DateTime<Utc>,
    ) -> DbResult<()> {
        let now_ms = now.timestamp_millis();
        let (status, next_at) = match next {
            NextStep::Delivered => ("delivered", now_ms),
            NextStep::RetryAt(at) => ("pending", at.timestamp_millis()),
            NextStep::GiveUp => ("failed", now_ms),
        };
        let reason = format!("disabled after failing since before {}", disable_before.to_rfc3339());
        with_store!(self, s => {
            let mut tx = s.begin_write().await?;
            sqlx::query(RECORD_ATTEMPT)
                .bind(new_id("att", now_ms))
                .bind(&job.delivery_id)
                .bind(now_ms)
                .bind(result.status_code)
                .bind(&result.error)
                .bind(result.duration_ms)
                .bind(&result.response_body)
                .execute(&mut *tx)
                .await?;
            sqlx::query(SETTLE_DELIVERY)
                .bind(&job.delivery_id)
                .bind(status)
                .bind(next_at)
                .bind(now_ms)
                .bind(result.status_code)
                .execute(&mut *tx)
                .await?;
            if matches!(next, NextStep::Delivered) {
                sqlx::query(ENDPOINT_SUCCEEDED).bind(&job.endpoint_id).execute(&mut *tx).await?;
            } else {
                sqlx::query(ENDPOINT_FAILED).bind(&job.endpoint_id).bind(now_ms).execute(&mut *tx).await?;
                sqlx::query(DISABLE_FAILING_ENDPOINT)
                    .bind(&job.endpoint_id)
                    .bind(disable_before.timestamp_millis())
                    .bind(&reason)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// An endpoint's deliveries, newest first, each with its attempts.
    pub async fn deliveries_page(&self, endpoint_id: &str, after: Option<&str>, limit: i64) -> DbResult<Vec<Delivery>> {
        self.filtered_deliveries_page(endpoint_id, DeliveryFilter::All, after, limit).await
    }

    /// `deliveries_page` of the deliveries `filter` selects.
    pub async fn filtered_deliveries_page(
        &self,
        endpoint_id: &str,
        filter: DeliveryFilter,
        after: Option<&str>,
        limit: i64,
    ) -> DbResult<Vec<Delivery>> {
        let select = SELECT_DELIVERIES_PAGE.replace("{filter}", filter.condition());
        type Row = (String, String, String, String, String, i64, i64, Option<i64>, Option<i64>, i64);
        type AttemptRow = (String, i64, Option<i64>, Option<String>, i64, Option<String>);
        with_store!(self, s => {
            let rows: Vec<Row> = sqlx::query_as(&select)
                .bind(endpoint_id)
                .bind(after.unwrap_or(""))
                .bind(limit)
                .fetch_all(s.pool())
                .await?;
            let mut deliveries = Vec::with_capacity(rows.len());
            for (id, event_id, event_type, payload, status, attempts, next_at, last_at, last_code, created_at) in rows {
                let attempt_rows: Vec<AttemptRow> = sqlx::query_as(SELECT_ATTEMPTS).bind(&id).fetch_all(s.pool()).await?;
                deliveries.push(Delivery {
                    next_attempt_at: (status == "pending").then(|| ms_to_time(next_at)),
                    id,
                    event_id,
                    event_type,
                    payload,
                    status,
                    attempts,
                    last_attempt_at: last_at.map(ms_to_time),
                    last_status_code: last_code,
                    created_at: ms_to_time(created_at),
                    attempt_log: attempt_rows
                        .into_iter()
                        .map(|(id, at, code, error, duration_ms, body)| Attempt {
                            id,
                            attempted_at: ms_to_time(at),
                            status_code: code,
                            error,
                            duration_ms,
                            // Rows written before excerpts were capped may hold more.
                            response_excerpt: body.map(|b| excerpt(b.as_bytes())),
                        })
                        .collect(),
                });
            }
            Ok(deliveries)
        })
    }

    /// Sends a delivery again now, with the same event id.
    pub async fn redeliver(&self, endpoint_id: &str, delivery_id: &str, now: DateTime<Utc>) -> DbResult<()> {
        let updated = with_store!(self, s => sqlx::query(REDELIVER)
            .bind(delivery_id)
            .bind(endpoint_id)
            .bind(now.timestamp_millis())
            .execute(s.pool())
            .await
            .map(|r| r.rows_affected()))?;
        if updated == 0 {
            return Err(DbError::NotFound { resource: "delivery", id: delivery_id.to_string() });
        }
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct EndpointRowWithProject {
    #[sqlx(flatten)]
    endpoint: EndpointRow,
    project_id: String,
}
