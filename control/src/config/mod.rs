//! The configuration file (RON, read with serde) and its validation. Every error names the
//! field path and the line:column it comes from; a file that fails changes nothing.
//!
//! Values are read straight into their domain types — the dataplane's modes, schedulers and
//! roles, MAC addresses, subnets, seconds — so nothing downstream parses a string again.

mod locate;
mod validate;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use dataplane::snapshot::{ForwardMode, PersistBy, PortRole, Scheduler};
use dataplane::wire::{IpCidr, MacAddr};
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// EAL arguments (cores, memory, devices). `dsrlb run ... -- ARGS` appends more.
    #[serde(default)]
    pub eal: Vec<String>,
    pub ports: Vec<PortConfig>,
    /// IPv4 flows each worker can hold.
    #[serde(default = "defaults::flow_table_size")]
    pub flow_table_size: usize,
    /// IPv6 flows each worker can hold (a table of their own; 64 bytes of table per flow, as
    /// for IPv4).
    #[serde(default = "defaults::flow_table_size_ipv6")]
    pub flow_table_size_ipv6: usize,
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
    /// Announce the VIPs to a routing daemon (a fleet behind ECMP) instead of answering ARP for
    /// them: `None` (the default) is a single appliance on its segment.
    #[serde(default)]
    pub announce: Option<AnnounceConfig>,
    pub services: Vec<ServiceConfig>,
}

/// How this instance tells a routing daemon (BIRD, FRR, ...) which VIPs to announce: a /32
/// route per VIP in a kernel table, on the exception interface of the VIPs' port. The routes
/// vanish with the interface when dsrlb ends, however it ends.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AnnounceConfig {
    /// The kernel routing table the routes go into (the daemon imports it; 1..=252 or above 255).
    pub table: u32,
    /// On `dsrlb ctl drain-instance` and SIGTERM: how long to keep forwarding after the
    /// routes are withdrawn, while the routers move the traffic away.
    #[serde(default = "defaults::drain_time")]
    pub drain_time: Seconds,
}

/// The exception path of a port: a kernel interface that gets the traffic for the LB's own
/// addresses that dsrlb does not answer itself (BGP, BFD, SSH), and whose traffic leaves on the
/// port — it shares the port's fate. Its kernel side is given the port's MAC and addresses.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExceptionConfig {
    /// A DPDK virtual device with a kernel side named by `iface=`: `net_tap1,iface=dsrlb0`
    /// here; `virtio_user` with vhost-net on appliances that have it.
    pub device: String,
    /// Routing peers (the routers): their traffic to the LB takes the priority lane, beside
    /// health-check answers, so no flood at the LB's address can starve BGP and BFD.
    #[serde(default)]
    pub peers: Vec<IpAddr>,
}

impl ExceptionConfig {
    /// The device name without its arguments.
    pub fn device_name(&self) -> &str {
        self.device.split(',').next().unwrap_or(&self.device)
    }

