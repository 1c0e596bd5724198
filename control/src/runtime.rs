//! The control core's view of the world: the configuration, stable ids for services and
//! backends (kept across reloads, so flows keep their backends), health and drain state, and
//! MACs. From it the control core builds every snapshot it publishes to the workers.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use dataplane::snapshot::{
    self as snap, BackendInfo, BackendState, PortInfo, PortRole, ServiceInfo, Snapshot,
};
use dataplane::wire::{IpCidr, MacAddr};

use crate::config::{BackendConfig, Config, ServiceConfig, ServiceKey};
use crate::core::health::Health;
use crate::neigh::Neighbors;

pub struct Runtime {
    pub cfg: Config,
    pub port_macs: Vec<MacAddr>,
    pub subnets: Vec<Vec<IpCidr>>,
    service_ids: HashMap<ServiceKey, u16>,
    backend_ids: HashMap<(ServiceKey, IpAddr), u32>,
    /// Backend id → (service position, backend position) in `cfg`: the control core looks
    /// backends up by id for every probe, and a search would make that O(backends).
    positions: HashMap<u32, (usize, usize)>,
    /// By backend id.
    pub health: HashMap<u32, Health>,
    /// `dsrlb ctl drain`/`undrain` overrides, by backend id (the file's `drain` otherwise).
    pub drain_override: HashMap<u32, bool>,
    pub neigh: Neighbors,
    epoch: u64,
    /// Past the first configuration (backends added from now on start down).
    started: bool,
    /// When the start is settled whatever is still unresolved or unchecked.
    settle_by: Option<Instant>,
}

/// One backend as the control core sees it: what the snapshot gets, and what only the
/// control core knows about it.
#[derive(Debug, Clone)]
pub struct BackendView {
    pub info: BackendInfo,
    /// Position of its service in the configuration (and in the snapshot).
    pub service: usize,
    pub next_hop: IpAddr,
    pub drained: bool,
    pub checked: bool,
    pub health: Health,
}

