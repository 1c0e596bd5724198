//! `dsrlb ctl`: a unix socket (mode 0600) speaking one JSON request and one JSON answer per
//! connection. Read-only commands are answered from the latest view; `drain`, `undrain` and
//! `reload` go to the control core. Tables for people are rendered from the typed rows.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::Sender;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::errors::CtlError;
use crate::view::{BackendRow, ServiceRow, Stats, Status, View};

/// What the ctl server asks of the control core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CtlCommand {
    Reload,
    /// Drain (or undrain) `backend` in the services named by `service` (`VIP` or `VIP:PORT`).
    Drain {
        service: String,
        backend: std::net::IpAddr,
        drain: bool,
    },
    /// Withdraw every VIP, forward while the routers move the traffic away, then stop.
    DrainInstance,
}

/// A command from the ctl server thread, answered on `reply`.
pub struct CtlRequest {
    pub cmd: CtlCommand,
    pub reply: Sender<Result<String, String>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub cmd: String,
    #[serde(default)]
    pub args: Vec<String>,
}

pub const COMMANDS: &[(&str, &str)] = &[
    ("status", "version, uptime, workers, config epoch, ports with DPDK counters, neighbours"),
    ("services", "each service: VIP, mode, scheduler, backends up, packets, flows"),
    ("backends", "each backend: state, health, MAC, last probe, packets, flows"),
    ("flows", "active and new flows per service and backend, flow-table occupancy"),
    ("stats", "dataplane counters: forwarded, punted, drops by reason, table events"),
    ("drain VIP[:PORT] BACKEND", "keep BACKEND's flows, send it no new ones"),
    ("undrain VIP[:PORT] BACKEND", "take BACKEND back into scheduling"),
    ("reload", "re-read the configuration file (as SIGHUP); a bad file changes nothing"),
    ("drain-instance", "a fleet member: withdraw every VIP, forward while routers move away, then stop"),
    ("capture PORT --count N --out FILE", "live capture of a port into pcapng (dsrlb ctl capture --help)"),
];

/// Start the server. The socket appears at `path` only once it is private (mode 0600): it is
/// made under another name and renamed into place. A stale socket there (nothing answers on
/// it) is replaced; anything else at the path is an error, not removed.
/// What the ctl threads need for `capture-*`: the tap and how many ports there are.
#[derive(Clone)]
pub struct Capture {
    pub ports: usize,
    pub tap: Arc<crate::capture::Tap>,
}

pub fn serve(
    path: &Path,
    view: Arc<Mutex<View>>,
    requests: Sender<CtlRequest>,
    capture: Capture,
) -> std::io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the path exists and is not a socket: not removed",
            ));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "another dsrlb is serving this socket",
            ));
        }
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let staging = dir.join(format!(".{name}.{}", std::process::id()));
    let _ = std::fs::remove_file(&staging);
    let listener = UnixListener::bind(&staging)?;
    std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&staging, path)?;
    crate::serve::spawn(
        "dsrlb-ctl",
        crate::serve::unix(listener),
        |req| req.contains(&b'\n'),
        move |req, conn| {
            let answer = parse_request(req).and_then(|req| answer(req, &view, &requests, &capture));
            let v = match answer {
                Ok(data) => json!({"ok": true, "data": data}),
                Err(e) => json!({"ok": false, "error": e}),
            };
            writeln!(conn, "{v}")
        },
    )
}

/// A request as it came off the socket: one JSON line.
pub fn parse_request(bytes: &[u8]) -> Result<Request, String> {
    let line = std::str::from_utf8(bytes).map_err(|_| "bad request: not UTF-8".to_string())?;
    serde_json::from_str::<Request>(line.trim_end()).map_err(|e| format!("bad request: {e}"))
}

/// The `flows` answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct Flows {
    pub flows: u64,
    pub capacity: u64,
    /// Of which in the IPv6 tables.
    #[serde(default)]
    pub flows_ipv6: u64,
    #[serde(default)]
    pub capacity_ipv6: u64,
    pub services: Vec<FlowRow>,
    pub backends: Vec<FlowRow>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FlowRow {
    pub service: String,
    pub backend: Option<std::net::IpAddr>,
    pub active_flows: u64,
    pub new_flows: u64,
}

fn value<T: Serialize>(x: &T) -> Value {
    serde_json::to_value(x).unwrap_or(Value::Null)
}

