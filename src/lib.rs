//! tenantctl: GitOps for tenants. See ARCHITECTURE.md for the map.

pub mod access;
pub mod apply;
pub mod audit;
pub mod calendar;
pub mod cli;
pub mod edge;
pub mod loghistory;
pub mod model;
pub mod notify;
pub mod plan;
pub mod reconcile;
pub mod runtime;
pub mod site;
pub mod source;
pub mod status;
pub mod store;
#[cfg(test)]
pub(crate) mod testing;
pub mod tui;
pub mod usage;
pub mod watch;
