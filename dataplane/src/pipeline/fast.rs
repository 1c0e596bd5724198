//! The established-flow path: a whole TCP or UDP segment of the common shape, for this port's
//! MAC, of a flow this worker holds in its home bucket (the line the first pass prefetched; a
//! flow pushed to a later one takes the general path) that is neither opening nor closing, to a
//! backend that keeps it. That is nearly every packet a load balancer sees, and this path takes
//! it from the header bytes straight to the rewrite: no description written and read back, no
//! classification enum, no per-packet counter of what was forwarded.
//!
//! It decides nothing the general path would not: every check that could send the packet
//! elsewhere is made before anything changes, and a packet that fails one goes down the general
//! path as if this one did not exist (`tests::established_path_changes_no_answer` holds the two
//! equal on verdicts, bytes, counters and flow tables).

use super::v6::rewrite6_to;
use super::{count, refresh, rewrite_to, BurstCx, State, Verdict};
use crate::buf::{PacketBuf, PacketSink};
use crate::counters::{Counters, DropReason};
use crate::flow::{FlowEntry, FlowKey, FlowKey6};
use crate::parse::{self, CommonHeader, Parsed};
use crate::parse6::{self, CommonHeader6, COMMON6_L4};
use crate::rewrite::{self, DscpAt};
use crate::snapshot::{Forward, ForwardMode, ServiceInfo, Snapshot};
use crate::table;
use crate::table::Millis;
use crate::wire::{be16, ethernet, fixed, ipv4, ipv6, l4};

const L3: usize = ethernet::HEADER_LEN;
const L4: usize = L3 + ipv4::MIN_HEADER_LEN;

/// The flow a common-shape frame belongs to (what `flow_key` makes of its parse: it is whole).
#[inline(always)]
pub(super) fn common_key(h: &CommonHeader) -> FlowKey {
    FlowKey::from_wire(
        u64::from_le_bytes(fixed(h, L3 + ipv4::field::SRC)),
        u32::from_le_bytes(fixed(h, L4)),
        h[L3 + ipv4::field::PROTOCOL],
    )
}

/// The flow a common-shape IPv6 frame belongs to (what `v6::peek_hash` keys).
#[inline(always)]
pub(super) fn common_key6(h: &CommonHeader6) -> FlowKey6 {
    const L3: usize = ethernet::HEADER_LEN;
    FlowKey6::new(
        h[L3 + ipv6::field::NEXT_HEADER],
        ipv6::ip16(h, L3 + ipv6::field::SRC),
        ipv6::ip16(h, L3 + ipv6::field::DST),
        be16(h, COMMON6_L4),
        be16(h, COMMON6_L4 + 2),
    )
}

/// `LastService::key` of a common-shape frame: its destination address and ports in one load,
/// the source port's bytes replaced by the protocol.
#[inline(always)]
fn service_key(h: &CommonHeader) -> u64 {
    let dst_ports = u64::from_le_bytes(fixed(h, L3 + ipv4::field::DST));
    dst_ports & 0xffff_0000_ffff_ffff | (h[L3 + ipv4::field::PROTOCOL] as u64) << 32
}

/// What the established-flow path forwarded in one burst, added to the worker's counters once
/// per burst (and per change of service and backend) instead of once per packet; and the ports
/// it forwarded to, so that a burst forwarded whole out of one port is known without a look
/// over its verdicts.
pub(super) struct Tally {
    forwarded: u64,
    service: u16,
    backend: u32,
    packets: u64,
    bytes: u64,
    /// Every port forwarded to, OR-ed and AND-ed: one port when the two are equal.
    ports_or: u16,
    ports_and: u16,
}

impl Default for Tally {
    fn default() -> Self {
        Tally { forwarded: 0, service: 0, backend: 0, packets: 0, bytes: 0, ports_or: 0, ports_and: u16::MAX }
    }
}

