//! The immutable configuration a worker forwards with: ports, services, backends and their
//! states and MACs, with the per-service Maglev tables and lookup maps precomputed. The control
//! core builds a new one for every change and workers switch to it between bursts.

use std::net::Ipv4Addr;

use crate::lookup::U64Map;
use crate::maglev::{MaglevBackend, MaglevTable};

pub type Mac = [u8; 6];

/// How a service's packets reach its backends (`l2`, `ipip` or `dscp(N)` in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum ForwardMode {
    /// Rewrite the destination MAC only.
    L2,
    /// Encapsulate in IPv4 (protocol 4).
    Ipip,
    /// Mark with this DSCP code (1..=63) and send to the real IP.
    Dscp(u8),
}

impl ForwardMode {
    /// Whether the mode's parameters are usable (the one check of them, for the configuration
    /// and for snapshots alike).
    pub fn check(self) -> Result<(), String> {
        match self {
            ForwardMode::Dscp(c) if !(1..=63).contains(&c) => Err(format!("DSCP {c} outside 1..=63")),
            _ => Ok(()),
        }
    }
}

impl std::fmt::Display for ForwardMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForwardMode::L2 => f.write_str("l2"),
            ForwardMode::Ipip => f.write_str("ipip"),
            ForwardMode::Dscp(c) => write!(f, "dscp({c})"),
        }
    }
}

/// How a new flow picks its backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Scheduler {
    Maglev,
    WeightedRoundRobin,
    LeastConnections,
    SourceHash,
    DestinationHash,
}

impl Scheduler {
    /// The name as written in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Scheduler::Maglev => "maglev",
            Scheduler::WeightedRoundRobin => "weighted_round_robin",
            Scheduler::LeastConnections => "least_connections",
            Scheduler::SourceHash => "source_hash",
            Scheduler::DestinationHash => "destination_hash",
        }
    }
}

impl std::fmt::Display for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum PersistBy {
    SourceIp,
    DestinationIp,
}

impl PersistBy {
    /// The name as written in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            PersistBy::SourceIp => "source_ip",
            PersistBy::DestinationIp => "destination_ip",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Persistence {
    pub by: PersistBy,
    pub timeout_ms: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum BackendState {
    /// Healthy: takes new flows.
    Up,
    /// Failed health checks (or unresolved MAC): its flows move elsewhere.
    Down,
    /// Keeps its flows, takes no new ones.
    Draining,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum PortRole {
    /// One-arm: clients and servers on the same port.
    Lan,
    /// Inline: the client side.
    Client,
    /// Inline: the server side (servers' gateway is the LB).
    Server,
}

#[derive(Debug, Clone)]
pub struct PortInfo {
    pub mac: Mac,
    /// The LB's own addresses on this port (ARP/ICMP answered, probes sourced, IPIP outer source).
    pub addrs: Vec<Ipv4Addr>,
    /// IP MTU.
    pub mtu: u16,
    pub role: PortRole,
    /// The MAC of the port's gateway, once resolved (inline: where server replies go).
    pub gateway_mac: Option<Mac>,
    /// Routing peers on this port, by address and resolved MAC: their traffic to the LB takes
    /// the priority lane (a frame must match both, so a host that only forges the address
    /// does not get it).
    pub peers: Vec<(Ipv4Addr, Mac)>,
}

#[derive(Debug, Clone)]
pub struct BackendInfo {
    /// Stable across reloads while the (service, real IP) pair exists.
    pub id: u32,
    pub real_ip: Ipv4Addr,
    pub weight: u32,
    pub state: BackendState,
    /// Egress port index.
    pub port: u16,
    /// The server's MAC (on-link) or the gateway's (routed); `None` until resolved.
    pub next_hop_mac: Option<Mac>,
}

#[derive(Debug, Clone)]
pub struct ServiceInfo {
    /// Stable across reloads while the (VIP, protocol, port) exists.
    pub id: u16,
    pub vip: Ipv4Addr,
    pub proto: u8,
    /// 0 = every port.
    pub port: u16,
    pub mode: ForwardMode,
    pub scheduler: Scheduler,
    pub persistence: Option<Persistence>,
    pub tcp_idle_ms: u32,
    pub udp_idle_ms: u32,
    /// Idle timeout once the client sent FIN or RST.
    pub closing_ms: u32,
    /// Lifetime of a TCP flow that has seen only a SYN.
    pub syn_ms: u32,
    pub backends: Vec<BackendInfo>,
    pub maglev_size: u32,
}

/// What the hot path needs to send to one backend, precomputed so one lookup by backend id
/// answers "may this flow stay?", "may a new flow come?" and "how do I rewrite?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    /// Position of the backend's service in `services`.
    pub service: u16,
    pub port: u16,
    /// Existing flows may stay (up or draining, MAC known).
    pub keeps_flows: bool,
    /// New flows may come (up, MAC known, weight > 0).
    pub takes_new: bool,
    /// The next hop's MAC is known (`next_hop` is meaningful): a health probe can be sent.
    pub resolved: bool,
    pub next_hop: Mac,
    pub port_mac: Mac,
    pub real_ip: [u8; 4],
    /// IPIP outer source: the LB's first address on the egress port.
    pub outer_src: [u8; 4],
    pub mtu: u16,
}

/// Everything a worker needs, immutable once built.
#[derive(Debug)]
pub struct Snapshot {
    pub epoch: u64,
    /// Every backend's next hop is resolved and its health known. Until then (just after a
    /// start) connections met mid-flow are forwarded by the consistent hash without keeping
    /// state, so none is pinned to the first backends to come up.
    pub settled: bool,
    pub ports: Vec<PortInfo>,
    pub services: Vec<ServiceInfo>,
    pub(crate) maglev: Vec<MaglevTable>,
    /// Per service: (backend id, weight) of those that may take new flows.
    pub(crate) eligible: Vec<Vec<(u32, u32)>>,
    /// Backend id → how to forward to it (`None` for ids not in this configuration).
    forward: Vec<Option<Forward>>,
    services_by_key: U64Map,
    /// (VIP, protocol) → service position, where a later fragment can only belong to one.
    fragment_owner: U64Map,
    vips: U64Map,
    lb_addrs: U64Map,
    pub(crate) client_port: Option<u16>,
    pub(crate) max_service_id: usize,
}

/// Why a snapshot could not be built; nothing was half-built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// The service's Maglev table size is not usable (`maglev::check_size`).
    MaglevSize { vip: Ipv4Addr, port: u16, why: String },
    /// The service's mode has a bad parameter (`ForwardMode::check`).
    Mode { vip: Ipv4Addr, port: u16, why: String },
    /// Two services with the same VIP, protocol and port.
    DuplicateService { vip: Ipv4Addr, port: u16, proto: u8 },
    /// A backend egresses on a port the snapshot does not have.
    NoSuchPort { backend: Ipv4Addr, vip: Ipv4Addr, port: u16, egress: u16 },
    /// Two backends with one id.
    DuplicateBackendId(u32),
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotError::MaglevSize { vip, port, why } => {
                write!(f, "service {vip}:{port}: maglev table size: {why}")
            }
            SnapshotError::Mode { vip, port, why } => write!(f, "service {vip}:{port}: {why}"),
            SnapshotError::DuplicateService { vip, port, proto } => {
                write!(f, "service {vip}:{port} proto {proto} defined twice")
            }
            SnapshotError::NoSuchPort { backend, vip, port, egress } => {
                write!(f, "backend {backend} of {vip}:{port}: port {egress} does not exist")
            }
            SnapshotError::DuplicateBackendId(id) => write!(f, "backend id {id} used twice"),
        }
    }
}

