//! `dsrlb run`: bring up EAL, ports and worker lcores, then run the control core on the main
//! lcore until SIGINT/SIGTERM. The control core answers ARP and ICMP echo, resolves MACs,
//! probes backends along the DSR path, publishes snapshots to the workers, gathers counters,
//! and serves `dsrlb ctl` and the metrics endpoint.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use dataplane::wire::{arp, EthernetFrame, Ipv4Header, ETHERTYPE_ARP, ETHERTYPE_IPV4};
use dataplane::{DropReason, Snapshot, WorkerConfig};
use dpdk_bindings::{Eal, LcoreJoin, Mbuf, Mempool, Port, PortConfig};
use log::{error, info, warn};

use crate::config::{BackendConfig, Config, HealthCheckConfig, Mode, Protocol, Role, ServiceConfig};
use crate::frames;
use crate::probe::{Outcome, Prober, Target};
use crate::runtime::Runtime;
use crate::view::{self, BackendRow, NeighborRow, PortRow, ServiceRow, View};
use crate::worker::{self, Command, DpdkIo, Reply, Rings, WorkerSetup, WorkerStats};

/// A request from the ctl server thread, answered on `reply`.
pub struct CtlRequest {
    pub cmd: CtlCommand,
    pub reply: Sender<Result<String, String>>,
}

pub enum CtlCommand {
    Reload,
    Drain { vip: String, backend: Ipv4Addr, drain: bool },
}

/// Arguments of `dsrlb run`.
pub struct RunArgs {
    pub config_path: PathBuf,
    pub extra_eal: Vec<String>,
}

/// The EAL arguments for a configuration: the file's, one `--vdev`/`-a` per port, then extras.
pub fn eal_args(cfg: &Config, extra: &[String]) -> Vec<String> {
    let mut a = vec!["dsrlb".to_string()];
    a.extend(cfg.eal.iter().cloned());
    for p in &cfg.ports {
        if p.device.starts_with("net_") {
            a.push("--vdev".into());
        } else {
            a.push("-a".into());
        }
        a.push(p.device.clone());
    }
    a.extend(extra.iter().cloned());
    a
}

fn device_name(device: &str) -> &str {
    device.split(',').next().unwrap_or(device)
}

