//! Every change to what checks read — meters, limits, customers — goes through here, so the engine owns what each change invalidates: the copies the check path
//! holds are cleared once the change has committed (other instances on PostgreSQL hear of it
//! through the database, see `listener`). API handlers and dashboard forms call these; they
//! validate input, the engine decides what a change means for the hot path.

use super::Engine;
use crate::db::customers::CustomerFields;
use crate::db::projects::Project;
use crate::db::DbResult;
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
    pub async fn create_meter(&self, project: &Project, meter: &Meter) -> DbResult<()> {
        self.db.create_meter(&project.id, meter).await
    }

    /// Changes what a meter counts; the counters of its limits are rebuilt.
    pub async fn update_meter(&self, project: &Project, meter: &Meter) -> DbResult<()> {
        let _clears_copies = self.begin_write();
        self.db.update_meter(project, meter, self.now()).await
    }

    /// Deletes a meter no limit uses (refused otherwise), so nothing held changes.
    pub async fn delete_meter(&self, project: &Project, id: &str) -> DbResult<()> {
        self.db.delete_meter(&project.id, id).await
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
    ) -> DbResult<Limit> {
        let _clears_copies = self.begin_write();
        limit.meter_id = meter.id.clone();
        match owner {
            LimitOwner::Unchanged => {}
            LimitOwner::Project => limit.customer_id = None,
            LimitOwner::Customer(reference) => {
                let now_ms = self.now().timestamp_millis();
                limit.customer_id = Some(self.db.ensure_customer(&project.id, reference, now_ms).await?.id);
            }
        }
        self.db.save_limit(project, &limit, meter, is_new, self.now()).await?;
        Ok(limit)
    }

    pub async fn delete_limit(&self, project: &Project, id: &str) -> DbResult<()> {
        let _clears_copies = self.begin_write();
        self.db.delete_limit(&project.id, id).await
    }

    /// The check path may remember the externalId as naming nobody yet.
    pub async fn create_customer(&self, project: &Project, fields: &CustomerFields) -> DbResult<Customer> {
        let _clears_copies = self.begin_write();
        self.db.create_customer(&project.id, fields, self.now()).await
    }

    /// Changes a customer; when its timezone or billing anchor moves, its counters for the
    /// current windows are rebuilt.
    pub async fn update_customer(
        &self,
        project: &Project,
        before: &Customer,
        fields: &CustomerFields,
    ) -> DbResult<Customer> {
        let _clears_copies = self.begin_write();
        self.db.update_customer(project, before, fields, self.now()).await
    }

    /// Deletes a customer with its events and own limits.
    pub async fn delete_customer(&self, project: &Project, customer: &Customer) -> DbResult<()> {
        let _clears_copies = self.begin_write();
        self.db.delete_customer(&project.id, &customer.id).await
    }
}
