//! The control core's view of the world: the configuration, stable ids for services and
//! backends (kept across reloads, so flows keep their backends), health and drain state, and
//! MACs. From it the control core builds every snapshot it publishes to the workers.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dataplane::snapshot::{self as snap, BackendInfo, BackendState, PortInfo, ServiceInfo, Snapshot};

use crate::config::{
    BackendConfig, Cidr, Config, Mode, PersistBy, Protocol, Role, SchedulerName, ServiceConfig,
};
use crate::neigh::{Mac, Neighbors};

/// A service's identity across reloads.
pub type ServiceKey = (Ipv4Addr, Protocol, u16);

#[derive(Debug, Clone, Default)]
pub struct Health {
    /// Passing checks (or no check configured and never failed).
    pub up: bool,
    pub ok_streak: u32,
    pub fail_streak: u32,
    pub last_latency: Option<Duration>,
    pub last_error: Option<String>,
    pub transitions: u64,
    pub probes: u64,
}

pub struct Runtime {
    pub cfg: Config,
    pub port_macs: Vec<Mac>,
    pub subnets: Vec<Vec<Cidr>>,
    service_ids: HashMap<ServiceKey, u16>,
    backend_ids: HashMap<(ServiceKey, Ipv4Addr), u32>,
    /// Backend id → (service position, backend position) in `cfg`: the control core looks
    /// backends up by id for every probe, and a search would make that O(backends).
    positions: HashMap<u32, (usize, usize)>,
    /// By backend id.
    pub health: HashMap<u32, Health>,
    /// `dsrlb ctl drain`/`undrain` overrides, by backend id (the file's `drain` otherwise).
    pub drain_override: HashMap<u32, bool>,
    pub neigh: Neighbors,
    epoch: u64,
}

/// One backend as the control core sees it.
#[derive(Debug, Clone)]
pub struct BackendView {
    pub id: u32,
    pub service: usize,
    pub ip: Ipv4Addr,
    pub weight: u32,
    pub port: u16,
    pub next_hop: Ipv4Addr,
    pub mac: Option<Mac>,
    pub drained: bool,
    pub health: Health,
    pub checked: bool,
    pub state: BackendState,
}

pub fn key_of(s: &ServiceConfig) -> ServiceKey {
    (s.vip, s.protocol, s.port)
}

impl Runtime {
    pub fn new(cfg: Config, port_macs: Vec<Mac>) -> Runtime {
        let neigh =
            Neighbors::new(Duration::from_secs_f64(cfg.arp.refresh), Duration::from_secs_f64(cfg.arp.expiry));
        let mut rt = Runtime {
            subnets: cfg.port_subnets(),
            cfg: cfg.clone(),
            port_macs,
            service_ids: HashMap::new(),
            backend_ids: HashMap::new(),
            positions: HashMap::new(),
            health: HashMap::new(),
            drain_override: HashMap::new(),
            neigh,
            epoch: 0,
        };
        rt.apply(cfg);
        rt
    }

    /// Take a new configuration (already validated; ports unchanged). Survivors keep their ids
    /// and health; new backends start down until their first check passes (up at once if the
    /// service has no check).
    pub fn apply(&mut self, cfg: Config) {
        let mut positions = HashMap::new();
        for (si, s) in cfg.services.iter().enumerate() {
            let k = key_of(s);
            let next = self.service_ids.len() as u16;
            self.service_ids.entry(k).or_insert(next);
            for (bi, b) in s.backends.iter().enumerate() {
                let next = self.backend_ids.len() as u32;
                let id = *self.backend_ids.entry((k, b.ip)).or_insert(next);
                positions.insert(id, (si, bi));
                self.health
                    .entry(id)
                    .or_insert_with(|| Health { up: s.health_check.is_none(), ..Health::default() });
            }
        }
        self.health.retain(|id, _| positions.contains_key(id));
        self.drain_override.retain(|id, _| positions.contains_key(id));
        self.positions = positions;
        self.cfg = cfg;
        let wanted = self.wanted_neighbors();
        self.neigh.set_wanted(wanted);
    }

    pub fn service_id(&self, s: &ServiceConfig) -> u16 {
        self.service_ids[&key_of(s)]
    }

    pub fn backend_id(&self, s: &ServiceConfig, ip: Ipv4Addr) -> u32 {
        self.backend_ids[&(key_of(s), ip)]
    }

