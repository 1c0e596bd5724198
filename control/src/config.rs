//! The configuration file (RON, read with serde) and its validation. Every error names the
//! field path and the line:column it comes from; a file that fails changes nothing.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::locate::locate;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// EAL arguments (cores, memory, devices). `dsrlb run ... -- ARGS` appends more.
    #[serde(default)]
    pub eal: Vec<String>,
    pub ports: Vec<PortConfig>,
    /// Flows each worker can hold.
    #[serde(default = "defaults::flow_table_size")]
    pub flow_table_size: usize,
    /// Persistence entries each worker can hold.
    #[serde(default = "defaults::persistence_table_size")]
    pub persistence_table_size: usize,
    #[serde(default = "defaults::control_socket")]
    pub control_socket: PathBuf,
    /// Prometheus metrics listener; `None` turns it off.
    #[serde(default = "defaults::metrics")]
    pub metrics: Option<SocketAddr>,
    #[serde(default)]
    pub arp: ArpConfig,
    /// Workers sleep this long (µs) when a poll finds nothing. 0 (default): busy-poll, as an
    /// appliance should; a few µs spares the CPU on shared test machines.
    #[serde(default)]
    pub worker_idle_sleep_us: u64,
    /// Packet buffers: how many and their data room (default: enough for every queue; a
    /// capture replayed by net_pcap with infinite_rx needs one per packet of the file).
    #[serde(default)]
    pub mempool: Option<MempoolConfig>,
    pub services: Vec<ServiceConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MempoolConfig {
    pub mbufs: u32,
    /// Bytes per mbuf including the 128-byte headroom (IPIP needs 20 of it).
    #[serde(default = "defaults::data_room")]
    pub data_room: u16,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// One-arm: clients and servers reach the LB on this port.
    Lan,
    /// Inline: the client side.
    Client,
    /// Inline: the server side; the servers' default gateway is the LB's address here.
    Server,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// A PCI address (`0000:3b:00.0`) or a vdev string (`net_tap0,iface=lb0`).
    pub device: String,
    #[serde(default = "defaults::role")]
    pub role: Role,
    /// The LB's own addresses on this port, with prefix length (`10.0.0.2/24`).
    pub addresses: Vec<String>,
    #[serde(default = "defaults::mtu")]
    pub mtu: u16,
    /// Next hop for servers or clients not on this port's subnets.
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArpConfig {
    /// Re-resolve every neighbour this often (seconds).
    #[serde(default = "defaults::arp_refresh")]
    pub refresh: f64,
    /// A neighbour not confirmed for this long is unresolved (its backends count as down).
    #[serde(default = "defaults::arp_expiry")]
    pub expiry: f64,
}

impl Default for ArpConfig {
    fn default() -> Self {
        ArpConfig { refresh: defaults::arp_refresh(), expiry: defaults::arp_expiry() }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    L2,
    Ipip,
    /// L3DSR without a tunnel, with this DSCP code (1..=63).
    Dscp(u8),
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SchedulerName {
    Maglev,
    WeightedRoundRobin,
    LeastConnections,
    SourceHash,
    DestinationHash,
}

impl SchedulerName {
    /// The name as written in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            SchedulerName::Maglev => "maglev",
            SchedulerName::WeightedRoundRobin => "weighted_round_robin",
            SchedulerName::LeastConnections => "least_connections",
            SchedulerName::SourceHash => "source_hash",
            SchedulerName::DestinationHash => "destination_hash",
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PersistBy {
    SourceIp,
    DestinationIp,
}

impl PersistBy {
    pub fn name(self) -> &'static str {
        match self {
            PersistBy::SourceIp => "source_ip",
            PersistBy::DestinationIp => "destination_ip",
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PersistenceConfig {
    pub by: PersistBy,
    /// Seconds a client keeps its backend after its last new connection.
    pub timeout: f64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// ICMP echo to the VIP along the DSR path.
    Icmp,
    /// TCP connect to the VIP along the DSR path.
    Tcp,
    /// HTTP GET `path`; healthy when the status is `status`.
    Http { path: String, status: u16 },
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckConfig {
    pub check: Check,
    /// Port probed (default: the service port).
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default = "defaults::interval")]
    pub interval: f64,
    #[serde(default = "defaults::timeout")]
    pub timeout: f64,
    /// Consecutive successes to mark a backend up.
    #[serde(default = "defaults::rise")]
    pub rise: u32,
    /// Consecutive failures to mark it down.
    #[serde(default = "defaults::fall")]
    pub fall: u32,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    pub ip: Ipv4Addr,
    #[serde(default = "defaults::weight")]
    pub weight: u32,
    /// Keep existing flows, take no new ones.
    #[serde(default)]
    pub drain: bool,
    /// A static MAC for the next hop (no ARP; e.g. a server that must never be re-resolved,
    /// or a benchmark sink that answers nothing).
    #[serde(default)]
    pub mac: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub vip: Ipv4Addr,
    /// 0: every port.
    #[serde(default)]
    pub port: u16,
    #[serde(default = "defaults::protocol")]
    pub protocol: Protocol,
    pub mode: Mode,
    #[serde(default = "defaults::scheduler")]
    pub scheduler: SchedulerName,
    #[serde(default)]
    pub persistence: Option<PersistenceConfig>,
    #[serde(default = "defaults::tcp_idle")]
    pub tcp_idle_timeout: f64,
    #[serde(default = "defaults::udp_idle")]
    pub udp_idle_timeout: f64,
    /// Idle timeout once the client sent FIN or RST.
    #[serde(default = "defaults::closing")]
    pub closing_timeout: f64,
    #[serde(default = "defaults::maglev_size")]
    pub maglev_size: u32,
    #[serde(default)]
    pub health_check: Option<HealthCheckConfig>,
    pub backends: Vec<BackendConfig>,
}

mod defaults {
    use super::*;
    pub fn flow_table_size() -> usize {
        1 << 20
    }
    pub fn persistence_table_size() -> usize {
        1 << 16
    }
    pub fn control_socket() -> PathBuf {
        PathBuf::from("/run/dsrlb.sock")
    }
    pub fn metrics() -> Option<SocketAddr> {
        Some(SocketAddr::from(([127, 0, 0, 1], 9180)))
    }
    pub fn role() -> Role {
        Role::Lan
    }
    pub fn mtu() -> u16 {
        1500
    }
    pub fn arp_refresh() -> f64 {
        30.0
    }
    pub fn arp_expiry() -> f64 {
        90.0
    }
    pub fn protocol() -> Protocol {
        Protocol::Tcp
    }
    pub fn scheduler() -> SchedulerName {
        SchedulerName::Maglev
    }
    pub fn tcp_idle() -> f64 {
        300.0
    }
    pub fn udp_idle() -> f64 {
        30.0
    }
    pub fn closing() -> f64 {
        10.0
    }
    pub fn maglev_size() -> u32 {
        dataplane::maglev::DEFAULT_SIZE
    }
    pub fn interval() -> f64 {
        2.0
    }
    pub fn timeout() -> f64 {
        1.0
    }
    pub fn rise() -> u32 {
        2
    }
    pub fn fall() -> u32 {
        3
    }
    pub fn weight() -> u32 {
        1
    }
    pub fn data_room() -> u16 {
        2048 + 128
    }
}

/// Parse `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let mut m = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        m[i] = u8::from_str_radix(p, 16).ok()?;
    }
    Some(m)
}

/// A configuration error: what, where in the structure, and where in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() { "(top level)" } else { &self.path };
        if self.line > 0 {
            write!(f, "{}:{}: {}: {}", self.line, self.column, path, self.message)
        } else {
            write!(f, "{}: {}", path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// A port address with its subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = s.split_once('/').ok_or_else(|| format!("{s:?} is not ADDRESS/PREFIX"))?;
        let addr: Ipv4Addr = a.parse().map_err(|_| format!("{a:?} is not an IPv4 address"))?;
        let prefix: u8 = p.parse().map_err(|_| format!("{p:?} is not a prefix length"))?;
        if prefix > 32 {
            return Err(format!("prefix length {prefix} is over 32"));
        }
        Ok(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) };
        u32::from(ip) & mask == u32::from(self.addr) & mask
    }
}

impl Config {
    /// Read, parse and validate a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: String::new(),
            line: 0,
            column: 0,
            message: format!("cannot read {}: {e}", path.display()),
        })?;
        Config::parse(&text)
    }

    /// Parse and validate configuration text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let cfg = parse_ron(text)?;
        cfg.validate().map_err(|(path, message)| {
            let (line, column) = locate(text, &path).unwrap_or((0, 0));
            ConfigError { path, line, column, message }
        })?;
        Ok(cfg)
    }

    /// Advice that does not stop the configuration from loading: settings that work but that
    /// an operator probably wants otherwise. Each names the field.
    pub fn advisories(&self) -> Vec<String> {
        let mut v = Vec::new();
        for (i, s) in self.services.iter().enumerate() {
            let uses_maglev = s.persistence.is_some()
                || matches!(
                    s.scheduler,
                    SchedulerName::Maglev | SchedulerName::SourceHash | SchedulerName::DestinationHash
                );
            let n = s.backends.iter().filter(|b| b.weight > 0).count();
            let want = dataplane::maglev::size_for_backends(n);
            if uses_maglev && (s.maglev_size as u64) < want {
                v.push(format!(
                    "services[{i}].maglev_size: {} slots for {n} backends: removing one backend may move \
                     about {:.1}x its share of new-flow slots; a prime of at least 10 x backends² (e.g. {}) \
                     keeps it within 1.5x (docs/modes.md)",
                    s.maglev_size,
                    1.0 + 4.0 * (n * n) as f64 / s.maglev_size as f64,
                    dataplane::maglev::next_prime(want)
                ));
            }
        }
        v
    }

    /// Which ports have which subnets, by index.
    pub fn port_subnets(&self) -> Vec<Vec<Cidr>> {
        self.ports.iter().map(|p| p.addresses.iter().filter_map(|a| Cidr::parse(a).ok()).collect()).collect()
    }

    /// Semantic checks; the error is (field path, message).
    fn validate(&self) -> Result<(), (String, String)> {
        if self.ports.is_empty() {
            return Err(("ports".into(), "at least one port is needed".into()));
        }
        let roles: Vec<Role> = self.ports.iter().map(|p| p.role).collect();
        let lan = roles.iter().filter(|r| **r == Role::Lan).count();
        let client = roles.iter().filter(|r| **r == Role::Client).count();
        let server = roles.iter().filter(|r| **r == Role::Server).count();
        if lan > 0 && (client > 0 || server > 0) {
            return Err(("ports".into(), "mix of one-arm (lan) and inline (client/server) ports".into()));
        }
        if lan == 0 && (client != 1 || server != 1) {
            return Err(("ports".into(), "inline mode needs exactly one client and one server port".into()));
        }
        let mut lb_addrs = HashSet::new();
        for (i, p) in self.ports.iter().enumerate() {
            let at = |f: &str| format!("ports[{i}].{f}");
            if p.device.trim().is_empty() {
                return Err((at("device"), "empty device".into()));
            }
            if p.addresses.is_empty() {
                return Err((at("addresses"), "the LB needs an address on every port (ARP, probes)".into()));
            }
            for (k, a) in p.addresses.iter().enumerate() {
                let c = Cidr::parse(a).map_err(|e| (format!("ports[{i}].addresses[{k}]"), e))?;
                lb_addrs.insert(c.addr);
            }
            if !(576..=9600).contains(&p.mtu) {
                return Err((at("mtu"), format!("MTU {} outside 576..=9600", p.mtu)));
            }
            if let Some(gw) = p.gateway {
                if !self.port_subnets()[i].iter().any(|c| c.contains(gw)) {
                    return Err((at("gateway"), format!("gateway {gw} is not on any of the port's subnets")));
                }
            }
        }
        if let Some(m) = &self.mempool {
            if m.mbufs < 1024 || m.data_room < 256 {
                return Err(("mempool".into(), "at least 1024 mbufs of at least 256 bytes".into()));
            }
        }
        if self.flow_table_size < 1024 {
            return Err(("flow_table_size".into(), "at least 1024 flows".into()));
        }
        if self.arp.refresh <= 0.0 || self.arp.expiry <= self.arp.refresh {
            return Err(("arp".into(), "refresh must be > 0 and expiry longer than refresh".into()));
        }
        let subnets = self.port_subnets();
        let mut keys: HashMap<(Ipv4Addr, Protocol, u16), usize> = HashMap::new();
        // DSCP code → (VIP, service index) per real server: one code means one VIP to a server.
        let mut dscp_use: HashMap<(Ipv4Addr, u8), (Ipv4Addr, usize)> = HashMap::new();
        for (i, s) in self.services.iter().enumerate() {
            let at = |f: &str| format!("services[{i}].{f}");
            if let Some(j) = keys.insert((s.vip, s.protocol, s.port), i) {
                return Err((
                    at("vip"),
                    format!("{}:{} {:?} is already defined by services[{j}]", s.vip, s.port, s.protocol),
                ));
            }
            if lb_addrs.contains(&s.vip) {
                return Err((at("vip"), format!("{} is an LB address, not a VIP", s.vip)));
            }
            if let Mode::Dscp(code) = s.mode {
                if !(1..=63).contains(&code) {
                    return Err((at("mode"), format!("DSCP {code} outside 1..=63")));
                }
            }
            if !dataplane::maglev::is_prime(s.maglev_size) || s.maglev_size < 251 {
                return Err((at("maglev_size"), format!("{} is not a prime >= 251", s.maglev_size)));
            }
            for (name, v) in [
                ("tcp_idle_timeout", s.tcp_idle_timeout),
                ("udp_idle_timeout", s.udp_idle_timeout),
                ("closing_timeout", s.closing_timeout),
            ] {
                if !(v > 0.0 && v <= 86_400.0) {
                    return Err((at(name), format!("{v} s outside (0, 86400]")));
                }
            }
            if let Some(p) = &s.persistence {
                if !(p.timeout > 0.0 && p.timeout <= 86_400.0) {
                    return Err((at("persistence.timeout"), format!("{} s outside (0, 86400]", p.timeout)));
                }
            }
            if let Some(h) = &s.health_check {
                if h.interval.is_nan() || h.interval < 0.1 {
                    return Err((at("health_check.interval"), "at least 0.1 s".into()));
                }
                if !(h.timeout > 0.0 && h.timeout <= h.interval) {
                    return Err((
                        at("health_check.timeout"),
                        "must be > 0 and no longer than the interval".into(),
                    ));
                }
                if h.rise == 0 || h.fall == 0 {
                    return Err((at("health_check"), "rise and fall must be at least 1".into()));
                }
                if let Check::Http { path, status } = &h.check {
                    if !path.starts_with('/') || path.contains(char::is_whitespace) {
                        return Err((
                            at("health_check.check"),
                            format!("HTTP path {path:?} must start with / and hold no spaces"),
                        ));
                    }
                    if !(100..=599).contains(status) {
                        return Err((
                            at("health_check.check"),
                            format!("HTTP status {status} outside 100..=599"),
                        ));
                    }
                }
                if (h.port.unwrap_or(s.port) == 0) && !matches!(h.check, Check::Icmp) {
                    return Err((
                        at("health_check.port"),
                        "an every-port service needs a port to probe".into(),
                    ));
                }
                if s.protocol == Protocol::Udp && !matches!(h.check, Check::Icmp) {
                    return Err((
                        at("health_check.check"),
                        "UDP services can be checked by icmp only".into(),
                    ));
                }
            }
            let mut seen = HashSet::new();
            for (k, b) in s.backends.iter().enumerate() {
                let bat = |f: &str| format!("services[{i}].backends[{k}].{f}");
                if !seen.insert(b.ip) {
                    return Err((bat("ip"), format!("{} listed twice", b.ip)));
                }
                if lb_addrs.contains(&b.ip) {
                    return Err((bat("ip"), format!("{} is an LB address", b.ip)));
                }
                let on_link = subnets.iter().any(|cs| cs.iter().any(|c| c.contains(b.ip)));
                match s.mode {
                    Mode::L2 if !on_link => {
                        return Err((
                            bat("ip"),
                            format!("l2 backend {} is outside every port's subnet (l2 DSR needs the same segment)", b.ip),
                        ));
                    }
                    Mode::Ipip | Mode::Dscp(_)
                        if !on_link && self.ports.iter().all(|p| p.gateway.is_none()) =>
                    {
                        return Err((
                            bat("ip"),
                            format!("{} is not on a port's subnet and no port has a gateway", b.ip),
                        ));
                    }
                    _ => {}
                }
                if let Some(m) = &b.mac {
                    if parse_mac(m).is_none() {
                        return Err((bat("mac"), format!("{m:?} is not a MAC address (aa:bb:cc:dd:ee:ff)")));
                    }
                }
                if b.weight > 1_000_000 {
                    return Err((bat("weight"), "at most 1000000".into()));
                }
                if let Mode::Dscp(code) = s.mode {
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
}

/// Parse RON into `Config`, reporting the field path and the position of a syntax or type error.
fn parse_ron(text: &str) -> Result<Config, ConfigError> {
    match ron::from_str::<Config>(text) {
        Ok(c) => Ok(c),
        Err(spanned) => {
            // A second pass through serde_path_to_error recovers where in the structure it was.
            let path = match ron::Deserializer::from_str(text) {
                Ok(mut de) => match serde_path_to_error::deserialize::<_, Config>(&mut de) {
                    Err(e) => e.path().to_string(),
                    Ok(_) => String::new(),
                },
                Err(_) => String::new(),
            };
            let path = if path == "." { String::new() } else { path };
            // Point at the start of the field when the text has it; ron's own position (after
            // the token) otherwise, e.g. for a syntax error.
            let (line, column) = crate::locate::locate_exact(text, &path)
                .filter(|_| !path.is_empty())
                .unwrap_or((spanned.position.line, spanned.position.col));
            Err(ConfigError { path, line, column, message: spanned.code.to_string() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"#![enable(implicit_some)]
(
    eal: ["-l", "0-1", "--no-huge"],
    ports: [(device: "net_tap0,iface=lb0", addresses: ["10.0.0.2/24"], gateway: "10.0.0.1")],
    services: [
        (vip: "10.0.0.100", port: 80, mode: l2,
         health_check: (check: http(path: "/index.html", status: 200), interval: 1.0, timeout: 0.5),
         backends: [(ip: "10.0.0.11"), (ip: "10.0.0.12", weight: 3)]),
        (vip: "10.0.0.101", port: 80, mode: dscp(7), backends: [(ip: "10.0.0.11")]),
        (vip: "10.0.0.102", port: 53, protocol: udp, mode: ipip, scheduler: source_hash,
         persistence: (by: source_ip, timeout: 60.0), backends: [(ip: "192.168.50.5", drain: true)]),
    ],
)
"#;

    fn err(text: &str) -> ConfigError {
        Config::parse(text).expect_err("must be rejected")
    }

    #[test]
    fn good_config_parses_with_defaults() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.ports[0].role, Role::Lan);
        assert_eq!(c.ports[0].mtu, 1500);
        assert_eq!(c.services[0].backends[1].weight, 3);
        assert_eq!(c.services[1].mode, Mode::Dscp(7));
        assert_eq!(c.services[2].protocol, Protocol::Udp);
        assert!(c.services[2].backends[0].drain);
        assert_eq!(c.services[0].health_check.as_ref().unwrap().rise, 2);
        assert_eq!(c.metrics, Some("127.0.0.1:9180".parse().unwrap()));
    }

    #[test]
    fn maglev_table_too_small_for_its_backends_is_advised_not_refused() {
        assert!(Config::parse(GOOD).unwrap().advisories().is_empty());
        let many: String = (1..=120).map(|i| format!("(ip: \"10.0.1.{i}\"), ")).collect();
        let text = GOOD.replace(r#"backends: [(ip: "10.0.0.11")]),"#, &format!("backends: [{many}]),"));
        let c = Config::parse(&text).expect("a small table is allowed");
        let a = c.advisories();
        assert_eq!(a.len(), 1, "{a:?}");
        assert!(a[0].starts_with("services[1].maglev_size: 65537 slots for 120 backends"), "{}", a[0]);
        assert!(a[0].contains("144013"), "suggests the next prime above 10 x 120²: {}", a[0]);
        let fixed =
            Config::parse(&text.replace("mode: dscp(7),", "mode: dscp(7), maglev_size: 144013,")).unwrap();
        assert!(fixed.advisories().is_empty());
    }

    #[test]
    fn unknown_field_names_path_and_position() {
        let e = err(&GOOD.replace("weight: 3", "wieght: 3"));
        assert_eq!(e.path, "services[0].backends[1].wieght");
        assert_eq!((e.line, e.column), (8, 58));
        assert!(e.message.contains("wieght"), "{e}");
    }

    #[test]
    fn bad_value_type_and_unknown_mode() {
        let e = err(&GOOD.replace("mode: l2", "mode: dsr"));
        assert_eq!(e.path, "services[0].mode");
        assert!(e.message.contains("dsr"), "{e}");
        assert_eq!(e.line, 6);
        let e = err(&GOOD.replace("port: 80, mode: l2", "port: 80000, mode: l2"));
        assert_eq!(e.path, "services[0].port");
    }

    #[test]
    fn semantic_errors_name_field_and_position() {
        let e = err(&GOOD.replace("dscp(7)", "dscp(64)"));
        assert_eq!((e.path.as_str(), e.line, e.column), ("services[1].mode", 9, 39));
        assert!(e.message.contains("1..=63"));

        let e = err(&GOOD.replace("10.0.0.101", "10.0.0.100"));
        assert_eq!(e.path, "services[1].vip");
        assert!(e.message.contains("already defined by services[0]"), "{e}");
        assert_eq!(e.line, 9);

        let e = err(&GOOD.replace(r#"(ip: "10.0.0.12", weight: 3)"#, r#"(ip: "172.16.0.12", weight: 3)"#));
        assert_eq!(e.path, "services[0].backends[1].ip");
        assert!(e.message.contains("outside every port's subnet"), "{e}");

        let e = err(&GOOD.replace("addresses: [\"10.0.0.2/24\"]", "addresses: [\"10.0.0.2/33\"]"));
        assert_eq!(e.path, "ports[0].addresses[0]");
    }

    #[test]
    fn one_dscp_code_cannot_mark_two_vips_for_one_server() {
        let two = GOOD.replace(
            r#"(vip: "10.0.0.101", port: 80, mode: dscp(7), backends: [(ip: "10.0.0.11")]),"#,
            r#"(vip: "10.0.0.101", port: 80, mode: dscp(7), backends: [(ip: "10.0.0.11")]),
        (vip: "10.0.0.103", port: 80, mode: dscp(7), backends: [(ip: "10.0.0.11")]),"#,
        );
        let e = err(&two);
        assert_eq!(e.path, "services[2].mode");
        assert!(e.message.contains("already marks VIP 10.0.0.101"), "{e}");
        // The same code for the same VIP on another port is fine.
        let same_vip = GOOD.replace(
            r#"(vip: "10.0.0.101", port: 80, mode: dscp(7), backends: [(ip: "10.0.0.11")]),"#,
            r#"(vip: "10.0.0.101", port: 80, mode: dscp(7), backends: [(ip: "10.0.0.11")]),
        (vip: "10.0.0.101", port: 443, mode: dscp(7), backends: [(ip: "10.0.0.11")]),"#,
        );
        Config::parse(&same_vip).unwrap();
    }

    #[test]
    fn ranges_and_roles() {
        assert_eq!(
            err(&GOOD.replace("timeout: 0.5", "timeout: 5.0")).path,
            "services[0].health_check.timeout"
        );
        assert_eq!(
            err(&GOOD.replace("addresses: [\"10.0.0.2/24\"]", "addresses: [\"10.0.0.2/24\"], role: client"))
                .path,
            "ports"
        );
        assert_eq!(
            err(&GOOD.replace("gateway: \"10.0.0.1\"", "gateway: \"10.9.0.1\"")).path,
            "ports[0].gateway"
        );
        let e = err(&GOOD.replace(r#"(ip: "10.0.0.11"), (ip"#, r#"(ip: "10.0.0.2"), (ip"#));
        assert!(e.message.contains("LB address"), "{e}");
    }
}
