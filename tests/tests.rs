//! Integration tests: the real binary, real git repositories, the real Docker engine and both databases.

#[macro_use]
mod support;

mod apply;
mod guards;
mod ha;
mod plan;
mod site;
mod status;
mod swarm;
mod tui;
mod usage;
mod validate;
mod watch;
