//! `dsrlb replay`: the real pipeline over a capture, without DPDK (glb-director's pcap mode).
//! For operators asking "where would this traffic have gone?" of a field capture, and for tests.
//!
//! The configuration is the appliance's own file. What a running appliance learns on the wire
//! is settled this way instead: every backend counts as passing its health checks (probes are
//! not replayed); next-hop MACs come from static `mac`s in the file, from ARP seen in the
//! capture, or else stand in as `02:00` followed by the next hop's IPv4 address, so the output
//! shows which server each packet went to. Port MACs come from `--mac`, else from the device's
//! `mac=` argument, else `02:00:00:00:00:0N` for port N.

use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::io::MemIo;
use dataplane::wire::{ArpPacket, EthernetFrame, MacAddr, ETHERTYPE_ARP};
use dataplane::{DropReason, PacketBuf, PacketSink, VecPacket, Verdict, Worker, WorkerConfig};
use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};

use crate::config::Config;
use crate::runtime::Runtime;

pub struct ReplayArgs {
    pub config: PathBuf,
    pub input: PathBuf,
    pub output: PathBuf,
    /// The port the captured frames arrive on.
    pub in_port: u16,
    /// Port MACs given on the command line.
    pub macs: Vec<(u16, MacAddr)>,
}

/// What happened to the capture's frames.
#[derive(Debug, Default)]
pub struct ReplaySummary {
    pub frames: u64,
    pub transmitted: u64,
    pub to_control: u64,
    pub drops: BTreeMap<&'static str, u64>,
    /// Frames sent per (egress port, destination MAC).
    pub by_destination: BTreeMap<(u16, MacAddr), u64>,
}

impl std::fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} frames: {} transmitted, {} for the control core, {} dropped",
            self.frames,
            self.transmitted,
            self.to_control,
            self.drops.values().sum::<u64>()
        )?;
        for ((port, mac), n) in &self.by_destination {
            writeln!(f, "  port {port} to {mac}: {n}")?;
        }
        for (why, n) in &self.drops {
            writeln!(f, "  dropped {why}: {n}")?;
        }
        Ok(())
    }
}

/// The stand-in MAC of a next hop nothing resolved: `02:00` and its IPv4 address.
pub fn stand_in_mac(ip: IpAddr) -> MacAddr {
    let o = match ip {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(a) => {
            let o = a.octets();
            [o[12], o[13], o[14], o[15]]
        }
    };
    MacAddr([0x02, 0x00, o[0], o[1], o[2], o[3]])
}

/// The MAC of port `i`: given, from the device string's `mac=`, or `02:00:00:00:00:0N`.
fn port_mac(cfg: &Config, i: usize, given: &[(u16, MacAddr)]) -> MacAddr {
    given
        .iter()
        .find(|(p, _)| *p as usize == i)
        .map(|(_, m)| *m)
        .or(cfg.ports[i].mac)
        .or_else(|| {
            cfg.ports[i].device.split(',').find_map(|kv| kv.strip_prefix("mac=").and_then(|m| m.parse().ok()))
        })
        .unwrap_or(MacAddr([2, 0, 0, 0, 0, i as u8 + 1]))
}

/// Extra frames (outer fragments) go to the output like any other.
struct Sink<'a>(&'a mut MemIo);

impl PacketSink<VecPacket> for Sink<'_> {
    fn alloc(&mut self) -> Option<VecPacket> {
        Some(VecPacket::new())
    }
    fn emit(&mut self, port: u16, pkt: VecPacket) {
        self.0.tx[port as usize].push(pkt);
    }
}