pub fn run(args: RunArgs) -> Result<(), String> {
    let cfg = Config::load(&args.config_path).map_err(|e| format!("{}: {e}", args.config_path.display()))?;
    for a in cfg.advisories() {
        warn!("{}: {a}", args.config_path.display());
    }
    let eal = Eal::init(eal_args(&cfg, &args.extra_eal)).map_err(|e| format!("EAL: {e}"))?;
    let workers = eal.worker_lcores();
    if workers.is_empty() {
        return Err(
            "no worker lcore: give EAL at least two cores (e.g. -l 0-1); the first runs the control core"
                .into(),
        );
    }
    let nw = workers.len() as u16;
    info!(
        "dsrlb {}: {} worker lcore(s) {:?}, control on lcore {}",
        env!("CARGO_PKG_VERSION"),
        nw,
        workers,
        eal.main_lcore()
    );

    let descs = 1024u32;
    let per_port = 2 * nw as u32 * descs;
    // Enough for every queue by default; the file may ask for more (a replayed capture needs
    // one mbuf per packet) or for smaller buffers.
    let (pool_size, data_room) = match &cfg.mempool {
        Some(m) => (m.mbufs, m.data_room),
        None => {
            ((cfg.ports.len() as u32 * per_port + 8192).next_power_of_two() - 1, Mempool::default_data_room())
        }
    };
    let pool = Arc::new(
        Mempool::new("dsrlb_pool", pool_size, 256, data_room, None)
            .map_err(|e| format!("mempool of {pool_size} x {data_room} B: {e}"))?,
    );

    info!("mempool: {} mbufs of {} bytes ({} available)", pool.size(), data_room, pool.available());
    let mut ports = Vec::new();
    let mut macs = Vec::new();
    for (i, pc) in cfg.ports.iter().enumerate() {
        let name = device_name(&pc.device);
        let id = Port::find(name).map_err(|e| format!("ports[{i}] {name}: {e}"))?;
        let pcfg = PortConfig {
            rx_queues: nw,
            tx_queues: nw,
            rx_descriptors: descs as u16,
            tx_descriptors: descs as u16,
            mtu: None,
            promiscuous: true,
        };
        let port = Port::start(id, &pcfg, pool.clone()).map_err(|e| format!("ports[{i}] {name}: {e}"))?;
        if port.mtu().ok() != Some(pc.mtu) {
            if let Err(e) = port.set_mtu(pc.mtu) {
                warn!(
                    "ports[{i}] {name}: cannot set MTU {} ({e}); device keeps {:?}",
                    pc.mtu,
                    port.mtu().ok()
                );
            }
        }
        let mac = port.mac().map_err(|e| format!("ports[{i}] {name}: {e}"))?;
        info!("port {i} {name}: {} queues, MAC {}, role {:?}", nw, view::mac_str(&mac), pc.role);
        macs.push(mac);
        ports.push(port);
    }

    let mut rt = Runtime::new(cfg.clone(), macs);
    let start = Instant::now();
    let snap = Arc::new(rt.build_snapshot(start).map_err(|e| format!("snapshot: {e}"))?);

    let stop = Arc::new(AtomicBool::new(false));
    let mut rings = Vec::new();
    let mut jobs: Vec<LcoreJoin> = Vec::new();
    let wcfg = WorkerConfig {
        flow_capacity: cfg.flow_table_size,
        persistence_capacity: cfg.persistence_table_size,
        memory_advice: Some(dpdk_bindings::advise_huge_pages),
        ..WorkerConfig::default()
    };
    let idle_sleep_us = cfg.worker_idle_sleep_us;
    for (w, &lcore) in workers.iter().enumerate() {
        let r = Rings::new();
        let rx = ports
            .iter()
            .map(|p| p.rx_queue(w as u16))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let tx = ports
            .iter()
            .map(|p| p.tx_queue(w as u16))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let setup = WorkerSetup {
            config: wcfg,
            snapshot: snap.clone(),
            io: DpdkIo::new(rx, tx, pool.clone(), r.punted.clone()),
            rings: r.clone(),
            stop: stop.clone(),
            idle_sleep_us,
        };
        jobs.push(
            eal.launch(lcore, move || worker::run(setup))
                .map_err(|e| format!("launch worker on lcore {lcore}: {e}"))?,
        );
        rings.push(r);
    }

    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, term.clone()).map_err(|e| format!("signal: {e}"))?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .map_err(|e| format!("signal: {e}"))?;

    let view = Arc::new(Mutex::new(View::default()));
    let (req_tx, req_rx) = crossbeam_channel::bounded::<CtlRequest>(16);
    crate::ctl::serve(&cfg.control_socket, view.clone(), req_tx)
        .map_err(|e| format!("control socket {}: {e}", cfg.control_socket.display()))?;
    if let Some(addr) = cfg.metrics {
        crate::metrics::serve(addr, view.clone()).map_err(|e| format!("metrics on {addr}: {e}"))?;
        info!("metrics on http://{addr}/metrics");
    }

    let mut cp = ControlCore {
        rt,
        prober: Prober::new(start),
        pool,
        ports,
        rings,
        current: snap,
        published_epoch: 0,
        worker_epochs: vec![0; nw as usize],
        stats_bufs: (0..nw).map(|_| Some(Box::<WorkerStats>::default())).collect(),
        worker_stats: vec![WorkerStats::default(); nw as usize],
        next_probe: HashMap::new(),
        dirty: false,
        view,
        requests: req_rx,
        config_path: args.config_path.clone(),
        start,
        counters: ControlCounters::default(),
        reloads: 0,
        last_reload_error: None,
    };
    cp.publish();
    cp.announce_vips();
    info!("running: {} service(s); ctl on {}", cp.rt.cfg.services.len(), cfg.control_socket.display());
    cp.run(&term, &hup);

    info!("stopping");
    stop.store(true, Ordering::Relaxed);
    for j in jobs {
        j.join();
    }
    cp.take_replies(); // the last counters the workers sent before they stopped
    cp.update_view();
    let v = cp.view.lock().map(|v| v.stats.clone()).unwrap_or_default();
    info!(
        "final counters: rx {} forwarded {} to-control {} drops {:?} flows {}",
        v.rx_packets, v.forwarded, v.to_control, v.drops, v.flows
    );
    let _ = std::fs::remove_file(&cfg.control_socket);
    drop(cp);
    drop(eal);
    Ok(())
}

