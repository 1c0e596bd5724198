//! The control core: the only writer of configuration. Its loop answers ARP and ICMP echo,
//! resolves MACs, probes backends along the DSR path, publishes snapshots to the workers,
//! gathers counters into the operator's view, and carries out reloads and ctl commands.
//!
//! Each concern has its room: `links` (workers and ports), `responder` (frames answered),
//! `health` (the rise/fall machine), `view` (the operator's picture); this file ties them
//! together and owns the loop. It is generic over `Links`, so it runs in tests without DPDK.

pub mod exception;
pub mod health;
pub mod links;
pub mod mem;
pub mod nd;
pub mod responder;
pub mod view;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use dataplane::snapshot::BackendState;
use dataplane::wire::{ArpPacket, EthernetFrame, MacAddr, ETHERTYPE_ARP};
use dataplane::Snapshot;
use log::{error, info, warn};

use crate::announce::Announcer;
use crate::config::{Config, HealthCheckConfig};
use crate::ctl::{CtlCommand, CtlRequest};
use crate::errors::ReloadError;
use crate::neigh::Heard;
use crate::probe::wire::{dst_of, ip6_of};
use crate::probe::{wire::ip_of, Outcome, Prober, Reply, Target};
use crate::runtime::Runtime;
use crate::view::View;
use health::Transition;
use links::Links;
use view::ControlCounters;

/// How often neighbours and health checks are looked at.
const TICK: Duration = Duration::from_millis(5);
/// How often the view (ctl, metrics) is refreshed from the workers' counters.
const VIEW_EVERY: Duration = Duration::from_millis(500);
/// How long the loop rests when a pass found nothing to do. It waits until a deadline (not for
/// a span restarted after every interruption), and the asynchronous signals some PMDs raise
/// per frame (net_tap) are blocked on this thread, so traffic cannot keep it from its timers.
const IDLE: Duration = Duration::from_micros(200);
/// A worker loop that has not moved for this long is stuck.
pub const STALL_LIMIT: Duration = Duration::from_secs(2);
/// How often the VIPs a fleet member should announce are looked at.
const ANNOUNCE_EVERY: Duration = Duration::from_millis(20);
/// How soon a probe waiting for its next hop's MAC looks again.
const UNRESOLVED_RETRY: Duration = Duration::from_millis(100);
/// Punted frames handled per loop pass before timers get their turn.
const FRAMES_PER_PASS: usize = 256;

pub struct ControlCore<L: Links> {
    links: L,
    pub rt: Runtime,
    prober: Prober,
    /// The snapshot the workers run (or are about to): probes take their paths from it.
    current: Arc<Snapshot>,
    /// State changed: a new snapshot must be built and published.
    dirty: bool,
    counters: ControlCounters,
    reloads: u64,
    last_reload_error: Option<String>,
    pub(crate) config_path: PathBuf,
    start: Instant,
    view: Arc<Mutex<View>>,
    last_tick: Option<Instant>,
    last_view: Option<Instant>,
    /// The punted frame being handled (reused: no allocation per frame).
    frame: Vec<u8>,
    /// Each worker's last heartbeat and when it last moved.
    alive: Vec<(u64, Instant)>,
    /// The routes that announce the VIPs to a routing daemon (a fleet), if configured.
    announcer: Option<Announcer>,
    /// Since when this instance is draining: its VIPs withdrawn, it stops `drain_time` later.
    draining: Option<Instant>,
    last_announce: Option<Instant>,
    /// The digest of what must agree between the instances of a fleet.
    digest: String,
}

impl<L: Links> ControlCore<L> {
    /// A control core over `links`, with `snapshot` (built from `rt`) already running on the
    /// workers.
    pub fn new(
        links: L,
        rt: Runtime,
        snapshot: Arc<Snapshot>,
        config_path: PathBuf,
        view: Arc<Mutex<View>>,
        now: Instant,
    ) -> Self {
        ControlCore {
            links,
            rt,
            prober: Prober::new(now),
            current: snapshot,
            dirty: false,
            counters: ControlCounters::default(),
            reloads: 0,
            last_reload_error: None,
            config_path,
            start: now,
            view,
            last_tick: None,
            last_view: None,
            frame: Vec::with_capacity(2048),
            alive: Vec::new(),
            announcer: None,
            draining: None,
            last_announce: None,
            digest: String::new(),
        }
        .with_digest()
    }