impl Tally {
    /// One packet of `len` bytes for service id `service` and backend id `backend`.
    #[inline(always)]
    fn add(&mut self, c: &mut Counters, service: u16, backend: u32, len: u64) {
        if service != self.service || backend != self.backend {
            self.flush_traffic(c);
            self.service = service;
            self.backend = backend;
        }
        self.packets += 1;
        self.bytes += len;
    }

    #[inline(always)]
    fn flush_traffic(&mut self, c: &mut Counters) {
        if self.packets == 0 {
            return;
        }
        c.add_traffic(self.service, self.backend, self.packets, self.bytes);
        self.packets = 0;
        self.bytes = 0;
    }

    /// Count the verdict the rewrite gave a tallied packet: forwarded here, anything else (a
    /// drop, a "fragmentation needed") where the general path counts it.
    #[inline(always)]
    fn verdict(&mut self, c: &mut Counters, v: Verdict) -> Verdict {
        if let Verdict::Tx(port) = v {
            self.sent(port);
            v
        } else {
            count(c, v)
        }
    }

    /// A packet forwarded (`Verdict::Tx`) out of `port`.
    #[inline(always)]
    fn sent(&mut self, port: u16) {
        self.forwarded += 1;
        self.ports_or |= port;
        self.ports_and &= port;
    }

    /// The port every one of `packets` packets was forwarded to, when this path forwarded them
    /// all and to one port (call before `flush`).
    pub(super) fn one_port(&self, packets: usize) -> Option<u16> {
        (packets > 0 && self.forwarded == packets as u64 && self.ports_or == self.ports_and)
            .then_some(self.ports_and)
    }

    /// Add what was tallied to the counters (at the end of a burst).
    pub(super) fn flush(&mut self, c: &mut Counters) {
        self.flush_traffic(c);
        c.forwarded += self.forwarded;
        self.forwarded = 0;
    }
}

/// What both families' paths decide once the packet's flow is found: a flow neither opening nor
/// closing, to a backend that keeps it, has its expiry moved on, and its backend and forwarding
/// entry are the answer; `None`, with nothing changed, otherwise.
#[inline(always)]
fn keep<'a, E: FlowEntry>(
    snap: &'a Snapshot,
    svc: usize,
    s: &ServiceInfo,
    slot: &mut E,
    tcp: bool,
    now: Millis,
) -> Option<(u32, &'a Forward)> {
    if slot.flags() & (table::FLAG_CLOSING | table::FLAG_EMBRYONIC) != 0 {
        return None;
    }
    let backend = slot.backend();
    let f = snap.forward(svc, backend).filter(|f| f.keeps_flows)?;
    refresh(slot.expires_mut(), if tcp { s.tcp_idle_ms } else { s.udp_idle_ms }, now);
    Some((backend, f))
}