    /// The kernel interface's name (`iface=` of the device string).
    pub fn iface(&self) -> Option<&str> {
        self.device.split(',').find_map(|kv| kv.strip_prefix("iface="))
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MempoolConfig {
    pub mbufs: u32,
    /// Bytes per mbuf including the 128-byte headroom (IPIP needs 20 of it).
    #[serde(default = "defaults::data_room")]
    pub data_room: u16,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// A PCI address (`0000:3b:00.0`) or a vdev string (`net_tap0,iface=lb0`).
    pub device: String,
    /// `lan` (one-arm), or `client`/`server` (inline).
    #[serde(default = "defaults::role")]
    pub role: PortRole,
    /// The LB's own addresses on this port, with prefix length, of either family
    /// (`10.0.0.2/24`, `2001:db8::2/64`).
    pub addresses: Vec<IpCidr>,
    #[serde(default = "defaults::mtu")]
    pub mtu: u16,
    /// IPv4 next hop for servers or clients not on this port's subnets.
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    /// IPv6 next hop, the same for IPv6: on one of the port's IPv6 subnets, or link-local
    /// (`fe80::1`), as routers' addresses often are.
    #[serde(default)]
    pub gateway6: Option<Ipv6Addr>,
    /// The port's MAC, if not the device's own.
    #[serde(default)]
    pub mac: Option<MacAddr>,
    #[serde(default)]
    pub exception: Option<ExceptionConfig>,
}

impl PortConfig {
    /// The device name without its arguments (`net_tap0` of `net_tap0,iface=lb0`).
    pub fn device_name(&self) -> &str {
        self.device.split(',').next().unwrap_or(&self.device)
    }

    /// A virtual device (`--vdev`), not a PCI address (`-a`).
    pub fn is_vdev(&self) -> bool {
        self.device.starts_with("net_")
    }
}

/// A time in seconds as written in the file: a finite number, not negative (checked as it is
/// read, so `inf` and `NaN` never reach a timer); each field's range is checked in validation.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Seconds(f64);

impl Seconds {
    pub fn new(s: f64) -> Result<Seconds, String> {
        if s.is_finite() && s >= 0.0 {
            Ok(Seconds(s))
        } else {
            Err(format!("{s} is not a finite, non-negative number of seconds"))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }

    pub fn duration(self) -> Duration {
        Duration::from_secs_f64(self.0)
    }

    /// Whole milliseconds, at least 1 (the dataplane's clock ticks in milliseconds).
    pub fn millis(self) -> u32 {
        (self.0 * 1000.0).round().clamp(1.0, u32::MAX as f64 / 4.0) as u32
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} s", self.0)
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Seconds::new(f64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArpConfig {
    /// Re-resolve every neighbour this often.
    #[serde(default = "defaults::arp_refresh")]
    pub refresh: Seconds,
    /// A neighbour not confirmed for this long is unresolved (its backends count as down).
    #[serde(default = "defaults::arp_expiry")]
    pub expiry: Seconds,
}

impl Default for ArpConfig {
    fn default() -> Self {
        ArpConfig { refresh: defaults::arp_refresh(), expiry: defaults::arp_expiry() }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => dataplane::wire::PROTO_TCP,
            Protocol::Udp => dataplane::wire::PROTO_UDP,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PersistenceConfig {
    pub by: PersistBy,
    /// How long a client keeps its backend after its last new connection.
    pub timeout: Seconds,
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
    pub interval: Seconds,
    #[serde(default = "defaults::timeout")]
    pub timeout: Seconds,
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
    /// The server's real address: of the VIP's family, or IPv6 for an IPv4 VIP in `ipip`
    /// (4in6).
    pub ip: IpAddr,
    #[serde(default = "defaults::weight")]
    pub weight: u32,
    /// Keep existing flows, take no new ones.
    #[serde(default)]
    pub drain: bool,
    /// A static MAC for the next hop (no ARP; e.g. a server that must never be re-resolved,
    /// or a benchmark sink that answers nothing).
    #[serde(default)]
    pub mac: Option<MacAddr>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// IPv4 or IPv6. A name serves one family; a dual-stack name is two services, one per VIP.
    pub vip: IpAddr,
    /// 0: every port.
    #[serde(default)]
    pub port: u16,
    #[serde(default = "defaults::protocol")]
    pub protocol: Protocol,
    pub mode: ForwardMode,
    #[serde(default = "defaults::scheduler")]
    pub scheduler: Scheduler,
    #[serde(default)]
    pub persistence: Option<PersistenceConfig>,
    #[serde(default = "defaults::tcp_idle")]
    pub tcp_idle_timeout: Seconds,
    #[serde(default = "defaults::udp_idle")]
    pub udp_idle_timeout: Seconds,
    /// Idle timeout once the client sent FIN or RST.
    #[serde(default = "defaults::closing")]
    pub closing_timeout: Seconds,
    /// Lifetime of a TCP flow that has seen only a SYN (the handshake's ACK makes it an
    /// established flow on `tcp_idle_timeout`): spoofed SYNs hold the flow table this long.
    #[serde(default = "defaults::syn")]
    pub tcp_syn_timeout: Seconds,
    #[serde(default = "defaults::maglev_size")]
    pub maglev_size: u32,
    #[serde(default)]
    pub health_check: Option<HealthCheckConfig>,
    pub backends: Vec<BackendConfig>,
}

/// A service's identity across reloads: VIP, protocol and port.
pub type ServiceKey = (IpAddr, Protocol, u16);

/// An address as ctl and metrics show it beside a port: IPv6 in brackets.
pub fn with_port(ip: IpAddr, port: &str) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

impl ServiceConfig {
    pub fn key(&self) -> ServiceKey {
        (self.vip, self.protocol, self.port)
    }

    /// `VIP:PORT/PROTO` as tables and metrics show it (`*` for every port).
    pub fn name(&self) -> String {
        let p = if self.port == 0 { "*".to_string() } else { self.port.to_string() };
        format!("{}/{}", with_port(self.vip, &p), self.protocol.name())
    }

    /// Whether `ident` names this service: `VIP` or `VIP:PORT`.
    pub fn answers_to(&self, ident: &str) -> bool {
        // The name as ctl prints it (`VIP:PORT/PROTO`) names exactly this service.
        // IPv6 in any textual form (`2001:db8::64` or `2001:DB8:0::64`), with or without brackets.
        let vip_only = ident.trim_start_matches('[').trim_end_matches(']');
        vip_only.parse::<IpAddr>().is_ok_and(|a| a == self.vip)
            || ident == with_port(self.vip, &self.port.to_string())
            || ident == self.name()
    }

    /// Whether the service hashes clients onto backends (its Maglev table schedules them).
    pub fn uses_maglev(&self) -> bool {
        self.persistence.is_some()
            || matches!(
                self.scheduler,
                Scheduler::Maglev | Scheduler::SourceHash | Scheduler::DestinationHash
            )
    }
}

mod defaults {
    use super::*;
    pub fn flow_table_size() -> usize {
        1 << 20
    }
    pub fn flow_table_size_ipv6() -> usize {
        1 << 18
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
    pub fn role() -> PortRole {
        PortRole::Lan
    }
    pub fn mtu() -> u16 {
        1500
    }
    pub fn arp_refresh() -> Seconds {
        Seconds(30.0)
    }
    pub fn arp_expiry() -> Seconds {
        Seconds(90.0)
    }
    pub fn protocol() -> Protocol {
        Protocol::Tcp
    }
    pub fn scheduler() -> Scheduler {
        Scheduler::Maglev
    }
    pub fn tcp_idle() -> Seconds {
        Seconds(300.0)
    }
    pub fn udp_idle() -> Seconds {
        Seconds(30.0)
    }
    pub fn closing() -> Seconds {
        Seconds(10.0)
    }
    pub fn syn() -> Seconds {
        Seconds(3.0)
    }
    pub fn drain_time() -> Seconds {
        Seconds(5.0)
    }
    pub fn maglev_size() -> u32 {
        dataplane::maglev::DEFAULT_SIZE
    }
    pub fn interval() -> Seconds {
        Seconds(2.0)
    }
    pub fn timeout() -> Seconds {
        Seconds(1.0)
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

impl Config {
    /// Read, parse and validate a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::parse(&read_whole(path)?)
    }

    /// Parse and validate configuration text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let cfg = parse_ron(text)?;
        validate::validate(&cfg).map_err(|(path, message)| {
            let (line, column) = locate::locate(text, &path).unwrap_or((0, 0));
            ConfigError { path, line, column, message }
        })?;
        Ok(cfg)
    }

    /// Advice that does not stop the configuration from loading: settings that work but that
    /// an operator probably wants otherwise. Each names the field.
    pub fn advisories(&self) -> Vec<String> {
        let mut v = Vec::new();
        for (i, s) in self.services.iter().enumerate() {
            let n = s.backends.iter().filter(|b| b.weight > 0).count();
            let want = dataplane::maglev::size_for_backends(n);
            if s.uses_maglev() && (s.maglev_size as u64) < want {
                v.push(format!(
                    "services[{i}].maglev_size: {} slots for {n} backends: removing one backend may move \
                     about {:.1}x its share of new-flow slots; a prime of at least 10 x backends² (e.g. {}) \
                     keeps it within 1.5x (docs/modes.md)",
                    s.maglev_size,
                    1.0 + 4.0 * (n * n) as f64 / s.maglev_size as f64,
                    dataplane::maglev::next_prime(want)
                ));
            }
            if self.announce.is_some() && !s.uses_maglev() {
                v.push(format!(
                    "services[{i}].scheduler: {} picks a backend from this instance's own state: in a fleet, \
                     a connection that moves to another instance (one fails, drains or joins) goes to the \
                     Maglev answer instead and may break; maglev keeps it (docs/fleet.md)",
                    s.scheduler.name()
                ));
            }
        }
        v
    }

    /// Which ports have which subnets, by index.
    pub fn port_subnets(&self) -> Vec<Vec<IpCidr>> {
        self.ports.iter().map(|p| p.addresses.clone()).collect()
    }

    /// A digest of what must agree between the instances of a fleet for them to send every
    /// flow to the same backend: the services, their backends and weights, schedulers,
    /// persistence and Maglev sizes — in an order of their own (not the file's), so files that
    /// list the same things differently agree. Ports, addresses and everything else local to
    /// an instance are left out. FNV-1a over a canonical text, as 16 hex digits.
    pub fn digest(&self) -> String {
        let mut services: Vec<String> = self
            .services
            .iter()
            .map(|s| {
                let mut backends: Vec<String> = s
                    .backends
                    .iter()
                    .map(|b| format!("{}*{}{}", b.ip, b.weight, if b.drain { "d" } else { "" }))
                    .collect();
                backends.sort();
                format!(
                    "{}|{}|{:?}|{:?}|{}|{}|{}|{}|{}|{}|{}",
                    s.name(),
                    s.mode,
                    s.scheduler,
                    s.persistence.as_ref().map(|p| (p.by, p.timeout.get().to_bits())),
                    s.maglev_size,
                    s.tcp_idle_timeout.get(),
                    s.udp_idle_timeout.get(),
                    s.closing_timeout.get(),
                    s.tcp_syn_timeout.get(),
                    s.health_check.is_some(),
                    backends.join(",")
                )
            })
            .collect();
        services.sort();
        let h = services
            .join("\n")
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
        format!("{h:016x}")
    }

    /// One-arm (`lan` ports) or inline (a `client` and a `server` port).
    pub fn is_inline(&self) -> bool {
        self.ports.iter().any(|p| p.role == PortRole::Client)
    }
}

/// The file's text as one version of it: an editor that rewrites the file in place while it is
/// read would otherwise hand over half of the old and half of the new. The file is read again
/// when its size or time changed meanwhile (writing the new file elsewhere and renaming it over
/// the old one is the way that never needs this).
fn read_whole(path: &Path) -> Result<String, ConfigError> {
    let err = |message: String| ConfigError { path: String::new(), line: 0, column: 0, message };
    let stamp = |m: &std::fs::Metadata| (m.len(), m.modified().ok());
    for _ in 0..5 {
        let before =
            std::fs::metadata(path).map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
        let text =
            std::fs::read_to_string(path).map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
        let after =
            std::fs::metadata(path).map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
        if stamp(&before) == stamp(&after) && text.len() as u64 == after.len() {
            return Ok(text);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Err(err(format!("{} kept changing while it was read; nothing changed", path.display())))
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
            let (line, column) = locate::locate_exact(text, &path)
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
        assert_eq!(c.ports[0].role, PortRole::Lan);
        assert_eq!(c.ports[0].mtu, 1500);
        assert_eq!(c.services[0].backends[1].weight, 3);
        assert_eq!(c.services[1].mode, ForwardMode::Dscp(7));
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

    #[test]
    fn a_fleet_member_needs_an_exception_interface_with_peers_on_its_subnets() {
        let lan = r#"gateway: "10.0.0.1")]"#;
        let with = |exception: &str, announce: &str| {
            GOOD.replace(lan, &format!(r#"gateway: "10.0.0.1"{exception})]"#))
                .replace("services: [", &format!("{announce}services: ["))
        };
        let x = r#", exception: (device: "net_tap1,iface=dsrlb0", peers: ["10.0.0.1"])"#;
        let c = Config::parse(&with(x, "announce: (table: 100), ")).expect("a fleet member");
        let vu = r#", exception: (device: "virtio_user0,path=/dev/vhost-net,iface=dsrlb0")"#;
        Config::parse(&with(vu, "")).expect("virtio_user, the appliances' exception path");
        assert_eq!(c.announce.as_ref().map(|a| (a.table, a.drain_time.get())), Some((100, 5.0)));
        assert_eq!(c.ports[0].exception.as_ref().and_then(|x| x.iface()), Some("dsrlb0"));
        assert!(c.advisories().is_empty(), "{:?}", c.advisories());
        // A scheduler without a stateless answer is allowed, with a word on what it costs.
        let wrr = with(x, "announce: (table: 100), ")
            .replace("mode: dscp(7), backends", "mode: dscp(7), scheduler: weighted_round_robin, backends");
        let a = Config::parse(&wrr).unwrap().advisories();
        assert!(a.iter().any(|a| a.starts_with("services[1].scheduler: weighted_round_robin")), "{a:?}");
        let cases: &[(String, &str, &str)] = &[
            (with("", "announce: (table: 100), "), "ports[0].exception", "exception interface"),
            (with(x, "announce: (table: 254), "), "announce.table", "kernel's own"),
            (with(x, "announce: (table: 100, drain_time: 0.0), "), "announce.drain_time", ""),
            (with(x, "announce: (table: 100, drain_time: inf), "), "announce.drain_time", ""),
            (with(r#", exception: (device: "net_tap1")"#, ""), "ports[0].exception.device", "iface="),
            (
                with(r#", exception: (device: "net_tap1,iface=a-name-far-too-long")"#, ""),
                "ports[0].exception.device",
                "15 characters",
            ),
            (
                with(
                    r#", exception: (device: "net_tap1,iface=dsrlb0", peers: ["10.0.0.1", "192.0.2.1"])"#,
                    "",
                ),
                "ports[0].exception.peers[1]",
                "not on any of the port's subnets",
            ),
        ];
        for (text, field, says) in cases {
            let e = err(text);
            assert_eq!(&e.path, field, "{e}");
            assert!(e.message.contains(says), "{e}");
        }
    }

    #[test]
    fn the_digest_covers_what_instances_must_share_and_nothing_local() {
        let d = Config::parse(GOOD).unwrap().digest();
        assert_eq!(d.len(), 16);
        // Local to an instance: addresses, devices, metrics.
        let local = GOOD.replace("10.0.0.2/24", "10.0.0.3/24").replace("iface=lb0", "iface=lb1");
        assert_eq!(Config::parse(&local).unwrap().digest(), d);
        // The same backends listed in another order: the same mapping, the same digest.
        let reordered = GOOD.replace(
            r#"backends: [(ip: "10.0.0.11"), (ip: "10.0.0.12", weight: 3)]"#,
            r#"backends: [(ip: "10.0.0.12", weight: 3), (ip: "10.0.0.11")]"#,
        );
        assert_eq!(Config::parse(&reordered).unwrap().digest(), d);
        // A weight, a backend, a scheduler: another mapping.
        for changed in [
            GOOD.replace("weight: 3", "weight: 2"),
            GOOD.replace(r#"(ip: "10.0.0.12", weight: 3)"#, r#"(ip: "10.0.0.13", weight: 3)"#),
            GOOD.replace("scheduler: source_hash", "scheduler: destination_hash"),
        ] {
            assert_ne!(Config::parse(&changed).unwrap().digest(), d);
        }
    }

    const DUAL: &str = r#"#![enable(implicit_some)]
(
    ports: [(device: "net_tap0,iface=lb0", addresses: ["10.0.0.2/24", "2001:db8::2/64"],
             gateway: "10.0.0.1", gateway6: "fe80::1")],
    services: [
        (vip: "2001:db8::64", port: 80, mode: l2, backends: [(ip: "2001:db8::11")]),
        (vip: "2001:db8:0:0::65", port: 80, mode: ipip, backends: [(ip: "2001:db8:5::5")]),
        (vip: "2001:db8::66", port: 80, mode: dscp(7), backends: [(ip: "2001:db8::11")]),
        (vip: "10.0.0.103", port: 80, mode: ipip, backends: [(ip: "2001:db8::12")]),
    ],
)
"#;

    #[test]
    fn ipv6_services_and_4in6_parse_and_are_named_in_brackets() {
        let c = Config::parse(DUAL).unwrap();
        assert_eq!(c.services[1].vip, "2001:db8::65".parse::<IpAddr>().unwrap(), "any textual form");
        assert_eq!(c.services[0].name(), "[2001:db8::64]:80/tcp");
        for ident in
            ["2001:db8::64", "[2001:db8::64]", "2001:DB8:0::64", "[2001:db8::64]:80", "[2001:db8::64]:80/tcp"]
        {
            assert!(c.services[0].answers_to(ident), "{ident}");
        }
        assert!(!c.services[0].answers_to("2001:db8::65"));
        assert_eq!(c.flow_table_size_ipv6, 1 << 18);
    }

    #[test]
    fn families_are_checked_naming_the_field() {
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                r#"mode: l2, backends: [(ip: "2001:db8::11")]"#,
                r#"mode: l2, backends: [(ip: "10.0.0.11")]"#,
                "services[0].backends[0].ip",
                "VIP's family",
            ),
            (
                r#"mode: l2, backends: [(ip: "2001:db8::11")]"#,
                r#"mode: l2, backends: [(ip: "2001:db8:7::11")]"#,
                "services[0].backends[0].ip",
                "outside every port's subnet",
            ),
            (r#"gateway6: "fe80::1""#, r#"gateway6: "2001:db8:9::1""#, "ports[0].gateway6", "link-local"),
            (
                r#"mode: dscp(7), backends: [(ip: "2001:db8::11")]"#,
                r#"mode: dscp(7), backends: [(ip: "2001:db8::12")]), (vip: "10.0.0.104", mode: dscp(7), backends: [(ip: "2001:db8::13")]"#,
                "services[3].backends[0].ip",
                "4in6",
            ),
            (r#"vip: "2001:db8::64""#, r#"vip: "ff02::1""#, "services[0].vip", "unicast"),
            (r#"vip: "2001:db8::64""#, r#"vip: "2001:db8::2""#, "services[0].vip", "LB address"),
            (r#"gateway6: "fe80::1")"#, r#"gateway6: "fe80::1", mtu: 1000)"#, "ports[0].mtu", "1280"),
            ("ports: [", "flow_table_size_ipv6: 10, ports: [", "flow_table_size_ipv6", "outside"),
        ];
        for (from, to, field, says) in cases {
            assert!(DUAL.contains(from), "{from}");
            let e = err(&DUAL.replacen(from, to, 1));
            assert_eq!(&e.path, field, "{to}: {e}");
            assert!(e.message.contains(says), "{to}: {e}");
        }
        // An IPv6 VIP on a port without IPv6.
        let v4_only = DUAL.replace(r#", "2001:db8::2/64"]"#, "]").replace(r#", gateway6: "fe80::1""#, "");
        let e = err(&v4_only);
        assert_eq!(e.path, "services[0].vip", "{e}");
        assert!(e.message.contains("IPv6 address on a port"), "{e}");
    }

    /// Values that once passed validation and then crashed or hung the appliance, and every
    /// other number out of its range: each is refused, naming its field.
    #[test]
    fn every_number_has_a_range_and_errors_name_the_field() {
        let cases: &[(&str, &str, &str)] = &[
            ("interval: 1.0", "interval: inf", "services[0].health_check.interval"),
            ("interval: 1.0", "interval: NaN", "services[0].health_check.interval"),
            ("interval: 1.0", "interval: -1.0", "services[0].health_check.interval"),
            ("interval: 1.0", "interval: 86400.0", "services[0].health_check.interval"),
            ("timeout: 0.5", "timeout: 0.0", "services[0].health_check.timeout"),
            ("port: 80, mode: l2", "port: 80, mode: l2, tcp_syn_timeout: 0.0", "services[0].tcp_syn_timeout"),
            (
                "port: 80, mode: l2",
                "port: 80, mode: l2, tcp_idle_timeout: inf",
                "services[0].tcp_idle_timeout",
            ),
            ("port: 80, mode: l2", "port: 80, mode: l2, maglev_size: 4294967291", "services[0].maglev_size"),
            ("port: 80, mode: l2", "port: 80, mode: l2, maglev_size: 250", "services[0].maglev_size"),
            ("timeout: 0.5)", "timeout: 0.5, rise: 0)", "services[0].health_check.rise"),
            ("timeout: 0.5)", "timeout: 0.5, fall: 1000)", "services[0].health_check.fall"),
            ("timeout: 60.0)", "timeout: inf)", "services[2].persistence.timeout"),
            ("weight: 3", "weight: 4000000000", "services[0].backends[1].weight"),
            ("ports: [", "flow_table_size: 18446744073709551615, ports: [", "flow_table_size"),
            ("ports: [", "flow_table_size: 1000, ports: [", "flow_table_size"),
            ("ports: [", "persistence_table_size: 4294967296, ports: [", "persistence_table_size"),
            ("ports: [", "worker_idle_sleep_us: 1000000000, ports: [", "worker_idle_sleep_us"),
            ("ports: [", "arp: (refresh: NaN), ports: [", "arp.refresh"),
            ("ports: [", "arp: (refresh: 30.0, expiry: inf), ports: [", "arp.expiry"),
            ("ports: [", "arp: (refresh: 0.0), ports: [", "arp.refresh"),
            ("ports: [", "mempool: (mbufs: 10), ports: [", "mempool.mbufs"),
        ];
        for (from, to, field) in cases {
            assert!(GOOD.contains(from), "{from}");
            let e = err(&GOOD.replacen(from, to, 1));
            assert_eq!(&e.path, field, "{to}: {e}");
            assert!(e.line > 0, "{to}: a line to point at: {e}");
        }
    }
}
