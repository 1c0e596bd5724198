//! The immutable configuration a worker forwards with: ports, services, backends and their
//! states and MACs, with the per-service Maglev tables and lookup maps precomputed. The control
//! core builds a new one for every change and workers switch to it between bursts.

use std::net::IpAddr;

use crate::lookup::{AddrMap6, U64Map};
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
    /// The LB's own addresses on this port, of either family (ARP, neighbour discovery and echo
    /// answered, probes sourced; the first of a family is the outer source of its tunnels).
    pub addrs: Vec<IpAddr>,
    /// IP MTU.
    pub mtu: u16,
    pub role: PortRole,
    /// The MAC of the port's IPv4 gateway, once resolved (inline: where server replies go).
    pub gateway_mac: Option<Mac>,
    /// The same for its IPv6 gateway.
    pub gateway6_mac: Option<Mac>,
    /// Routing peers on this port, by address and resolved MAC: their traffic to the LB takes
    /// the priority lane (a frame must match both, so a host that only forges the address
    /// does not get it).
    pub peers: Vec<(IpAddr, Mac)>,
}

impl PortInfo {
    /// The port's first IPv4 address.
    pub fn addr4(&self) -> Option<[u8; 4]> {
        self.addrs.iter().find_map(|a| match a {
            IpAddr::V4(a) => Some(a.octets()),
            IpAddr::V6(_) => None,
        })
    }

