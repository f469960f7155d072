//! Where each customer stands against its limits and balances, as the overview and the
//! customers list show it: over a limit, near one (at the limit's first alert threshold), or
//! within; balances below their low threshold. Usage comes from the engine's check, the same
//! answer `POST /v1/limits/check` gives.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use leptos::prelude::*;

use crate::db::projects::Project;
use crate::domain::balances::Balance;
use crate::domain::customers::Customer;
use crate::domain::limits::{Limit, LimitStatus};
use crate::domain::meters::Meter;
use crate::engine::{CheckQuery, Engine};
use crate::ui::format::{
    grouped, last_period_phrase, limit_standing, meter_unit, percent_of, period_phrase, quantity, reset_phrase,
    rolling_reset_phrase, with_unit,
};

/// Customers whose standing a page computes at most; beyond it, lists say so.
pub const MAX_SCANNED_CUSTOMERS: i64 = 10_000;

/// Usage at which a limit counts as near when it has no alert threshold below 100 %.
const DEFAULT_NEAR_PERCENT: i64 = 80;

/// A limit's state for one customer, from worst to best.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    Over,
    Near,
    Within,
}

impl Standing {
    /// The words that carry the state (colour only repeats them).
    pub fn label(self) -> &'static str {
        match self {
            Standing::Over => "Over limit",
            Standing::Near => "Near limit",
            Standing::Within => "Within limits",
        }
    }

    pub fn class(self) -> &'static str {
        match self {
            Standing::Over => "over",
            Standing::Near => "near",
            Standing::Within => "within",
        }
    }
}

/// One limit as it stands for a customer.
#[derive(Debug, Clone)]
pub struct LimitView {
    pub status: LimitStatus,
    pub unit: String,
    pub percent: i64,
    /// The usage percentage from which the limit counts as near.
    pub near_percent: i64,
    pub standing: Standing,
    /// Whether the limit counts a sliding window rather than calendar ones.
    pub rolling: bool,
}

impl LimitView {
    pub fn new(status: LimitStatus, limit: Option<&Limit>, meter: Option<&Meter>) -> LimitView {
        let percent = percent_of(status.used, status.limit);
        let near_percent = limit
            .and_then(|l| l.alert_thresholds.iter().copied().filter(|t| *t < 100).min())
            .map_or(DEFAULT_NEAR_PERCENT, i64::from);
        let standing = if status.exceeded {
            Standing::Over
        } else if percent >= near_percent {
            Standing::Near
        } else {
            Standing::Within
        };
        let rolling = limit.is_some_and(|l| l.rolling_window().is_some());
        LimitView { unit: meter.map(meter_unit).unwrap_or_default(), percent, near_percent, standing, rolling, status }
    }

    /// "458,377 of 60,000 tokens per day", or for a rolling limit "… in the last 24 hours".
    pub fn usage_text(&self) -> String {
        let period = self.status.period;
        format!(
            "{} of {} {}",
            quantity(self.status.used),
            with_unit(self.status.limit, &self.unit),
            if self.rolling { last_period_phrase(period) } else { period_phrase(period) }
        )
    }

    /// When the limit resets, or for a rolling limit when usage leaves its window.
    pub fn reset_text(&self, zone: Tz, now: DateTime<Utc>) -> String {
        if self.rolling {
            rolling_reset_phrase(&self.status, zone, now)
        } else {
            reset_phrase(self.status.reset, zone, now)
        }
    }

    /// "Over by 398,377 tokens (763 % of the limit)" or "1,200 tokens left (60 % used)".
    pub fn standing_text(&self) -> String {
        limit_standing(&self.status, &self.unit)
    }
}

/// A customer with its limits and balances as they stand now.
#[derive(Debug, Clone)]
pub struct CustomerStanding {
    pub customer: Customer,
    pub zone: Tz,
    /// Worst first.
    pub limits: Vec<LimitView>,
    pub balances: Vec<Balance>,
}

impl CustomerStanding {
    pub fn worst(&self) -> Option<&LimitView> {
        self.limits.first()
    }

    pub fn standing(&self) -> Standing {
        self.worst().map_or(Standing::Within, |l| l.standing)
    }