    /// The service and the backend entry behind a backend id of the running configuration.
    pub fn backend_config(&self, id: u32) -> Option<(&ServiceConfig, &BackendConfig)> {
        let &(si, bi) = self.positions.get(&id)?;
        let s = self.cfg.services.get(si)?;
        Some((s, s.backends.get(bi)?))
    }

    /// The port toward `ip` and the next hop on it: the address itself when on a port's subnet,
    /// else that port's gateway (the server-side port first, in inline mode).
    pub fn route(&self, ip: Ipv4Addr) -> Option<(u16, Ipv4Addr)> {
        for (i, cs) in self.subnets.iter().enumerate() {
            if cs.iter().any(|c| c.contains(ip)) {
                return Some((i as u16, ip));
            }
        }
        let mut ports: Vec<usize> = (0..self.cfg.ports.len()).collect();
        ports.sort_by_key(|&i| self.cfg.ports[i].role != Role::Server);
        ports.into_iter().find_map(|i| self.cfg.ports[i].gateway.map(|g| (i as u16, g)))
    }

    /// The LB's own source address on `port` (first configured).
    pub fn lb_addr(&self, port: u16) -> Ipv4Addr {
        self.subnets[port as usize][0].addr
    }

    /// Ports on which the VIPs live (answer ARP, send gratuitous ARP): every `lan` port, or the
    /// `client` port inline.
    pub fn vip_ports(&self) -> Vec<u16> {
        (0..self.cfg.ports.len())
            .filter(|&i| self.cfg.ports[i].role != Role::Server)
            .map(|i| i as u16)
            .collect()
    }

    fn wanted_neighbors(&self) -> Vec<(u16, Ipv4Addr)> {
        let mut w: Vec<(u16, Ipv4Addr)> = Vec::new();
        for s in &self.cfg.services {
            for b in s.backends.iter().filter(|b| b.mac.is_none()) {
                if let Some(r) = self.route(b.ip) {
                    w.push(r);
                }
            }
        }
        // Inline: the client-side gateway, where server replies are routed.
        for (i, p) in self.cfg.ports.iter().enumerate() {
            if p.role == Role::Client {
                if let Some(g) = p.gateway {
                    w.push((i as u16, g));
                }
            }
        }
        w.sort();
        w.dedup();
        w
    }

    pub fn is_drained(&self, id: u32, file_drain: bool) -> bool {
        self.drain_override.get(&id).copied().unwrap_or(file_drain)
    }

    /// Every backend with its state, in configuration order.
    pub fn backends(&self, now: Instant) -> Vec<BackendView> {
        let mut v = Vec::new();
        for (si, s) in self.cfg.services.iter().enumerate() {
            for b in &s.backends {
                let id = self.backend_id(s, b.ip);
                let (port, next_hop) = self.route(b.ip).unwrap_or((0, b.ip));
                let mac = match &b.mac {
                    Some(m) => crate::config::parse_mac(m),
                    None => self.neigh.lookup(port, next_hop, now),
                };
                let health = self.health.get(&id).cloned().unwrap_or_default();
                let drained = self.is_drained(id, b.drain);
                let state = if !health.up || mac.is_none() {
                    BackendState::Down
                } else if drained {
                    BackendState::Draining
                } else {
                    BackendState::Up
                };
                v.push(BackendView {
                    id,
                    service: si,
                    ip: b.ip,
                    weight: b.weight,
                    port,
                    next_hop,
                    mac,
                    drained,
                    checked: s.health_check.is_some(),
                    health,
                    state,
                });
            }
        }
        v
    }