    /// The port's first IPv6 address that is not link-local (the source of what it sends
    /// beyond the link: tunnels, probes, Packet Too Big).
    pub fn addr6(&self) -> Option<[u8; 16]> {
        self.addrs.iter().find_map(|a| match a {
            IpAddr::V6(a) if !crate::wire::ipv6::is_link_local(a.octets()) => Some(a.octets()),
            _ => None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct BackendInfo {
    /// Stable across reloads while the (service, real IP) pair exists.
    pub id: u32,
    pub real_ip: IpAddr,
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
    pub vip: IpAddr,
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
#[repr(align(64))]
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
    /// The Ethernet addresses every mode writes, as they lie in the header: the next hop's MAC
    /// (the backend's, or its router's), then the egress port's (`Forward::macs`).
    pub macs: [u8; 12],
    pub mtu: u16,
    /// The backend's real address is IPv6 (`real_ip6`; an IPv4 service then tunnels 4in6).
    pub real_v6: bool,
    pub real_ip: [u8; 4],
    /// IPIP outer source: the LB's first IPv4 address on the egress port.
    pub outer_src: [u8; 4],
    pub real_ip6: [u8; 16],
    /// ip6ip6 and 4in6 outer source: the LB's first IPv6 address on the egress port.
    pub outer_src6: [u8; 16],
    /// The IPv4 checksum term that is the same for every packet this backend's service sends
    /// it, summed once here instead of per packet (folded to 16 bits, in the byte order the
    /// CPU loads words in; 0 where the mode has none):
    /// - `dscp`: the delta of the destination's change from the VIP to `real_ip`
    ///   (`checksum::delta32_le`), shared by the IP checksum and the L4 pseudo-header;
    /// - `ipip` to an IPv4 backend: the outer header's fixed words (`Ipv4Repr::fixed_sum`).
    pub csum_base: u16,
}

// One cache line: the established-flow path reads one per packet.
const _: () = assert!(std::mem::size_of::<Forward>() == 64);

impl Forward {
    /// What `Snapshot::forward` holds for an id no backend has: it belongs to no service.
    const NONE: Forward = Forward {
        service: Forward::NO_SERVICE,
        port: 0,
        keeps_flows: false,
        takes_new: false,
        resolved: false,
        macs: [0; 12],
        mtu: 0,
        real_v6: false,
        real_ip: [0; 4],
        outer_src: [0; 4],
        real_ip6: [0; 16],
        outer_src6: [0; 16],
        csum_base: 0,
    };
    /// No service has this position (a snapshot holds fewer services).
    const NO_SERVICE: u16 = u16::MAX;

    /// `macs` for a next hop and an egress port.
    pub fn macs(next_hop: Mac, port_mac: Mac) -> [u8; 12] {
        let mut m = [0; 12];
        m[..6].copy_from_slice(&next_hop);
        m[6..].copy_from_slice(&port_mac);
        m
    }

    /// The next hop's MAC.
    pub fn next_hop(&self) -> Mac {
        let [a, b, c, d, e, f, ..] = self.macs;
        [a, b, c, d, e, f]
    }

    /// The egress port's MAC.
    pub fn port_mac(&self) -> Mac {
        let [.., a, b, c, d, e, f] = self.macs;
        [a, b, c, d, e, f]
    }
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
    /// Backend id → how to forward to it (`Forward::NONE` for ids not in this configuration):
    /// one cache line each, found by one bounds check and one compare.
    forward: Vec<Forward>,
    services_by_key: U64Map,
    /// (VIP, protocol) → service position, where a later fragment can only belong to one.
    fragment_owner: U64Map,
    vips: U64Map,
    lb_addrs: U64Map,
    /// The same four for IPv6 (keys hashed, matches checked against the address).
    services6: AddrMap6,
    fragment_owner6: AddrMap6,
    vips6: AddrMap6,
    lb_addrs6: AddrMap6,
    pub(crate) client_port: Option<u16>,
    pub(crate) max_service_id: usize,
}

/// Why a snapshot could not be built; nothing was half-built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// The service's Maglev table size is not usable (`maglev::check_size`).
    MaglevSize { vip: IpAddr, port: u16, why: String },
    /// The service's mode has a bad parameter (`ForwardMode::check`).
    Mode { vip: IpAddr, port: u16, why: String },
    /// Two services with the same VIP, protocol and port.
    DuplicateService { vip: IpAddr, port: u16, proto: u8 },
    /// A backend egresses on a port the snapshot does not have.
    NoSuchPort { backend: IpAddr, vip: IpAddr, port: u16, egress: u16 },
    /// The backend's family cannot carry the service's in its mode (only `ipip` tunnels IPv4
    /// VIPs over IPv6).
    Family { backend: IpAddr, vip: IpAddr, port: u16 },
    /// Two backends with one id.
    DuplicateBackendId(u32),
    /// More services than a snapshot can number (the configuration allows far fewer).
    TooManyServices(usize),
    /// Two IPv6 keys with one 64-bit hash (about 2^-64 per pair: never, but never misrouted).
    HashCollision,
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
            SnapshotError::TooManyServices(n) => write!(f, "{n} services: a snapshot holds at most 65534"),
            SnapshotError::HashCollision => f.write_str("two IPv6 keys share a hash; change one address"),
            SnapshotError::Family { backend, vip, port } => {
                write!(
                    f,
                    "backend {backend} of {vip}:{port}: its family cannot carry the service's in this mode"
                )
            }
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

fn addr_key_of(a: IpAddr) -> u64 {
    match a {
        IpAddr::V4(a) => addr_key(a.octets()),
        IpAddr::V6(a) => crate::flow::fold16(a.octets()),
    }
}

/// The service key of an IPv6 VIP, protocol and port (hashed: `AddrMap6` checks the match).
#[inline]
pub(crate) fn service_key6(vip: [u8; 16], proto: u8, port: u16) -> u64 {
    crate::flow::mix64(crate::flow::fold16(vip) ^ (((proto as u64) << 16) | port as u64))
}

/// A backend's Maglev permutation seed: its real IP, so that its slots survive reloads and every
/// instance of a fleet gives it the same ones.
pub fn maglev_seed(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u64,
        IpAddr::V6(a) => crate::flow::fold16(a.octets()),
    }
}

/// `Forward::csum_base` for a backend at `real_ip` (`real_v4`: its address is IPv4) of an
/// IPv4 service at `vip4` in `mode`, tunnelled from `outer_src` in `ipip`.
fn csum_base(mode: ForwardMode, vip4: [u8; 4], real_ip: [u8; 4], outer_src: [u8; 4], real_v4: bool) -> u16 {
    match mode {
        ForwardMode::Dscp(_) if real_v4 => {
            crate::checksum::fold16(crate::checksum::delta32_le(vip4, real_ip))
        }
        ForwardMode::Ipip if real_v4 => crate::rewrite::outer_ipip(outer_src, real_ip, 0).fixed_sum(),
        _ => 0,
    }
}

/// Whether a backend of `real` family can serve a service of `vip` family in `mode`: the same
/// family always; an IPv4 VIP over an IPv6 real address only tunnelled (4in6).
pub fn families_fit(vip: IpAddr, real: IpAddr, mode: ForwardMode) -> bool {
    vip.is_ipv6() == real.is_ipv6() || (mode == ForwardMode::Ipip && vip.is_ipv4())
}

/// A service's key and the address it is matched against, for either family's map.
fn service_key_of(vip: IpAddr, proto: u8, port: u16) -> Result<u64, ([u8; 16], u64)> {
    match vip {
        IpAddr::V4(a) => Ok(service_key(a.octets(), proto, port)),
        IpAddr::V6(a) => Err((a.octets(), service_key6(a.octets(), proto, port))),
    }
}

impl Snapshot {
    /// Build and check a snapshot. Fails on duplicate services or backend ids, ports out of
    /// range, or a non-prime Maglev size — nothing is half-built.
    pub fn build(
        epoch: u64,
        ports: Vec<PortInfo>,
        services: Vec<ServiceInfo>,
    ) -> Result<Snapshot, SnapshotError> {
        if services.len() >= Forward::NO_SERVICE as usize {
            return Err(SnapshotError::TooManyServices(services.len()));
        }
        let mut keys = Vec::new();
        let mut keys6: Vec<([u8; 16], u64, u32)> = Vec::new();
        let mut vip_pairs = Vec::new();
        let mut vips6 = Vec::new();
        let mut maglev = Vec::new();
        let mut eligible = Vec::new();
        let mut backend_at: Vec<Option<(u16, u16)>> = Vec::new();
        let mut frag: std::collections::HashMap<u64, (Option<[u8; 16]>, Option<u32>)> =
            std::collections::HashMap::new();
        let mut max_service_id = 0;
        for (pos, s) in services.iter().enumerate() {
            let (vip, port) = (s.vip, s.port);
            crate::maglev::check_size(s.maglev_size).map_err(|why| SnapshotError::MaglevSize {
                vip,
                port,
                why,
            })?;
            s.mode.check().map_err(|why| SnapshotError::Mode { vip, port, why })?;
            let duplicate = SnapshotError::DuplicateService { vip, port, proto: s.proto };
            match service_key_of(vip, s.proto, port) {
                Ok(key) => {
                    if keys.iter().any(|(k, _)| *k == key) {
                        return Err(duplicate);
                    }
                    keys.push((key, pos as u32));
                    vip_pairs.push((addr_key_of(vip), 1));
                }
                Err((a, key)) => {
                    if keys6.iter().any(|(_, k, _)| *k == key) {
                        return Err(duplicate);
                    }
                    keys6.push((a, key, pos as u32));
                    vips6.push((a, 1));
                }
            }
            let (fa, fk) = match service_key_of(vip, s.proto, 0) {
                Ok(k) => (None, k),
                Err((a, k)) => (Some(a), k),
            };
            frag.entry(fk).and_modify(|v| v.1 = None).or_insert((fa, Some(pos as u32)));
            max_service_id = max_service_id.max(s.id as usize + 1);
            let mut cands = Vec::new();
            let mut elig = Vec::new();
            for (i, b) in s.backends.iter().enumerate() {
                if b.port as usize >= ports.len() {
                    return Err(SnapshotError::NoSuchPort { backend: b.real_ip, vip, port, egress: b.port });
                }
                if !families_fit(vip, b.real_ip, s.mode) {
                    return Err(SnapshotError::Family { backend: b.real_ip, vip, port });
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
                let (fa, fk) = match service_key_of(s.vip, s.proto, 0) {
                    Ok(k) => (None, k),
                    Err((a, k)) => (Some(a), k),
                };
                frag.insert(fk, (fa, Some(pos as u32)));
            }
        }
        let mut frag_pairs: Vec<(u64, u32)> = Vec::new();
        let mut frag6 = Vec::new();
        for (k, (a, v)) in frag {
            match (a, v) {
                (None, Some(v)) => frag_pairs.push((k, v)),
                (Some(a), Some(v)) => frag6.push((a, k, v)),
                _ => {}
            }
        }
        let mut lb = Vec::new();
        let mut lb6 = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            for a in &p.addrs {
                match a {
                    IpAddr::V4(a) => lb.push((addr_key(a.octets()), i as u32)),
                    IpAddr::V6(a) => lb6.push((a.octets(), i as u32)),
                }
            }
        }
        let client_port = ports.iter().position(|p| p.role == PortRole::Client).map(|p| p as u16);
        let mut forward = vec![Forward::NONE; backend_at.len()];
        for (pos, s) in services.iter().enumerate() {
            for b in &s.backends {
                let port = &ports[b.port as usize];
                let known = b.next_hop_mac.is_some();
                let (real_ip, real_ip6) = match b.real_ip {
                    IpAddr::V4(a) => (a.octets(), [0; 16]),
                    IpAddr::V6(a) => ([0; 4], a.octets()),
                };
                let vip4 = match s.vip {
                    IpAddr::V4(a) => a.octets(),
                    IpAddr::V6(_) => [0; 4],
                };
                let outer_src = port.addr4().unwrap_or(vip4);
                forward[b.id as usize] = Forward {
                    service: pos as u16,
                    port: b.port,
                    keeps_flows: known && b.state != BackendState::Down,
                    takes_new: known && b.state == BackendState::Up && b.weight > 0,
                    resolved: known,
                    macs: Forward::macs(b.next_hop_mac.unwrap_or([0; 6]), port.mac),
                    mtu: port.mtu,
                    real_v6: b.real_ip.is_ipv6(),
                    real_ip,
                    outer_src,
                    real_ip6,
                    outer_src6: port.addr6().unwrap_or([0; 16]),
                    csum_base: csum_base(s.mode, vip4, real_ip, outer_src, b.real_ip.is_ipv4()),
                };
            }
        }
        let services6 = AddrMap6::build(&keys6).ok_or(SnapshotError::HashCollision)?;
        let fragment_owner6 = AddrMap6::build(&frag6).ok_or(SnapshotError::HashCollision)?;
        let vips6 = AddrMap6::build_addrs(&vips6).ok_or(SnapshotError::HashCollision)?;
        let lb_addrs6 = AddrMap6::build_addrs(&lb6).ok_or(SnapshotError::HashCollision)?;
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
            services6,
            fragment_owner6,
            vips6,
            lb_addrs6,
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
    pub fn is_peer(&self, port: u16, ip: IpAddr, mac: [u8; 6]) -> bool {
        self.ports.get(port as usize).is_some_and(|p| p.peers.iter().any(|(a, m)| *a == ip && *m == mac))
    }

    #[inline]
    pub fn is_vip6(&self, a: [u8; 16]) -> bool {
        self.vips6.get(a, crate::flow::fold16(a)).is_some()
    }

    /// The port index owning an IPv6 LB address.
    #[inline]
    pub fn lb_addr_port6(&self, a: [u8; 16]) -> Option<u16> {
        self.lb_addrs6.get(a, crate::flow::fold16(a)).map(|p| p as u16)
    }

    /// The service for an IPv6 packet to `vip`/`proto`/`port`: exact port first, then every-port.
    #[inline]
    pub fn find_service6(&self, vip: [u8; 16], proto: u8, port: u16) -> Option<usize> {
        self.services6
            .get(vip, service_key6(vip, proto, port))
            .or_else(|| self.services6.get(vip, service_key6(vip, proto, 0)))
            .map(|p| p as usize)
    }

    /// The only service a later IPv6 fragment to `vip`/`proto` can belong to.
    #[inline]
    pub fn fragment_service6(&self, vip: [u8; 16], proto: u8) -> Option<usize> {
        self.fragment_owner6.get(vip, service_key6(vip, proto, 0)).map(|p| p as usize)
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
        self.forward.get(id as usize).filter(|f| f.service as usize == svc)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::every_feature;
    use crate::wire::Ipv4Repr;

    /// Every IPv4 backend's `csum_base` makes a correct header in its service's mode, checked by
    /// the full RFC 1071 sum of the header it gives.
    #[test]
    fn checksum_bases_make_correct_headers() {
        use crate::checksum::{apply, checksum};
        let snap = every_feature();
        let mut seen = [0; 2];
        for (pos, s) in snap.services.iter().enumerate() {
            let IpAddr::V4(vip) = s.vip else { continue };
            for b in &s.backends {
                let IpAddr::V4(real) = b.real_ip else { continue };
                let f = snap.forward(pos, b.id).expect("the backend's entry");
                let why = format!("{vip}:{} backend {real}", s.port);
                let mut h = [0u8; 20];
                match s.mode {
                    ForwardMode::Dscp(_) => {
                        seen[0] += 1;
                        // A client's header to the VIP, its destination changed to the real
                        // address and its checksum updated by the base alone.
                        Ipv4Repr::new(crate::wire::PROTO_UDP, [192, 0, 2, 7], vip.octets(), 30, 61)
                            .emit(&mut h);
                        h[16..20].copy_from_slice(&real.octets());
                        let c = apply(u16::from_le_bytes([h[10], h[11]]), f.csum_base as u32);
                        h[10..12].copy_from_slice(&c.to_le_bytes());
                    }
                    ForwardMode::Ipip => {
                        seen[1] += 1;
                        Ipv4Repr {
                            tos: 0xb9,
                            ident: 0x1234,
                            dont_fragment: true,
                            ..crate::rewrite::outer_ipip(f.outer_src, real.octets(), 60)
                        }
                        .emit_with_fixed_sum(&mut h, f.csum_base);
                    }
                    _ => {
                        assert_eq!(f.csum_base, 0, "{why}");
                        continue;
                    }
                }
                assert_eq!(checksum(&h), 0, "{why}: {h:02x?}");
            }
        }
        assert!(seen[0] > 0 && seen[1] > 0, "both modes checked: {seen:?}");
    }
}
