//! The semantic checks of a configuration that parsed: each failure is the field path it is
//! about and what is wrong, so `Config::parse` can point at the line and column.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use dataplane::snapshot::{ForwardMode, PortRole};

use super::{Check, Config, HealthCheckConfig, Protocol, Seconds, ServiceConfig};

/// (field path, message)
pub type Invalid = (String, String);

/// The most flows a worker's table may be sized for (4 GiB of table).
pub const MAX_FLOW_TABLE: usize = 1 << 26;
/// The most persistence entries per worker.
pub const MAX_PERSISTENCE_TABLE: usize = 1 << 24;
/// The most services: their ids are 16 bits in the flow table.
pub const MAX_SERVICES: usize = 4096;
/// The most backends with a health check: each probe in flight holds a TCP port of the
/// prober's 28 000 (or an ICMP ident).
pub const MAX_CHECKED_BACKENDS: usize = 20_000;

pub fn validate(cfg: &Config) -> Result<(), Invalid> {
    ports(cfg)?;
    if let Some(m) = &cfg.mempool {
        in_range("mempool.mbufs", m.mbufs as u64, 1024, 1 << 24)?;
        in_range("mempool.data_room", m.data_room as u64, 256, u16::MAX as u64)?;
    }
    in_range("flow_table_size", cfg.flow_table_size as u64, 1024, MAX_FLOW_TABLE as u64)?;
    in_range("flow_table_size_ipv6", cfg.flow_table_size_ipv6 as u64, 1024, MAX_FLOW_TABLE as u64)?;
    in_range(
        "persistence_table_size",
        cfg.persistence_table_size as u64,
        1024,
        MAX_PERSISTENCE_TABLE as u64,
    )?;
    in_range("worker_idle_sleep_us", cfg.worker_idle_sleep_us, 0, 100_000)?;
    within(cfg.arp.refresh, 0.0, 3600.0).map_err(|e| ("arp.refresh".to_string(), e))?;
    if !(cfg.arp.expiry > cfg.arp.refresh && cfg.arp.expiry.get() <= 86_400.0) {
        return Err(("arp.expiry".into(), "must be longer than refresh and at most 86400 s".into()));
    }
    in_range("services", cfg.services.len() as u64, 0, MAX_SERVICES as u64)?;
    let checked: usize =
        cfg.services.iter().filter(|s| s.health_check.is_some()).map(|s| s.backends.len()).sum();
    if checked > MAX_CHECKED_BACKENDS {
        return Err((
            "services".into(),
            format!("{checked} backends with health checks: at most {MAX_CHECKED_BACKENDS} (one probe in flight each)"),
        ));
    }
    let lb_addrs: HashSet<IpAddr> =
        cfg.ports.iter().flat_map(|p| p.addresses.iter().map(|c| c.addr())).collect();
    let mut keys: HashMap<(IpAddr, Protocol, u16), usize> = HashMap::new();
    // DSCP code → (VIP, service index) per real server: one code means one VIP to a server.
    let mut dscp_use: HashMap<(IpAddr, u8), (IpAddr, usize)> = HashMap::new();
    for (i, s) in cfg.services.iter().enumerate() {
        let at = |f: &str| format!("services[{i}].{f}");
        if let Some(j) = keys.insert(s.key(), i) {
            return Err((
                at("vip"),
                format!(
                    "{} {:?} is already defined by services[{j}]",
                    super::with_port(s.vip, &s.port.to_string()),
                    s.protocol
                ),
            ));
        }
        if lb_addrs.contains(&s.vip) {
            return Err((at("vip"), format!("{} is an LB address, not a VIP", s.vip)));
        }
        if !unicast(s.vip) {
            return Err((at("vip"), format!("{} is not a unicast address a client can reach", s.vip)));
        }
        if s.vip.is_ipv6() && !cfg.ports.iter().any(|p| p.addresses.iter().any(|c| c.is_v6())) {
            return Err((
                at("vip"),
                "an IPv6 VIP needs an IPv6 address on a port (neighbour discovery, probes)".into(),
            ));
        }
        service(cfg, i, s, &lb_addrs)?;
        if let ForwardMode::Dscp(code) = s.mode {
            for b in &s.backends {
                if let Some((other, j)) = dscp_use.insert((b.ip, code), (s.vip, i)) {
                    if other != s.vip {
                        return Err((
                            at("mode"),
                            format!(
                                "DSCP {code} already marks VIP {other} (services[{j}]) for server {}",
                                b.ip
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

fn ports(cfg: &Config) -> Result<(), Invalid> {
    if cfg.ports.is_empty() {
        return Err(("ports".into(), "at least one port is needed".into()));
    }
    let count = |r: PortRole| cfg.ports.iter().filter(|p| p.role == r).count();
    let (lan, client, server) = (count(PortRole::Lan), count(PortRole::Client), count(PortRole::Server));
    if lan > 0 && (client > 0 || server > 0) {
        return Err(("ports".into(), "mix of one-arm (lan) and inline (client/server) ports".into()));
    }
    if lan == 0 && (client != 1 || server != 1) {
        return Err(("ports".into(), "inline mode needs exactly one client and one server port".into()));
    }
    for (i, p) in cfg.ports.iter().enumerate() {
        let at = |f: &str| format!("ports[{i}].{f}");
        if p.device.trim().is_empty() {
            return Err((at("device"), "empty device".into()));
        }
        if p.addresses.is_empty() {
            return Err((at("addresses"), "the LB needs an address on every port (ARP, probes)".into()));
        }
        if p.mac.is_some_and(|m| !m.is_unicast()) {
            return Err((at("mac"), "not a unicast MAC address".into()));
        }
        if !(576..=9600).contains(&p.mtu) {
            return Err((at("mtu"), format!("MTU {} outside 576..=9600", p.mtu)));
        }
        if let Some(gw) = p.gateway {
            if !p.addresses.iter().any(|c| c.contains(gw.into())) {
                return Err((at("gateway"), format!("gateway {gw} is not on any of the port's subnets")));
            }
        }
        if let Some(gw) = p.gateway6 {
            let link_local = dataplane::wire::ipv6::is_link_local(gw.octets());
            if !link_local && !p.addresses.iter().any(|c| c.contains(gw.into())) {
                return Err((
                    at("gateway6"),
                    format!("gateway {gw} is neither link-local nor on any of the port's IPv6 subnets"),
                ));
            }
            if !p.addresses.iter().any(|c| c.is_v6()) {
                return Err((at("gateway6"), "an IPv6 gateway needs an IPv6 address on the port".into()));
            }
        }
        for (k, c) in p.addresses.iter().enumerate() {
            let a = c.addr();
            if !unicast(a) || (a.is_ipv6() && c.prefix() > 127) {
                return Err((at(&format!("addresses[{k}]")), format!("{c}: not a unicast host address")));
            }
        }
        if p.addresses.iter().any(|c| c.is_v6()) && p.mtu < dataplane::wire::ipv6::MIN_MTU {
            return Err((at("mtu"), format!("MTU {} below IPv6's minimum of 1280", p.mtu)));
        }
        if let Some(x) = &p.exception {
            let vdev = x.device.starts_with("net_") || x.device.starts_with("virtio_user");
            if !vdev || x.iface().is_none_or(|i| i.is_empty() || i.len() > 15) {
                return Err((
                    at("exception.device"),
                    "a virtual device with its kernel interface named by iface= (at most 15 characters)"
                        .into(),
                ));
            }
            if let Some((k, a)) =
                x.peers.iter().enumerate().find(|(_, a)| !p.addresses.iter().any(|c| c.contains(**a)))
            {
                return Err((
                    at(&format!("exception.peers[{k}]")),
                    format!(
                        "{a} is not on any of the port's subnets (a peer is a directly connected router)"
                    ),
                ));
            }
            if cfg.ports.iter().take(i).any(|o| o.exception.as_ref().and_then(|o| o.iface()) == x.iface()) {
                return Err((
                    at("exception.device"),
                    "another port already uses this kernel interface".into(),
                ));
            }
        }
    }
    if let Some(a) = &cfg.announce {
        if a.table == 0 || (253..=255).contains(&a.table) {
            return Err(("announce.table".into(), "0 and 253..=255 are the kernel's own tables".into()));
        }
        within(a.drain_time, 0.0, 600.0).map_err(|e| ("announce.drain_time".to_string(), e))?;
        if let Some(i) = cfg.ports.iter().position(|p| p.role != PortRole::Server && p.exception.is_none()) {
            return Err((
                format!("ports[{i}].exception"),
                "announce needs an exception interface on every port where VIPs live (the routes go on it)"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// A unicast address a host can have: not unspecified, loopback, multicast or broadcast.
fn unicast(a: IpAddr) -> bool {
    !(a.is_unspecified() || a.is_loopback() || a.is_multicast() || a == IpAddr::from([255, 255, 255, 255]))
}

fn service(cfg: &Config, i: usize, s: &ServiceConfig, lb_addrs: &HashSet<IpAddr>) -> Result<(), Invalid> {
    let at = |f: &str| format!("services[{i}].{f}");
    s.mode.check().map_err(|e| (at("mode"), e))?;
    dataplane::maglev::check_size(s.maglev_size).map_err(|e| (at("maglev_size"), e))?;
    for (name, v) in [
        ("tcp_idle_timeout", s.tcp_idle_timeout),
        ("udp_idle_timeout", s.udp_idle_timeout),
        ("closing_timeout", s.closing_timeout),
        ("tcp_syn_timeout", s.tcp_syn_timeout),
    ] {
        within(v, 0.0, 86_400.0).map_err(|e| (at(name), e))?;
    }
    if let Some(p) = &s.persistence {
        within(p.timeout, 0.0, 86_400.0).map_err(|e| (at("persistence.timeout"), e))?;
    }
    if let Some(h) = &s.health_check {
        health_check(s, h).map_err(|(f, e)| (at(&format!("health_check{f}")), e))?;
    }
    in_range(&at("backends"), s.backends.len() as u64, 0, 65_536)?;
    let mut seen = HashSet::new();
    for (k, b) in s.backends.iter().enumerate() {
        let bat = |f: &str| format!("services[{i}].backends[{k}].{f}");
        if !seen.insert(b.ip) {
            return Err((bat("ip"), format!("{} listed twice", b.ip)));
        }
        if lb_addrs.contains(&b.ip) {
            return Err((bat("ip"), format!("{} is an LB address", b.ip)));
        }
        if !unicast(b.ip) {
            return Err((bat("ip"), format!("{} is not a unicast address", b.ip)));
        }
        if !dataplane::snapshot::families_fit(s.vip, b.ip, s.mode) {
            return Err((
                bat("ip"),
                format!(
                    "{} for the {} VIP {}: a backend has the VIP's family, except an IPv6 backend of an \
                     IPv4 VIP in ipip (4in6)",
                    b.ip,
                    if s.vip.is_ipv6() { "IPv6" } else { "IPv4" },
                    s.vip
                ),
            ));
        }
        if b.ip.is_ipv6() && !cfg.ports.iter().any(|p| p.addresses.iter().any(|c| c.is_v6())) {
            return Err((bat("ip"), "an IPv6 backend needs an IPv6 address on a port".into()));
        }
        let on_link = cfg.ports.iter().any(|p| p.addresses.iter().any(|c| c.contains(b.ip)));
        let has_gateway =
            cfg.ports.iter().any(|p| if b.ip.is_ipv6() { p.gateway6.is_some() } else { p.gateway.is_some() });
        match s.mode {
            ForwardMode::L2 if !on_link => {
                return Err((
                    bat("ip"),
                    format!(
                        "l2 backend {} is outside every port's subnet (l2 DSR needs the same segment)",
                        b.ip
                    ),
                ));
            }
            ForwardMode::Ipip | ForwardMode::Dscp(_) if !on_link && !has_gateway => {
                return Err((
                    bat("ip"),
                    format!(
                        "{} is not on a port's subnet and no port has a{} gateway",
                        b.ip,
                        if b.ip.is_ipv6() { "n IPv6 (gateway6)" } else { "n IPv4" }
                    ),
                ));
            }
            _ => {}
        }
        if b.weight > 1_000_000 {
            return Err((bat("weight"), "at most 1000000".into()));
        }
    }
    Ok(())
}

/// A health check's fields; the path returned is relative to `health_check`.
fn health_check(s: &ServiceConfig, h: &HealthCheckConfig) -> Result<(), Invalid> {
    if !(0.1..=3600.0).contains(&h.interval.get()) {
        return Err((".interval".into(), format!("{} outside [0.1, 3600] s", h.interval)));
    }
    if !(h.timeout.get() > 0.0 && h.timeout <= h.interval) {
        return Err((".timeout".into(), "must be > 0 and no longer than the interval".into()));
    }
    in_range(".rise", h.rise as u64, 1, 100)?;
    in_range(".fall", h.fall as u64, 1, 100)?;
    if let Check::Http { path, status } = &h.check {
        if !path.starts_with('/')
            || path.contains(char::is_whitespace)
            || path.len() > 1024
            || !path.is_ascii()
        {
            return Err((
                ".check".into(),
                format!("HTTP path {path:?}: must start with /, be ASCII without spaces, at most 1024 bytes"),
            ));
        }
        if !(100..=599).contains(status) {
            return Err((".check".into(), format!("HTTP status {status} outside 100..=599")));
        }
    }
    if h.port.unwrap_or(s.port) == 0 && !matches!(h.check, Check::Icmp) {
        return Err((".port".into(), "an every-port service needs a port to probe".into()));
    }
    if s.protocol == Protocol::Udp && !matches!(h.check, Check::Icmp) {
        return Err((".check".into(), "UDP services can be checked by icmp only".into()));
    }
    Ok(())
}

/// `v` in `[low, high]`, or the field `at` is named with the range.
fn in_range(at: &str, v: u64, low: u64, high: u64) -> Result<(), Invalid> {
    if (low..=high).contains(&v) {
        Ok(())
    } else {
        Err((at.to_string(), format!("{v} outside {low}..={high}")))
    }
}

/// `v` in `(low, high]`.
fn within(v: Seconds, low: f64, high: f64) -> Result<(), String> {
    if v.get() > low && v.get() <= high {
        Ok(())
    } else {
        Err(format!("{v} outside ({low}, {high}]"))
    }
}