fn answer(
    req: Request,
    view: &Mutex<View>,
    requests: &Sender<CtlRequest>,
    capture: &Capture,
) -> Result<Value, String> {
    if req.cmd.starts_with("capture-") {
        return capture_answer(&req, capture);
    }
    let v = view.lock().map_err(|_| "view unavailable".to_string())?.clone();
    match (req.cmd.as_str(), req.args.as_slice()) {
        ("status", []) => Ok(value(&v.status)),
        ("services", []) => Ok(value(&v.services)),
        ("backends", []) => Ok(value(&v.backends)),
        ("stats", []) => Ok(value(&v.stats)),
        ("flows", []) => Ok(value(&Flows {
            flows: v.stats.flows,
            capacity: v.stats.flow_capacity,
            flows_ipv6: v.stats.flows_ipv6,
            capacity_ipv6: v.stats.flow_capacity_ipv6,
            services: v
                .services
                .iter()
                .map(|s| FlowRow {
                    service: s.name.clone(),
                    backend: None,
                    active_flows: s.active_flows,
                    new_flows: s.new_flows,
                })
                .collect(),
            backends: v
                .backends
                .iter()
                .map(|b| FlowRow {
                    service: b.service.clone(),
                    backend: Some(b.ip),
                    active_flows: b.active_flows,
                    new_flows: b.new_flows,
                })
                .collect(),
        })),
        ("reload", []) => call(requests, CtlCommand::Reload),
        ("drain-instance", []) => call(requests, CtlCommand::DrainInstance),
        ("drain" | "undrain", [service, backend]) => {
            let backend = backend.parse().map_err(|_| format!("{backend:?} is not an IP address"))?;
            call(requests, CtlCommand::Drain { service: service.clone(), backend, drain: req.cmd == "drain" })
        }
        (cmd, args) => Err(format!("unknown command or arguments: {cmd} {}", args.join(" "))),
    }
}

/// `capture-start PORT rx|tx|both COUNT SNAPLEN FILTER`, `capture-read ID`, `capture-stop ID`:
/// answered by the ctl thread itself (the tap is shared with the workers, not the control core).
fn capture_answer(req: &Request, c: &Capture) -> Result<Value, String> {
    let num = |s: &str, what: &str| s.parse::<u64>().map_err(|_| format!("{what} {s:?} is not a number"));
    match (req.cmd.as_str(), req.args.as_slice()) {
        ("capture-start", [port, dir, count, snaplen, filter]) => {
            let (rx, tx) = match dir.as_str() {
                "rx" => (true, false),
                "tx" => (false, true),
                "both" => (true, true),
                d => return Err(format!("direction {d:?} is not rx, tx or both")),
            };
            let filter = if filter.is_empty() { None } else { Some(dataplane::bpf::Program::parse(filter)?) };
            let r = crate::capture::Request {
                port: u16::try_from(num(port, "port")?).map_err(|_| format!("port {port} does not exist"))?,
                rx,
                tx,
                count: num(count, "count")?,
                snaplen: num(snaplen, "snap length")?.min(u16::MAX as u64) as u16,
                filter,
            };
            c.tap.start(&r, c.ports).map(|id| json!({ "id": id }))
        }
        ("capture-read", [id]) => c.tap.read(num(id, "capture")?, 256).map(|r| value(&r)),
        ("capture-stop", [id]) => c.tap.stop(num(id, "capture")?).map(|()| json!("stopped")),
        (cmd, args) => Err(format!("unknown command or arguments: {cmd} {}", args.join(" "))),
    }
}

fn call(requests: &Sender<CtlRequest>, cmd: CtlCommand) -> Result<Value, String> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    requests.send(CtlRequest { cmd, reply: tx }).map_err(|_| "control core not running".to_string())?;
    let r =
        rx.recv_timeout(Duration::from_secs(10)).map_err(|_| "control core did not answer".to_string())?;
    r.map(Value::String)
}

/// Client side: send one request, return the answer's data or its error.
pub fn request(socket: &Path, cmd: &str, args: &[String]) -> Result<Value, CtlError> {
    let mut s = UnixStream::connect(socket)
        .map_err(|e| CtlError::Connect { socket: socket.display().to_string(), error: e.to_string() })?;
    s.set_read_timeout(Some(Duration::from_secs(15))).ok();
    let req = serde_json::to_string(&Request { cmd: cmd.into(), args: args.to_vec() })
        .map_err(|e| CtlError::Protocol(e.to_string()))?;
    writeln!(s, "{req}").map_err(|e| CtlError::Io(e.to_string()))?;
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line).map_err(|e| CtlError::Io(e.to_string()))?;
    let v: Value = serde_json::from_str(&line).map_err(|e| CtlError::Protocol(e.to_string()))?;
    if v["ok"] == Value::Bool(true) {
        Ok(v["data"].clone())
    } else {
        Err(CtlError::Refused(v["error"].as_str().unwrap_or("error").to_string()))
    }
}

