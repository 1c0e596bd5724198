//! What `dsrlb ctl` and the metrics endpoint show: a plain, serialisable picture of the running
//! appliance that the control core rebuilds every half second and after every change. Rows are
//! typed (addresses, states, modes), so tables and metrics are rendered from the same values
//! the control core holds.

use std::collections::BTreeMap;
use std::net::IpAddr;

use dataplane::snapshot::{BackendState, ForwardMode, PortRole, Scheduler};
use dataplane::wire::{IpCidr, MacAddr};
use serde::{Deserialize, Serialize};

use crate::config::Protocol;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct View {
    pub status: Status,
    pub services: Vec<ServiceRow>,
    pub backends: Vec<BackendRow>,
    pub stats: Stats,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub config: String,
    pub uptime_s: u64,
    /// When this view was taken, in ms since start (rates = counter deltas / time deltas).
    pub uptime_ms: u64,
    pub workers: usize,
    pub epoch: u64,
    /// Epoch each worker runs (all equal once a change has reached every worker).
    pub worker_epochs: Vec<u64>,
    /// How long ago each worker's loop last moved (a worker stuck for 2 s ends the appliance).
    pub worker_heartbeat_age_ms: Vec<u64>,
    pub reloads: u64,
    pub last_reload_error: Option<String>,
    pub ports: Vec<PortRow>,
    pub neighbors: Vec<NeighborRow>,
    /// A fleet member: the VIPs it announces now (`None`: it answers ARP for them instead).
    pub announced: Option<Vec<IpAddr>>,
    /// Withdrawn, forwarding until its drain time is out, then stopping.
    pub draining: bool,
    /// What must agree between instances (services, backends, weights, schedulers, Maglev
    /// sizes): instances with one digest map every flow to the same backend.
    pub config_digest: String,
}

/// A port's counters as the device reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortCounters {
    pub link_up: bool,
    pub speed_mbps: u32,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_no_mbuf: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PortRow {
    pub index: u16,
    pub device: String,
    pub role: PortRole,
    pub mac: MacAddr,
    pub addresses: Vec<IpCidr>,
    pub mtu: u16,
    #[serde(flatten)]
    pub counters: PortCounters,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NeighborRow {
    pub port: u16,
    pub ip: IpAddr,
    pub mac: Option<MacAddr>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceRow {
    pub id: u16,
    /// `VIP:PORT/PROTO`
    pub name: String,
    pub vip: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
    pub mode: ForwardMode,
    pub scheduler: Scheduler,
    /// `source_ip 60 s`, when the service has persistence.
    pub persistence: Option<String>,
    pub backends_up: usize,
    pub backends: usize,
    pub packets: u64,
    pub bytes: u64,
    pub new_flows: u64,
    pub active_flows: u64,
}

/// What the health checks say of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Checked, but no check has answered yet (counted as up at start).
    Pending,
    Passing,
    Failing,
    /// Its service has no health check.
    Unchecked,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackendRow {
    pub id: u32,
    /// The service's name (`VIP:PORT/PROTO`).
    pub service: String,
    pub ip: std::net::IpAddr,
    pub weight: u32,
    /// What the dataplane does with it.
    pub state: BackendState,
    /// What the health checks say.
    pub health: HealthState,
    pub drained: bool,
    pub mac: Option<MacAddr>,
    pub last_probe_ms: Option<f64>,
    pub last_error: Option<String>,
    pub probes: u64,
    pub transitions: u64,
    pub packets: u64,
    pub bytes: u64,
    pub new_flows: u64,
    pub active_flows: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub rx_packets: u64,
    pub forwarded: u64,
    pub to_control: u64,
    pub drops: BTreeMap<String, u64>,
    /// Both families' tables, summed over workers.
    pub flows: u64,
    pub flow_capacity: u64,
    /// The IPv6 tables alone.
    #[serde(default)]
    pub flows_ipv6: u64,
    #[serde(default)]
    pub flow_capacity_ipv6: u64,
    pub stateless_fallbacks: u64,
    pub midflow_without_state: u64,
    pub embryonic_expired: u64,
    pub reclaimed_on_insert: u64,
    pub expired_by_sweep: u64,
    pub rescheduled: u64,
    pub icmp_errors_steered: u64,
    pub frag_needed_sent: u64,
    pub frag_needed_rate_limited: u64,
    pub outer_fragments: u64,
    pub inline_routed: u64,
    pub tx_dropped: u64,
    /// Frames for the control core that found its rings full, by kind (arp, reply, other).
    pub punt_dropped: BTreeMap<String, u64>,
    pub control_frames: u64,
    pub arp_replies_sent: u64,
    /// ARP replies to our requests, taken.
    pub arp_taken: u64,
    /// ARP nobody asked for (gratuitous, unsolicited replies): changes nothing.
    pub arp_unsolicited: u64,
    /// ARP with an impossible MAC or a forged sender.
    pub arp_rejected: u64,
    /// A second MAC claimed a neighbour whose MAC still answers (kept the first).
    pub arp_conflicts: u64,
    /// A neighbour's MAC replaced after the old one stopped answering.
    pub arp_changes: u64,
    pub echo_replies_sent: u64,
    pub probe_replies: u64,
    pub probe_replies_forged: u64,
    pub to_kernel: u64,
    pub from_kernel: u64,
    pub to_kernel_refused: u64,
}