#[derive(Default)]
struct ControlCounters {
    frames: u64,
    arp_replies: u64,
    echo_replies: u64,
    probe_replies: u64,
}

struct ControlCore {
    rt: Runtime,
    prober: Prober,
    pool: Arc<Mempool>,
    ports: Vec<Port>,
    rings: Vec<Rings>,
    current: Arc<Snapshot>,
    published_epoch: u64,
    worker_epochs: Vec<u64>,
    stats_bufs: Vec<Option<Box<WorkerStats>>>,
    worker_stats: Vec<WorkerStats>,
    next_probe: HashMap<u32, Instant>,
    /// State changed: a new snapshot must be built and published.
    dirty: bool,
    view: Arc<Mutex<View>>,
    requests: Receiver<CtlRequest>,
    config_path: PathBuf,
    start: Instant,
    counters: ControlCounters,
    reloads: u64,
    last_reload_error: Option<String>,
}

impl ControlCore {
    fn run(&mut self, term: &AtomicBool, hup: &AtomicBool) {
        let mut last_tick = Instant::now() - Duration::from_secs(1);
        let mut last_stats = Instant::now();
        while !term.load(Ordering::Relaxed) {
            let mut busy = self.drain_punted();
            let now = Instant::now();
            if now.duration_since(last_tick) >= Duration::from_millis(5) {
                last_tick = now;
                self.tick(now);
                busy = true;
            }
            if hup.swap(false, Ordering::Relaxed) {
                match self.reload() {
                    Ok(m) => info!("SIGHUP: {m}"),
                    Err(e) => error!("SIGHUP: reload refused: {e}"),
                }
            }
            while let Ok(req) = self.requests.try_recv() {
                let r = self.handle_ctl(req.cmd);
                let _ = req.reply.send(r);
            }
            self.take_replies();
            if now.duration_since(last_stats) >= Duration::from_millis(500) {
                last_stats = now;
                self.request_stats();
                self.update_view();
            }
            if self.dirty {
                self.publish();
            }
            if !busy {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }

    fn publish(&mut self) {
        match self.rt.build_snapshot(Instant::now()) {
            Ok(s) => {
                let s = Arc::new(s);
                for r in &self.rings {
                    // Commands are few; a full ring means a stuck worker, so log and retry later.
                    if r.commands.push(Command::Install(s.clone())).is_err() {
                        warn!("worker command ring full; snapshot {} delayed", s.epoch);
                        return;
                    }
                }
                self.published_epoch = s.epoch;
                self.current = s;
                self.dirty = false;
            }
            Err(e) => error!("snapshot rejected: {e}"),
        }
    }

    fn take_replies(&mut self) {
        for (w, r) in self.rings.iter().enumerate() {
            while let Some(reply) = r.replies.pop() {
                match reply {
                    Reply::Retired(old) => drop(old), // freed here, off the fast path
                    Reply::Stats(b) => {
                        self.worker_epochs[w] = b.epoch;
                        self.worker_stats[w].clone_from(&b);
                        self.stats_bufs[w] = Some(b);
                    }
                }
            }
        }
    }

    fn request_stats(&mut self) {
        for (w, r) in self.rings.iter().enumerate() {
            if let Some(b) = self.stats_bufs[w].take() {
                if let Err(Command::Stats(b)) = r.commands.push(Command::Stats(b)) {
                    self.stats_bufs[w] = Some(b);
                }
            }
        }
    }

    fn send(&mut self, port: u16, frame: &[u8]) {
        let Some(mut m) = self.pool.alloc() else {
            warn!("mempool dry: control frame dropped");
            return;
        };
        if !m.append(frame.len()) {
            return;
        }
        m.data_mut().copy_from_slice(frame);
        // Worker 0 transmits for the control core (see Rings::outbound).
        if self.rings[0].outbound.push((port, m)).is_err() {
            warn!("outbound ring full: control frame dropped");
        }
    }

    fn drain_punted(&mut self) -> bool {
        let mut got: Vec<(u16, Mbuf)> = Vec::new();
        for r in &self.rings {
            while let Some(x) = r.punted.pop() {
                got.push(x);
                if got.len() >= 256 {
                    break;
                }
            }
        }
        let any = !got.is_empty();
        let now = Instant::now();
        for (port, m) in got {
            self.counters.frames += 1;
            self.handle_frame(port, m.data(), now);
        }
        any
    }

    fn handle_frame(&mut self, port: u16, frame: &[u8], now: Instant) {
        let Ok(eth) = EthernetFrame::new_checked(frame) else { return };
        match eth.ethertype() {
            ETHERTYPE_ARP => self.handle_arp(port, eth.payload(), now),
            ETHERTYPE_IPV4 => {
                let Ok(ip) = Ipv4Header::new_checked(eth.payload()) else { return };
                let dst = Ipv4Addr::from(ip.dst());
                let payload = ip.payload();
                if ip.protocol() == 1
                    && payload.first() == Some(&8)
                    && (self.is_vip(dst) || self.is_lb_addr(dst))
                {
                    if let Some(reply) = frames::icmp_echo_reply(frame, self.rt.port_macs[port as usize]) {
                        self.counters.echo_replies += 1;
                        self.send(port, &reply);
                    }
                    return;
                }
                if self.prober.on_packet(eth.payload(), now) {
                    self.counters.probe_replies += 1;
                }
            }
            _ => {}
        }
    }

    fn is_vip(&self, ip: Ipv4Addr) -> bool {
        self.rt.cfg.services.iter().any(|s| s.vip == ip)
    }

    fn is_lb_addr(&self, ip: Ipv4Addr) -> bool {
        self.rt.subnets.iter().flatten().any(|c| c.addr == ip)
    }

    fn handle_arp(&mut self, port: u16, payload: &[u8], now: Instant) {
        let Ok(a) = arp::ArpPacket::new_checked(payload) else { return };
        let sender = Ipv4Addr::from(a.sender_ip());
        if let Some(change) = self.rt.neigh.learn(port, sender, a.sender_mac(), now) {
            info!("neighbour: {change:?}");
            self.dirty = true;
        }
        if a.operation() != arp::OP_REQUEST {
            return;
        }
        let target = Ipv4Addr::from(a.target_ip());
        // Answer for VIPs on the ports where they live and for our own addresses on their
        // port — and for nothing else (servers hold the VIPs too but must never answer).
        let ours_here = self.rt.subnets[port as usize].iter().any(|c| c.addr == target);
        let vip_here = self.rt.vip_ports().contains(&port) && self.is_vip(target);
        if (ours_here || vip_here) && target != sender {
            let reply = frames::arp_reply(self.rt.port_macs[port as usize], target, a.sender_mac(), sender);
            self.counters.arp_replies += 1;
            self.send(port, &reply);
        }
    }

    /// Gratuitous ARP for every VIP and LB address, at start and after a reload.
    fn announce_vips(&mut self) {
        let mut out = Vec::new();
        for p in self.rt.vip_ports() {
            let mut vips: Vec<Ipv4Addr> = self.rt.cfg.services.iter().map(|s| s.vip).collect();
            vips.sort();
            vips.dedup();
            for v in vips {
                out.push((p, frames::gratuitous_arp(self.rt.port_macs[p as usize], v)));
            }
        }
        for (i, cs) in self.rt.subnets.iter().enumerate() {
            for c in cs {
                out.push((i as u16, frames::gratuitous_arp(self.rt.port_macs[i], c.addr)));
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
        for (port, ip) in ask {
            let f = frames::arp_request(self.rt.port_macs[port as usize], self.rt.lb_addr(port), ip);
            self.send(port, &f);
        }
        // Health checks due. Only those are looked at further: with thousands of backends,
        // building every probe target on every tick was most of the control core's work.
        let mut out = Vec::new();
        let mut immediate = Vec::new();
        let due: Vec<(u32, Option<Instant>)> = self
            .checked_backends()
            .filter_map(|id| {
                let next = self.next_probe.get(&id).copied();
                (next.is_none_or(|d| now >= d) && !self.prober.in_flight(id)).then_some((id, next))
            })
            .collect();
        for (id, was_due) in due {
            let Some(t) = self.probe_target(id, now) else { continue };
            // Keep the cadence: the next check is an interval after this one was due, not after
            // the tick that noticed it (unless we fell more than an interval behind).
            let interval = self.interval_of(id);
            let next = was_due.map(|d| d + interval).filter(|n| *n > now).unwrap_or(now + interval);
            self.next_probe.insert(id, next);
            self.prober.remember(&t);
            let b = t.backend;
            if let Some(o) = self.prober.start(t, now, &mut out) {
                immediate.push((b, o));
            }
        }
        let mut finished = self.prober.poll(now, &mut out);
        finished.extend(immediate);
        for (p, f) in out {
            self.send(p, &f);
        }
        for (b, o) in finished {
            self.record(b, o);
        }
    }

    /// The service, its health check and the backend entry behind a checked backend id.
    fn checked(&self, backend: u32) -> Option<(&ServiceConfig, &HealthCheckConfig, &BackendConfig)> {
        let (s, b) = self.rt.backend_config(backend)?;
        Some((s, s.health_check.as_ref()?, b))
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

    fn interval_of(&self, backend: u32) -> Duration {
        self.checked(backend).map_or(Duration::from_secs(2), |(_, h, _)| Duration::from_secs_f64(h.interval))
    }

    /// How to probe a checked backend now; `None` if it has no check or no route.
    fn probe_target(&self, backend: u32, now: Instant) -> Option<Target> {
        let (s, h, b) = self.checked(backend)?;
        let (port, next_hop) = self.rt.route(b.ip)?;
        let static_mac = b.mac.as_deref().and_then(crate::config::parse_mac);
        Some(Target {
            backend,
            mode: s.mode,
            check: h.check.clone(),
            vip: s.vip,
            real_ip: b.ip,
            port: h.port.unwrap_or(s.port),
            egress: port,
            port_mac: self.rt.port_macs[port as usize],
            lb_ip: self.rt.lb_addr(port),
            next_hop_mac: static_mac.or_else(|| self.rt.neigh.lookup(port, next_hop, now)),
            timeout: Duration::from_secs_f64(h.timeout),
        })
    }

    /// Apply a probe outcome to the backend's rise/fall state machine.
    fn record(&mut self, backend: u32, outcome: Outcome) {
        let Some((rise, fall, name)) =
            self.checked(backend).map(|(s, h, b)| (h.rise, h.fall, format!("{}:{} {}", s.vip, s.port, b.ip)))
        else {
            return;
        };
        let Some(h) = self.rt.health.get_mut(&backend) else { return };
        h.probes += 1;
        match outcome {
            Outcome::Ok(rtt) => {
                h.last_latency = Some(rtt);
                h.last_error = None;
                h.ok_streak += 1;
                h.fail_streak = 0;
                if !h.up && h.ok_streak >= rise {
                    h.up = true;
                    h.transitions += 1;
                    info!(
                        "backend {name}: UP (passed {rise} check(s), last {:.1} ms)",
                        rtt.as_secs_f64() * 1e3
                    );
                    self.dirty = true;
                }
            }
            Outcome::Fail(why) => {
                h.fail_streak += 1;
                h.ok_streak = 0;
                if h.up && h.fail_streak >= fall {
                    h.up = false;
                    h.transitions += 1;
                    warn!("backend {name}: DOWN after {fall} failed check(s): {why}");
                    self.dirty = true;
                }
                h.last_error = Some(why);
            }
        }
    }

    fn reload(&mut self) -> Result<String, String> {
        let r = self.try_reload();
        self.reloads += 1;
        self.last_reload_error = r.as_ref().err().cloned();
        r
    }

    fn try_reload(&mut self) -> Result<String, String> {
        let new = Config::load(&self.config_path).map_err(|e| e.to_string())?;
        for a in new.advisories() {
            warn!("reload: {a}");
        }
        let old = &self.rt.cfg;
        if new.ports != old.ports
            || new.eal != old.eal
            || new.flow_table_size != old.flow_table_size
            || new.persistence_table_size != old.persistence_table_size
            || new.control_socket != old.control_socket
            || new.metrics != old.metrics
        {
            return Err("ports, eal, table sizes, control socket and metrics change only with a restart; nothing changed".into());
        }
        let n = new.services.len();
        self.rt.apply(new);
        self.publish();
        if self.dirty {
            return Err("snapshot could not be published; will retry".into());
        }
        self.announce_vips();
        Ok(format!("configuration reloaded: {n} service(s), epoch {}", self.published_epoch))
    }

    fn handle_ctl(&mut self, cmd: CtlCommand) -> Result<String, String> {
        match cmd {
            CtlCommand::Reload => self.reload(),
            CtlCommand::Drain { vip, backend, drain } => {
                let mut found = None;
                for s in &self.rt.cfg.services {
                    let name = format!("{}:{}", s.vip, s.port);
                    if (s.vip.to_string() == vip || name == vip) && s.backends.iter().any(|b| b.ip == backend)
                    {
                        found = Some(self.rt.backend_id(s, backend));
                    }
                }
                let id = found.ok_or_else(|| format!("no backend {backend} in a service {vip}"))?;
                self.rt.drain_override.insert(id, drain);
                self.dirty = true;
                self.publish();
                Ok(format!("{} {backend} of {vip}", if drain { "draining" } else { "undrained" }))
            }
        }
    }

    fn update_view(&mut self) {
        let now = Instant::now();
        let mut total = dataplane::Counters::default();
        let mut active: Vec<u64> = Vec::new();
        let (mut flows, mut cap, mut tx_dropped, mut punt_dropped) = (0u64, 0u64, 0u64, 0u64);
        for ws in &self.worker_stats {
            total.merge(&ws.counters);
            if active.len() < ws.active.len() {
                active.resize(ws.active.len(), 0);
            }
            for (a, b) in active.iter_mut().zip(&ws.active) {
                *a += *b as u64;
            }
            flows += ws.flows as u64;
            cap += ws.flow_capacity as u64;
            tx_dropped += ws.tx_dropped;
            punt_dropped += ws.punt_dropped;
        }
        let backends = self.rt.backends(now);
        let mut rows = Vec::new();
        for b in &backends {
            let s = &self.rt.cfg.services[b.service];
            let c = total.backends.get(b.id as usize).copied().unwrap_or_default();
            rows.push(BackendRow {
                id: b.id,
                service: service_name(s.vip, s.port, s.protocol),
                ip: b.ip.to_string(),
                weight: b.weight,
                state: format!("{:?}", b.state).to_lowercase(),
                health: if !b.checked {
                    "unchecked".into()
                } else if b.health.up {
                    "passing".into()
                } else {
                    "failing".into()
                },
                drained: b.drained,
                mac: b.mac.map(|m| view::mac_str(&m)),
                last_probe_ms: b.health.last_latency.map(|d| d.as_secs_f64() * 1e3),
                last_error: b.health.last_error.clone(),
                probes: b.health.probes,
                transitions: b.health.transitions,
                packets: c.packets,
                bytes: c.bytes,
                new_flows: c.new_flows,
                active_flows: active.get(b.id as usize).copied().unwrap_or(0),
            });
        }
        let services = self
            .rt
            .cfg
            .services
            .iter()
            .map(|s| {
                let id = self.rt.service_id(s);
                let c = total.services.get(id as usize).copied().unwrap_or_default();
                let mine: Vec<&BackendRow> =
                    rows.iter().filter(|r| r.service == service_name(s.vip, s.port, s.protocol)).collect();
                ServiceRow {
                    id,
                    name: service_name(s.vip, s.port, s.protocol),
                    vip: s.vip.to_string(),
                    port: s.port,
                    protocol: format!("{:?}", s.protocol).to_lowercase(),
                    mode: match s.mode {
                        Mode::L2 => "l2".into(),
                        Mode::Ipip => "ipip".into(),
                        Mode::Dscp(c) => format!("dscp({c})"),
                    },
                    scheduler: s.scheduler.name().into(),
                    persistence: s.persistence.as_ref().map(|p| format!("{} {}s", p.by.name(), p.timeout)),
                    backends_up: mine.iter().filter(|r| r.state == "up").count(),
                    backends: mine.len(),
                    packets: c.packets,
                    bytes: c.bytes,
                    new_flows: c.new_flows,
                    active_flows: mine.iter().map(|r| r.active_flows).sum(),
                }
            })
            .collect();
        let ports = self
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let st = p.stats().unwrap_or_default();
                let link = p.link().ok();
                let pc = &self.rt.cfg.ports[i];
                PortRow {
                    index: i as u16,
                    device: pc.device.clone(),
                    role: format!("{:?}", pc.role).to_lowercase(),
                    mac: view::mac_str(&self.rt.port_macs[i]),
                    addresses: pc.addresses.clone(),
                    mtu: pc.mtu,
                    link_up: link.map(|l| l.up).unwrap_or(false),
                    speed_mbps: link.map(|l| l.speed_mbps).unwrap_or(0),
                    rx_packets: st.rx_packets,
                    tx_packets: st.tx_packets,
                    rx_bytes: st.rx_bytes,
                    tx_bytes: st.tx_bytes,
                    rx_missed: st.rx_missed,
                    rx_errors: st.rx_errors,
                    tx_errors: st.tx_errors,
                    rx_no_mbuf: st.rx_no_mbuf,
                }
            })
            .collect();
        let neighbors = self
            .rt
            .neigh
            .list(now)
            .into_iter()
            .map(|(port, ip, mac)| NeighborRow {
                port,
                ip: ip.to_string(),
                mac: mac.map(|m| view::mac_str(&m)),
            })
            .collect();
        let stats = view::Stats {
            rx_packets: total.rx_packets,
            forwarded: total.forwarded,
            to_control: total.to_control,
            drops: DropReason::ALL.iter().map(|r| (r.name().to_string(), total.dropped(*r))).collect(),
            flows,
            flow_capacity: cap,
            stateless_fallbacks: total.stateless_fallbacks,
            reclaimed_on_insert: total.reclaimed_on_insert,
            expired_by_sweep: total.expired_by_sweep,
            rescheduled: total.rescheduled,
            icmp_errors_steered: total.icmp_errors_steered,
            frag_needed_sent: total.frag_needed_sent,
            frag_needed_rate_limited: total.frag_needed_rate_limited,
            outer_fragments: total.outer_fragments,
            inline_routed: total.inline_routed,
            tx_dropped,
            punt_dropped,
            control_frames: self.counters.frames,
            arp_replies_sent: self.counters.arp_replies,
            echo_replies_sent: self.counters.echo_replies,
            probe_replies: self.counters.probe_replies,
        };
        let status = view::Status {
            version: env!("CARGO_PKG_VERSION").into(),
            config: self.config_path.display().to_string(),
            uptime_s: now.duration_since(self.start).as_secs(),
            uptime_ms: now.duration_since(self.start).as_millis() as u64,
            workers: self.rings.len(),
            epoch: self.published_epoch,
            worker_epochs: self.worker_epochs.clone(),
            reloads: self.reloads,
            last_reload_error: self.last_reload_error.clone(),
            ports,
            neighbors,
        };
        if let Ok(mut v) = self.view.lock() {
            *v = View { status, services, backends: rows, stats };
        }
    }
}

pub fn service_name(vip: Ipv4Addr, port: u16, proto: Protocol) -> String {
    let p = if port == 0 { "*".to_string() } else { port.to_string() };
    format!("{vip}:{p}/{}", format!("{proto:?}").to_lowercase())
}

/// `dsrlb check`: validate a file without starting anything.
pub fn check(path: &Path) -> Result<String, String> {
    let cfg = Config::load(path).map_err(|e| format!("{}:{e}", path.display()))?;
    let backends: usize = cfg.services.iter().map(|s| s.backends.len()).sum();
    let inline = cfg.ports.iter().any(|p| p.role == Role::Client);
    let mut out = format!(
        "{}: ok — {} port(s) ({}), {} service(s), {} backend(s)",
        path.display(),
        cfg.ports.len(),
        if inline { "inline" } else { "one-arm" },
        cfg.services.len(),
        backends
    );
    for a in cfg.advisories() {
        out.push_str(&format!("\nadvice: {a}"));
    }
    Ok(out)
}
