//! The dsrlb appliance around the dataplane: configuration, the control core (ARP, ICMP,
//! health checks, snapshots for the workers), the DPDK worker loop, ctl and metrics.

#![forbid(unsafe_code)]

pub mod announce;
pub mod capture;
pub mod cli;
pub mod config;
pub mod core;
pub mod ctl;
pub mod errors;
pub mod metrics;
pub mod neigh;
pub mod probe;
pub mod replay;
pub mod runtime;
pub mod serve;
pub mod startup;
pub mod view;
pub mod worker;
