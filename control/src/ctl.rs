//! `dsrlb ctl`: a unix socket (mode 0600) speaking one JSON request and one JSON answer per
//! connection. Read-only commands are answered from the latest view; `drain`, `undrain` and
//! `reload` go to the control core.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::Sender;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::app::{CtlCommand, CtlRequest};
use crate::view::View;

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
];

/// Start the server thread. A stale socket file is replaced.
pub fn serve(path: &Path, view: Arc<Mutex<View>>, requests: Sender<CtlRequest>) -> std::io::Result<()> {
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "another dsrlb is serving this socket",
            ));
        }
        std::fs::remove_file(path)?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    std::thread::Builder::new().name("dsrlb-ctl".into()).spawn(move || {
        for conn in listener.incoming().flatten() {
            let _ = handle(conn, &view, &requests);
        }
    })?;
    Ok(())
}

fn handle(conn: UnixStream, view: &Mutex<View>, requests: &Sender<CtlRequest>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new(&conn).read_line(&mut line)?;
    let answer = match serde_json::from_str::<Request>(&line) {
        Ok(req) => answer(req, view, requests),
        Err(e) => Err(format!("bad request: {e}")),
    };
    let v = match answer {
        Ok(data) => json!({"ok": true, "data": data}),
        Err(e) => json!({"ok": false, "error": e}),
    };
    let mut w = &conn;
    writeln!(w, "{v}")
}

fn answer(req: Request, view: &Mutex<View>, requests: &Sender<CtlRequest>) -> Result<Value, String> {
    let v = view.lock().map_err(|_| "view unavailable".to_string())?.clone();
    let to = |x: &dyn erased::Ser| x.to_value();
    match (req.cmd.as_str(), req.args.as_slice()) {
        ("status", []) => Ok(to(&v.status)),
        ("services", []) => Ok(to(&v.services)),
        ("backends", []) => Ok(to(&v.backends)),
        ("stats", []) => Ok(to(&v.stats)),
        ("flows", []) => Ok(json!({
            "flows": v.stats.flows,
            "capacity": v.stats.flow_capacity,
            "services": v.services.iter().map(|s| json!({"service": s.name, "active_flows": s.active_flows, "new_flows": s.new_flows})).collect::<Vec<_>>(),
            "backends": v.backends.iter().map(|b| json!({"service": b.service, "backend": b.ip, "active_flows": b.active_flows, "new_flows": b.new_flows})).collect::<Vec<_>>(),
        })),
        ("reload", []) => call(requests, CtlCommand::Reload),
        ("drain" | "undrain", [vip, backend]) => {
            let backend = backend.parse().map_err(|_| format!("{backend:?} is not an IPv4 address"))?;
            call(requests, CtlCommand::Drain { vip: vip.clone(), backend, drain: req.cmd == "drain" })
        }
        (cmd, args) => Err(format!("unknown command or arguments: {cmd} {}", args.join(" "))),
    }
}

mod erased {
    pub trait Ser {
        fn to_value(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Ser for T {
        fn to_value(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
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
pub fn request(socket: &Path, cmd: &str, args: &[String]) -> Result<Value, String> {
    let mut s = UnixStream::connect(socket)
        .map_err(|e| format!("cannot reach dsrlb at {}: {e}", socket.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(15))).ok();
    let req = serde_json::to_string(&Request { cmd: cmd.into(), args: args.to_vec() }).unwrap();
    writeln!(s, "{req}").map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line).map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_str(&line).map_err(|e| format!("bad answer: {e}"))?;
    if v["ok"] == Value::Bool(true) {
        Ok(v["data"].clone())
    } else {
        Err(v["error"].as_str().unwrap_or("error").to_string())
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

/// Render an answer for people.
pub fn render(cmd: &str, data: &Value) -> String {
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.2}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    };
    let rows = |cols: &[&str]| -> Vec<Vec<String>> {
        data.as_array()
            .map(|a| a.iter().map(|r| cols.iter().map(|c| s(&r[*c])).collect()).collect())
            .unwrap_or_default()
    };
    match cmd {
        "services" => {
            let cols = [
                "name",
                "mode",
                "scheduler",
                "backends_up",
                "backends",
                "packets",
                "bytes",
                "new_flows",
                "active_flows",
            ];
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
                &rows(&cols),
            )
        }
        "backends" => {
            let cols = [
                "service",
                "ip",
                "weight",
                "state",
                "health",
                "mac",
                "last_probe_ms",
                "packets",
                "new_flows",
                "active_flows",
                "last_error",
            ];
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
                &rows(&cols),
            )
        }
        "flows" => {
            let mut out =
                format!("flow table: {} of {} entries\n\n", s(&data["flows"]), s(&data["capacity"]));
            let b = data["backends"].as_array().cloned().unwrap_or_default();
            let r: Vec<Vec<String>> = b
                .iter()
                .map(|x| vec![s(&x["service"]), s(&x["backend"]), s(&x["active_flows"]), s(&x["new_flows"])])
                .collect();
            out.push_str(&table(&["SERVICE", "BACKEND", "ACTIVE", "NEW FLOWS"], &r));
            out
        }
        "stats" => {
            let mut r = Vec::new();
            if let Some(o) = data.as_object() {
                for (k, v) in o {
                    if k == "drops" {
                        for (dk, dv) in v.as_object().into_iter().flatten() {
                            r.push(vec![format!("drop {dk}"), s(dv)]);
                        }
                    } else {
                        r.push(vec![k.clone(), s(v)]);
                    }
                }
            }
            table(&["COUNTER", "VALUE"], &r)
        }
        "status" => {
            let mut out = format!(
                "dsrlb {} up {}s, {} worker(s), epoch {} (workers at {}), reloads {}{}\nconfig {}\n\n",
                s(&data["version"]),
                s(&data["uptime_s"]),
                s(&data["workers"]),
                s(&data["epoch"]),
                s(&data["worker_epochs"]),
                s(&data["reloads"]),
                data["last_reload_error"]
                    .as_str()
                    .map(|e| format!(" (last refused: {e})"))
                    .unwrap_or_default(),
                s(&data["config"])
            );
            let p = data["ports"].as_array().cloned().unwrap_or_default();
            let cols = [
                "index",
                "device",
                "role",
                "mac",
                "link_up",
                "rx_packets",
                "tx_packets",
                "rx_missed",
                "rx_errors",
                "tx_errors",
            ];
            let r: Vec<Vec<String>> = p.iter().map(|x| cols.iter().map(|c| s(&x[*c])).collect()).collect();
            out.push_str(&table(
                &["PORT", "DEVICE", "ROLE", "MAC", "LINK", "RX", "TX", "MISSED", "RX ERR", "TX ERR"],
                &r,
            ));
            let n = data["neighbors"].as_array().cloned().unwrap_or_default();
            let r: Vec<Vec<String>> =
                n.iter().map(|x| vec![s(&x["port"]), s(&x["ip"]), s(&x["mac"])]).collect();
            out.push('\n');
            out.push_str(&table(&["PORT", "NEIGHBOUR", "MAC"], &r));
            out
        }
        _ => format!("{}\n", s(data)),
    }
}
