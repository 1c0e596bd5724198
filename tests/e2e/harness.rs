//! Testbed fixture: namespaces up, servers set up for every mode, dsrlb running inside the
//! fabric namespace; helpers to send real traffic and to ask dsrlb through `dsrlb ctl`.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const TB: &str = "dtb";
pub const SOCKET: &str = "/run/dsrlb-tb.sock";
/// Signals that end a process by a fault of its own: SIGILL, SIGABRT, SIGBUS, SIGFPE, SIGSEGV.
const CRASH_SIGNALS: [i32; 5] = [4, 6, 7, 8, 11];

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn sh(args: &[&str]) -> Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

pub fn ok(args: &[&str]) -> String {
    let o = sh(args);
    assert!(
        o.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Run a command inside testbed namespace `ns` (e.g. "c1", "s2", "fab").
pub fn in_ns(ns: &str, args: &[&str]) -> Output {
    let name = format!("{TB}-{ns}");
    let mut v = vec!["ip", "netns", "exec", name.as_str()];
    v.extend_from_slice(args);
    sh(&v)
}

pub fn in_ns_ok(ns: &str, args: &[&str]) -> String {
    let o = in_ns(ns, args);
    assert!(
        o.status.success(),
        "[{ns}] {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub struct Testbed {
    pub topology: &'static str,
    /// The running dsrlb (cases may stop and start it again).
    dsrlb: std::cell::RefCell<Option<Child>>,
    pub config: PathBuf,
}

/// One HTTP answer from a testbed server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub server: String,
    pub client: String,
}

impl Testbed {
    /// Bring up `topology` with its servers set up for every mode and dsrlb running `config_text`.
    pub fn up(topology: &'static str, config_text: &str) -> Testbed {
        let script = repo().join("scripts/testbed.sh");
        let _ = sh(&[script.to_str().unwrap(), "down"]);
        ok(&[script.to_str().unwrap(), "up", topology, "3"]);
        // Each server set up with the server tool, for the modes of the example configurations.
        ok(&[script.to_str().unwrap(), "servers"]);
        let config = std::env::temp_dir().join(format!("dsrlb-e2e-{topology}.ron"));
        std::fs::write(&config, config_text).unwrap();
        let tb = Testbed { topology, dsrlb: std::cell::RefCell::new(None), config };
        tb.start(&[]);
        tb.wait_backends_settled(Duration::from_secs(30));
        tb
    }

    /// Start dsrlb on the testbed's configuration (with these environment variables), wait
    /// until it answers, and attach its taps to the bridges.
    pub fn start(&self, env: &[(&str, &str)]) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &format!("{TB}-fab"), env!("CARGO_BIN_EXE_dsrlb"), "run", "-c"])
            .arg(&self.config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        *self.dsrlb.borrow_mut() = Some(cmd.spawn().expect("start dsrlb"));
        // Attach the taps to the bridges once dsrlb runs (its ports started: the tap PMD sets
        // the kernel side's MAC on start, which must then be changed for the bridge).
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.ctl(&["status"]).is_err() {
            assert!(
                Instant::now() < deadline,
                "dsrlb did not start; log: {}",
                std::fs::read_to_string(self.log_path()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let script = repo().join("scripts/testbed.sh");
        ok(&[script.to_str().unwrap(), "attach"]);
    }

    /// Send `signal` to dsrlb and wait (up to `limit`) for it to end; its exit status (or
    /// `None`: it did not end, and was killed). Every case that stops dsrlb checks, through
    /// this, that the stop did not end in a crash (a fault in its teardown).
    pub fn stop(&self, signal: &str, limit: Duration) -> Option<std::process::ExitStatus> {
        let st = self.stop_unchecked(signal, limit);
        if let Some(sig) = st.and_then(|s| s.signal()).filter(|s| CRASH_SIGNALS.contains(s)) {
            panic!(
                "dsrlb crashed (signal {sig}) when stopped with {signal}; log: {}",
                std::fs::read_to_string(self.log_path()).unwrap_or_default()
            );
        }
        st
    }

    fn stop_unchecked(&self, signal: &str, limit: Duration) -> Option<std::process::ExitStatus> {
        let mut c = self.dsrlb.borrow_mut().take()?;
        let _ = sh(&["kill", signal, &c.id().to_string()]);
        let st = self.wait_exit(&mut c, limit);
        if st.is_none() {
            let _ = c.kill();
            let _ = c.wait();
        }
        st
    }

    /// Wait for a dsrlb that is to end by itself (a fault); its exit status, or `None` if it
    /// is still running after `limit`.
    pub fn wait_for_exit(&self, limit: Duration) -> Option<std::process::ExitStatus> {
        let mut c = self.dsrlb.borrow_mut().take()?;
        let st = self.wait_exit(&mut c, limit);
        if st.is_none() {
            *self.dsrlb.borrow_mut() = Some(c);
        }
        st
    }

    fn wait_exit(&self, c: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Sum of every backend's `transitions` (health changes since start).
    pub fn transitions(&self) -> u64 {
        self.backends().iter().map(|b| b["transitions"].as_u64().unwrap_or(0)).sum()
    }

    /// The configuration dsrlb runs.
    pub fn config_text(&self) -> String {
        std::fs::read_to_string(&self.config).unwrap()
    }

    pub fn log_path(&self) -> PathBuf {
        std::env::temp_dir().join(format!("dsrlb-e2e-{}.log", self.topology))
    }

    pub fn ctl(&self, args: &[&str]) -> Result<Value, String> {
        let mut v = vec![env!("CARGO_BIN_EXE_dsrlb"), "ctl", "--socket", SOCKET, "--json"];
        v.extend_from_slice(args);
        let o = in_ns("fab", &v);
        if !o.status.success() {
            return Err(String::from_utf8_lossy(&o.stderr).trim().to_string());
        }
        serde_json::from_slice(&o.stdout).map_err(|e| e.to_string())
    }

    pub fn backends(&self) -> Vec<Value> {
        self.ctl(&["backends"]).expect("ctl backends").as_array().cloned().unwrap_or_default()
    }

    pub fn backend(&self, service: &str, ip: &str) -> Value {
        self.backends()
            .into_iter()
            .find(|b| b["service"] == service && b["ip"] == ip)
            .unwrap_or_else(|| panic!("no backend {service} {ip}"))
    }

    /// The MAC dsrlb holds for neighbour `ip` (as JSON text; empty if it has none).
    pub fn neighbour_mac(&self, ip: &str) -> String {
        let s = self.ctl(&["status"]).unwrap();
        s["neighbors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["ip"] == ip)
            .map(|n| n["mac"].to_string())
            .unwrap_or_default()
    }

    pub fn stats(&self) -> Value {
        self.ctl(&["stats"]).expect("ctl stats")
    }

    /// Wait until every checked backend passes (the testbed's servers are all healthy at start).
    pub fn wait_backends_settled(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(v) = self.ctl(&["backends"]) {
                let all = v.as_array().cloned().unwrap_or_default();
                if !all.is_empty() && all.iter().all(|b| b["state"] == "up") {
                    return;
                }
                if Instant::now() > deadline {
                    panic!(
                        "backends not all up after {limit:?}: {}",
                        serde_json::to_string_pretty(&v).unwrap()
                    );
                }
            } else if Instant::now() > deadline {
                panic!(
                    "dsrlb not answering; log: {}",
                    std::fs::read_to_string(self.log_path()).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Wait until `f` holds, or panic with `what`.
    pub fn wait_for(&self, what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
        let t = Instant::now();
        while !f() {
            assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
        t.elapsed()
    }

    /// Send SIGHUP to dsrlb (reload).
    pub fn sighup(&self) {
        if let Some(c) = &*self.dsrlb.borrow() {
            // dsrlb runs under `ip netns exec`, which execs it: the child pid is dsrlb's.
            ok(&["kill", "-HUP", &c.id().to_string()]);
        }
    }

    pub fn down(&mut self) {
        // Also on the way out of a failed case (unwinding): no second panic here.
        self.stop_unchecked("-TERM", Duration::from_secs(10));
        let script = repo().join("scripts/testbed.sh");
        let _ = sh(&[script.to_str().unwrap(), "down"]);
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        self.down();
    }
}

/// One HTTP GET from the client namespace, from source address `src`.
pub fn get(vip: &str, path: &str, src: &str) -> Result<Answer, String> {
    let url = format!("http://{vip}{path}");
    let o = in_ns("c1", &["curl", "-s", "-m", "3", "--interface", src, &url]);
    let body = String::from_utf8_lossy(&o.stdout).to_string();
    if !o.status.success() {
        return Err(format!("curl {url} from {src}: exit {:?}", o.status.code()));
    }
    parse_answer(&body).ok_or_else(|| format!("unexpected answer {body:?}"))
}

pub fn parse_answer(body: &str) -> Option<Answer> {
    let mut server = None;
    let mut client = None;
    for w in body.split_whitespace() {
        if let Some(s) = w.strip_prefix("server=") {
            server = Some(s.to_string());
        }
        if let Some(c) = w.strip_prefix("client=") {
            client = Some(c.split(':').next().unwrap_or(c).to_string());
        }
    }
    Some(Answer { server: server?, client: client? })
}

/// Kill the processes of namespace `ns` whose command line contains `pattern` (namespaces do
/// not isolate PIDs, so a plain pkill would hit every namespace's processes).
pub fn kill_in_ns(ns: &str, pattern: &str) {
    let pids = ok(&["ip", "netns", "pids", &format!("{TB}-{ns}")]);
    for pid in pids.split_whitespace() {
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(pattern) {
            let _ = sh(&["kill", pid]);
        }
    }
}

/// An address as a URL's host: IPv6 in brackets.
pub fn url_host(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}

/// One HTTP GET of `/` from `src` to `vip`, of either family: the server that answered and the
/// client address it saw (`client=ADDR:PORT`: the address is all before the last colon).
pub fn get_any(vip: &str, src: &str) -> Result<(String, String), String> {
    let url = format!("http://{}/", url_host(vip));
    let o = in_ns("c1", &["curl", "-s", "-g", "-m", "3", "--interface", src, &url]);
    let body = String::from_utf8_lossy(&o.stdout).to_string();
    if !o.status.success() {
        return Err(format!("curl {url} from {src}: exit {:?}", o.status.code()));
    }
    let word = |k: &str| body.split_whitespace().find_map(|w| w.strip_prefix(k)).map(str::to_string);
    let server = word("server=").ok_or_else(|| format!("unexpected answer {body:?}"))?;
    let client = word("client=").and_then(|c| c.rsplit_once(':').map(|(a, _)| a.to_string()));
    Ok((server, client.ok_or_else(|| format!("unexpected answer {body:?}"))?))
}

/// Download `bytes` from `vip` (the servers' /bytes/N, either family) in the client namespace;
/// returns curl's "SIZE HTTP_CODE".
pub fn download(vip: &str, bytes: u64) -> String {
    let url = format!("http://{}/bytes/{bytes}", url_host(vip));
    in_ns_ok(
        "c1",
        &["curl", "-s", "-g", "-m", "60", "-o", "/dev/null", "-w", "%{size_download} %{http_code}", &url],
    )
}

/// A UDP datagram to `vip:5353` from `src`, and the echo (prefixed with the server's name).
pub fn udp_echo(vip: &str, src: &str, msg: &str) -> Result<String, String> {
    udp_echo_from(vip, src, 0, msg)
}

/// The same from a fixed source port (0: any), so that repeated datagrams are one flow.
pub fn udp_echo_from(vip: &str, src: &str, sport: u16, msg: &str) -> Result<String, String> {
    // A small client that returns as soon as the echo arrives (socat waits out its timeout).
    let family = if vip.contains(':') { "AF_INET6" } else { "AF_INET" };
    let py = format!(
        "import socket; s=socket.socket(socket.{family}, socket.SOCK_DGRAM); \
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('{src}', {sport})); s.settimeout(2); \
         s.sendto(b'{msg}', ('{vip}', 5353)); print(s.recv(2048).decode())"
    );
    let o = in_ns("c1", &["python3", "-c", &py]);
    let out = String::from_utf8_lossy(&o.stdout).trim().to_string();
    if out.is_empty() {
        return Err(format!("no UDP echo from {vip} (src {src})"));
    }
    Ok(out)
}

/// Five datagrams from each client to every `(vip, mode)` UDP service: each echoed, and each
/// client kept on one server (source-IP persistence). Prints the server each client got.
pub fn udp_persistence(services: &[(&str, &str)], clients: &[&str], family: &str) {
    for &(vip, mode) in services {
        let mut by_client = std::collections::HashMap::new();
        for &c in clients {
            let mut servers = std::collections::HashSet::new();
            for k in 0..5 {
                let echo = udp_echo(vip, c, &format!("ping{k}")).unwrap_or_else(|e| panic!("{mode}: {e}"));
                assert!(echo.ends_with(&format!("ping{k}")), "{mode}: echo from {vip} to {c}: {echo:?}");
                servers.insert(echo.split_whitespace().next().unwrap().to_string());
            }
            assert_eq!(
                servers.len(),
                1,
                "{mode}: source-IP persistence keeps {c} on one server: {servers:?}"
            );
            by_client.insert(c, servers.into_iter().next().unwrap());
        }
        let n = clients.len() * 5;
        println!("  {mode:<6} UDP echo{family}, {n} datagrams, persistence by client: {by_client:?}");
    }
}

pub const CLIENTS: [&str; 3] = ["198.51.100.10", "198.51.100.11", "198.51.100.12"];

/// The LB's MAC on the one-arm fabric (the example configuration's).
pub const LB_MAC: &str = "02:00:00:00:00:02";

/// Run scripts/flood.py in namespace `ns` (bounded by its --seconds/--count); the rate it
/// reached ("sent N frames in T s (R/s)").
pub fn flood(ns: &str, args: &[&str]) -> std::process::Child {
    let script = repo().join("scripts/flood.py");
    // On CPU 0, beside the control core: CPU 1 runs the worker, which must keep up with what
    // the kernel queues for it (the tap's queue drops what it cannot take in time).
    let mut v: Vec<String> = vec![
        "netns".into(),
        "exec".into(),
        format!("{TB}-{ns}"),
        "taskset".into(),
        "-c".into(),
        "0".into(),
        "python3".into(),
    ];
    v.push(script.display().to_string());
    v.extend(args.iter().map(|a| a.to_string()));
    Command::new("ip").args(&v).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("flood")
}

/// The line a flood printed when it ended.
pub fn flood_result(c: std::process::Child) -> String {
    let out = c.wait_with_output().expect("flood ended");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
