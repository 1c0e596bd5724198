//! The per-packet pipeline of one worker: classify, find or schedule the flow, rewrite for the
//! service's DSR mode, and say what to do with the packet. No allocation, locking, logging or
//! panicking on any input; every drop is counted by reason.

use std::sync::Arc;

use crate::buf::{PacketBuf, PacketSink};
use crate::counters::{Counters, DropReason};
use crate::flow::{hash_addr, FlowEntry, FlowId, FlowKey, FlowSlot, FlowTable, FlowTable6, FlowTableOf};
use crate::io::BURST;
use crate::parse::{self, parse_into, Fragment, Kind, Parsed};
use crate::parse6;
use crate::persist::{persisted_addr, PersistTable};
use crate::ratelimit::TokenBucket;
use crate::rewrite::{self, EncapResult};
use crate::sched::{self, WrrState};
use crate::snapshot::{Forward, PortRole, ServiceInfo, Snapshot};
use crate::table::{self, Insert, MemoryAdvice, Millis};
use crate::wire::{be16, ethernet, icmp, ip4, ipv4, l4};

mod fast;
mod v6;

/// What to do with a packet after the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit on this port (the packet has been rewritten).
    Tx(u16),
    /// Transmit on this port: the packet has been turned into an answer to its sender (ICMP
    /// "fragmentation needed"). Sent as `Tx` is; counted apart from what is forwarded.
    Reply(u16),
    /// Hand to the control core (ARP, ICMP echo, anything addressed to the LB itself), as this
    /// kind of packet: its priority there and the rate this worker lets through.
    ToControl(Punt),
    Drop(DropReason),
}

/// What a packet for the control core is: the kinds are policed apart, and the control core
/// serves the first two before the third, so that a flood of one kind (echo to a VIP, anything
/// at an LB address) cannot starve neighbour resolution and health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Punt {
    /// ARP: answers to our requests, questions for our addresses.
    Arp = 0,
    /// Health-check answers (to an LB address from a VIP, as DSR replies come, or an echo
    /// reply), and traffic from the routing peers (BGP, BFD).
    Priority = 1,
    /// Everything else for the LB itself: echo requests, other traffic to its addresses.
    Other = 2,
}

impl Punt {
    pub const ALL: [Punt; 3] = [Punt::Arp, Punt::Priority, Punt::Other];

    pub fn name(self) -> &'static str {
        match self {
            Punt::Arp => "arp",
            Punt::Priority => "priority",
            Punt::Other => "other",
        }
    }

    /// Served first by the control core.
    pub fn is_priority(self) -> bool {
        self != Punt::Other
    }
}

#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    /// IPv4 flows this worker can hold (the table rounds up to a power of two).
    pub flow_capacity: usize,
    /// IPv6 flows this worker can hold (a table of its own: its keys are four times as long).
    pub flow6_capacity: usize,
    /// Persistence entries this worker can hold.
    pub persistence_capacity: usize,
    /// "Fragmentation needed" messages per second this worker may send, and the burst allowed.
    pub frag_needed_per_sec: u32,
    pub frag_needed_burst: u32,
    /// Packets per second (and burst) this worker hands to the control core, by `Punt` kind.
    pub punt_per_sec: [u32; 3],
    pub punt_burst: [u32; 3],
    /// The sweep visits the whole flow table, a slice per elapsed millisecond, once per a
    /// quarter of the shortest timeout of the installed services, but at least once per this
    /// many milliseconds (expiry on lookup and reuse on insert cover the rest; the sweep bounds
    /// how long expired flows still count as active for least-connections).
    pub sweep_period_ms: u32,
    /// Called on the flow table's memory before it is first written. A table of a million
    /// flows is 64 MiB: on 4 KiB pages nearly every lookup also misses the TLB, so the appliance
    /// asks for transparent huge pages here. `None` leaves the memory as the allocator gives it.
    pub memory_advice: Option<MemoryAdvice>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            flow_capacity: 1 << 20,
            flow6_capacity: 1 << 18,
            persistence_capacity: 1 << 16,
            frag_needed_per_sec: 1000,
            frag_needed_burst: 100,
            // ARP: a few thousand neighbours refreshed; replies: ~16 000 probes/s of a few
            // packets each; the rest (pings) needs little.
            punt_per_sec: [5_000, 100_000, 1_000],
            punt_burst: [1_000, 10_000, 200],
            sweep_period_ms: 10_000,
            memory_advice: None,
        }
    }
}

/// The last service lookup's key and answer: packets of a burst mostly go to one service, and
/// a hit spares the lookup and the load chain behind it. Cleared when a snapshot is installed.
#[derive(Debug, Clone, Copy)]
struct LastService {
    /// The destination, protocol and port looked up last (`NONE` before the first lookup).
    key: u64,
    /// The service position it found, or `NO_SERVICE`: the caller's bounds check on the
    /// services is then the only test of the answer.
    svc: usize,
}

impl LastService {
    /// No TCP or UDP packet has this key (its protocol byte would be 0xff: `key`), and only
    /// those are looked up.
    const NONE: u64 = u64::MAX;
    const NO_SERVICE: usize = usize::MAX;

    /// The service for a packet to `vip`/`proto`/`port`, as `Snapshot::find_service` answers.
    #[inline(always)]
    fn find(&mut self, snap: &Snapshot, vip: [u8; 4], proto: u8, port: u16) -> Option<usize> {
        let svc = self.position(snap, vip, proto, port);
        (svc != Self::NO_SERVICE).then_some(svc)
    }