impl std::error::Error for SnapshotError {}

#[inline]
pub(crate) fn service_key(vip: [u8; 4], proto: u8, port: u16) -> u64 {
    ((u32::from_be_bytes(vip) as u64) << 32) | ((proto as u64) << 16) | port as u64
}

#[inline]
fn addr_key(a: [u8; 4]) -> u64 {
    u32::from_be_bytes(a) as u64
}

/// A backend's Maglev permutation seed: its real IP, so that its slots survive reloads and every
/// instance of a fleet gives it the same ones.
pub fn maglev_seed(ip: Ipv4Addr) -> u64 {
    u32::from(ip) as u64
}

impl Snapshot {
    /// Build and check a snapshot. Fails on duplicate services or backend ids, ports out of
    /// range, or a non-prime Maglev size — nothing is half-built.
    pub fn build(
        epoch: u64,
        ports: Vec<PortInfo>,
        services: Vec<ServiceInfo>,
    ) -> Result<Snapshot, SnapshotError> {
        let mut keys = Vec::new();
        let mut vip_pairs = Vec::new();
        let mut maglev = Vec::new();
        let mut eligible = Vec::new();
        let mut backend_at: Vec<Option<(u16, u16)>> = Vec::new();
        let mut frag: std::collections::HashMap<u64, Option<u32>> = std::collections::HashMap::new();
        let mut max_service_id = 0;
        for (pos, s) in services.iter().enumerate() {
            let (vip, port) = (s.vip, s.port);
            crate::maglev::check_size(s.maglev_size).map_err(|why| SnapshotError::MaglevSize {
                vip,
                port,
                why,
            })?;
            s.mode.check().map_err(|why| SnapshotError::Mode { vip, port, why })?;
            let key = service_key(s.vip.octets(), s.proto, s.port);
            if keys.iter().any(|(k, _)| *k == key) {
                return Err(SnapshotError::DuplicateService { vip, port, proto: s.proto });
            }
            keys.push((key, pos as u32));
            vip_pairs.push((addr_key(s.vip.octets()), 1));
            let fk = service_key(s.vip.octets(), s.proto, 0);
            frag.entry(fk).and_modify(|v| *v = None).or_insert(Some(pos as u32));
            max_service_id = max_service_id.max(s.id as usize + 1);
            let mut cands = Vec::new();
            let mut elig = Vec::new();
            for (i, b) in s.backends.iter().enumerate() {
                if b.port as usize >= ports.len() {
                    return Err(SnapshotError::NoSuchPort { backend: b.real_ip, vip, port, egress: b.port });
                }
                let id = b.id as usize;
                if backend_at.len() <= id {
                    backend_at.resize(id + 1, None);
                }
                if backend_at[id].is_some() {
                    return Err(SnapshotError::DuplicateBackendId(b.id));
                }
                backend_at[id] = Some((pos as u16, i as u16));
                let takes_new = b.state == BackendState::Up && b.next_hop_mac.is_some() && b.weight > 0;
                if takes_new {
                    cands.push(MaglevBackend { id: b.id, seed: maglev_seed(b.real_ip), weight: b.weight });
                    elig.push((b.id, b.weight));
                }
            }
            maglev.push(MaglevTable::build(&cands, s.maglev_size));
            eligible.push(elig);
        }
        // A later fragment of a VIP with an every-port service belongs to that one.
        for (pos, s) in services.iter().enumerate() {
            if s.port == 0 {
                frag.insert(service_key(s.vip.octets(), s.proto, 0), Some(pos as u32));
            }
        }
        let frag_pairs: Vec<(u64, u32)> = frag.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect();
        let mut lb = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            for a in &p.addrs {
                lb.push((addr_key(a.octets()), i as u32));
            }
        }
        let client_port = ports.iter().position(|p| p.role == PortRole::Client).map(|p| p as u16);
        let mut forward = vec![None; backend_at.len()];
        for (pos, s) in services.iter().enumerate() {
            for b in &s.backends {
                let port = &ports[b.port as usize];
                let known = b.next_hop_mac.is_some();
                forward[b.id as usize] = Some(Forward {
                    service: pos as u16,
                    port: b.port,
                    keeps_flows: known && b.state != BackendState::Down,
                    takes_new: known && b.state == BackendState::Up && b.weight > 0,
                    resolved: known,
                    next_hop: b.next_hop_mac.unwrap_or([0; 6]),
                    port_mac: port.mac,
                    real_ip: b.real_ip.octets(),
                    outer_src: port.addrs.first().map(|a| a.octets()).unwrap_or(s.vip.octets()),
                    mtu: port.mtu,
                });
            }
        }
        Ok(Snapshot {
            epoch,
            settled: true,
            maglev,
            eligible,
            forward,
            services_by_key: U64Map::build(&keys),
            fragment_owner: U64Map::build(&frag_pairs),
            vips: U64Map::build(&vip_pairs),
            lb_addrs: U64Map::build(&lb),
            client_port,
            max_service_id,
            ports,
            services,
        })
    }

    /// One past the largest backend id (sizes per-backend arrays).
    pub fn backend_id_bound(&self) -> usize {
        self.forward.len()
    }

    pub fn service_id_bound(&self) -> usize {
        self.max_service_id
    }

    #[inline]
    pub fn is_vip(&self, a: [u8; 4]) -> bool {
        self.vips.get(addr_key(a)).is_some()
    }

    /// Whether a frame from `mac` and `ip` on `port` comes from one of its routing peers.
    pub fn is_peer(&self, port: u16, ip: [u8; 4], mac: [u8; 6]) -> bool {
        self.ports
            .get(port as usize)
            .is_some_and(|p| p.peers.iter().any(|(a, m)| a.octets() == ip && *m == mac))
    }

    /// The port index owning an LB address.
    #[inline]
    pub fn lb_addr_port(&self, a: [u8; 4]) -> Option<u16> {
        self.lb_addrs.get(addr_key(a)).map(|p| p as u16)
    }

    /// The service for a packet to `vip`/`proto`/`port`: exact port first, then every-port.
    #[inline]
    pub fn find_service(&self, vip: [u8; 4], proto: u8, port: u16) -> Option<usize> {
        self.services_by_key
            .get(service_key(vip, proto, port))
            .or_else(|| self.services_by_key.get(service_key(vip, proto, 0)))
            .map(|p| p as usize)
    }

    /// The only service a later fragment to `vip`/`proto` can belong to.
    #[inline]
    pub fn fragment_service(&self, vip: [u8; 4], proto: u8) -> Option<usize> {
        self.fragment_owner.get(service_key(vip, proto, 0)).map(|p| p as usize)
    }

    /// How to forward to backend `id` if it belongs to service position `svc`.
    #[inline]
    pub fn forward(&self, svc: usize, id: u32) -> Option<&Forward> {
        match self.forward.get(id as usize) {
            Some(Some(f)) if f.service as usize == svc => Some(f),
            _ => None,
        }
    }

    /// Whether an existing flow may stay on backend `id` of service `svc` (draining may).
    #[inline]
    pub fn keeps_flows(&self, svc: usize, id: u32) -> bool {
        matches!(self.forward(svc, id), Some(f) if f.keeps_flows)
    }

    /// Whether backend `id` of `svc` may take a new flow.
    #[inline]
    pub fn takes_new(&self, svc: usize, id: u32) -> bool {
        matches!(self.forward(svc, id), Some(f) if f.takes_new)
    }

    pub fn maglev(&self, svc: usize) -> &MaglevTable {
        &self.maglev[svc]
    }
}