impl Runtime {
    pub fn new(cfg: Config, port_macs: Vec<MacAddr>) -> Runtime {
        let mut neigh = Neighbors::new(cfg.arp.refresh.duration(), cfg.arp.expiry.duration());
        neigh.set_own_macs(&port_macs);
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
            started: false,
            settle_by: None,
        };
        rt.apply(cfg);
        rt.started = true;
        rt
    }

    /// Take a new configuration (already validated; ports unchanged). Survivors keep their ids
    /// and health. At start every backend counts as up until its checks say otherwise: the file
    /// describes a deployment that was serving (a restart must send open connections where
    /// they were, not to the first backends to pass a check). A backend a reload adds starts
    /// down until `rise` checks pass; one whose service has no check (any more) is up.
    pub fn apply(&mut self, cfg: Config) {
        let mut positions = HashMap::new();
        for (si, s) in cfg.services.iter().enumerate() {
            let k = s.key();
            let next = self.service_ids.len() as u16;
            self.service_ids.entry(k).or_insert(next);
            for (bi, b) in s.backends.iter().enumerate() {
                let next = self.backend_ids.len() as u32;
                let id = *self.backend_ids.entry((k, b.ip)).or_insert(next);
                positions.insert(id, (si, bi));
                let h = self
                    .health
                    .entry(id)
                    .or_insert_with(|| Health::new(!self.started || s.health_check.is_none()));
                if s.health_check.is_none() {
                    // Nothing checks it: whatever an earlier check said no longer holds.
                    *h = Health { transitions: h.transitions, probes: h.probes, ..Health::new(true) };
                }
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
        self.service_ids[&s.key()]
    }

    pub fn backend_id(&self, s: &ServiceConfig, ip: IpAddr) -> u32 {
        self.backend_ids[&(s.key(), ip)]
    }

    /// The service position, the service and the backend entry behind a backend id of the
    /// running configuration.
    pub fn backend_config(&self, id: u32) -> Option<(usize, &ServiceConfig, &BackendConfig)> {
        let &(si, bi) = self.positions.get(&id)?;
        let s = self.cfg.services.get(si)?;
        Some((si, s, s.backends.get(bi)?))
    }

    /// The port toward `ip` and the next hop on it: the address itself when on a port's subnet,
    /// else that port's gateway of the address's family (the server-side port first, in inline
    /// mode).
    pub fn route(&self, ip: IpAddr) -> Option<(u16, IpAddr)> {
        for (i, cs) in self.subnets.iter().enumerate() {
            if cs.iter().any(|c| c.contains(ip)) {
                return Some((i as u16, ip));
            }
        }
        let mut ports: Vec<usize> = (0..self.cfg.ports.len()).collect();
        ports.sort_by_key(|&i| self.cfg.ports[i].role != PortRole::Server);
        ports.into_iter().find_map(|i| self.gateway(i, ip.is_ipv6()).map(|g| (i as u16, g)))
    }

    /// Port `i`'s gateway of one family.
    pub fn gateway(&self, i: usize, v6: bool) -> Option<IpAddr> {
        let p = self.cfg.ports.get(i)?;
        if v6 {
            p.gateway6.map(IpAddr::V6)
        } else {
            p.gateway.map(IpAddr::V4)
        }
    }

    /// The LB's own IPv4 source address on `port` (first configured; ARP's sender).
    pub fn lb_addr(&self, port: u16) -> Option<Ipv4Addr> {
        self.subnets.get(port as usize)?.iter().find_map(|c| match c {
            IpCidr::V4(c) => Some(c.addr),
            IpCidr::V6(_) => None,
        })
    }

    /// The LB's own IPv6 source address on `port` (first configured; neighbour solicitations'
    /// source).
    pub fn lb_addr6(&self, port: u16) -> Option<Ipv6Addr> {
        self.subnets.get(port as usize)?.iter().find_map(|c| match c {
            IpCidr::V6(c) => Some(c.addr),
            IpCidr::V4(_) => None,
        })
    }

    /// Whether `ip` is one of the LB's own addresses (on any port).
    pub fn is_lb_addr(&self, ip: IpAddr) -> bool {
        self.subnets.iter().flatten().any(|c| c.addr() == ip)
    }

    /// Whether `ip` is a routing peer of `port` (its exception interface's) and `mac` the MAC it
    /// resolved to.
    pub fn is_peer(&self, port: u16, ip: IpAddr, mac: MacAddr, now: Instant) -> bool {
        let peers = self.cfg.ports.get(port as usize).and_then(|p| p.exception.as_ref()).map(|x| &x.peers);
        peers.is_some_and(|p| p.contains(&ip)) && self.neigh.lookup(port, ip, now) == Some(mac)
    }

    /// Whether `ip` is one of the LB's addresses on `port`.
    pub fn is_lb_addr_on(&self, port: u16, ip: IpAddr) -> bool {
        self.subnets.get(port as usize).is_some_and(|cs| cs.iter().any(|c| c.addr() == ip))
    }

    pub fn is_vip(&self, ip: IpAddr) -> bool {
        self.cfg.services.iter().any(|s| s.vip == ip)
    }

    /// Every VIP once, in order.
    pub fn vips(&self) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = self.cfg.services.iter().map(|s| s.vip).collect();
        v.sort();
        v.dedup();
        v
    }

    /// Ports on which the VIPs live (answer ARP, send gratuitous ARP): every `lan` port, or the
    /// `client` port inline.
    pub fn vip_ports(&self) -> Vec<u16> {
        (0..self.cfg.ports.len())
            .filter(|&i| self.cfg.ports[i].role != PortRole::Server)
            .map(|i| i as u16)
            .collect()
    }

    fn wanted_neighbors(&self) -> Vec<(u16, IpAddr)> {
        let mut w: Vec<(u16, IpAddr)> = Vec::new();
        for s in &self.cfg.services {
            for b in s.backends.iter().filter(|b| b.mac.is_none()) {
                if let Some(r) = self.route(b.ip) {
                    w.push(r);
                }
            }
        }
        for (i, p) in self.cfg.ports.iter().enumerate() {
            // Inline: the client-side gateway, where server replies are routed.
            if p.role == PortRole::Client {
                w.extend(self.gateway(i, false).map(|g| (i as u16, g)));
                w.extend(self.gateway(i, true).map(|g| (i as u16, g)));
            }
            // Routing peers: their frames are told apart by address and MAC.
            for &a in p.exception.iter().flat_map(|x| &x.peers) {
                w.push((i as u16, a));
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
                let mac = b.mac.or_else(|| self.neigh.lookup(port, next_hop, now));
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
                    info: BackendInfo {
                        id,
                        real_ip: b.ip,
                        weight: b.weight,
                        state,
                        port,
                        next_hop_mac: mac.map(|m| m.0),
                    },
                    service: si,
                    next_hop,
                    drained,
                    checked: s.health_check.is_some(),
                    health,
                });
            }
        }
        v
    }

    /// The snapshot for the workers, from the current configuration and state.
    pub fn build_snapshot(&mut self, now: Instant) -> Result<Snapshot, snap::SnapshotError> {
        // A start settles within the time the slowest check needs to give its first answer.
        let longest = self
            .cfg
            .services
            .iter()
            .filter_map(|s| s.health_check.as_ref())
            .map(|h| h.interval.duration() + h.timeout.duration())
            .max();
        self.settle_by
            .get_or_insert(now + longest.unwrap_or_default().max(std::time::Duration::from_secs(2)) * 2);
        self.epoch += 1;
        let ports: Vec<PortInfo> = self
            .cfg
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| PortInfo {
                mac: self.port_macs[i].0,
                addrs: self.subnets[i].iter().map(|c| c.addr()).collect(),
                gateway6_mac: self
                    .gateway(i, true)
                    .and_then(|g| self.neigh.lookup(i as u16, g, now))
                    .map(|m| m.0),
                mtu: p.mtu,
                role: p.role,
                gateway_mac: self
                    .gateway(i, false)
                    .and_then(|g| self.neigh.lookup(i as u16, g, now))
                    .map(|m| m.0),
                peers: p
                    .exception
                    .iter()
                    .flat_map(|x| &x.peers)
                    .filter_map(|&a| self.neigh.lookup(i as u16, a, now).map(|m| (a, m.0)))
                    .collect(),
            })
            .collect();
        let mut backends = self.backends(now);
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
                mode: s.mode,
                scheduler: s.scheduler,
                persistence: s
                    .persistence
                    .as_ref()
                    .map(|p| snap::Persistence { by: p.by, timeout_ms: p.timeout.millis() }),
                tcp_idle_ms: s.tcp_idle_timeout.millis(),
                udp_idle_ms: s.udp_idle_timeout.millis(),
                closing_ms: s.closing_timeout.millis(),
                syn_ms: s.tcp_syn_timeout.millis(),
                maglev_size: s.maglev_size,
                backends: backends.extract_if(.., |b| b.service == si).map(|b| b.info).collect(),
            })
            .collect();
        let mut snap = Snapshot::build(self.epoch, ports, services)?;
        snap.settled = self.settled(now);
        Ok(snap)
    }

    /// Every wanted neighbour resolved and every checked backend's health known (it has had a
    /// check's answer), or long enough after the start that waiting longer would not help.
    pub fn settled(&self, now: Instant) -> bool {
        if self.settle_by.is_some_and(|t| now >= t) {
            return true;
        }
        let resolved = self.neigh.list(now).iter().all(|(_, _, mac)| mac.is_some());
        let checked = self.cfg.services.iter().filter(|s| s.health_check.is_some());
        let known = checked
            .flat_map(|s| s.backends.iter().map(move |b| (s, b)))
            .all(|(s, b)| self.health.get(&self.backend_id(s, b.ip)).is_some_and(|h| h.probes > 0));
        resolved && known
    }
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
        let mut rt = Runtime::new(cfg(false), vec![MacAddr([2, 0, 0, 0, 0, 1])]);
        let s0 = rt.cfg.services[0].clone();
        let id11 = rt.backend_id(&s0, "10.0.0.11".parse().unwrap());
        assert_eq!(rt.route("10.0.0.11".parse().unwrap()), Some((0, "10.0.0.11".parse().unwrap())));
        assert_eq!(rt.route("192.168.7.5".parse().unwrap()), Some((0, "10.0.0.1".parse().unwrap())));
        // Nothing resolved yet: every backend is down, the snapshot still builds.
        let snap = rt.build_snapshot(now).unwrap();
        assert!(snap.services[0].backends.iter().all(|b| b.state == BackendState::Down));
        rt.neigh.assume(0, "10.0.0.11".parse().unwrap(), MacAddr([2, 0, 0, 0, 0, 0x11]), now);
        rt.neigh.assume(0, "10.0.0.1".parse().unwrap(), MacAddr([2, 0, 0, 0, 0, 0x01]), now);
        let v = rt.backends(now);
        assert_eq!(v[0].info.state, BackendState::Up);
        assert_eq!(v[1].info.state, BackendState::Down, "MAC unresolved");
        assert_eq!(v[2].info.state, BackendState::Up, "at start: up until its checks answer");
        assert_eq!(v[2].info.next_hop_mac, Some([2, 0, 0, 0, 0, 1]), "routed: the gateway's MAC");
        rt.apply(cfg(true));
        assert_eq!(rt.backend_id(&s0, "10.0.0.11".parse().unwrap()), id11, "same id after reload");
        assert_eq!(rt.backends(now).len(), 4);
        let mut checked = cfg(true);
        checked.services[0].health_check = checked.services[1].health_check.clone();
        checked.services[0].backends.push(crate::config::BackendConfig {
            ip: "10.0.0.14".parse().unwrap(),
            weight: 1,
            drain: false,
            mac: Some(MacAddr([2, 0, 0, 0, 0, 0x14])),
        });
        rt.apply(checked);
        let v = rt.backends(now);
        assert_eq!(
            v[3].info.state,
            BackendState::Down,
            "added by a reload to a checked service: down until checked"
        );
        assert_eq!(v[0].info.state, BackendState::Up, "survivors keep their state");
        rt.drain_override.insert(id11, true);
        assert_eq!(rt.backends(now)[0].info.state, BackendState::Draining);
    }
}