    /// `find`'s answer as a position, `NO_SERVICE` for none (which no service has, so the
    /// caller's bounds check is the only test).
    #[inline(always)]
    fn position(&mut self, snap: &Snapshot, vip: [u8; 4], proto: u8, port: u16) -> usize {
        self.position_keyed(Self::key(vip, proto, port), snap, vip, proto, port)
    }

    /// The cache's key for a destination, protocol and port: laid out as the destination
    /// address and the ports lie in an IPv4 header without options (read little-endian), with
    /// the protocol where the source port was, so that a packet's key is one load and two
    /// operations (`fast::service_key`).
    #[inline(always)]
    fn key(vip: [u8; 4], proto: u8, port: u16) -> u64 {
        let [p0, p1] = port.to_be_bytes();
        u32::from_le_bytes(vip) as u64 | (proto as u64) << 32 | (u16::from_le_bytes([p0, p1]) as u64) << 48
    }

    /// `position`, with the key already made (`key`'s).
    #[inline(always)]
    fn position_keyed(&mut self, k: u64, snap: &Snapshot, vip: [u8; 4], proto: u8, port: u16) -> usize {
        if k != self.key {
            self.key = k;
            self.svc = snap.find_service(vip, proto, port).unwrap_or(Self::NO_SERVICE);
        }
        self.svc
    }
}

impl Default for LastService {
    fn default() -> Self {
        LastService { key: Self::NONE, svc: Self::NO_SERVICE }
    }
}

/// `LastService` for IPv6: the destination, protocol and port looked up last, and the answer.
/// Cleared when a snapshot is installed.
#[derive(Debug, Clone, Copy, Default)]
struct LastService6 {
    /// Destination, then protocol << 16 | port; `None` before the first lookup.
    key: Option<([u8; 16], u32)>,
    svc: Option<usize>,
}

impl LastService6 {
    /// The service for a packet to `vip`/`proto`/`port`, as `Snapshot::find_service6` answers.
    #[inline(always)]
    fn find(&mut self, snap: &Snapshot, vip: [u8; 16], proto: u8, port: u16) -> Option<usize> {
        let k = (vip, (proto as u32) << 16 | port as u32);
        if self.key != Some(k) {
            self.key = Some(k);
            self.svc = snap.find_service6(vip, proto, port);
        }
        self.svc
    }
}

/// A worker's mutable state; the snapshot is kept apart so both can be borrowed at once.
struct State {
    last_service: LastService,
    flows: FlowTable,
    persist: PersistTable,
    flows6: FlowTable6,
    persist6: PersistTable<[u8; 16]>,
    wrr: Vec<WrrState>,
    counters: Counters,
    frag_needed: TokenBucket,
    /// By `Punt` kind.
    punt_limit: [TokenBucket; 3],
    ip_id: u16,
    /// The longest sweep period allowed, each family's sweep pace, and when the sweep last ran.
    max_sweep_period_ms: u32,
    sweep: SweepPace,
    sweep6: SweepPace,
    last_sweep: Option<Millis>,
    last_service6: LastService6,
}

pub struct Worker {
    snap: Arc<Snapshot>,
    st: State,
    /// The first pass's descriptions of one burst, reused (not rebuilt) from burst to burst.
    descs: Box<[PacketDesc; BURST]>,
    /// Whether established flows take `fast::established` (always, but for the tests that hold
    /// it equal to the general path).
    #[cfg(test)]
    fast_path: bool,
    /// Packets the established-flow path took, IPv4 and IPv6 (for the tests).
    #[cfg(test)]
    established: [u64; 2],
}

impl Worker {
    pub fn new(cfg: WorkerConfig, snap: Arc<Snapshot>) -> Worker {
        let flows =
            FlowTable::with_memory_advice(cfg.flow_capacity, snap.backend_id_bound(), cfg.memory_advice);
        let mut w = Worker {
            st: State {
                last_service: LastService::default(),
                last_service6: LastService6::default(),
                flows,
                persist: PersistTable::new(cfg.persistence_capacity),
                flows6: FlowTable6::with_memory_advice(
                    cfg.flow6_capacity,
                    snap.backend_id_bound(),
                    cfg.memory_advice,
                ),
                persist6: PersistTable::new(cfg.persistence_capacity),
                wrr: Vec::new(),
                counters: Counters::default(),
                frag_needed: TokenBucket::new(cfg.frag_needed_per_sec, cfg.frag_needed_burst),
                punt_limit: [0, 1, 2].map(|k| TokenBucket::new(cfg.punt_per_sec[k], cfg.punt_burst[k])),
                ip_id: 0,
                max_sweep_period_ms: cfg.sweep_period_ms.max(1),
                sweep: SweepPace { per_ms: 1, owed: 0 },
                sweep6: SweepPace { per_ms: 1, owed: 0 },
                last_sweep: None,
            },
            snap: snap.clone(),
            descs: Box::new([PacketDesc::EMPTY; BURST]),
            #[cfg(test)]
            fast_path: true,
            #[cfg(test)]
            established: [0; 2],
        };
        w.install(snap);
        w
    }

