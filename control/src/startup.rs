//! `dsrlb run` and `dsrlb check`: bring up EAL, the mempool, the ports and the worker lcores,
//! the ctl socket and the metrics endpoint, run the control core on the main lcore until
//! SIGINT/SIGTERM, then stop everything in order.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use dataplane::wire::MacAddr;
use dataplane::WorkerConfig;
use dpdk_bindings::{Eal, LcoreJoin, Mempool, Port, PortConfig};
use log::{error, info, warn};

use crate::announce::Announcer;
use crate::capture::Tap;
use crate::config::Config;
use crate::core::links::{DpdkLinks, Exception, Links};
use crate::core::ControlCore;
use crate::ctl::CtlRequest;
use crate::errors::StartError;
use crate::runtime::Runtime;
use crate::view::View;
use crate::worker::{self, DpdkIo, Rings, WorkerSetup};

/// The exit status when a worker stalled (a supervisor restarts on any non-zero status).
pub const EXIT_STALLED: i32 = 3;

/// RX and TX descriptors per queue.
const DESCRIPTORS: u16 = 1024;

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
        a.push(if p.is_vdev() { "--vdev" } else { "-a" }.into());
        a.push(p.device.clone());
    }
    for x in cfg.ports.iter().filter_map(|p| p.exception.as_ref()) {
        a.push("--vdev".into());
        a.push(x.device.clone());
    }
    a.extend(extra.iter().cloned());
    a
}

/// Read and validate the file, logging its advisories.
fn load(path: &Path) -> Result<Config, StartError> {
    let cfg =
        Config::load(path).map_err(|error| StartError::Config { path: path.display().to_string(), error })?;
    for a in cfg.advisories() {
        warn!("{}: {a}", path.display());
    }
    Ok(cfg)
}

/// Packet buffers: enough for every queue by default; the file may ask for more (a replayed
/// capture needs one mbuf per packet) or for smaller buffers.
fn mempool(cfg: &Config, workers: u16) -> Result<Arc<Mempool>, StartError> {
    let per_port = 2 * workers as u32 * DESCRIPTORS as u32;
    let (mbufs, data_room) = match &cfg.mempool {
        Some(m) => (m.mbufs, m.data_room),
        None => {
            ((cfg.ports.len() as u32 * per_port + 8192).next_power_of_two() - 1, Mempool::default_data_room())
        }
    };
    let pool = Mempool::new("dsrlb_pool", mbufs, 256, data_room, None).map_err(|e| StartError::Mempool {
        mbufs,
        data_room,
        error: e.to_string(),
    })?;
    info!("mempool: {} mbufs of {} bytes ({} available)", pool.size(), data_room, pool.available());
    Ok(Arc::new(pool))
}

/// Start every port with one RX/TX queue pair per worker; their MACs, in order.
fn ports(cfg: &Config, workers: u16, pool: &Arc<Mempool>) -> Result<(Vec<Port>, Vec<MacAddr>), StartError> {
    let mut ports = Vec::new();
    let mut macs = Vec::new();
    for (index, pc) in cfg.ports.iter().enumerate() {
        let name = pc.device_name();
        let err = |e: dpdk_bindings::DpdkError| StartError::Port {
            index,
            device: name.into(),
            error: e.to_string(),
        };
        let id = Port::find(name).map_err(err)?;
        let pcfg = PortConfig {
            rx_queues: workers,
            tx_queues: workers,
            rx_descriptors: DESCRIPTORS,
            tx_descriptors: DESCRIPTORS,
            mtu: None,
            // The device filters other hosts' unicast where it can; the dataplane checks every
            // frame's destination MAC anyway (a tap or a flooding switch delivers them).
            promiscuous: false,
        };
        let port = Port::start(id, &pcfg, pool.clone()).map_err(err)?;
        if let Some(m) = pc.mac {
            // A device that cannot change its MAC is fine if it already has this one.
            if let Err(e) = port.set_mac(m.0) {
                if port.mac().ok() != Some(m.0) {
                    return Err(err(e));
                }
            }
        }
        if port.mtu().ok() != Some(pc.mtu) {
            if let Err(e) = port.set_mtu(pc.mtu) {
                warn!(
                    "ports[{index}] {name}: cannot set MTU {} ({e}); device keeps {:?}",
                    pc.mtu,
                    port.mtu().ok()
                );
            }
        }
        let mac = MacAddr(port.mac().map_err(err)?);
        info!("port {index} {name}: {workers} queues, MAC {mac}, role {:?}", pc.role);
        macs.push(mac);
        ports.push(port);
    }
    Ok((ports, macs))
}