    /// The snapshot for the workers, from the current configuration and state.
    pub fn build_snapshot(&mut self, now: Instant) -> Result<Snapshot, snap::SnapshotError> {
        self.epoch += 1;
        let ports: Vec<PortInfo> = self
            .cfg
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| PortInfo {
                mac: self.port_macs[i],
                addrs: self.subnets[i].iter().map(|c| c.addr).collect(),
                mtu: p.mtu,
                role: match p.role {
                    Role::Lan => snap::PortRole::Lan,
                    Role::Client => snap::PortRole::Client,
                    Role::Server => snap::PortRole::Server,
                },
                gateway_mac: p.gateway.and_then(|g| self.neigh.lookup(i as u16, g, now)),
            })
            .collect();
        let backends = self.backends(now);
        let services = self
            .cfg
            .services
            .iter()
            .enumerate()
            .map(|(si, s)| ServiceInfo {
                id: self.service_id(s),
                vip: s.vip,
                proto: s.protocol.number(),
                port: s.port,
                mode: match s.mode {
                    Mode::L2 => snap::ForwardMode::L2,
                    Mode::Ipip => snap::ForwardMode::Ipip,
                    Mode::Dscp(c) => snap::ForwardMode::Dscp(c),
                },
                scheduler: match s.scheduler {
                    SchedulerName::Maglev => snap::Scheduler::Maglev,
                    SchedulerName::WeightedRoundRobin => snap::Scheduler::WeightedRoundRobin,
                    SchedulerName::LeastConnections => snap::Scheduler::LeastConnections,
                    SchedulerName::SourceHash => snap::Scheduler::SourceIpHash,
                    SchedulerName::DestinationHash => snap::Scheduler::DestinationIpHash,
                },
                persistence: s.persistence.as_ref().map(|p| snap::Persistence {
                    by: match p.by {
                        PersistBy::SourceIp => snap::PersistBy::SourceIp,
                        PersistBy::DestinationIp => snap::PersistBy::DestinationIp,
                    },
                    timeout_ms: secs_to_ms(p.timeout),
                }),
                tcp_idle_ms: secs_to_ms(s.tcp_idle_timeout),
                udp_idle_ms: secs_to_ms(s.udp_idle_timeout),
                closing_ms: secs_to_ms(s.closing_timeout),
                maglev_size: s.maglev_size,
                backends: backends
                    .iter()
                    .filter(|b| b.service == si)
                    .map(|b| BackendInfo {
                        id: b.id,
                        real_ip: b.ip,
                        weight: b.weight,
                        state: b.state,
                        port: b.port,
                        next_hop_mac: b.mac,
                    })
                    .collect(),
            })
            .collect();
        Snapshot::build(self.epoch, ports, services)
    }
}

fn secs_to_ms(s: f64) -> u32 {
    (s * 1000.0).round().clamp(1.0, u32::MAX as f64 / 4.0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra_backend: bool) -> Config {
        let b = if extra_backend { r#", (ip: "10.0.0.13")"# } else { "" };
        Config::parse(&format!(
            r#"#![enable(implicit_some)]
(
    ports: [(device: "net_null0", addresses: ["10.0.0.2/24"], gateway: "10.0.0.1")],
    services: [
        (vip: "10.0.0.100", port: 80, mode: l2, backends: [(ip: "10.0.0.11"), (ip: "10.0.0.12"){b}]),
        (vip: "10.0.0.101", port: 80, mode: ipip, health_check: (check: tcp),
         backends: [(ip: "192.168.7.5")]),
    ],
)"#
        ))
        .unwrap()
    }

    #[test]
    fn ids_survive_reload_and_routes_pick_next_hops() {
        let now = Instant::now();
        let mut rt = Runtime::new(cfg(false), vec![[2, 0, 0, 0, 0, 1]]);
        let s0 = rt.cfg.services[0].clone();
        let id11 = rt.backend_id(&s0, "10.0.0.11".parse().unwrap());
        assert_eq!(rt.route("10.0.0.11".parse().unwrap()), Some((0, "10.0.0.11".parse().unwrap())));
        assert_eq!(rt.route("192.168.7.5".parse().unwrap()), Some((0, "10.0.0.1".parse().unwrap())));
        // Nothing resolved yet: every backend is down, the snapshot still builds.
        let snap = rt.build_snapshot(now).unwrap();
        assert!(snap.services[0].backends.iter().all(|b| b.state == BackendState::Down));
        rt.neigh.learn(0, "10.0.0.11".parse().unwrap(), [2, 0, 0, 0, 0, 0x11], now);
        rt.neigh.learn(0, "10.0.0.1".parse().unwrap(), [2, 0, 0, 0, 0, 0x01], now);
        let v = rt.backends(now);
        assert_eq!(v[0].state, BackendState::Up);
        assert_eq!(v[1].state, BackendState::Down, "MAC unresolved");
        assert_eq!(v[2].state, BackendState::Down, "health check not yet passed");
        assert_eq!(v[2].mac, Some([2, 0, 0, 0, 0, 1]), "routed: the gateway's MAC");
        rt.apply(cfg(true));
        assert_eq!(rt.backend_id(&s0, "10.0.0.11".parse().unwrap()), id11, "same id after reload");
        assert_eq!(rt.backends(now).len(), 4);
        rt.drain_override.insert(id11, true);
        assert_eq!(rt.backends(now)[0].state, BackendState::Draining);
    }
}