    /// Switch to a new snapshot (between bursts). Flows keep their backend ids, so flows to
    /// backends that survive the change keep going to them. Returns the previous snapshot.
    pub fn install(&mut self, snap: Arc<Snapshot>) -> Arc<Snapshot> {
        self.st.wrr = snap.eligible.iter().map(|e| WrrState::new(e.len())).collect();
        self.st.last_service = LastService::default();
        self.st.last_service6 = LastService6::default();
        self.st.flows.ensure_backends(snap.backend_id_bound());
        self.st.flows6.ensure_backends(snap.backend_id_bound());
        self.st.counters.ensure_ids(snap.service_id_bound(), snap.backend_id_bound());
        // Sweeping a table of a million flows reads all of its memory; once a second it was a
        // visible share of the worker (docs/performance.md). A quarter of the shortest timeout
        // keeps stale entries as short-lived.
        let shortest = snap
            .services
            .iter()
            .map(|s| s.tcp_idle_ms.min(s.udp_idle_ms).min(s.closing_ms).min(s.syn_ms))
            .min();
        let max = self.st.max_sweep_period_ms;
        let period = shortest.map_or(max, |t| (t / 4).max(100).min(max));
        self.st.sweep.per_ms = self.st.flows.capacity().div_ceil(period as usize).max(1);
        self.st.sweep6.per_ms = self.st.flows6.capacity().div_ceil(period as usize).max(1);
        std::mem::replace(&mut self.snap, snap)
    }

    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snap
    }

    pub fn counters(&self) -> &Counters {
        &self.st.counters
    }

    pub fn flows(&self) -> &FlowTable {
        &self.st.flows
    }

    pub fn flows6(&self) -> &FlowTable6 {
        &self.st.flows6
    }

    /// Background work between bursts: expiry paced by time, so its cost per packet falls as
    /// the packet rate rises. The flow tables' sweep is owed per elapsed millisecond and paid
    /// `SWEEP_SLICE` buckets per call, so that the packets behind one pass do not wait for a
    /// whole millisecond's sweep (a default table's took about 8 µs: docs/performance.md); a
    /// caller that comes less often than that needs still pays all but one millisecond's worth
    /// per call.
    pub fn housekeeping(&mut self, now: Millis) {
        let st = &mut self.st;
        let last = *st.last_sweep.get_or_insert(now);
        let elapsed = now.wrapping_sub(last).min(1000) as usize;
        if elapsed > 0 {
            st.last_sweep = Some(now);
            st.sweep.owe(elapsed, st.flows.capacity());
            st.sweep6.owe(elapsed, st.flows6.capacity());
            st.persist.sweep(now, elapsed * (st.sweep.per_ms / 4 + 1));
            st.persist6.sweep(now, elapsed * (st.sweep6.per_ms / 4 + 1));
        }
        pay_sweep(&mut st.sweep, &mut st.flows, now, &mut st.counters);
        pay_sweep(&mut st.sweep6, &mut st.flows6, now, &mut st.counters);
    }

    /// Run a burst; `verdicts[i]` tells what to do with `pkts[i]`.
    ///
    /// Two passes per `BURST` packets: the first looks at every packet and starts fetching its
    /// flow's bucket; the second runs each packet. The fetches are started in the first pass
    /// because it is short per packet: the CPU's reorder window then spans several packets'
    /// fetches, so their TLB walks and misses overlap (at a million flows nearly every bucket is
    /// both; docs/performance.md has the figures).
    ///
    /// A packet of the common shape (`parse::common_header`, `parse6::common_header6`) is only
    /// keyed and hashed in the first pass; in the second, `fast::established` (or
    /// `established6`) forwards it straight from its header when it belongs to a flow this
    /// worker holds, and otherwise it is described then and takes the general path. Every other
    /// packet is described in the first pass.
    ///
    /// Returns the port the whole burst is to be sent on, when the established-flow path
    /// forwarded every packet and all to one port (every verdict then `Tx` of it): the caller
    /// can send the burst as it is, without a look over the verdicts. `None` says nothing.
    pub fn process_burst<B: PacketBuf, S: PacketSink<B>>(
        &mut self,
        pkts: &mut [B],
        in_port: u16,
        now: Millis,
        verdicts: &mut [Verdict],
        sink: &mut S,
    ) -> Option<u16> {
        let Worker { snap, st, descs, .. } = self;
        #[cfg(not(test))]
        let fast_path = true;
        #[cfg(test)]
        let fast_path = self.fast_path;
        #[cfg(test)]
        let mut established = [0; 2];
        let mut cx = BurstCx::new(snap, in_port, now, sink);
        let mut tally = fast::Tally::default();
        for (pkts, verdicts) in pkts.chunks_mut(BURST).zip(verdicts.chunks_mut(BURST)) {
            st.counters.rx_packets += pkts.len() as u64;
            for (pkt, d) in pkts.iter().zip(descs.iter_mut()) {
                let data = pkt.data();
                if let Some((h, _)) = parse::common_header(data) {
                    d.shape = Shape::Common;
                    d.hash = fast::common_key(h).hash();
                    st.flows.prefetch(d.hash);
                    continue;
                }
                if let Some((h, _)) = parse6::common_header6(data) {
                    d.shape = Shape::Common6;
                    d.hash = fast::common_key6(h).hash();
                    st.flows6.prefetch(d.hash);
                    continue;
                }
                d.shape = Shape::Described;
                describe(data, d);
                if d.kind == Ok(Kind::Ipv6) {
                    st.flows6.prefetch(d.hash);
                } else {
                    st.flows.prefetch(d.hash);
                }
            }
            for (i, (pkt, v)) in pkts.iter_mut().zip(verdicts.iter_mut()).enumerate() {
                let d = &mut descs[i];
                if d.shape != Shape::Described {
                    if fast_path {
                        let fv = if d.shape == Shape::Common {
                            fast::established(&mut cx, st, pkt, d.hash, &mut tally)
                        } else {
                            fast::established6(&mut cx, st, pkt, d.hash, &mut tally)
                        };
                        if let Some(fv) = fv {
                            *v = fv;
                            #[cfg(test)]
                            {
                                established[(d.shape == Shape::Common6) as usize] += 1;
                            }
                            continue;
                        }
                    }
                    describe(pkt.data(), d);
                }
                *v = run(&mut cx, st, pkt, d);
            }
        }
        let one_port = tally.one_port(pkts.len());
        tally.flush(&mut st.counters);
        #[cfg(test)]
        {
            self.established[0] += established[0];
            self.established[1] += established[1];
        }
        one_port
    }

    /// Send every packet down the general path (for the tests that hold the established-flow
    /// path to the same answers, counts and table).
    #[cfg(test)]
    fn without_fast_path(mut self) -> Self {
        self.fast_path = false;
        self
    }

    /// Run one packet received on `in_port` at `now`.
    #[inline]
    pub fn process<B: PacketBuf, S: PacketSink<B>>(
        &mut self,
        pkt: &mut B,
        in_port: u16,
        now: Millis,
        sink: &mut S,
    ) -> Verdict {
        let mut d = PacketDesc::EMPTY;
        describe(pkt.data(), &mut d);
        self.st.counters.rx_packets += 1;
        run(&mut BurstCx::new(&self.snap, in_port, now, sink), &mut self.st, pkt, &d)
    }
}