/// Start each port's exception interface (one queue each way, the control core's) and give its
/// kernel side the port's MAC and addresses.
fn exceptions(
    cfg: &Config,
    macs: &[MacAddr],
    pool: &Arc<Mempool>,
) -> Result<Vec<Option<Exception>>, StartError> {
    let mut v = Vec::new();
    for (index, pc) in cfg.ports.iter().enumerate() {
        let Some(x) = &pc.exception else {
            v.push(None);
            continue;
        };
        let name = x.device_name();
        let err = |e: String| StartError::Port { index, device: name.into(), error: e };
        let id = Port::find(name).map_err(|e| err(e.to_string()))?;
        let pcfg = PortConfig { rx_queues: 1, tx_queues: 1, promiscuous: true, ..PortConfig::default() };
        let port = Port::start(id, &pcfg, pool.clone()).map_err(|e| err(e.to_string()))?;
        let iface = x.iface().unwrap_or_default();
        crate::announce::set_up_interface(iface, macs[index], &pc.addresses).map_err(err)?;
        info!("port {index}: exception interface {iface} ({name}), peers {:?}", x.peers);
        v.push(Some(Exception::new(port).map_err(|e| err(e.to_string()))?));
    }
    Ok(v)
}

/// Hold an exclusive lock beside the control socket for as long as the process lives (the
/// kernel lets go when it ends, however it ends): a second dsrlb on the same configuration
/// stops here, before it touches a device, a kernel interface or a route of the first.
fn lock_instance(cfg: &Config) -> Result<std::fs::File, StartError> {
    let mut name = cfg.control_socket.clone().into_os_string();
    name.push(".lock");
    let path = std::path::PathBuf::from(name);
    let shown = path.display().to_string();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StartError::ControlSocket { path: shown.clone(), error: e.to_string() })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StartError::AlreadyRunning { lock: shown }),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(StartError::ControlSocket { path: shown, error: e.to_string() })
        }
    }
}

pub fn run(args: RunArgs) -> Result<(), StartError> {
    let cfg = load(&args.config_path)?;
    let _instance = lock_instance(&cfg)?;
    let eal = Eal::init(eal_args(&cfg, &args.extra_eal)).map_err(|e| StartError::Eal(e.to_string()))?;
    let result = run_on(&eal, cfg, args);
    // Only now, with every mbuf, ring, port and pool of `run_on` dropped: EAL's cleanup unmaps
    // the memory they live in, and a frame freed after it is a crash at exit.
    drop(eal);
    result
}