    fn with_digest(mut self) -> Self {
        self.digest = self.rt.cfg.digest();
        self
    }

    /// Announce the VIPs through this announcer (a fleet): no ARP for them then.
    pub fn with_announcer(mut self, a: Announcer) -> Self {
        self.announcer = Some(a);
        self
    }

    /// The loop, until `quit` is set, or `term` is and the instance has drained: SIGHUP (`hup`)
    /// and ctl requests are served between passes. Returns early, with the worker's index, if
    /// a worker stops (a fault no part of the appliance can mend: the process must end so that
    /// its supervisor starts it again).
    pub fn run(
        &mut self,
        quit: &AtomicBool,
        term: &AtomicBool,
        hup: &AtomicBool,
        requests: &Receiver<CtlRequest>,
    ) -> Result<(), usize> {
        self.announce_vips();
        while !quit.load(Ordering::Relaxed) {
            let now = Instant::now();
            if term.load(Ordering::Relaxed) {
                if self.announcer.is_none() {
                    break;
                }
                // A member of a fleet leaves gracefully: withdraw, forward a while, stop.
                self.drain_instance(now);
            }
            if self.drained(now) {
                info!("drained: stopping");
                break;
            }
            let busy = self.poll(now);
            if let Some(w) = self.stalled_worker(now) {
                return Err(w);
            }
            if hup.swap(false, Ordering::Relaxed) {
                match self.reload() {
                    Ok(m) => info!("SIGHUP: {m}"),
                    Err(e) => error!("SIGHUP: reload refused: {e}"),
                }
            }
            while let Ok(req) = requests.try_recv() {
                let r = self.handle_ctl(req.cmd);
                let _ = req.reply.send(r);
            }
            if !busy {
                dpdk_bindings::sys::sleep_until(now + IDLE);
            }
        }
        Ok(())
    }

    /// A worker whose loop has not moved for `STALL_LIMIT`, if any.
    pub fn stalled_worker(&mut self, now: Instant) -> Option<usize> {
        let beats = self.links.heartbeats();
        self.alive.resize(beats.len(), (0, now));
        for (w, (&beat, seen)) in beats.iter().zip(self.alive.iter_mut()).enumerate() {
            if beat != seen.0 {
                *seen = (beat, now);
            } else if now.duration_since(seen.1) >= STALL_LIMIT {
                return Some(w);
            }
        }
        None
    }

    /// Start draining this instance (once): every VIP withdrawn now, the process stops after
    /// the announcement's drain time.
    pub fn drain_instance(&mut self, now: Instant) -> String {
        if self.draining.is_none() {
            self.draining = Some(now);
            info!("draining: withdrawing every VIP, stopping in {:?}", self.drain_time());
        }
        format!("draining: every VIP withdrawn; stopping in {:.1} s", self.drain_time().as_secs_f64())
    }

    fn drain_time(&self) -> Duration {
        self.rt.cfg.announce.as_ref().map_or(Duration::ZERO, |a| a.drain_time.duration())
    }

    /// Whether a drain has run its course.
    pub fn drained(&self, now: Instant) -> bool {
        self.draining.is_some_and(|t| now.duration_since(t) >= self.drain_time())
    }

    /// The VIPs this instance should receive: none while draining or before the start has
    /// settled (a joining instance announces once its checks have answered), else every VIP
    /// with a backend that takes new flows.
    pub fn wanted_vips(&self, now: Instant) -> BTreeSet<IpAddr> {
        if self.draining.is_some() || !self.rt.settled(now) {
            return BTreeSet::new();
        }
        self.current
            .services
            .iter()
            .filter(|s| {
                s.backends
                    .iter()
                    .any(|b| b.state == BackendState::Up && b.next_hop_mac.is_some() && b.weight > 0)
            })
            .map(|s| s.vip)
            .collect()
    }

