//! The dsrlb appliance around the dataplane: configuration, the control core (ARP, ICMP,
//! health checks, snapshots for the workers), the DPDK worker loop, ctl and metrics.

pub mod config;
pub mod locate;