/// Everything between EAL's start and its cleanup. Whatever holds DPDK memory (the pool, the
/// ports, the frames queued between the workers and the control core) is created here, so it
/// is gone before `run` cleans EAL up, on every path out.
fn run_on(eal: &Eal, cfg: Config, args: RunArgs) -> Result<(), StartError> {
    let lcores = eal.worker_lcores();
    if lcores.is_empty() {
        return Err(StartError::NoWorkerLcore);
    }
    let nw = lcores.len() as u16;
    info!(
        "dsrlb {}: {} worker lcore(s) {:?}, control on lcore {}",
        crate::cli::VERSION,
        nw,
        lcores,
        eal.main_lcore()
    );
    let pool = mempool(&cfg, nw)?;
    let (ports, macs) = ports(&cfg, nw, &pool)?;
    let exceptions = exceptions(&cfg, &macs, &pool)?;

    let mut rt = Runtime::new(cfg.clone(), macs);
    let start = Instant::now();
    let snap = Arc::new(rt.build_snapshot(start).map_err(|e| StartError::Snapshot(e.to_string()))?);

    // From here on the control core's thread (and the threads it starts) leaves the PMDs'
    // per-frame signals to the workers (sys.rs says why).
    dpdk_bindings::sys::block_async_signals().map_err(|e| StartError::Signals(e.to_string()))?;
    dpdk_bindings::sys::ignore_sigio().map_err(|e| StartError::Signals(e.to_string()))?;
    let _ = dpdk_bindings::sys::set_timer_slack(1_000);

    // SIGINT stops at once; SIGTERM drains first when this instance announces its VIPs.
    let quit = Arc::new(AtomicBool::new(false));
    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, quit.clone())
        .map_err(|e| StartError::Signals(e.to_string()))?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, term.clone())
        .map_err(|e| StartError::Signals(e.to_string()))?;
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .map_err(|e| StartError::Signals(e.to_string()))?;

    let view = Arc::new(Mutex::new(View::default()));
    let (req_tx, req_rx) = crossbeam_channel::bounded::<CtlRequest>(16);
    // Each worker's rings now, for the capture tap that watches their heartbeats.
    let worker_rings: Vec<Rings> = lcores.iter().map(|_| Rings::new()).collect();
    let tap = Arc::new(Tap::new(worker_rings.iter().map(|r| r.heartbeat.clone()).collect()));
    let capture = crate::ctl::Capture { ports: ports.len(), tap: tap.clone() };
    crate::ctl::serve(&cfg.control_socket, view.clone(), req_tx, capture).map_err(|e| {
        StartError::ControlSocket { path: cfg.control_socket.display().to_string(), error: e.to_string() }
    })?;
    if let Some(addr) = cfg.metrics {
        crate::metrics::serve(addr, view.clone())
            .map_err(|error| StartError::Metrics { addr: addr.to_string(), error })?;
        info!("metrics on http://{addr}/metrics");
    }

    let announcer = match &cfg.announce {
        Some(a) => {
            // The routes go on the exception interface of the first port where VIPs live.
            let iface = cfg
                .ports
                .iter()
                .filter(|p| p.role != dataplane::snapshot::PortRole::Server)
                .find_map(|p| p.exception.as_ref().and_then(|x| x.iface()))
                .unwrap_or_default();
            let announcer =
                Announcer::start(a.table, iface).map_err(|e| StartError::Announce(e.to_string()))?;
            info!("announcing VIPs as routes in table {} on {iface}, once settled", a.table);
            Some(announcer)
        }
        None => None,
    };

    // Workers last: nothing that can fail comes after them (an error would leave them
    // running in a process that cannot end).
    let stop = Arc::new(AtomicBool::new(false));
    let mut jobs: Vec<LcoreJoin> = Vec::new();
    let wcfg = WorkerConfig {
        flow_capacity: cfg.flow_table_size,
        flow6_capacity: cfg.flow_table_size_ipv6,
        persistence_capacity: cfg.persistence_table_size,
        memory_advice: Some(dpdk_bindings::advise_huge_pages),
        ..WorkerConfig::default()
    };
    let launched = (|| {
        for (w, &lcore) in lcores.iter().enumerate() {
            let r = worker_rings[w].clone();
            let queue_err = |e: dpdk_bindings::DpdkError| StartError::Launch { lcore, error: e.to_string() };
            let rx = ports
                .iter()
                .map(|p| p.rx_queue(w as u16))
                .collect::<Result<Vec<_>, _>>()
                .map_err(queue_err)?;
            let tx = ports
                .iter()
                .map(|p| p.tx_queue(w as u16))
                .collect::<Result<Vec<_>, _>>()
                .map_err(queue_err)?;
            let setup = WorkerSetup {
                index: w,
                config: wcfg,
                snapshot: snap.clone(),
                io: DpdkIo::new(rx, tx, pool.clone(), r.clone(), tap.clone()),
                rings: r.clone(),
                stop: stop.clone(),
                idle_sleep_us: cfg.worker_idle_sleep_us,
            };
            jobs.push(
                eal.launch(lcore, move || worker::run(setup))
                    .map_err(|e| StartError::Launch { lcore, error: e.to_string() })?,
            );
        }
        Ok(())
    })();
    if let Err(e) = launched {
        // The workers already running stop before the error ends the process.
        stop.store(true, Ordering::Relaxed);
        for j in jobs {
            j.join();
        }
        return Err(e);
    }

    let links = DpdkLinks::new(pool, ports, worker_rings, exceptions);
    let mut cp = ControlCore::new(links, rt, snap, args.config_path.clone(), view, start);
    if let Some(a) = announcer {
        cp = cp.with_announcer(a);
    }
    info!("running: {} service(s); ctl on {}", cfg.services.len(), cfg.control_socket.display());
    if let Err(w) = cp.run(&quit, &term, &hup, &req_rx) {
        // A stuck worker blackholes its share of the traffic (and, for worker 0, every frame
        // the control core sends): end the process so that its supervisor starts it again.
        // Nothing can be stopped in order with a stuck lcore (EAL's cleanup would wait for it):
        // leave at once, with a status that says so.
        error!(
            "worker {w} (lcore {}) has not moved for {:?}: stopping the appliance (exit {EXIT_STALLED})",
            lcores[w],
            crate::core::STALL_LIMIT
        );
        let _ = std::fs::remove_file(&cfg.control_socket);
        std::process::exit(EXIT_STALLED);
    }

    info!("stopping");
    stop.store(true, Ordering::Relaxed);
    for j in jobs {
        j.join();
    }
    // The last counters the workers sent before they stopped.
    cp.links_mut().collect();
    cp.update_view(Instant::now());
    let v = cp.view().stats;
    info!(
        "final counters: rx {} forwarded {} to-control {} drops {:?} flows {}",
        v.rx_packets, v.forwarded, v.to_control, v.drops, v.flows
    );
    let _ = std::fs::remove_file(&cfg.control_socket);
    Ok(())
}

/// `dsrlb check`: validate a file without starting anything.
pub fn check(path: &Path) -> Result<String, StartError> {
    let cfg =
        Config::load(path).map_err(|error| StartError::Config { path: path.display().to_string(), error })?;
    let backends: usize = cfg.services.iter().map(|s| s.backends.len()).sum();
    let mut out = format!(
        "{}: ok — {} port(s) ({}), {} service(s), {} backend(s)",
        path.display(),
        cfg.ports.len(),
        if cfg.is_inline() { "inline" } else { "one-arm" },
        cfg.services.len(),
        backends
    );
    for a in cfg.advisories() {
        out.push_str(&format!("\nadvice: {a}"));
    }
    Ok(out)
}