    /// One pass: punted frames, then timers (neighbours, probes, view) when due, then a new
    /// snapshot if anything changed. Returns whether there was work.
    pub fn poll(&mut self, now: Instant) -> bool {
        let mut busy = self.drain_punted(now);
        busy |= self.drain_kernel();
        if self.last_tick.is_none_or(|t| now.duration_since(t) >= TICK) {
            self.last_tick = Some(now);
            self.tick(now);
            busy = true;
        }
        self.links.collect();
        if self.last_view.is_none_or(|t| now.duration_since(t) >= VIEW_EVERY) {
            self.last_view = Some(now);
            self.links.request_stats();
            self.update_view(now);
        }
        if !self.current.settled && self.rt.settled(now) {
            info!("settled: every next hop resolved and every checked backend's health known");
            self.dirty = true;
        }
        if self.dirty {
            self.publish(now);
        }
        if self.announcer.is_some()
            && self.last_announce.is_none_or(|t| now.duration_since(t) >= ANNOUNCE_EVERY)
        {
            self.last_announce = Some(now);
            let vips = self.wanted_vips(now);
            if let Some(a) = &mut self.announcer {
                a.want(vips);
            }
        }
        busy
    }

    /// What the kernel sent on the exception interfaces leaves on their data ports.
    fn drain_kernel(&mut self) -> bool {
        let mut frame = std::mem::take(&mut self.frame);
        let mut n = 0;
        while n < FRAMES_PER_PASS {
            let Some(port) = self.links.next_from_kernel(&mut frame) else { break };
            n += 1;
            self.counters.from_kernel += 1;
            self.links.send(port, &frame);
        }
        self.frame = frame;
        n > 0
    }

    /// The snapshot the workers were last given.
    pub fn current(&self) -> &Arc<Snapshot> {
        &self.current
    }

    pub fn links(&self) -> &L {
        &self.links
    }

    pub fn links_mut(&mut self) -> &mut L {
        &mut self.links
    }

    fn publish(&mut self, now: Instant) {
        match self.rt.build_snapshot(now) {
            Ok(s) => {
                let s = Arc::new(s);
                if self.links.publish(&s) {
                    self.current = s;
                    self.dirty = false;
                }
            }
            Err(e) => error!("snapshot rejected: {e}"),
        }
    }

    fn send(&mut self, port: u16, frame: &[u8]) {
        self.links.send(port, frame);
    }

    fn drain_punted(&mut self, now: Instant) -> bool {
        let mut frame = std::mem::take(&mut self.frame);
        let mut n = 0;
        while n < FRAMES_PER_PASS {
            let Some(port) = self.links.next_punted(&mut frame) else { break };
            n += 1;
            self.counters.frames += 1;
            self.handle_frame(port, &frame, now);
        }
        self.frame = frame;
        n > 0
    }

    fn handle_frame(&mut self, port: u16, frame: &[u8], now: Instant) {
        let Ok(eth) = EthernetFrame::new_checked(frame) else { return };
        if eth.ethertype() == ETHERTYPE_ARP {
            let Ok(a) = ArpPacket::new_checked(eth.payload()) else { return };
            let heard = Heard {
                port,
                eth_src: MacAddr(eth.src()),
                operation: a.operation(),
                sender_mac: MacAddr(a.sender_mac()),
                sender_ip: IpAddr::V4(Ipv4Addr::from(a.sender_ip())),
            };
            let conflicts = self.rt.neigh.counters.conflicts;
            if let Some(change) = self.rt.neigh.heard(&heard, now) {
                info!("neighbour: {change:?}");
                self.dirty = true;
            }
            if self.rt.neigh.counters.conflicts > conflicts {
                warn!(
                    "neighbour {}: {} answered for it, but its MAC still answers: kept (ARP conflict)",
                    heard.sender_ip, heard.sender_mac
                );
            }
            if let Some(reply) = responder::arp_reply(&self.rt, port, eth.vlan_tci(), &a) {
                self.counters.arp_replies += 1;
                self.send(port, &reply);
            }
            // The kernel behind the exception interface resolves its own next hops (the
            // router, for BGP): it gets the answers to them, and nothing else (dsrlb answers
            // every question; the kernel answers none: arp_ignore=8).
            if a.operation() == dataplane::wire::arp::OP_REPLY
                && self.rt.is_lb_addr_on(port, Ipv4Addr::from(a.target_ip()).into())
            {
                self.pass_to_kernel(port, frame);
            }
            return;
        }
        if let Some(m) = nd::parse(frame) {
            self.handle_nd(port, frame, &m, now);
            return;
        }
        let echo =
            responder::echo_reply(&self.rt, port, frame).or_else(|| nd::echo_reply(&self.rt, port, frame));
        if let Some(reply) = echo {
            self.counters.echo_replies += 1;
            self.send(port, &reply);
            return;
        }
        let reply = if let Some(ip) = ip_of(frame) {
            self.prober.on_packet(ip, port, MacAddr(eth.src()), now)
        } else if let Some(ip) = ip6_of(frame) {
            self.prober.on_packet6(ip, port, MacAddr(eth.src()), now)
        } else {
            return;
        };
        match reply {
            Reply::Taken => self.counters.probe_replies += 1,
            Reply::Forged => self.counters.probe_replies_forged += 1,
            Reply::NotOurs => {
                // For the LB's own address and not ours to answer (BGP, BFD, SSH): the kernel's.
                if dst_of(frame).is_some_and(|d| self.rt.is_lb_addr_on(port, d)) {
                    let src_mac = MacAddr(eth.src());
                    if exception::admit(frame, |src| self.rt.is_peer(port, src, src_mac, now)) {
                        self.pass_to_kernel(port, frame);
                    } else {
                        self.counters.to_kernel_refused += 1;
                    }
                }
            }
        }
    }

