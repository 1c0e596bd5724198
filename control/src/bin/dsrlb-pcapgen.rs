//! Writes benchmark captures: N distinct flows to a VIP, one packet each, of a given size and
//! protocol mix, with correct checksums. `net_pcap` with `infinite_rx=1` replays the file.
//!
//!     dsrlb-pcapgen --out F.pcap --flows 10000 --size 64 [--proto tcp|udp|mix] [--syn]
//!                   [--vip 10.0.0.100 | --vip 2001:db8::100] [--dport 80] [--shard K/N] [--dst-mac MAC]
//!                   [--packets N]
//!
//! An IPv6 VIP makes IPv6 frames, from 2001:db8:ff::/64 (one address per 50 000 flows).
//!
//! `--shard K/N` writes only flows i with i mod N = K: N such files split the flows between N
//! receive queues (one file per `rx_pcap=` of a multi-queue net_pcap port), each flow whole on
//! one queue as RSS would keep it.
//!
//! `--packets N` writes N frames in all, going round the flows (one frame per flow by default):
//! a replay of as many packets as a million-flow capture but of one flow costs the source what
//! the million-flow replay costs it, without the flow table's misses (docs/performance.md).

use std::io::BufWriter;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use clap::Parser;
use dataplane::testkit::{sized_tcp, sized_udp, v6};
use dataplane::wire::MacAddr;
use pcap_file::pcap::{PcapPacket, PcapWriter};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    out: std::path::PathBuf,
    #[arg(long, default_value_t = 1)]
    flows: u32,
    /// Frame size in bytes (without FCS), at least 64.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// tcp, udp, or mix (every fourth flow UDP).
    #[arg(long, default_value = "tcp")]
    proto: String,
    /// TCP packets are SYNs (a new-flow pattern) instead of ACKs.
    #[arg(long)]
    syn: bool,
    #[arg(long, default_value = "10.0.0.100")]
    vip: IpAddr,
    #[arg(long, default_value_t = 80)]
    dport: u16,
    /// K/N: only flows i with i mod N = K.
    #[arg(long, value_parser = parse_shard)]
    shard: Option<(u32, u32)>,
    /// Destination MAC of every frame: the receiving port's (dsrlb takes only frames for it).
    #[arg(long, default_value = "02:00:00:00:00:02")]
    dst_mac: MacAddr,
    /// Frames in all, going round the flows (default: one per flow).
    #[arg(long)]
    packets: Option<u32>,
}

fn parse_shard(s: &str) -> Result<(u32, u32), String> {
    let (k, n) = s.split_once('/').ok_or("expected K/N, e.g. 0/2")?;
    let (k, n): (u32, u32) =
        (k.parse().map_err(|_| "K: not a number")?, n.parse().map_err(|_| "N: not a number")?);
    if n == 0 || k >= n {
        return Err(format!("{k}/{n}: need 0 <= K < N"));
    }
    Ok((k, n))
}

fn frame(a: &Args, i: u32) -> Vec<u8> {
    let udp = match a.proto.as_str() {
        "udp" => true,
        "mix" => i % 4 == 3,
        _ => false,
    };
    // 10.128.x.y, 50k ports per address
    let src = Ipv4Addr::from(0x0a80_0000u32 + i / 50_000).octets();
    let sport = 1024 + (i % 50_000) as u16;
    let size = a.size.max(64);
    let mut f = match a.vip {
        IpAddr::V4(vip) if udp => sized_udp(src, sport, vip.octets(), a.dport, size),
        IpAddr::V4(vip) => sized_tcp(src, sport, vip.octets(), a.dport, size, a.syn),
        IpAddr::V6(vip) => {
            let mut src6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            src6[12..].copy_from_slice(&(i / 50_000).to_be_bytes());
            if udp {
                v6::sized_udp(src6, sport, vip.octets(), a.dport, size)
            } else {
                v6::sized_tcp(src6, sport, vip.octets(), a.dport, size, a.syn)
            }
        }
    };
    f[0..6].copy_from_slice(&a.dst_mac.0);
    f
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Args::parse();
    let mut w = PcapWriter::new(BufWriter::with_capacity(1 << 20, std::fs::File::create(&a.out)?))?;
    let (k, n) = a.shard.unwrap_or((0, 1));
    let flows = (0..a.flows).filter(move |i| i % n == k);
    let count = flows.clone().count();
    let mut written = 0u64;
    for i in flows.cycle().take(a.packets.map_or(count, |p| p as usize)) {
        let f = frame(&a, i);
        w.write_packet(&PcapPacket::new(Duration::from_micros(written), f.len() as u32, &f))?;
        written += 1;
    }
    eprintln!(
        "{}: {count} flows in {written} frames, {} bytes per frame, {}",
        a.out.display(),
        a.size.max(64),
        a.proto
    );
    Ok(())
}