/// What every stage of one burst shares: the snapshot, the port the burst came from, the time,
/// and where extra packets (outer fragments) go.
struct BurstCx<'a, S> {
    snap: &'a Snapshot,
    in_port: u16,
    /// The receiving port's MAC: the only unicast destination its IP path takes.
    port_mac: [u8; 6],
    now: Millis,
    sink: &'a mut S,
}

impl<'a, S> BurstCx<'a, S> {
    fn new(snap: &'a Snapshot, in_port: u16, now: Millis, sink: &'a mut S) -> Self {
        // A port the snapshot does not know has no MAC a frame could be for.
        let port_mac = snap.ports.get(in_port as usize).map_or([0; 6], |p| p.mac);
        BurstCx { snap, in_port, port_mac, now, sink }
    }
}

/// What the first pass learns of a packet (Katran's `packet_description`): what it is, its
/// headers, and the flow it would belong to with that flow's hash (the key zero when it is not
/// IPv4; for IPv6 the hash is `v6::peek_hash`'s, for its own table's prefetch). For a packet of
/// a common shape the first pass writes only `shape` and `hash`, and the rest is written when
/// the packet leaves the established-flow path.
#[derive(Clone, Copy)]
struct PacketDesc {
    shape: Shape,
    kind: Result<Kind, DropReason>,
    p: Parsed,
    key: FlowKey,
    hash: u64,
}

impl PacketDesc {
    const EMPTY: PacketDesc = PacketDesc {
        shape: Shape::Described,
        kind: Ok(Kind::Arp),
        p: Parsed::EMPTY,
        key: FlowKey::ZERO,
        hash: 0,
    };
}

/// What the first pass made of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// The IPv4 common shape: keyed and hashed only.
    Common,
    /// The IPv6 common shape: keyed and hashed only.
    Common6,
    /// Described whole (`describe`).
    Described,
}

/// Parse a frame once, in place, and key and hash its flow.
#[inline(always)]
fn describe(data: &[u8], d: &mut PacketDesc) {
    d.kind = parse_into(data, &mut d.p);
    d.key = match d.kind {
        Ok(Kind::Ipv4) => flow_key(&d.p),
        _ => FlowKey::ZERO,
    };
    d.hash = match d.kind {
        // The IPv6 flow's hash, for its table's prefetch (the IPv6 path parses the rest).
        Ok(Kind::Ipv6) => v6::peek_hash(data),
        _ => d.key.hash(),
    };
}

/// Buckets one `housekeeping` call sweeps: a few hundred nanoseconds of reads.
const SWEEP_SLICE: usize = 64;

/// One flow table's sweep: buckets per elapsed millisecond (set for the installed services'
/// timeouts), and buckets still owed for the milliseconds gone by, paid a slice per loop pass
/// (`housekeeping`), not all in the pass the clock ticks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SweepPace {
    per_ms: usize,
    owed: usize,
}

impl SweepPace {
    /// `elapsed_ms` more milliseconds' worth, never more than the whole table (`capacity`).
    fn owe(&mut self, elapsed_ms: usize, capacity: usize) {
        self.owed = (self.owed + elapsed_ms * self.per_ms).min(capacity);
    }

    /// Buckets to sweep in this call: a slice, or more when a slice would leave over a
    /// millisecond's worth owed (a caller that comes rarely).
    fn take(&mut self) -> usize {
        let n = self.owed.min(SWEEP_SLICE).max(self.owed.saturating_sub(self.per_ms));
        self.owed -= n;
        n
    }
}

/// Sweep what `pace` says is due now of `table`, counting what it frees.
#[inline]
fn pay_sweep<E: FlowEntry, const N: usize>(
    pace: &mut SweepPace,
    table: &mut FlowTableOf<E, N>,
    now: Millis,
    c: &mut Counters,
) {
    if pace.owed == 0 {
        return;
    }
    let (freed, embryonic) = table.sweep(now, pace.take());
    c.expired_by_sweep += freed as u64;
    c.embryonic_expired += embryonic as u64;
}

/// The flow a client→VIP packet belongs to: its 5-tuple, or its addresses only when it is a
/// fragment (later fragments carry no ports; all of a datagram must hash alike).
#[inline]
fn flow_key(p: &Parsed) -> FlowKey {
    if p.fragment == Fragment::Whole {
        FlowKey::new(p.proto, p.src, p.dst, p.sport, p.dport)
    } else {
        FlowKey::new(p.proto, p.src, p.dst, 0, 0)
    }
}

