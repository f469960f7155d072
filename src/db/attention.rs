//! What the dashboard reads to tell an operator what needs them: every balance of a project,
//! the limit alerts that fired lately, and how each webhook endpoint's deliveries are going;
//! and the one write behind "retry all failed".

use chrono::{DateTime, Utc};

use super::{ms_to_time, with_store, Db, DbResult, Store};

const SELECT_RECENT_ALERTS: &str = "select a.limit_id, l.name, a.customer_id, c.external_id, a.threshold, a.fired_at \
     from alerts_fired a join limits l on l.id = a.limit_id join customers c on c.id = a.customer_id \
     where l.project_id = $1 and ($2 = '' or a.customer_id = $2) and ($3 = '' or a.limit_id = $3) \
     order by a.fired_at desc, a.threshold desc limit $4";
const SELECT_DELIVERY_COUNTS: &str = "select d.endpoint_id, d.status, \
     cast(sum(case when d.attempts > 0 then 1 else 0 end) as bigint), cast(count(*) as bigint) \
     from webhook_deliveries d join webhook_endpoints e on e.id = d.endpoint_id \
     where e.project_id = $1 group by d.endpoint_id, d.status";
const SELECT_ATTEMPT_COUNTS: &str = "select d.endpoint_id, cast(count(*) as bigint), \
     cast(sum(case when a.status_code between 200 and 299 then 1 else 0 end) as bigint) \
     from webhook_attempts a join webhook_deliveries d on d.id = a.delivery_id \
     join webhook_endpoints e on e.id = d.endpoint_id \
     where e.project_id = $1 and a.attempted_at >= $2 group by d.endpoint_id";
// Failed deliveries (retries used up) and pending ones that have failed at least once are
// due now, keeping their `webhook-id`; deliveries never tried yet keep their turn.
const RETRY_FAILED_DELIVERIES: &str = "update webhook_deliveries set status = 'pending', next_attempt_at = $2 \
     where endpoint_id = $1 and (status = 'failed' or (status = 'pending' and attempts > 0))";

/// A limit alert that fired: the customer crossed `threshold` % of the limit.
#[derive(Debug, Clone)]
pub struct FiredAlert {
    pub limit_id: String,
    pub limit_name: String,
    pub customer_id: String,
    pub customer_external_id: String,
    pub threshold: i64,
    pub fired_at: DateTime<Utc>,
}

/// How an endpoint's deliveries stand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryHealth {
    pub delivered: i64,
    /// Pending deliveries that have failed at least once and wait for their next retry.
    pub retrying: i64,
    /// Pending deliveries not tried yet.
    pub queued: i64,
    /// Deliveries whose retries are used up.
    pub failed: i64,
    /// Attempts in the measured period, and those answered with a 2xx.
    pub attempts: i64,
    pub successful_attempts: i64,
}

impl DeliveryHealth {
    /// The share of attempts answered with a 2xx, in whole percent; `None` before any attempt.
    pub fn success_percent(&self) -> Option<i64> {
        (self.attempts > 0).then(|| self.successful_attempts * 100 / self.attempts)
    }
}

/// Which deliveries of an endpoint's log to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryFilter {
    All,
    Delivered,
    /// Failed for good, or pending after a failed attempt.
    Failing,
    /// Not tried yet.
    Queued,
}

impl DeliveryFilter {
    pub const ALL: [DeliveryFilter; 4] =
        [DeliveryFilter::All, DeliveryFilter::Failing, DeliveryFilter::Delivered, DeliveryFilter::Queued];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryFilter::All => "all",
            DeliveryFilter::Delivered => "delivered",
            DeliveryFilter::Failing => "failing",
            DeliveryFilter::Queued => "queued",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryFilter> {
        DeliveryFilter::ALL.into_iter().find(|f| f.as_str() == text)
    }

    /// The SQL condition on `d` (webhook_deliveries) that selects these deliveries.
    pub(super) fn condition(self) -> &'static str {
        match self {
            DeliveryFilter::All => "1 = 1",
            DeliveryFilter::Delivered => "d.status = 'delivered'",
            DeliveryFilter::Failing => "(d.status = 'failed' or (d.status = 'pending' and d.attempts > 0))",
            DeliveryFilter::Queued => "(d.status = 'pending' and d.attempts = 0)",
        }
    }
}

impl Db {
    /// The latest limit alerts of a project, newest first, optionally of one customer or limit.
    pub async fn recent_alerts(
        &self,
        project_id: &str,
        customer_id: Option<&str>,
        limit_id: Option<&str>,
        count: i64,
    ) -> DbResult<Vec<FiredAlert>> {
        type Row = (String, String, String, String, i64, i64);
        let rows: Vec<Row> = with_store!(self, s => sqlx::query_as(SELECT_RECENT_ALERTS)
            .bind(project_id)
            .bind(customer_id.unwrap_or(""))
            .bind(limit_id.unwrap_or(""))
            .bind(count)
            .fetch_all(s.pool())
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(limit_id, limit_name, customer_id, customer_external_id, threshold, fired_at)| FiredAlert {
                limit_id,
                limit_name,
                customer_id,
                customer_external_id,
                threshold,
                fired_at: ms_to_time(fired_at),
            })
            .collect())
    }

    /// How the deliveries of each endpoint of a project stand, with attempts since `since`.
    pub async fn delivery_health(
        &self,
        project_id: &str,
        since: DateTime<Utc>,
    ) -> DbResult<std::collections::HashMap<String, DeliveryHealth>> {
        let mut health: std::collections::HashMap<String, DeliveryHealth> = Default::default();
        let counts: Vec<(String, String, i64, i64)> = with_store!(self, s => sqlx::query_as(SELECT_DELIVERY_COUNTS)
            .bind(project_id)
            .fetch_all(s.pool())
            .await)?;
        for (endpoint_id, status, tried, all) in counts {
            let entry = health.entry(endpoint_id).or_default();
            match status.as_str() {
                "delivered" => entry.delivered += all,
                "failed" => entry.failed += all,
                _ => {
                    entry.retrying += tried;
                    entry.queued += all - tried;
                }
            }
        }
        let attempts: Vec<(String, i64, i64)> = with_store!(self, s => sqlx::query_as(SELECT_ATTEMPT_COUNTS)
            .bind(project_id)
            .bind(since.timestamp_millis())
            .fetch_all(s.pool())
            .await)?;
        for (endpoint_id, all, successful) in attempts {
            let entry = health.entry(endpoint_id).or_default();
            entry.attempts = all;
            entry.successful_attempts = successful;
        }
        Ok(health)
    }

    /// Makes every failed delivery of an endpoint due now (same `webhook-id`); returns how many.
    pub async fn retry_failed_deliveries(&self, endpoint_id: &str, now: DateTime<Utc>) -> DbResult<u64> {
        Ok(with_store!(self, s => sqlx::query(RETRY_FAILED_DELIVERIES)
            .bind(endpoint_id)
            .bind(now.timestamp_millis())
            .execute(s.pool())
            .await
            .map(|r| r.rows_affected()))?)
    }
}