    /// Neighbour discovery: advertisements to the neighbour table, solicitations for our
    /// addresses answered; the kernel behind the exception interface gets the advertisements
    /// for its own addresses (it resolves its next hops, as for ARP).
    fn handle_nd(&mut self, port: u16, frame: &[u8], m: &nd::NdIn, now: Instant) {
        if let Some(h) = nd::heard(port, m) {
            let conflicts = self.rt.neigh.counters.conflicts;
            if let Some(change) = self.rt.neigh.heard(&h, now) {
                info!("neighbour: {change:?}");
                self.dirty = true;
            }
            if self.rt.neigh.counters.conflicts > conflicts {
                warn!(
                    "neighbour {}: {} answered for it, but its MAC still answers: kept (ND conflict)",
                    h.sender_ip, h.sender_mac
                );
            }
            let dst = IpAddr::V6(m.dst.into());
            if m.nd.flags & dataplane::wire::icmpv6::NA_SOLICITED != 0 && self.rt.is_lb_addr_on(port, dst) {
                self.pass_to_kernel(port, frame);
            }
        }
        if let Some(reply) = nd::advert(&self.rt, port, m) {
            self.counters.arp_replies += 1;
            self.send(port, &reply);
        }
    }

    fn pass_to_kernel(&mut self, port: u16, frame: &[u8]) {
        if self.links.send_to_kernel(port, frame) {
            self.counters.to_kernel += 1;
        }
    }

    /// Gratuitous ARP for every VIP and LB address, at start and after a reload (not for the
    /// VIPs of a fleet member: routes lead to them, not ARP).
    fn announce_vips(&mut self) {
        let mut out = Vec::new();
        let announce = |mac: MacAddr, a: IpAddr| match a {
            IpAddr::V4(a) => responder::gratuitous_arp(mac, a),
            IpAddr::V6(a) => nd::unsolicited_advert(mac, a),
        };
        for p in self.rt.vip_ports().into_iter().filter(|_| self.announcer.is_none()) {
            for v in self.rt.vips() {
                out.push((p, announce(self.rt.port_macs[p as usize], v)));
            }
        }
        for (i, cs) in self.rt.subnets.iter().enumerate() {
            for c in cs {
                out.push((i as u16, announce(self.rt.port_macs[i], c.addr())));
            }
        }
        for (p, f) in out {
            self.send(p, &f);
        }
    }