pub fn replay(a: &ReplayArgs) -> Result<ReplaySummary, String> {
    let cfg = Config::load(&a.config).map_err(|e| format!("{}:{e}", a.config.display()))?;
    if a.in_port as usize >= cfg.ports.len() {
        return Err(format!("--port {}: the configuration has {} port(s)", a.in_port, cfg.ports.len()));
    }
    let macs = (0..cfg.ports.len()).map(|i| port_mac(&cfg, i, &a.macs)).collect();
    let mut rt = Runtime::new(cfg.clone(), macs);
    for h in rt.health.values_mut() {
        h.up = true;
    }
    let start = Instant::now();
    let stand_ins = |rt: &mut Runtime, at: Instant| {
        for (port, ip, mac) in rt.neigh.list(at) {
            if mac.is_none() {
                rt.neigh.assume(port, ip, stand_in_mac(ip), at);
            }
        }
    };
    stand_ins(&mut rt, start);
    let snap = rt.build_snapshot(start).map_err(|e| format!("snapshot: {e}"))?;
    let wcfg = WorkerConfig {
        flow_capacity: cfg.flow_table_size,
        flow6_capacity: cfg.flow_table_size_ipv6,
        persistence_capacity: cfg.persistence_table_size,
        ..WorkerConfig::default()
    };
    let mut worker = Worker::new(wcfg, Arc::new(snap));

    let input = std::fs::File::open(&a.input).map_err(|e| format!("{}: {e}", a.input.display()))?;
    let mut reader =
        PcapReader::new(BufReader::new(input)).map_err(|e| format!("{}: {e}", a.input.display()))?;
    let output = std::fs::File::create(&a.output).map_err(|e| format!("{}: {e}", a.output.display()))?;
    let mut writer =
        PcapWriter::new(BufWriter::new(output)).map_err(|e| format!("{}: {e}", a.output.display()))?;

    let mut sum = ReplaySummary::default();
    let mut io = MemIo::new(cfg.ports.len());
    let mut first: Option<Duration> = None;
    while let Some(p) = reader.next_packet() {
        let p = p.map_err(|e| format!("{}: {e}", a.input.display()))?;
        let t0 = *first.get_or_insert(p.timestamp);
        // The worker's clock: milliseconds since the first frame; the control core's, the same.
        let since = p.timestamp.saturating_sub(t0);
        let now = since.as_millis() as u32;
        sum.frames += 1;
        let mut pkt = VecPacket::from_bytes(&p.data);
        let verdict = worker.process(&mut pkt, a.in_port, now, &mut Sink(&mut io));
        match verdict {
            Verdict::Tx(port) | Verdict::Reply(port) => io.tx[port as usize].push(pkt),
            Verdict::ToControl(_) => {
                sum.to_control += 1;
                // ARP teaches the neighbours, as on the appliance; a change is a new snapshot.
                if learn_arp(&mut rt, a.in_port, &p.data, start + since) {
                    rt.health.values_mut().for_each(|h| h.up = true);
                    let snap = rt.build_snapshot(start + since).map_err(|e| format!("snapshot: {e}"))?;
                    worker.install(Arc::new(snap));
                }
            }
            Verdict::Drop(r) => *sum.drops.entry(r.name()).or_default() += 1,
        }
        for port in 0..io.tx.len() {
            for out in io.tx[port].drain(..) {
                let d = out.data();
                sum.transmitted += 1;
                let dst = EthernetFrame::new_checked(d).map(|e| MacAddr(e.dst())).unwrap_or_default();
                *sum.by_destination.entry((port as u16, dst)).or_default() += 1;
                writer
                    .write_packet(&PcapPacket::new(p.timestamp, d.len() as u32, d))
                    .map_err(|e| format!("{}: {e}", a.output.display()))?;
            }
        }
        worker.housekeeping(now);
    }
    // Every reason appears, so a summary says "0" rather than leaving a reason out.
    for r in DropReason::ALL {
        sum.drops.entry(r.name()).or_default();
    }
    sum.drops.retain(|_, n| *n > 0);
    Ok(sum)
}