/// What `classify` decided a packet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// TCP or UDP for the service at this position.
    Service(usize),
    /// ICMP to a VIP: echo for the control core, or an error to steer to a flow's backend.
    IcmpToVip,
    /// ARP, for the control core.
    Arp,
    /// Addressed to one of the LB's own addresses, for the control core.
    Local,
    /// Inline: from the server side, not for us: route it toward the client-side gateway.
    RouteToClient(u16),
    /// IPv6, for its own path.
    Ipv6,
    Drop(DropReason),
}

/// Run one described packet (counted as received by the caller): decide what it is, act on
/// it, count the verdict.
#[inline(always)]
fn run<B: PacketBuf, S: PacketSink<B>>(
    cx: &mut BurstCx<'_, S>,
    st: &mut State,
    pkt: &mut B,
    d: &PacketDesc,
) -> Verdict {
    // Counted in each arm, so that the common arm's verdicts are counted where they are made.
    match classify(cx, &mut st.last_service, d, pkt.data()) {
        Class::Service(svc) => {
            let v = forward_service(cx, st, pkt, d, svc);
            count(&mut st.counters, v)
        }
        other => {
            let v = act_other(cx, st, pkt, d, other);
            count(&mut st.counters, v)
        }
    }
}

#[inline(always)]
fn count(c: &mut Counters, v: Verdict) -> Verdict {
    match v {
        Verdict::Tx(_) => c.forwarded += 1,
        Verdict::ToControl(_) => c.to_control += 1,
        Verdict::Drop(r) => c.drop(r),
        // Counted where it was made (frag_needed_sent).
        Verdict::Reply(_) => {}
    }
    v
}

/// Everything but a service's packet: kept out of line, so the common path stays short.
#[inline(never)]
fn act_other<B: PacketBuf, S: PacketSink<B>>(
    cx: &mut BurstCx<'_, S>,
    st: &mut State,
    pkt: &mut B,
    d: &PacketDesc,
    class: Class,
) -> Verdict {
    match class {
        Class::Service(svc) => forward_service(cx, st, pkt, d, svc),
        Class::IcmpToVip => icmp_to_vip(cx, st, pkt, &d.p),
        Class::Arp => punt(cx, st, Punt::Arp),
        Class::Local => {
            // A DSR health-check answer comes from a VIP; an ICMP probe's is an echo reply.
            let p = &d.p;
            let echo_reply = p.proto == ipv4::PROTO_ICMP
                && p.l4().and_then(|at| pkt.data().get(at)) == Some(&icmp::ECHO_REPLY);
            let from_peer = || {
                let src_mac: [u8; 6] =
                    pkt.data().get(6..12).and_then(|m| m.try_into().ok()).unwrap_or([0; 6]);
                cx.snap.is_peer(cx.in_port, std::net::Ipv4Addr::from(p.src).into(), src_mac)
            };
            let kind =
                if cx.snap.is_vip(p.src) || echo_reply || from_peer() { Punt::Priority } else { Punt::Other };
            punt(cx, st, kind)
        }
        Class::RouteToClient(client) => route_to_client(cx.snap, st, pkt, &d.p, client),
        Class::Ipv6 => v6::run6(cx, st, pkt, d.hash),
        Class::Drop(r) => Verdict::Drop(r),
    }
}

/// For the control core, if this worker's rate for its kind allows.
fn punt<S>(cx: &BurstCx<'_, S>, st: &mut State, kind: Punt) -> Verdict {
    if st.punt_limit[kind as usize].take(cx.now) {
        Verdict::ToControl(kind)
    } else {
        Verdict::Drop(DropReason::PuntPoliced)
    }
}

/// Decide what a packet is, from its description, its destination MAC and the snapshot alone
/// (the last service lookup is remembered, which changes no answer).
#[inline(always)]
fn classify<S>(cx: &BurstCx<'_, S>, last: &mut LastService, d: &PacketDesc, frame: &[u8]) -> Class {
    let (snap, in_port) = (cx.snap, cx.in_port);
    // Only frames for this port's MAC take the IP path (and broadcast ARP): what a switch
    // floods for another host, multicast and broadcast are not ours to forward — two LBs on
    // one flooding segment would otherwise forward each other's frames forever.
    let p = match d.kind {
        Ok(Kind::Ipv4) if ethernet::dst_is(frame, cx.port_mac) => &d.p,
        Ok(Kind::Arp) if ethernet::dst_is(frame, cx.port_mac) || ethernet::dst_is(frame, [0xff; 6]) => {
            return Class::Arp
        }
        // IPv6 checks its destination MAC on its own path (neighbour discovery is multicast).
        Ok(Kind::Ipv6) => return Class::Ipv6,
        Ok(_) => return Class::Drop(DropReason::NotOurMac),
        Err(r) => return Class::Drop(r),
    };
    // The common case first: TCP/UDP to a service, found in one lookup.
    if p.proto == ipv4::PROTO_TCP || p.proto == ipv4::PROTO_UDP {
        let svc = match p.fragment {
            Fragment::Whole => last.find(snap, p.dst, p.proto, p.dport),
            // A later fragment has no ports, so it goes to the VIP's service for fragments; the
            // first fragment goes there too when its port found a service, so that both agree
            // when the VIP has an every-port service beside port-specific ones.
            Fragment::First => last
                .find(snap, p.dst, p.proto, p.dport)
                .map(|by_port| snap.fragment_service(p.dst, p.proto).unwrap_or(by_port)),
            Fragment::Later => snap.fragment_service(p.dst, p.proto),
        };
        if let Some(svc) = svc {
            return Class::Service(svc);
        }
    }
    if snap.is_vip(p.dst) {
        return match p.proto {
            ipv4::PROTO_ICMP => Class::IcmpToVip,
            ipv4::PROTO_TCP | ipv4::PROTO_UDP if p.fragment == Fragment::Later => {
                Class::Drop(DropReason::FragmentWithoutService)
            }
            _ => Class::Drop(DropReason::NoService),
        };
    }
    if snap.lb_addr_port(p.dst).is_some() {
        return Class::Local;
    }
    if let Some(client) = snap.client_port {
        if snap.ports.get(in_port as usize).map(|x| x.role) == Some(PortRole::Server) {
            return Class::RouteToClient(client);
        }
    }
    Class::Drop(DropReason::NotForUs)
}