    fn tick(&mut self, now: Instant) {
        // Neighbours: ask for those due, notice expiry.
        let (ask, expired) = self.rt.neigh.due(now);
        if !expired.is_empty() {
            for e in &expired {
                warn!("neighbour: {e:?}");
            }
            self.dirty = true;
        }
        for a in ask {
            let mac = self.rt.port_macs[a.port as usize];
            // Validation gives every port with a neighbour of a family an address of it.
            let f = match a.ip {
                IpAddr::V4(ip) => {
                    self.rt.lb_addr(a.port).map(|me| responder::arp_request(mac, me, ip, a.unicast_to))
                }
                IpAddr::V6(ip) => self.rt.lb_addr6(a.port).map(|me| nd::solicit(mac, me, ip, a.unicast_to)),
            };
            if let Some(f) = f {
                self.send(a.port, &f);
            }
        }
        // Health checks due. Only those are looked at further: with thousands of backends,
        // building every probe target on every tick was most of the control core's work.
        let due: Vec<u32> = self
            .checked_backends()
            .filter(|id| self.rt.health.get(id).is_some_and(|h| h.is_due(now)) && !self.prober.in_flight(*id))
            .collect();
        let mut out = Vec::new();
        let mut finished = Vec::new();
        for id in due {
            let Some(t) = self.probe_target(id) else { continue };
            if t.target.path.is_none() {
                // No MAC for the next hop yet: the backend is down for that alone, and a probe
                // could not leave; its health waits for one that can.
                if let Some(h) = self.rt.health.get_mut(&id) {
                    h.next_due = Some(now + UNRESOLVED_RETRY);
                    h.last_error = Some("MAC of the next hop unresolved".into());
                }
                continue;
            }
            if let Some(h) = self.rt.health.get_mut(&id) {
                h.schedule_next(now, t.interval);
            }
            self.prober.remember(&t.target);
            if let Some(o) = self.prober.start(t.target, now, &mut out) {
                finished.push((id, o));
            }
        }
        finished.extend(self.prober.poll(now, &mut out));
        for (p, f) in out {
            self.send(p, &f);
        }
        for (b, o) in finished {
            self.record(b, o);
        }
    }

    /// The service's health check behind a checked backend id.
    fn check_of(&self, backend: u32) -> Option<&HealthCheckConfig> {
        let (_, s, _) = self.rt.backend_config(backend)?;
        s.health_check.as_ref()
    }