    pub fn low_balances(&self) -> impl Iterator<Item = &Balance> {
        self.balances.iter().filter(|b| is_low(b))
    }

    /// The lowest available balance, for sorting (customers without one sort last).
    pub fn lowest_available(&self) -> Option<i64> {
        self.balances.iter().map(|b| b.available_balance).min()
    }
}

/// Whether a balance's available amount is below its low threshold.
pub fn is_low(balance: &Balance) -> bool {
    balance.low_balance_threshold.is_some_and(|threshold| balance.available_balance < threshold)
}

/// "1,580 credits available".
pub fn balance_text(balance: &Balance) -> String {
    format!("{}: {} {} available", balance.name, grouped(i128::from(balance.available_balance)), balance.unit)
}

/// Every customer's standing (up to `MAX_SCANNED_CUSTOMERS`, in creation order), optionally
/// of those matching a search text.
pub async fn customer_standings(
    engine: &Engine,
    project: &Project,
    search: Option<&str>,
) -> Result<Vec<CustomerStanding>, String> {
    let db = engine.db();
    let customers =
        db.customers_page(&project.id, None, search, MAX_SCANNED_CUSTOMERS).await.map_err(|e| e.to_string())?;
    let limits: HashMap<String, Limit> =
        db.all_limits(&project.id).await.map_err(|e| e.to_string())?.into_iter().map(|l| (l.id.clone(), l)).collect();
    let meters: HashMap<String, Meter> =
        db.all_meters(&project.id).await.map_err(|e| e.to_string())?.into_iter().map(|m| (m.id.clone(), m)).collect();
    let mut balances: HashMap<String, Vec<Balance>> = HashMap::new();
    for balance in db.project_balances(&project.id).await.map_err(|e| e.to_string())? {
        balances.entry(balance.customer_id.clone()).or_default().push(balance);
    }
    let mut standings = Vec::with_capacity(customers.len());
    for customer in customers {
        let views = if limits.is_empty() {
            Vec::new()
        } else {
            limit_views(engine, project, &customer, &limits, &meters).await?
        };
        standings.push(CustomerStanding {
            zone: customer.window_zone(project.timezone),
            limits: views,
            balances: balances.remove(&customer.id).unwrap_or_default(),
            customer,
        });
    }
    Ok(standings)
}

/// A customer's limits as the engine's check answers them, worst first.
pub async fn limit_views(
    engine: &Engine,
    project: &Project,
    customer: &Customer,
    limits: &HashMap<String, Limit>,
    meters: &HashMap<String, Meter>,
) -> Result<Vec<LimitView>, String> {
    let dimensions = BTreeMap::new();
    let query = CheckQuery { customer_ref: &customer.id, dimensions: &dimensions, requested: None, balances: &[] };
    let check = engine.check(project, &query).await.map_err(|e| e.to_string())?;
    let mut views: Vec<LimitView> = check
        .limits
        .into_iter()
        .map(|status| {
            let limit = limits.get(&status.id);
            let meter = meters.get(&status.meter_id);
            LimitView::new(status, limit, meter)
        })
        .collect();
    views.sort_by(|a, b| a.standing.cmp(&b.standing).then(b.percent.cmp(&a.percent)));
    Ok(views)
}

/// A limit's state as a block: its name and state in words, a bar, how far it stands and
/// when it resets in the customer's time.
pub fn limit_status_block(view: &LimitView, zone: Tz, now: DateTime<Utc>) -> impl IntoView {
    let status = &view.status;
    let bar_label = format!("{}: {} % used", status.name, view.percent);
    let standing = view.standing;
    view! {
        <div class=format!("limit {}", standing.class()) data-testid="limit-status" data-standing=standing.class()>
            <p class="limit-head">
                <strong>{status.name.clone()}</strong>" "
                <span class=format!("badge {}", standing.class())>{standing.label()}</span>
            </p>
            <progress max="100" value=view.percent.min(100).to_string() aria-label=bar_label></progress>
            <p data-testid="limit-usage">{view.usage_text()}</p>
            <p data-testid="limit-standing">{view.standing_text()}</p>
            <p class="hint" data-testid="limit-reset">{view.reset_text(zone, now)}</p>
        </div>
    }
}