/// A packet for service position `svc`: its flow's backend (found, moved or newly scheduled),
/// then the mode's rewrite.
#[inline(always)]
fn forward_service<B: PacketBuf, S: PacketSink<B>>(
    cx: &mut BurstCx<'_, S>,
    st: &mut State,
    pkt: &mut B,
    d: &PacketDesc,
    svc: usize,
) -> Verdict {
    let (snap, now, p, hash) = (cx.snap, cx.now, &d.p, d.hash);
    let s = &snap.services[svc];
    let tcp = p.proto == ipv4::PROTO_TCP;
    let closing = tcp && p.tcp_flags & (l4::TCP_FIN | l4::TCP_RST) != 0;
    let idle = if tcp { s.tcp_idle_ms } else { s.udp_idle_ms };
    let id = d.key.id(s.id);
    let existing = st.flows.get_mut(&id, hash, now).map(|e| {
        if closing || e.flags & (table::FLAG_CLOSING | table::FLAG_EMBRYONIC) != 0 {
            change_state(&mut e.flags, &mut e.expires, p.tcp_flags, s, closing, idle, now);
        } else {
            refresh(&mut e.expires, idle, now);
        }
        e.backend
    });
    // The common case: a known flow whose backend may keep it, found with one forward lookup.
    let kept = existing.and_then(|b| snap.forward(svc, b).filter(|f| f.keeps_flows).map(|f| (b, f)));
    if let Some((backend, f)) = kept {
        return send_to_backend(cx, st, pkt, p, s, f, backend);
    }
    // A TCP packet without SYN belongs to a connection already open (here before a restart, on
    // another worker or instance, or while the table was full): it goes where the consistent
    // hash sends it, as it would have then. SYNs and UDP are new flows for the scheduler.
    let opening =
        !tcp || p.tcp_flags & (l4::TCP_SYN | l4::TCP_ACK | l4::TCP_RST | l4::TCP_FIN) == l4::TCP_SYN;
    let backend = match existing {
        Some(_) => {
            // Its backend failed or left the configuration: move the flow.
            let Some(nb) = pick_new(snap, st, svc, p, hash, now, opening) else {
                return Verdict::Drop(DropReason::NoHealthyBackend);
            };
            st.flows.reassign(&id, hash, now, nb);
            st.counters.rescheduled += 1;
            nb
        }
        None => match new_flow(snap, st, svc, p, &id, hash, now, opening, closing, idle) {
            Ok(nb) => nb,
            Err(r) => return Verdict::Drop(r),
        },
    };
    let Some(f) = snap.forward(svc, backend) else {
        return Verdict::Drop(DropReason::NoHealthyBackend);
    };
    send_to_backend(cx, st, pkt, p, s, f, backend)
}

/// A known, established flow's packet: its expiry moves on. Only when less than a whole timeout
/// is left, and then a little beyond it: a busy flow dirties its bucket once per idle/32
/// instead of once per packet (at a million flows the write-backs cost as much memory traffic
/// as the lookups), and an idle flow leaves between idle and idle·33/32 after its last packet —
/// never early.
#[inline(always)]
fn refresh(expires: &mut Millis, idle: u32, now: Millis) {
    if (expires.wrapping_sub(now) as i32) < idle as i32 {
        *expires = now.wrapping_add(idle + idle / 32);
    }
}

/// A known flow that is closing, or has seen only a SYN, or is about to be either (its slot's
/// flags and expiry, of either family's table).
#[cold]
fn change_state(
    flags: &mut u8,
    expires: &mut Millis,
    tcp_flags: u8,
    s: &ServiceInfo,
    closing: bool,
    idle: u32,
    now: Millis,
) {
    let closing_ms = s.closing_ms.min(idle);
    if closing && *flags & table::FLAG_CLOSING == 0 {
        // Once the client sent FIN or RST the flow stays on the short closing timeout.
        *flags = (*flags | table::FLAG_CLOSING) & !table::FLAG_EMBRYONIC;
        *expires = now.wrapping_add(closing_ms);
        return;
    }
    if *flags & table::FLAG_EMBRYONIC != 0 && tcp_flags & l4::TCP_SYN == 0 {
        // The handshake's last ACK: an established connection, on the idle timeout.
        *flags &= !table::FLAG_EMBRYONIC;
        *expires = now.wrapping_add(idle);
        return;
    }
    let ttl = if *flags & table::FLAG_CLOSING != 0 { closing_ms } else { s.syn_ms.min(idle) };
    if (expires.wrapping_sub(now) as i32) < ttl as i32 {
        *expires = now.wrapping_add(ttl + ttl / 32);
    }
}

