//! Usage metering: sample each running tenant's container (CPU, memory, network, block I/O)
//! and its site's `/usage` counters, store the samples with hourly and daily rollups, report
//! 80%/100% crossings of the plan's limits once per period, and show usage against the plan
//! with an invoice preview.
//!
//! The watch loop calls [`meter_once`] on its interval; `tenantctl meter` runs one pass and
//! `tenantctl usage` prints [`report`].

/// The version of this command's `-o json` document (`format_version`).
pub const FORMAT_VERSION: u32 = 1;

mod close;
pub mod invoice;
mod meter;
mod report;
pub mod site;
pub mod threshold;
pub mod time;

pub use close::{CloseSummary, close_invoices};
pub use invoice::{Invoice, InvoiceInput, InvoiceLine, money};
pub use meter::{
    DEFAULT_RETENTION, MeterNote, MeterOptions, MeterSummary, ThresholdEvent, meter_once,
    meter_once_with,
};
pub use report::{
    BlockIo, CpuUsage, Io, MemoryUsage, QuotaUsage, TenantUsage, UsageReport, human_bytes,
    render_text, report,
};

use crate::runtime::RuntimeError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no tenant `{0}` in the database; apply it first")]
    UnknownTenant(String),
}
