//! Integration tests: the real binary, real git repositories, the real Docker engine and both databases.

#[macro_use]
mod support;

mod apply;
mod audit;
mod conventions;
mod edge;
mod edge_routes;
mod edge_tls;
mod events;
mod features;
mod guards;
mod ha;
mod hooks;
mod invoices;
mod json_output;
mod keys;
mod live;
mod loghistory;
mod meter_sources;
mod notify;
mod plan;
mod plan_review;
mod probe;
mod progress;
mod rowstate;
mod site;
mod status;
mod storage;
mod swarm;
mod tui;
mod usage;
mod validate;
mod watch;