/// A flow this worker holds no state for: pick its backend and remember it. Out of line: the
/// established path is the one to keep short.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn new_flow(
    snap: &Snapshot,
    st: &mut State,
    svc: usize,
    p: &Parsed,
    id: &FlowId,
    hash: u64,
    now: Millis,
    opening: bool,
    closing: bool,
    idle: u32,
) -> Result<u32, DropReason> {
    if martian(snap, p.src) {
        return Err(DropReason::MartianSource);
    }
    if p.ttl == 0 {
        return Err(DropReason::TtlExceeded);
    }
    let s = &snap.services[svc];
    let mut nb = pick_new(snap, st, svc, p, hash, now, opening).ok_or(DropReason::NoHealthyBackend)?;
    if !opening && !snap.settled {
        // Just started: some backends may not be resolved or checked yet, so this answer may
        // not be the one the connection had. Forward it; keep no state that would pin it.
        st.counters.midflow_without_state += 1;
        return Ok(nb);
    }
    let (flags, ttl) = if closing {
        (table::FLAG_CLOSING, s.closing_ms.min(idle))
    } else if p.proto == ipv4::PROTO_TCP && opening {
        (table::FLAG_EMBRYONIC, s.syn_ms.min(idle))
    } else {
        (0, idle)
    };
    match st.flows.insert(FlowSlot::new(*id, nb, flags, now.wrapping_add(ttl)), hash, now) {
        Insert::Stored => {}
        Insert::Reclaimed(old) => {
            st.counters.reclaimed_on_insert += 1;
            if old.flags & table::FLAG_EMBRYONIC != 0 {
                st.counters.embryonic_expired += 1;
            }
        }
        Insert::Full => {
            // Never drop for a full table: forward without state, by the answer its later
            // packets (which will not find state either) get from the consistent hash.
            if opening {
                st.counters.stateless_fallbacks += 1;
                if s.persistence.is_none() {
                    nb = sched::consistent(snap, svc, p.src, p.dst, hash).unwrap_or(nb);
                }
            }
        }
    }
    if opening {
        st.counters.services[s.id as usize].new_flows += 1;
        st.counters.backends[nb as usize].new_flows += 1;
    } else {
        st.counters.midflow_without_state += 1;
    }
    Ok(nb)
}

/// Whether a new flow's source is one no client can have: 0/8, 127/8, multicast, reserved and
/// broadcast, or one of our own VIPs and addresses.
#[inline]
fn martian(snap: &Snapshot, src: [u8; 4]) -> bool {
    src[0] == 0 || src[0] == 127 || src[0] >= 224 || snap.is_vip(src) || snap.lb_addr_port(src).is_some()
}

/// A backend for a flow this worker holds no state for: persistence first (if the service has
/// it), then the scheduler for a new connection, or the consistent hash for one already open.
#[inline]
fn pick_new(
    snap: &Snapshot,
    st: &mut State,
    svc: usize,
    p: &Parsed,
    hash: u64,
    now: Millis,
    opening: bool,
) -> Option<u32> {
    if let Some(per) = snap.services[svc].persistence {
        return st.persist.pick(snap, svc, per, persisted_addr(per.by, p.src, p.dst), now);
    }
    if !opening {
        return sched::consistent(snap, svc, p.src, p.dst, hash);
    }
    sched::pick(snap, svc, p, hash, &mut st.wrr[svc], &st.flows)
}

/// Count the packet for its service and backend and rewrite it for the service's mode; a
/// packet too big to encapsulate with DF set becomes a "fragmentation needed" to its sender.
#[inline(always)]
fn send_to_backend<B: PacketBuf, S: PacketSink<B>>(
    cx: &mut BurstCx<'_, S>,
    st: &mut State,
    pkt: &mut B,
    p: &Parsed,
    s: &ServiceInfo,
    f: &Forward,
    backend: u32,
) -> Verdict {
    st.counters.add_traffic(s.id, backend, 1, pkt.len() as u64);
    rewrite_to(cx, st, pkt, p, s, f)
}

/// Rewrite a packet (counted for its service and backend) for the service's mode toward `f`.
#[inline(always)]
fn rewrite_to<B: PacketBuf, S: PacketSink<B>>(
    cx: &mut BurstCx<'_, S>,
    st: &mut State,
    pkt: &mut B,
    p: &Parsed,
    s: &ServiceInfo,
    f: &Forward,
) -> Verdict {
    match rewrite::to_backend(pkt, p, s.mode, f, &mut st.ip_id, cx.sink) {
        EncapResult::Done => Verdict::Tx(f.port),
        EncapResult::Fragmented(n) => {
            st.counters.outer_fragments += n as u64;
            Verdict::Tx(f.port)
        }
        EncapResult::NoBuffer => Verdict::Drop(DropReason::NoBuffer),
        EncapResult::TooBig { mtu } => frag_needed(cx, st, pkt, p, mtu),
        EncapResult::CannotFragment => Verdict::Drop(DropReason::TooBig),
    }
}

/// Answer a packet too big for the encapsulated path with ICMP "fragmentation needed",
/// rate-limited per worker; the packet itself is turned into the answer.
#[cold]
fn frag_needed<B: PacketBuf, S>(
    cx: &BurstCx<'_, S>,
    st: &mut State,
    pkt: &mut B,
    p: &Parsed,
    mtu: u16,
) -> Verdict {
    if !st.frag_needed.take(cx.now) {
        st.counters.frag_needed_rate_limited += 1;
        return Verdict::Drop(DropReason::TooBigDontFragment);
    }
    let snap = cx.snap;
    let in_p = &snap.ports[(cx.in_port as usize).min(snap.ports.len() - 1)];
    let from = in_p.addr4().unwrap_or(p.dst);
    if rewrite::make_frag_needed(pkt, p, from, in_p.mac, mtu) {
        st.counters.frag_needed_sent += 1;
        Verdict::Reply(cx.in_port)
    } else {
        Verdict::Drop(DropReason::TooBigDontFragment)
    }
}