/// Forward a common-shape packet (`parse::common_header` accepted it in the first pass, and
/// `hash` is its flow's) if it belongs to an established flow this worker holds; `None`, with
/// nothing changed, sends it down the general path.
#[inline(always)]
pub(super) fn established<B: PacketBuf, S: PacketSink<B>>(
    cx: &mut BurstCx<'_, S>,
    st: &mut State,
    pkt: &mut B,
    hash: u64,
    tally: &mut Tally,
) -> Option<Verdict> {
    let (snap, now) = (cx.snap, cx.now);
    let data = pkt.data_mut();
    let len = data.len() as u64;
    let h: &CommonHeader = data.first_chunk()?;
    if !ethernet::dst_is(h, cx.port_mac) {
        return None;
    }
    let proto = h[L3 + ipv4::field::PROTOCOL];
    let tcp = proto == ipv4::PROTO_TCP;
    let tcp_flags = if tcp { *data.get(parse::COMMON_TCP_FLAGS_AT)? } else { 0 };
    if tcp_flags & (l4::TCP_FIN | l4::TCP_RST) != 0 {
        return None;
    }
    let key = common_key(h);
    let svc = st.last_service.position_keyed(service_key(h), snap, key.dst(), proto, key.dport());
    let s = snap.services.get(svc)?;
    let slot = st.flows.get_home_mut(&key.id(s.id), hash, now)?;
    let (backend, f) = keep(snap, svc, s, slot, tcp, now)?;
    // Decided: from here on this is what the general path does with the packet.
    tally.add(&mut st.counters, s.id, backend, len);
    let ip_len = be16(h, L3 + ipv4::field::TOTAL_LEN);
    let fits = ip_len <= f.mtu;
    match s.mode {
        // `rewrite::to_backend`'s two in-place modes, for a packet that fits the egress.
        ForwardMode::L2 if fits => rewrite::rewrite_l2(data, f.macs),
        ForwardMode::Dscp(code) if fits => {
            let at = DscpAt { l3: L3, l4: Some(L4), proto, tos: h[L3 + ipv4::field::TOS] };
            // The packet's destination is the VIP of `f`'s service, whose change to the real
            // address the snapshot summed once.
            rewrite::rewrite_dscp_at(data, at, code, f.real_ip, f.csum_base as u32, f.macs);
        }
        ForwardMode::Ipip if !f.real_v6 && ip_len as usize + rewrite::IPIP_OVERHEAD <= f.mtu as usize => {
            let (tos, df) =
                (h[L3 + ipv4::field::TOS], be16(h, L3 + ipv4::field::FLAGS_FRAG) & ipv4::FLAG_DF != 0);
            st.ip_id = st.ip_id.wrapping_add(1);
            if !rewrite::encap_ipip_untagged(pkt, ip_len as usize, tos, df, f, st.ip_id) {
                return Some(count(&mut st.counters, Verdict::Drop(DropReason::NoBuffer)));
            }
        }
        // Encapsulating 4in6, and what does not fit the egress, need the whole parse.
        _ => {
            let mut p = Parsed::EMPTY;
            parse::write_common(h, tcp_flags, &mut p);
            let v = rewrite_to(cx, st, pkt, &p, s, f);
            return Some(tally.verdict(&mut st.counters, v));
        }
    }
    tally.sent(f.port);
    Some(Verdict::Tx(f.port))
}