/// Aligned columns for people.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < w.len() {
                w[i] = w[i].max(c.len());
            }
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let s: Vec<String> =
            cells.iter().enumerate().map(|(i, c)| format!("{:<width$}", c, width = w[i])).collect();
        out.push_str(s.join("  ").trim_end());
        out.push('\n');
    };
    line(headers.to_vec(), &mut out);
    for r in rows {
        line(r.iter().map(|s| s.as_str()).collect(), &mut out);
    }
    out
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_string(), T::to_string)
}

fn typed<T: DeserializeOwned>(data: &Value) -> Result<T, CtlError> {
    serde_json::from_value(data.clone()).map_err(|e| CtlError::Protocol(e.to_string()))
}

/// Render an answer for people, from the typed rows it carries.
pub fn render(cmd: &str, data: &Value) -> Result<String, CtlError> {
    Ok(match cmd {
        "services" => {
            let rows: Vec<ServiceRow> = typed(data)?;
            table(
                &[
                    "SERVICE",
                    "MODE",
                    "SCHEDULER",
                    "UP",
                    "BACKENDS",
                    "PACKETS",
                    "BYTES",
                    "NEW FLOWS",
                    "ACTIVE",
                ],
                &rows
                    .iter()
                    .map(|r| {
                        vec![
                            r.name.clone(),
                            r.mode.to_string(),
                            r.scheduler.to_string(),
                            r.backends_up.to_string(),
                            r.backends.to_string(),
                            r.packets.to_string(),
                            r.bytes.to_string(),
                            r.new_flows.to_string(),
                            r.active_flows.to_string(),
                        ]
                    })
                    .collect::<Vec<_>>(),
            )
        }
        "backends" => {
            let rows: Vec<BackendRow> = typed(data)?;
            table(
                &[
                    "SERVICE",
                    "BACKEND",
                    "WEIGHT",
                    "STATE",
                    "HEALTH",
                    "MAC",
                    "PROBE MS",
                    "PACKETS",
                    "NEW FLOWS",
                    "ACTIVE",
                    "LAST ERROR",
                ],
                &rows
                    .iter()
                    .map(|r| {
                        vec![
                            r.service.clone(),
                            r.ip.to_string(),
                            r.weight.to_string(),
                            label(&r.state),
                            label(&r.health),
                            opt(&r.mac),
                            r.last_probe_ms.map_or_else(|| "-".into(), |ms| format!("{ms:.2}")),
                            r.packets.to_string(),
                            r.new_flows.to_string(),
                            r.active_flows.to_string(),
                            opt(&r.last_error),
                        ]
                    })
                    .collect::<Vec<_>>(),
            )
        }
        "flows" => {
            let f: Flows = typed(data)?;
            let mut out = format!(
                "flow table: {} of {} entries (IPv4 {} of {}, IPv6 {} of {})\n\n",
                f.flows,
                f.capacity,
                f.flows.saturating_sub(f.flows_ipv6),
                f.capacity.saturating_sub(f.capacity_ipv6),
                f.flows_ipv6,
                f.capacity_ipv6
            );
            let r: Vec<Vec<String>> = f
                .backends
                .iter()
                .map(|x| {
                    vec![
                        x.service.clone(),
                        opt(&x.backend),
                        x.active_flows.to_string(),
                        x.new_flows.to_string(),
                    ]
                })
                .collect();
            out.push_str(&table(&["SERVICE", "BACKEND", "ACTIVE", "NEW FLOWS"], &r));
            out
        }
        "stats" => {
            let st: Stats = typed(data)?;
            let mut r = Vec::new();
            // Every counter by its field name, in the struct's order; drops by reason.
            if let Value::Object(o) = value(&st) {
                for (k, v) in o {
                    match v {
                        Value::Object(drops) => {
                            for (dk, dv) in drops {
                                r.push(vec![format!("drop {dk}"), dv.to_string()]);
                            }
                        }
                        other => r.push(vec![k, other.to_string()]),
                    }
                }
            }
            table(&["COUNTER", "VALUE"], &r)
        }
        "status" => {
            let s: Status = typed(data)?;
            let mut out = format!(
                "dsrlb {} up {}s, {} worker(s), epoch {} (workers at {:?}), reloads {}{}\nconfig {} (digest {})\n",
                s.version,
                s.uptime_s,
                s.workers,
                s.epoch,
                s.worker_epochs,
                s.reloads,
                s.last_reload_error.as_ref().map(|e| format!(" (last refused: {e})")).unwrap_or_default(),
                s.config,
                s.config_digest
            );
            if let Some(vips) = &s.announced {
                let list: Vec<String> = vips.iter().map(|v| v.to_string()).collect();
                out.push_str(&format!(
                    "fleet: {}announcing {}\n",
                    if s.draining { "DRAINING, " } else { "" },
                    if list.is_empty() { "nothing".to_string() } else { list.join(" ") }
                ));
            }
            out.push('\n');
            let r: Vec<Vec<String>> = s
                .ports
                .iter()
                .map(|p| {
                    let c = &p.counters;
                    vec![
                        p.index.to_string(),
                        p.device.clone(),
                        label(&p.role),
                        p.mac.to_string(),
                        c.link_up.to_string(),
                        c.rx_packets.to_string(),
                        c.tx_packets.to_string(),
                        c.rx_missed.to_string(),
                        c.rx_errors.to_string(),
                        c.tx_errors.to_string(),
                    ]
                })
                .collect();
            out.push_str(&table(
                &["PORT", "DEVICE", "ROLE", "MAC", "LINK", "RX", "TX", "MISSED", "RX ERR", "TX ERR"],
                &r,
            ));
            let r: Vec<Vec<String>> =
                s.neighbors.iter().map(|n| vec![n.port.to_string(), n.ip.to_string(), opt(&n.mac)]).collect();
            out.push('\n');
            out.push_str(&table(&["PORT", "NEIGHBOUR", "MAC"], &r));
            out
        }
        _ => match data {
            Value::String(s) => format!("{s}\n"),
            other => format!("{other}\n"),
        },
    })
}