#[cfg(test)]
mod order {
    use super::*;

    fn runtime(backends: &str) -> Runtime {
        let cfg = Config::parse(&format!(
            r#"(
    ports: [(device: "net_null0", addresses: ["10.0.0.2/24"])],
    services: [(vip: "10.0.0.100", port: 80, mode: l2, backends: [{backends}])],
)"#
        ))
        .unwrap();
        let now = Instant::now();
        let mut rt = Runtime::new(cfg, vec![MacAddr([2, 0, 0, 0, 0, 0xfe])]);
        for b in 11..=20 {
            rt.neigh.assume(0, Ipv4Addr::new(10, 0, 0, b).into(), MacAddr([2, 0, 0, 0, 0, b]), now);
        }
        rt
    }

    /// Every Maglev slot as the real IP it sends to.
    fn table(rt: &mut Runtime) -> Vec<Ipv4Addr> {
        let snap = rt.build_snapshot(Instant::now()).unwrap();
        let m = snap.maglev(0);
        (0..m.len() as u64)
            .map(|h| {
                let id = m.lookup(h).unwrap();
                Ipv4Addr::from(snap.forward(0, id).unwrap().real_ip)
            })
            .collect()
    }

    #[test]
    fn files_listing_the_same_backends_in_another_order_build_the_same_table() {
        let ips: Vec<String> =
            (11..=20).map(|b| format!("(ip: \"10.0.0.{b}\", weight: {})", 1 + b % 3)).collect();
        let mut reversed = ips.clone();
        reversed.reverse();
        reversed.swap(2, 7);
        let (a, b) = (table(&mut runtime(&ips.join(", "))), table(&mut runtime(&reversed.join(", "))));
        assert_eq!(a.len(), 65537);
        assert!(a == b, "every slot sends to the same server");
    }
}