/// ICMP to a VIP: echo goes to the control core; an error about a server's reply (e.g. Packet
/// Too Big from a router) goes to the server that owns the flow named by the embedded header.
fn icmp_to_vip<B: PacketBuf, S: PacketSink<B>>(
    cx: &mut BurstCx<'_, S>,
    st: &mut State,
    pkt: &mut B,
    p: &Parsed,
) -> Verdict {
    let (snap, now) = (cx.snap, cx.now);
    let Some(l4_at) = p.l4() else {
        return Verdict::Drop(DropReason::IcmpUnsupported);
    };
    let d = pkt.data();
    let end = (p.l3() + p.ip_len()).min(d.len());
    let Ok(m) = icmp::IcmpMessage::new_checked(&d[l4_at..end]) else {
        return Verdict::Drop(DropReason::MalformedL4);
    };
    if m.msg_type() == icmp::ECHO_REQUEST {
        return punt(cx, st, Punt::Other);
    }
    if !m.is_error() {
        return Verdict::Drop(DropReason::IcmpUnsupported);
    }
    // The embedded packet is the server's reply: VIP:vport → client:cport. It is often cut
    // short, so read only its header and the first 8 bytes (the ports).
    let e = m.embedded();
    if e.len() < ipv4::MIN_HEADER_LEN || e[0] >> 4 != 4 {
        return Verdict::Drop(DropReason::IcmpErrorUnmatched);
    }
    let ihl = ((e[0] & 0x0f) as usize) * 4;
    if ihl < ipv4::MIN_HEADER_LEN || e.len() < ihl + 8 {
        return Verdict::Drop(DropReason::IcmpErrorUnmatched);
    }
    let proto = e[ipv4::field::PROTOCOL];
    let (vip, client) = (ip4(e, ipv4::field::SRC), ip4(e, ipv4::field::DST));
    let (vport, cport) = (be16(e, ihl), be16(e, ihl + 2));
    let Some(svc) = snap.find_service(vip, proto, vport).filter(|_| snap.is_vip(vip)) else {
        return Verdict::Drop(DropReason::IcmpErrorUnmatched);
    };
    let key = FlowKey::new(proto, client, vip, cport, vport);
    let hash = key.hash();
    let id = key.id(snap.services[svc].id);
    let owner = st.flows.get_mut(&id, hash, now).map(|e| e.backend).filter(|b| snap.keeps_flows(svc, *b));
    // Not in this worker's table (RSS put the error on another queue, or another instance
    // holds the flow): the consistent hash gives the backend the flow was scheduled to — on
    // the client or the VIP for those hashes and for persistence, on the flow otherwise.
    let owner = owner.or_else(|| match snap.services[svc].persistence {
        Some(per) => snap.maglev(svc).lookup(hash_addr(persisted_addr(per.by, client, vip))),
        None => sched::consistent(snap, svc, client, vip, hash),
    });
    let Some(backend) = owner else {
        return Verdict::Drop(DropReason::NoHealthyBackend);
    };
    let Some(f) = snap.forward(svc, backend) else {
        return Verdict::Drop(DropReason::NoHealthyBackend);
    };
    st.counters.icmp_errors_steered += 1;
    send_to_backend(cx, st, pkt, p, &snap.services[svc], f, backend)
}

/// Inline mode: server replies (and anything else from the server side not for us) go to the
/// client-side gateway as a router would send them.
fn route_to_client<B: PacketBuf>(
    snap: &Snapshot,
    st: &mut State,
    pkt: &mut B,
    p: &Parsed,
    client: u16,
) -> Verdict {
    let port = &snap.ports[client as usize];
    let Some(gw) = port.gateway_mac else {
        return Verdict::Drop(DropReason::GatewayUnresolved);
    };
    if !rewrite::route_forward(pkt.data_mut(), p, gw, port.mac) {
        return Verdict::Drop(DropReason::TtlExceeded);
    }
    st.counters.inline_routed += 1;
    Verdict::Tx(client)
}

#[cfg(test)]
mod sweep_pace_tests {
    use super::{SweepPace, SWEEP_SLICE};

    /// The slicing itself (the behaviour tests see only the pace): a millisecond's share is
    /// paid `SWEEP_SLICE` at a time, and a debt over a millisecond's share is paid down to one
    /// millisecond's share in one call.
    #[test]
    fn a_millisecond_is_paid_in_slices_and_a_larger_debt_at_once() {
        let mut p = SweepPace { per_ms: 150, owed: 0 };
        p.owe(1, 1 << 20);
        let calls: Vec<usize> = std::iter::from_fn(|| Some(p.take()).filter(|&n| n > 0)).collect();
        assert_eq!(calls, vec![SWEEP_SLICE, SWEEP_SLICE, 150 - 2 * SWEEP_SLICE]);
        p.owe(5, 1 << 20);
        assert_eq!(p.take(), 4 * 150, "all but one millisecond's share");
        assert_eq!(p.owed, 150);
        p.owe(1000, 600);
        assert_eq!(p.owed, 600, "never more than the whole table");
    }
}