    /// Ids of every backend whose service has a health check.
    fn checked_backends(&self) -> impl Iterator<Item = u32> + '_ {
        self.rt
            .cfg
            .services
            .iter()
            .filter(|s| s.health_check.is_some())
            .flat_map(move |s| s.backends.iter().map(move |b| self.rt.backend_id(s, b.ip)))
    }

    /// How to probe a checked backend now: along the path the workers forward it by.
    fn probe_target(&self, backend: u32) -> Option<Scheduled> {
        let (si, s, _) = self.rt.backend_config(backend)?;
        let h = s.health_check.as_ref()?;
        let path = self.current.forward(si, backend).filter(|f| f.resolved).copied();
        Some(Scheduled {
            target: Target {
                backend,
                check: h.check.clone(),
                vip: s.vip,
                port: h.port.unwrap_or(s.port),
                mode: s.mode,
                path,
                timeout: h.timeout.duration(),
            },
            interval: h.interval.duration(),
        })
    }

    /// Apply a probe outcome to the backend's rise/fall state machine.
    fn record(&mut self, backend: u32, outcome: Outcome) {
        let Some((rise, fall)) = self.check_of(backend).map(|h| (h.rise, h.fall)) else { return };
        let Some(name) = self.rt.backend_config(backend).map(|(_, s, b)| format!("{} {}", s.name(), b.ip))
        else {
            return;
        };
        let Some(h) = self.rt.health.get_mut(&backend) else { return };
        match h.record(&outcome, rise, fall) {
            Some(Transition::Up) => {
                let ms = h.last_latency.map_or(0.0, |d| d.as_secs_f64() * 1e3);
                info!("backend {name}: UP (passed {rise} check(s), last {ms:.1} ms)");
                self.dirty = true;
            }
            Some(Transition::Down) => {
                let why = h.last_error.as_deref().unwrap_or("");
                warn!("backend {name}: DOWN after {fall} failed check(s): {why}");
                self.dirty = true;
            }
            None => {}
        }
    }

    pub fn reload(&mut self) -> Result<String, ReloadError> {
        let r = self.try_reload();
        self.reloads += 1;
        self.last_reload_error = r.as_ref().err().map(|e| e.to_string());
        r
    }

    fn try_reload(&mut self) -> Result<String, ReloadError> {
        let new = Config::load(&self.config_path).map_err(ReloadError::Config)?;
        for a in new.advisories() {
            warn!("reload: {a}");
        }
        let old = &self.rt.cfg;
        let mut fixed = Vec::new();
        for (name, same) in [
            ("ports", new.ports == old.ports),
            ("eal", new.eal == old.eal),
            ("flow_table_size", new.flow_table_size == old.flow_table_size),
            ("flow_table_size_ipv6", new.flow_table_size_ipv6 == old.flow_table_size_ipv6),
            ("persistence_table_size", new.persistence_table_size == old.persistence_table_size),
            ("mempool", new.mempool == old.mempool),
            ("control_socket", new.control_socket == old.control_socket),
            ("metrics", new.metrics == old.metrics),
            // The announcer's table and interface are set up at start (its drain time is live).
            (
                "announce.table",
                new.announce.as_ref().map(|a| a.table) == old.announce.as_ref().map(|a| a.table),
            ),
        ] {
            if !same {
                fixed.push(name);
            }
        }
        if !fixed.is_empty() {
            return Err(ReloadError::NeedsRestart(fixed.join(", ")));
        }
        let n = new.services.len();
        self.digest = new.digest();
        self.rt.apply(new);
        let now = Instant::now();
        self.publish(now);
        if self.dirty {
            return Err(ReloadError::NotPublished);
        }
        self.announce_vips();
        Ok(format!("configuration reloaded: {n} service(s), epoch {}", self.current.epoch))
    }

    pub fn handle_ctl(&mut self, cmd: CtlCommand) -> Result<String, String> {
        match cmd {
            CtlCommand::Reload => self.reload().map_err(|e| e.to_string()),
            CtlCommand::DrainInstance => {
                if self.announcer.is_none() {
                    return Err(
                        "this instance announces nothing (no `announce` in its file): stop it instead".into(),
                    );
                }
                Ok(self.drain_instance(Instant::now()))
            }
            CtlCommand::Drain { service, backend, drain } => {
                // Every service the name covers: `VIP` is all of the VIP's services.
                let found: Vec<(u32, String)> = self
                    .rt
                    .cfg
                    .services
                    .iter()
                    .filter(|s| s.answers_to(&service) && s.backends.iter().any(|b| b.ip == backend))
                    .map(|s| (self.rt.backend_id(s, backend), s.name()))
                    .collect();
                if found.is_empty() {
                    return Err(format!("no backend {backend} in a service {service}"));
                }
                for (id, _) in &found {
                    self.rt.drain_override.insert(*id, drain);
                }
                self.dirty = true;
                self.publish(Instant::now());
                let names: Vec<String> = found.into_iter().map(|(_, n)| n).collect();
                Ok(format!(
                    "{} {backend} of {}",
                    if drain { "draining" } else { "undrained" },
                    names.join(", ")
                ))
            }
        }
    }

    pub fn update_view(&mut self, now: Instant) {
        let ports = self.links.port_counters();
        let ages: Vec<u64> =
            self.alive.iter().map(|(_, t)| now.saturating_duration_since(*t).as_millis() as u64).collect();
        let config_path = self.config_path.display().to_string();
        let v = view::build(
            &self.rt,
            &view::Inputs {
                now,
                start: self.start,
                config_path: &config_path,
                epoch: self.current.epoch,
                reloads: self.reloads,
                last_reload_error: self.last_reload_error.as_deref(),
                workers: self.links.worker_stats(),
                worker_idle_ms: &ages,
                ports: &ports,
                control: self.counters,
                announced: self.announcer.as_ref().map(|a| a.announced()),
                draining: self.draining.is_some(),
                digest: &self.digest,
            },
        );
        if let Ok(mut shared) = self.view.lock() {
            *shared = v;
        }
    }

    /// The view as last built (final counters at shutdown).
    pub fn view(&self) -> View {
        self.view.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// A probe target and the interval of its check.
struct Scheduled {
    target: Target,
    interval: Duration,
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests6;