/// A unit enum as its serialised name (`up`, `passing`, `lan`).
fn label<T: Serialize>(x: &T) -> String {
    match value(x) {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::HealthState;
    use dataplane::snapshot::BackendState;

    #[test]
    fn backends_table_from_typed_rows() {
        let row = BackendRow {
            id: 3,
            service: "10.0.0.100:80/tcp".into(),
            ip: "10.0.0.13".parse().unwrap(),
            weight: 2,
            state: BackendState::Draining,
            health: HealthState::Passing,
            drained: true,
            mac: Some(dataplane::wire::MacAddr([2, 0, 0, 0, 0, 0x13])),
            last_probe_ms: Some(1.234),
            last_error: None,
            probes: 9,
            transitions: 1,
            packets: 77,
            bytes: 7700,
            new_flows: 5,
            active_flows: 4,
        };
        let out = render("backends", &value(&vec![row])).unwrap();
        let line = out.lines().nth(1).unwrap();
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "10.0.0.100:80/tcp",
                "10.0.0.13",
                "2",
                "draining",
                "passing",
                "02:00:00:00:00:13",
                "1.23",
                "77",
                "5",
                "4",
                "-"
            ]
        );
        assert!(render("backends", &json!([{"id": "x"}])).is_err(), "not rows: an error, not a blank table");
    }
}

#[cfg(test)]
mod server {
    use super::*;
    use std::time::Instant;

    fn no_capture() -> Capture {
        Capture { ports: 1, tap: Arc::new(crate::capture::Tap::new(Vec::new())) }
    }

    fn start(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("ctl.sock");
        let (tx, _rx) = crossbeam_channel::bounded(1);
        std::mem::forget(_rx);
        serve(&path, Arc::new(Mutex::new(View::default())), tx, no_capture()).unwrap();
        path
    }

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("dsrlb-ctl-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn slow_and_oversized_clients_hold_nothing() {
        let dir = tmp("slow");
        let path = start(&dir);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // Clients that connect and say nothing, more of them than there are handlers.
        let idle: Vec<UnixStream> =
            (0..crate::serve::MAX_CONNECTIONS + 2).map(|_| UnixStream::connect(&path).unwrap()).collect();
        // One that sends far more than a request can be.
        let mut big = UnixStream::connect(&path).unwrap();
        let _ = big.write_all(&vec![b'x'; 64 * 1024]);
        let t = Instant::now();
        let answer = loop {
            match request(&path, "status", &[]) {
                Ok(v) => break v,
                Err(_) if t.elapsed() < Duration::from_secs(10) => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => panic!("not served: {e}"),
            }
        };
        assert!(answer.get("version").is_some());
        assert!(t.elapsed() < crate::serve::DEADLINE * 3, "served within the deadline: {:?}", t.elapsed());
        drop(idle);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_that_is_not_a_socket_is_not_removed() {
        let dir = tmp("file");
        let path = dir.join("ctl.sock");
        std::fs::write(&path, "precious").unwrap();
        let (tx, _rx) = crossbeam_channel::bounded(1);
        let e = serve(&path, Arc::new(Mutex::new(View::default())), tx, no_capture()).unwrap_err();
        assert!(e.to_string().contains("not a socket"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
