//! Every change to what checks read — meters, limits, customers — goes through here, so the engine owns what each change invalidates: the copies the check path
//! holds are cleared once the change has committed (other instances on PostgreSQL hear of it
//! through the database, see `listener`). API handlers and dashboard forms call these; they
//! validate input, the engine decides what a change means for the hot path.

use super::Engine;
use crate::db::customers::CustomerFields;
use crate::db::projects::Project;
use crate::db::DbResult;
use crate::domain::audit::{Actor, AuditChange, AuditKind};
use crate::domain::customers::Customer;
use crate::domain::limits::Limit;
use crate::domain::meters::Meter;

/// Which customer a saved limit belongs to.
pub enum LimitOwner<'a> {
    /// As it was (a new limit: the project's default).
    Unchanged,
    /// The project's default for every customer.
    Project,
    /// One customer's own, by id or externalId; naming a new customer creates it, as
    /// recording does.
    Customer(&'a str),
}

impl Engine {
    /// A new meter: no limit counts it yet, so nothing held changes.
    pub async fn create_meter(&self, project: &Project, meter: &Meter, actor: &Actor) -> DbResult<()> {
        self.db.create_meter(&project.id, meter).await?;
        let summary = format!("Meter {} created: {} of {}", meter.name, meter.aggregation.as_str(), meter.field);
        self.log_change(&project.id, actor, AuditChange::new(AuditKind::Meter, "created", &meter.id, summary)).await;
        Ok(())
    }

    /// Changes what a meter counts; the counters of its limits are rebuilt.
    pub async fn update_meter(&self, project: &Project, meter: &Meter, actor: &Actor) -> DbResult<()> {
        {
            let _clears_copies = self.begin_write();
            self.db.update_meter(project, meter, self.now()).await?;
        }
        let summary = format!("Meter {} changed: {} of {}", meter.name, meter.aggregation.as_str(), meter.field);
        self.log_change(&project.id, actor, AuditChange::new(AuditKind::Meter, "changed", &meter.id, summary)).await;
        Ok(())
    }

    /// Deletes a meter no limit uses (refused otherwise), so nothing held changes.
    pub async fn delete_meter(&self, project: &Project, meter: &Meter, actor: &Actor) -> DbResult<()> {
        self.db.delete_meter(&project.id, &meter.id).await?;
        let summary = format!("Meter {} deleted", meter.name);
        self.log_change(&project.id, actor, AuditChange::new(AuditKind::Meter, "deleted", &meter.id, summary)).await;
        Ok(())
    }

    /// Creates or changes a limit; its counters for the current windows are rebuilt from
    /// recorded events in the same transaction.
    pub async fn save_limit(
        &self,
        project: &Project,
        mut limit: Limit,
        meter: &Meter,
        owner: LimitOwner<'_>,
        is_new: bool,
        actor: &Actor,
    ) -> DbResult<Limit> {
        let mut customer_name = None;
        {
            let _clears_copies = self.begin_write();
            limit.meter_id = meter.id.clone();
            match owner {
                LimitOwner::Unchanged => {}
                LimitOwner::Project => limit.customer_id = None,
                LimitOwner::Customer(reference) => {
                    let now_ms = self.now().timestamp_millis();
                    let customer = self.db.ensure_customer(&project.id, reference, now_ms).await?;
                    limit.customer_id = Some(customer.id);
                    customer_name = Some(customer.external_id);
                }
            }
            self.db.save_limit(project, &limit, meter, is_new, self.now()).await?;
        }
        let scope = match (&limit.customer_id, customer_name) {
            (None, _) => "every customer".to_string(),
            (Some(_), Some(name)) => format!("customer {name}"),
            (Some(id), None) => format!("customer {id}"),
        };
        let thresholds = match limit.alert_thresholds.as_slice() {
            [] => "no alerts".to_string(),
            list => format!("alerts at {} %", list.iter().map(u8::to_string).collect::<Vec<_>>().join(", ")),
        };
        let action = if is_new { "created" } else { "changed" };
        let summary = format!(
            "Limit {} {action}: {} of {} per {} for {scope}; {thresholds}; fail {}",
            limit.name,
            limit.limit_value,
            meter.name,
            limit.period.as_str(),
            limit.fail_mode.as_str()
        );
        self.log_change(&project.id, actor, AuditChange::new(AuditKind::Limit, action, &limit.id, summary)).await;
        Ok(limit)
    }

    pub async fn delete_limit(&self, project: &Project, limit: &Limit, actor: &Actor) -> DbResult<()> {
        {
            let _clears_copies = self.begin_write();
            self.db.delete_limit(&project.id, &limit.id).await?;
        }
        let summary = format!("Limit {} deleted", limit.name);
        self.log_change(&project.id, actor, AuditChange::new(AuditKind::Limit, "deleted", &limit.id, summary)).await;
        Ok(())
    }

    /// The check path may remember the externalId as naming nobody yet.
    pub async fn create_customer(
        &self,
        project: &Project,
        fields: &CustomerFields,
        actor: &Actor,
    ) -> DbResult<Customer> {
        let customer = {
            let _clears_copies = self.begin_write();
            self.db.create_customer(&project.id, fields, self.now()).await?
        };
        let summary = format!("Customer {} created", customer.external_id);
        let change = AuditChange::new(AuditKind::Customer, "created", &customer.id, summary);
        self.log_change(&project.id, actor, change).await;
        Ok(customer)
    }

    /// Changes a customer; when its timezone or billing anchor moves, its counters for the
    /// current windows are rebuilt.
    pub async fn update_customer(
        &self,
        project: &Project,
        before: &Customer,
        fields: &CustomerFields,
        actor: &Actor,
    ) -> DbResult<Customer> {
        let customer = {
            let _clears_copies = self.begin_write();
            self.db.update_customer(project, before, fields, self.now()).await?
        };
        let summary = format!("Customer {} changed", customer.external_id);
        let change = AuditChange::new(AuditKind::Customer, "changed", &customer.id, summary);
        self.log_change(&project.id, actor, change).await;
        Ok(customer)
    }

    /// Deletes a customer with its events and own limits.
    pub async fn delete_customer(&self, project: &Project, customer: &Customer, actor: &Actor) -> DbResult<()> {
        {
            let _clears_copies = self.begin_write();
            self.db.delete_customer(&project.id, &customer.id).await?;
        }
        let summary = format!("Customer {} deleted with its events and own limits", customer.external_id);
        let change = AuditChange::new(AuditKind::Customer, "deleted", &customer.id, summary);
        self.log_change(&project.id, actor, change).await;
        Ok(())
    }
}
