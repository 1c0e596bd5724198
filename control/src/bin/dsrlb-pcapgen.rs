//! Writes benchmark captures: N distinct flows to a VIP, one packet each, of a given size and
//! protocol mix, with correct checksums. `net_pcap` with `infinite_rx=1` replays the file.
//!
//!     dsrlb-pcapgen --out F.pcap --flows 10000 --size 64 [--proto tcp|udp|mix] [--syn]
//!                   [--vip 10.0.0.100] [--dport 80] [--shard K/N]
//!
//! `--shard K/N` writes only flows i with i mod N = K: N such files split the flows between N
//! receive queues (one file per `rx_pcap=` of a multi-queue net_pcap port), each flow whole on
//! one queue as RSS would keep it.

use std::io::{BufWriter, Write};
use std::net::Ipv4Addr;

use clap::Parser;
use dataplane::checksum;
use dataplane::wire::ipv4;

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
    vip: Ipv4Addr,
    #[arg(long, default_value_t = 80)]
    dport: u16,
    /// K/N: only flows i with i mod N = K.
    #[arg(long, value_parser = parse_shard)]
    shard: Option<(u32, u32)>,
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
    let size = a.size.max(64);
    let mut f = vec![0u8; size];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let src = Ipv4Addr::from(0x0a80_0000u32 + i / 50_000); // 10.128.x.y, 50k ports per address
    let sport = 1024 + (i % 50_000) as u16;
    let ip_len = size - 14;
    let proto = if udp { ipv4::PROTO_UDP } else { ipv4::PROTO_TCP };
    ipv4::Ipv4Repr {
        ident: i as u16,
        dont_fragment: true,
        ..ipv4::Ipv4Repr::new(proto, src.octets(), a.vip.octets(), (ip_len - 20) as u16, 64)
    }
    .emit(&mut f[14..34]);
    let l4 = &mut f[34..];
    l4[0..2].copy_from_slice(&sport.to_be_bytes());
    l4[2..4].copy_from_slice(&a.dport.to_be_bytes());
    let at = if udp {
        l4[4..6].copy_from_slice(&((ip_len - 20) as u16).to_be_bytes());
        6
    } else {
        l4[4..8].copy_from_slice(&(i.wrapping_mul(2654435761)).to_be_bytes());
        l4[12] = 5 << 4;
        l4[13] = if a.syn { 0x02 } else { 0x10 };
        l4[14..16].copy_from_slice(&64240u16.to_be_bytes());
        16
    };
    let acc = checksum::pseudo_header(src.octets(), a.vip.octets(), proto, (ip_len - 20) as u16);
    let c = checksum::finish(checksum::sum(l4, acc));
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    f
}

fn main() -> std::io::Result<()> {
    let a = Args::parse();
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&a.out)?);
    // pcap global header: magic, v2.4, UTC, accuracy, snaplen, Ethernet
    w.write_all(&0xa1b2c3d4u32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&[0u8; 8])?;
    w.write_all(&65535u32.to_le_bytes())?;
    w.write_all(&1u32.to_le_bytes())?;
    let (k, n) = a.shard.unwrap_or((0, 1));
    let mut written = 0u32;
    for i in (0..a.flows).filter(|i| i % n == k) {
        let f = frame(&a, i);
        written += 1;
        w.write_all(&(i / 1_000_000).to_le_bytes())?;
        w.write_all(&(i % 1_000_000).to_le_bytes())?;
        w.write_all(&(f.len() as u32).to_le_bytes())?;
        w.write_all(&(f.len() as u32).to_le_bytes())?;
        w.write_all(&f)?;
    }
    w.flush()?;
    eprintln!("{}: {} flows, {} bytes per frame, {}", a.out.display(), written, a.size.max(64), a.proto);
    Ok(())
}
