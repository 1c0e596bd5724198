//! The dsrlb appliance around the dataplane: configuration, the control core (ARP, ICMP,
//! health checks, snapshots for the workers), the DPDK worker loop, ctl and metrics.

#![forbid(unsafe_code)]

pub mod app;
pub mod config;
pub mod ctl;
pub mod frames;
pub mod locate;
pub mod metrics;
pub mod neigh;
pub mod probe;
pub mod runtime;
pub mod view;
pub mod worker;