/// Learn from an ARP frame; whether a neighbour's MAC changed.
fn learn_arp(rt: &mut Runtime, port: u16, frame: &[u8], at: Instant) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else { return false };
    if eth.ethertype() != ETHERTYPE_ARP {
        return false;
    }
    let Ok(arp) = ArpPacket::new_checked(eth.payload()) else { return false };
    rt.neigh.assume(port, Ipv4Addr::from(arp.sender_ip()).into(), MacAddr(arp.sender_mac()), at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::testkit::{client_tcp_from, eth, sized_udp};
    use dataplane::wire::{arp, ArpRepr};

    const CONFIG: &str = r#"#![enable(implicit_some)]
(
    ports: [(device: "net_tap0,iface=lb0,mac=02:00:00:00:00:fe", addresses: ["10.0.0.2/24"], gateway: "10.0.0.1")],
    services: [
        (vip: "10.0.0.100", port: 80, mode: l2, health_check: (check: tcp),
         backends: [(ip: "10.0.0.11"), (ip: "10.0.0.12")]),
        (vip: "10.0.0.102", port: 53, protocol: udp, mode: dscp(7), backends: [(ip: "192.168.50.11")]),
    ],
)"#;

    fn write_pcap(path: &std::path::Path, frames: &[Vec<u8>]) {
        let mut w = PcapWriter::new(std::fs::File::create(path).unwrap()).unwrap();
        for (i, f) in frames.iter().enumerate() {
            w.write_packet(&PcapPacket::new(Duration::from_millis(i as u64), f.len() as u32, f)).unwrap();
        }
    }

    fn read_pcap(path: &std::path::Path) -> Vec<Vec<u8>> {
        let mut r = PcapReader::new(std::fs::File::open(path).unwrap()).unwrap();
        let mut v = Vec::new();
        while let Some(p) = r.next_packet() {
            v.push(p.unwrap().data.into_owned());
        }
        v
    }

    #[test]
    fn a_capture_goes_where_the_appliance_would_send_it() {
        let dir = std::env::temp_dir().join(format!("dsrlb-replay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (config, input, output) = (dir.join("c.ron"), dir.join("in.pcap"), dir.join("out.pcap"));
        std::fs::write(&config, CONFIG).unwrap();
        // The router answers ARP for itself: the routed dscp backend's next hop is then known.
        let router = MacAddr([2, 0, 0, 0, 0, 0x01]);
        let mut a = [0u8; arp::LEN];
        ArpRepr {
            operation: arp::OP_REPLY,
            sender_mac: router.0,
            sender_ip: [10, 0, 0, 1],
            target_mac: [2, 0, 0, 0, 0, 0xfe],
            target_ip: [10, 0, 0, 2],
        }
        .emit(&mut a);
        let mut frames: Vec<Vec<u8>> =
            (0..20).map(|i| client_tcp_from([198, 51, 100, i], [10, 0, 0, 100], 40000, 80)).collect();
        frames.push(eth([2, 0, 0, 0, 0, 0xfe], router.0, 0x0806, &a));
        frames.push(sized_udp([198, 51, 100, 7], 5000, [10, 0, 0, 102], 53, 80));
        frames.push(client_tcp_from([198, 51, 100, 7], [10, 0, 0, 100], 40000, 81)); // no service
        write_pcap(&input, &frames);

        let sum = replay(&ReplayArgs { config, input, output: output.clone(), in_port: 0, macs: Vec::new() })
            .unwrap();
        assert_eq!((sum.frames, sum.transmitted, sum.to_control), (23, 21, 1), "{sum}");
        assert_eq!(sum.drops.get("no_service"), Some(&1));
        let out = read_pcap(&output);
        assert_eq!(out.len(), 21);
        let l2_to = |m: MacAddr| out[..20].iter().filter(|f| f[0..6] == m.0).count();
        let (s1, s2) = (
            l2_to(stand_in_mac("10.0.0.11".parse().unwrap())),
            l2_to(stand_in_mac("10.0.0.12".parse().unwrap())),
        );
        assert_eq!(s1 + s2, 20, "every l2 packet to one of the two servers (checks are not replayed)");
        assert!(s1 > 0 && s2 > 0, "both used: {s1} {s2}");
        assert!(out[..20].iter().all(|f| f[6..12] == [2, 0, 0, 0, 0, 0xfe]), "from the port's mac=");
        let dscp = &out[20];
        assert_eq!(&dscp[0..6], &router.0, "routed through the gateway the capture's ARP taught");
        assert_eq!((dscp[15] >> 2, &dscp[30..34]), (7, &[192, 168, 50, 11][..]), "DSCP 7 to the real IP");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