/// `established` for a common-shape IPv6 packet (`parse6::common_header6` accepted it in the
/// first pass, and `hash` is its flow's): the same checks, then the IPv6 rewrite from a parse
/// read at fixed offsets.
#[inline(always)]
pub(super) fn established6<B: PacketBuf, S: PacketSink<B>>(
    cx: &mut BurstCx<'_, S>,
    st: &mut State,
    pkt: &mut B,
    hash: u64,
    tally: &mut Tally,
) -> Option<Verdict> {
    let (snap, now) = (cx.snap, cx.now);
    let data = pkt.data();
    let h: &CommonHeader6 = data.first_chunk()?;
    if !ethernet::dst_is(h, cx.port_mac) {
        return None;
    }
    let tcp = h[ethernet::HEADER_LEN + ipv6::field::NEXT_HEADER] == ipv6::NH_TCP;
    let tcp_flags = if tcp { *data.get(parse6::COMMON6_TCP_FLAGS_AT)? } else { 0 };
    if tcp_flags & (l4::TCP_FIN | l4::TCP_RST) != 0 {
        return None;
    }
    let p = parse6::write_common6(h, tcp_flags);
    let len = data.len() as u64;
    let svc = st.last_service6.find(snap, p.dst, p.proto, p.dport)?;
    let s = snap.services.get(svc)?;
    let slot = st.flows6.get_home_mut(
        &FlowKey6::new(p.proto, p.src, p.dst, p.sport, p.dport).id(s.id),
        hash,
        now,
    )?;
    let (backend, f) = keep(snap, svc, s, slot, tcp, now)?;
    // Decided: from here on this is what the general path does with the packet.
    tally.add(&mut st.counters, s.id, backend, len);
    let v = rewrite6_to(cx, st, pkt, &p, s, f);
    Some(tally.verdict(&mut st.counters, v))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use crate::flow::{FlowSlot, FlowSlot6};
    use crate::parse;
    use crate::pipeline::{LastService, LastService6};
    use crate::snapshot::{BackendState, Snapshot};
    use crate::testkit::{eth, every_feature, tcp_seg, udp_seg, CountedSink, Ip};
    use crate::{PacketBuf, VecPacket, Verdict, Worker, WorkerConfig};

    /// `every_feature`'s configuration, and a second one a reload might bring: backends down,
    /// draining and unresolved, and a small MTU on the server side.
    fn snapshots() -> [Arc<Snapshot>; 2] {
        let a = every_feature();
        let mut services = a.services.clone();
        for s in services.iter_mut() {
            for (i, b) in s.backends.iter_mut().enumerate() {
                match i {
                    0 => b.state = BackendState::Down,
                    1 => b.next_hop_mac = None,
                    _ => b.state = BackendState::Up,
                }
            }
        }
        let mut ports = a.ports.clone();
        ports[1].mtu = 300;
        let b = Snapshot::build(2, ports, services).expect("snapshot");
        [Arc::new(a), Arc::new(b)]
    }

    /// One packet of the test's traffic: few clients, VIPs and ports, so that flows repeat and
    /// open, run and close; every TCP flag mix; some frames for another MAC, or cut, or edited.
    #[derive(Debug, Clone)]
    struct Pkt {
        v6: bool,
        client: u8,
        vip: u8,
        udp: bool,
        dport: u8,
        sport: u8,
        flags: u8,
        size: u16,
        tos: u8,
        other_mac: bool,
        edit: Option<(usize, u8)>,
        cut: u8,
    }

    fn pkt() -> impl Strategy<Value = Pkt> {
        (
            (prop::bool::weighted(0.4), 0u8..4, 0u8..5, any::<bool>(), 0u8..4, 0u8..3),
            prop::sample::select(vec![0x02u8, 0x10, 0x12, 0x18, 0x11, 0x04, 0x14, 0x01, 0x00]),
            (0u16..600, any::<u8>(), prop::bool::weighted(0.05)),
            prop::option::weighted(0.05, (0usize..80, any::<u8>())),
            prop::sample::select(vec![0u8, 0, 0, 0, 0, 0, 0, 0, 1, 10, 30]),
        )
            .prop_map(
                |((v6, client, vip, udp, dport, sport), flags, (size, tos, other_mac), edit, cut)| Pkt {
                    v6,
                    client,
                    vip,
                    udp,
                    dport,
                    sport,
                    flags,
                    size,
                    tos,
                    other_mac,
                    edit,
                    cut,
                },
            )
    }

    fn frame(p: &Pkt) -> Vec<u8> {
        if p.v6 {
            return frame6(p);
        }
        let src = [[198, 51, 100, 7], [203, 0, 113, 9], [192, 0, 2, 1], [127, 0, 0, 1]][p.client as usize];
        let dst = [[10, 0, 0, 100], [10, 0, 0, 101], [10, 0, 0, 102], [10, 0, 0, 103], [10, 0, 0, 2]]
            [p.vip as usize];
        let (sport, dport) = (40000 + p.sport as u16, [80, 443, 53, 9][p.dport as usize]);
        let data = vec![0x5a; p.size as usize];
        let (proto, seg) = if p.udp {
            (17, udp_seg(src, dst, sport, dport, &data, p.size.is_multiple_of(2)))
        } else {
            (6, tcp_seg(src, dst, sport, dport, p.flags, &data))
        };
        let mut ip = Ip::new(proto, src, dst);
        ip.df = !p.size.is_multiple_of(3);
        ip.tos = p.tos;
        let to = if p.other_mac { [2, 0, 0, 0, 7, 7] } else { [2, 0, 0, 0, 0, 1] };
        let mut f = eth(to, [2, 0, 0, 0, 9, 9], 0x0800, &ip.bytes(&seg));
        if let Some((at, byte)) = p.edit {
            if at < f.len() {
                f[at] = byte;
            }
        }
        f.truncate(f.len().saturating_sub(p.cut as usize));
        f
    }

    /// The service caches answer as the snapshot does, whatever the order of lookups (the
    /// equivalence test cannot see this: both of its workers use the caches).
    #[test]
    fn service_caches_answer_as_the_snapshot() {
        let snap = every_feature();
        let (mut last, mut last6) = (LastService::default(), LastService6::default());
        let v4 = [[10, 0, 0, 100], [10, 0, 0, 101], [10, 0, 0, 102], [10, 0, 0, 103], [10, 0, 0, 2]];
        let v6 = |last: u8| {
            let mut a = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            a[15] = last;
            a
        };
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let proto = [6, 17, 1][(rng % 3) as usize];
            let port = [80, 443, 53, 9, 0][((rng >> 8) % 5) as usize];
            let vip = v4[((rng >> 16) % 5) as usize];
            assert_eq!(last.find(&snap, vip, proto, port), snap.find_service(vip, proto, port));
            let vip6 = v6([0x64, 0x65, 0x66, 0x02][((rng >> 24) % 4) as usize]);
            assert_eq!(last6.find(&snap, vip6, proto, port), snap.find_service6(vip6, proto, port));
        }
    }

    #[test]
    fn service_key_reads_as_the_cache_keys() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            let mut h = [0u8; parse::COMMON_LEN];
            for b in h.iter_mut() {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                *b = rng as u8;
            }
            let key = super::common_key(&h);
            assert_eq!(super::service_key(&h), LastService::key(key.dst(), key.proto(), key.dport()));
        }
    }

    /// `frame` for IPv6: `every_feature`'s IPv6 VIPs (and a port address), its traffic class
    /// from `tos`.
    fn frame6(p: &Pkt) -> Vec<u8> {
        use crate::testkit::v6::{ip6, tcp_seg6, udp_seg6};
        let a = |last: u16| {
            let mut a = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            a[14..].copy_from_slice(&last.to_be_bytes());
            a
        };
        let mut loopback = [0u8; 16];
        loopback[15] = 1;
        let src = [a(0x9007), a(0x9009), a(0x9101), loopback][p.client as usize];
        let dst = [a(0x64), a(0x65), a(0x66), a(0x66), a(0x2)][p.vip as usize];
        let (sport, dport) = (40000 + p.sport as u16, [80, 443, 53, 9][p.dport as usize]);
        let data = vec![0x5a; p.size as usize];
        let (nh, seg) = if p.udp {
            (17, udp_seg6(src, dst, sport, dport, &data))
        } else {
            (6, tcp_seg6(src, dst, sport, dport, p.flags, &data))
        };
        let mut ip = ip6(nh, src, dst, &seg);
        ip[0] = 0x60 | p.tos >> 4;
        ip[1] = p.tos << 4 | (ip[1] & 0x0f);
        let to = if p.other_mac { [2, 0, 0, 0, 7, 7] } else { [2, 0, 0, 0, 0, 1] };
        let mut f = eth(to, [2, 0, 0, 0, 9, 9], 0x86dd, &ip);
        if let Some((at, byte)) = p.edit {
            if at < f.len() {
                f[at] = byte;
            }
        }
        f.truncate(f.len().saturating_sub(p.cut as usize));
        f
    }

    /// A TCP segment with `flags` of the first client's connection to the first VIP.
    fn open(flags: u8) -> Pkt {
        Pkt {
            v6: false,
            client: 0,
            vip: 0,
            udp: false,
            dport: 0,
            sport: 0,
            flags,
            size: 10,
            tos: 0,
            other_mac: false,
            edit: None,
            cut: 0,
        }
    }

    /// A worker with small tables.
    fn small() -> WorkerConfig {
        WorkerConfig { flow_capacity: 64, flow6_capacity: 64, persistence_capacity: 64, ..Default::default() }
    }

    fn live(w: &Worker, now: u32) -> (Vec<FlowSlot>, Vec<FlowSlot6>) {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        w.flows().for_each_live(now, |s| v4.push(*s));
        w.flows6().for_each_live(now, |s| v6.push(*s));
        (v4, v6)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]
        /// The established-flow path changes no answer: two workers, one with it and one that
        /// sends everything down the general path, given the same bursts (with time moving on
        /// past the SYN, closing and idle timeouts, and a reload between), agree on every
        /// verdict, every byte sent, every counter and every flow held.
        #[test]
        fn established_path_changes_no_answer(
            mut bursts in proptest::collection::vec(
                (proptest::collection::vec(pkt(), 1..48), 0u32..400, any::<bool>(), prop::bool::weighted(0.1)),
                1..12,
            ),
        ) {
            // First a handshake and a packet of it, so that every case has an established flow.
            let open6 = |flags| Pkt { v6: true, ..open(flags) };
            bursts.insert(0, (vec![open(0x02), open(0x10), open(0x18), open6(0x02), open6(0x10), open6(0x18)], 0, false, false));
            let [a, b] = snapshots();
            let mut fast = Worker::new(small(), a.clone());
            let mut general = Worker::new(small(), a).without_fast_path();
            let mut now = 1u32;
            for (pkts, dt, in_port_1, reload) in bursts {
                now += dt;
                if reload {
                    fast.install(b.clone());
                    general.install(b.clone());
                }
                let in_port = in_port_1 as u16;
                let frames: Vec<Vec<u8>> = pkts.iter().map(frame).collect();
                let mut out = Vec::new();
                for w in [&mut fast, &mut general] {
                    let mut bufs: Vec<VecPacket> = frames.iter().map(|f| VecPacket::from_bytes(f)).collect();
                    let mut verdicts = vec![Verdict::Drop(crate::DropReason::NoBuffer); bufs.len()];
                    let one_port = w.process_burst(&mut bufs, in_port, now, &mut verdicts, &mut CountedSink(4));
                    // The port it names is every packet's verdict.
                    if let Some(p) = one_port {
                        prop_assert!(verdicts.iter().all(|v| *v == Verdict::Tx(p)), "{:?} for {:?}", one_port, verdicts);
                    }
                    w.housekeeping(now);
                    let bytes: Vec<Vec<u8>> = bufs.iter().map(|p| p.data().to_vec()).collect();
                    out.push((verdicts, bytes));
                }
                prop_assert_eq!(&out[0], &out[1]);
                prop_assert_eq!(fast.counters(), general.counters());
                prop_assert_eq!(live(&fast, now), live(&general, now));
                prop_assert_eq!(fast.flows().active_counts(), general.flows().active_counts());
                prop_assert_eq!(fast.flows6().active_counts(), general.flows6().active_counts());
            }
            prop_assert!(fast.established[0] > 0 && fast.established[1] > 0, "both paths under test were taken");
            prop_assert_eq!(general.established, [0, 0]);
        }
    }

    /// A burst the established-flow path forwards whole names its one port; a burst with a
    /// packet it did not take (a SYN) names none.
    #[test]
    fn a_burst_forwarded_whole_names_its_port() {
        let [a, _] = snapshots();
        let mut w = Worker::new(small(), a);
        let mut run = |pkts: &[Pkt]| {
            let mut bufs: Vec<VecPacket> = pkts.iter().map(|p| VecPacket::from_bytes(&frame(p))).collect();
            let mut verdicts = vec![Verdict::Drop(crate::DropReason::NoBuffer); bufs.len()];
            let one = w.process_burst(&mut bufs, 0, 1, &mut verdicts, &mut CountedSink(4));
            (one, verdicts)
        };
        let (one, verdicts) = run(&[open(0x02), open(0x10)]);
        assert_eq!(one, None, "the SYN took the general path: {verdicts:?}");
        let (one, verdicts) = run(&[open(0x10), open(0x18), open(0x10)]);
        let Verdict::Tx(port) = verdicts[0] else { panic!("forwarded: {verdicts:?}") };
        assert_eq!(one, Some(port), "{verdicts:?}");
    }
}
