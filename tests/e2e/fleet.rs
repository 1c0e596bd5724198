//! A fleet: three dsrlb instances behind a router doing ECMP, each announcing its VIPs with
//! BIRD 2 over its exception interface (BGP, BFD 100 ms × 3), servers set up for every mode,
//! real clients (curl downloads, UDP flows). The scenarios of docs/fleet.md: spread, an
//! instance killed, drained, rejoining, cut off from its backends, and a backend added while an
//! instance fails. Each case prints its figures.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use dataplane::maglev::{MaglevBackend, MaglevTable};
use dataplane::snapshot::maglev_seed;
use serde_json::Value;

use crate::harness::*;
use crate::Case;

const INSTANCES: usize = 3;
/// Where `scripts/testbed.sh up fleet` keeps each instance's configuration.
const STATE: &str = "/run/dsrlb-testbed-dtb";
/// The VIPs of docs/fleet/instance.ron and their modes.
const VIPS: [(&str, &str); 3] = [("10.20.0.100", "l2"), ("10.20.0.101", "ipip"), ("10.20.0.102", "dscp")];
/// docs/fleet/instance.ron's drain time.
const DRAIN_TIME: Duration = Duration::from_secs(5);

pub const CASES: &[Case<Fleet>] = &[
    ("new_connections_spread_over_the_instances", spread),
    ("an_instance_killed_mid_transfer_breaks_no_connection", killed),
    ("drain_instance_moves_traffic_away_then_stops", drained),
    ("a_rejoining_instance_keeps_each_flow_on_its_backend", rejoin),
    ("an_instance_cut_off_from_its_backends_withdraws", path_cut),
    ("a_flood_at_an_instance_spares_its_routing_sessions", flood_spares_sessions),
    ("a_backend_added_while_an_instance_fails", backend_added_while_failing),
];

/// The fleet testbed and its running instances (1-based: lb1, lb2, lb3).
pub struct Fleet {
    running: RefCell<Vec<Option<Child>>>,
}

fn addr(i: usize) -> String {
    format!("10.0.0.{}", i + 1)
}

fn config(i: usize) -> PathBuf {
    PathBuf::from(format!("{STATE}/lb{i}.ron"))
}

fn log_path(i: usize) -> PathBuf {
    std::env::temp_dir().join(format!("dsrlb-e2e-fleet-lb{i}.log"))
}

impl Fleet {
    /// The fleet testbed with every instance running and announcing every VIP.
    pub fn up() -> Fleet {
        let script = repo().join("scripts/testbed.sh");
        let _ = sh(&[script.to_str().unwrap(), "down"]);
        ok(&[script.to_str().unwrap(), "up", "fleet", &INSTANCES.to_string()]);
        ok(&[script.to_str().unwrap(), "servers"]);
        watch_vip_frames();
        let fl = Fleet { running: RefCell::new((0..=INSTANCES).map(|_| None).collect()) };
        for i in 1..=INSTANCES {
            let _ = std::fs::remove_file(log_path(i));
            fl.start(i);
        }
        fl.wait_routes("every instance announced", Duration::from_secs(60), |r| r.all_via(&all()));
        for i in all() {
            fl.wait_bfd_up(i);
        }
        fl
    }

    /// Start instance `i` and wait until it answers ctl.
    pub fn start(&self, i: usize) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log_path(i)).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &format!("{TB}-lb{i}"), env!("CARGO_BIN_EXE_dsrlb"), "run", "-c"])
            .arg(config(i))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start dsrlb");
        self.running.borrow_mut()[i] = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.ctl(i, &["status"]).is_err() {
            assert!(
                Instant::now() < deadline,
                "lb{i} did not start; log: {}",
                std::fs::read_to_string(log_path(i)).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Send `signal` to instance `i`.
    pub fn signal(&self, i: usize, signal: &str) {
        if let Some(c) = &self.running.borrow()[i] {
            // `ip netns exec` execs dsrlb: the child's pid is dsrlb's.
            let _ = sh(&["kill", signal, &c.id().to_string()]);
        }
    }

    /// Wait up to `limit` for instance `i` to end; its exit status.
    pub fn wait_exit(&self, i: usize, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        let mut running = self.running.borrow_mut();
        let c = running[i].as_mut()?;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                running[i] = None;
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// `kill -9` instance `i` and reap it.
    pub fn kill(&self, i: usize) {
        self.signal(i, "-KILL");
        assert!(self.wait_exit(i, Duration::from_secs(10)).is_some(), "lb{i} ended");
    }

    pub fn ctl(&self, i: usize, args: &[&str]) -> Result<Value, String> {
        let socket = format!("/run/dsrlb-lb{i}.sock");
        let mut v = vec![env!("CARGO_BIN_EXE_dsrlb"), "ctl", "--socket", &socket, "--json"];
        v.extend_from_slice(args);
        let o = in_ns(&format!("lb{i}"), &v);
        if !o.status.success() {
            return Err(String::from_utf8_lossy(&o.stderr).trim().to_string());
        }
        serde_json::from_slice(&o.stdout).map_err(|e| e.to_string())
    }

    fn services(&self, i: usize) -> Vec<Value> {
        self.ctl(i, &["services"]).ok().and_then(|v| v.as_array().cloned()).unwrap_or_default()
    }

    /// Sum of `field` over instance `i`'s TCP services (0 if it does not answer).
    fn tcp_sum(&self, i: usize, field: &str) -> u64 {
        self.services(i)
            .iter()
            .filter(|s| s["protocol"] == "tcp")
            .map(|s| s[field].as_u64().unwrap_or(0))
            .sum()
    }

    fn stat(&self, i: usize, key: &str) -> u64 {
        self.ctl(i, &["stats"]).ok().and_then(|s| s[key].as_u64()).unwrap_or(0)
    }

    /// What the router's kernel does with each VIP now.
    pub fn routes(&self) -> Routes {
        let mut by_vip = BTreeMap::new();
        for (vip, _) in VIPS {
            let o = in_ns("rt", &["ip", "-j", "route", "show", vip]);
            let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
            let mut via = BTreeSet::new();
            for r in v.as_array().cloned().unwrap_or_default() {
                if let Some(g) = r["gateway"].as_str() {
                    via.insert(g.to_string());
                }
                for nh in r["nexthops"].as_array().cloned().unwrap_or_default() {
                    if let Some(g) = nh["gateway"].as_str() {
                        via.insert(g.to_string());
                    }
                }
            }
            by_vip.insert(vip.to_string(), via);
        }
        Routes(by_vip)
    }

    /// Poll the router's routes every 10 ms until `f` holds; how long that took.
    pub fn wait_routes(&self, what: &str, limit: Duration, f: impl Fn(&Routes) -> bool) -> Duration {
        let t = Instant::now();
        loop {
            let r = self.routes();
            if f(&r) {
                return t.elapsed();
            }
            assert!(t.elapsed() < limit, "{what}: not within {limit:?}; router: {:?}", r.0);
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Wait until `n` new TCP flows more than `before` were counted over the running instances.
    fn wait_new_flows(&self, before: u64, n: u64) {
        let limit = Duration::from_secs(20);
        let t = Instant::now();
        while self.new_flows() < before + n {
            assert!(t.elapsed() < limit, "{n} connections did not start within {limit:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn new_flows(&self) -> u64 {
        (1..=INSTANCES).map(|i| self.tcp_sum(i, "new_flows")).sum()
    }

    /// Start instance `i` again and wait until the router uses every instance.
    fn restore(&self, i: usize) {
        self.start(i);
        self.wait_routes("the instance announced again", Duration::from_secs(30), |r| r.all_via(&all()));
        self.wait_bfd_up(i);
    }

    /// Wait until the router's BFD session to instance `i` is Up: an instance is back in the
    /// fleet only when the router would notice it fail again within BFD's 300 ms, not BGP's
    /// hold time. What both BIRDs say goes into the failure.
    fn wait_bfd_up(&self, i: usize) {
        let limit = Duration::from_secs(15);
        let t = Instant::now();
        while session_state(&bfd_session(i)).0 != "Up" {
            if t.elapsed() > limit {
                let ctl = format!("{STATE}/bird-lb{i}.ctl");
                let birdc = |ns: &str, ctl: &str, what: &[&str]| {
                    let mut v = vec!["birdc", "-s", ctl, "show"];
                    v.extend_from_slice(what);
                    String::from_utf8_lossy(&in_ns(ns, &v).stdout).into_owned()
                };
                panic!(
                    "the router's BFD session to lb{i} is not Up within {limit:?}: router {}\nlb{i}: {}\n{}\nlb{i} log: {}\n{}",
                    birdc("rt", &format!("{STATE}/bird-rt.ctl"), &["bfd", "sessions"]),
                    birdc(&format!("lb{i}"), &ctl, &["bfd", "sessions"]),
                    birdc(&format!("lb{i}"), &ctl, &["protocols", "all", "uplink"]),
                    std::fs::read_to_string(log_path(i)).unwrap_or_default(),
                    bird_logs(i)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for i in 1..=INSTANCES {
            // SIGINT stops at once (SIGTERM would drain first).
            self.signal(i, "-INT");
            if self.wait_exit(i, Duration::from_secs(10)).is_none() {
                self.signal(i, "-KILL");
            }
        }
        // The BIRD logs go with the testbed's state: keep them beside the instances' logs.
        for name in std::iter::once("rt".to_string()).chain((1..=INSTANCES).map(|i| format!("lb{i}"))) {
            let kept = std::env::temp_dir().join(format!("dsrlb-e2e-fleet-bird-{name}.log"));
            let _ = std::fs::copy(format!("{STATE}/bird-{name}.log"), kept);
        }
        let _ = sh(&[repo().join("scripts/testbed.sh").to_str().unwrap(), "down"]);
    }
}

/// Count, on the fabric, the frames for a VIP that go to each instance: what the router sends
/// it, seen from outside dsrlb.
fn watch_vip_frames() {
    let mut t = String::from("table bridge dsrlb-watch {\n");
    for i in all() {
        t.push_str(&format!("  counter lb{i} {{ }}\n"));
    }
    t.push_str("  chain forward {\n    type filter hook forward priority 0;\n");
    for i in all() {
        t.push_str(&format!("    oifname \"v-lb{i}\" ip daddr 10.20.0.0/24 counter name \"lb{i}\"\n"));
    }
    t.push_str("  }\n}\n");
    let file = std::env::temp_dir().join("dsrlb-e2e-fleet-watch.nft");
    std::fs::write(&file, t).unwrap();
    in_ns_ok("fab", &["nft", "-f", file.to_str().unwrap()]);
}

/// Frames for a VIP the fabric has carried to instance `i` so far.
fn vip_frames_to(i: usize) -> u64 {
    let o = in_ns_ok("fab", &["nft", "-j", "list", "counter", "bridge", "dsrlb-watch", &format!("lb{i}")]);
    let v: Value = serde_json::from_str(&o).unwrap_or(Value::Null);
    v["nftables"]
        .as_array()
        .and_then(|a| a.iter().find_map(|e| e["counter"]["packets"].as_u64()))
        .unwrap_or(0)
}

/// The router's next hops per VIP.
pub struct Routes(BTreeMap<String, BTreeSet<String>>);

impl Routes {
    /// Every VIP goes to exactly these instances.
    fn all_via(&self, instances: &[usize]) -> bool {
        let want: BTreeSet<String> = instances.iter().map(|&i| addr(i)).collect();
        self.0.values().all(|v| *v == want)
    }

    /// No VIP goes to instance `i` (and every VIP still goes somewhere).
    fn none_via(&self, i: usize) -> bool {
        self.0.values().all(|v| !v.is_empty() && !v.contains(&addr(i)))
    }
}

fn all() -> Vec<usize> {
    (1..=INSTANCES).collect()
}

/// Long downloads through every VIP, from the client namespace.
struct Transfers {
    all: Vec<(&'static str, Child)>,
    size: u64,
}

/// `per_mode` downloads of `size` bytes at `rate` (curl's --limit-rate) through each VIP.
fn transfers(per_mode: usize, size: u64, rate: &str) -> Transfers {
    let mut all = Vec::new();
    for (vip, mode) in VIPS {
        for k in 0..per_mode {
            let c = Command::new("ip")
                .args(["netns", "exec", &format!("{TB}-c1"), "curl", "-s", "-m", "90", "--limit-rate", rate])
                .args(["-o", "/dev/null", "-w", "%{size_download}", "--interface", CLIENTS[k % 3]])
                .arg(format!("http://{vip}/bytes/{size}"))
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("curl");
            all.push((mode, c));
        }
    }
    Transfers { all, size }
}

impl Transfers {
    fn len(&self) -> usize {
        self.all.len()
    }

    /// Wait for every download; complete and total per mode.
    fn finish(self) -> BTreeMap<&'static str, (u32, u32)> {
        let mut by_mode: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
        for (mode, c) in self.all {
            let out = c.wait_with_output().expect("curl ended");
            let e = by_mode.entry(mode).or_default();
            e.1 += 1;
            if String::from_utf8_lossy(&out.stdout) == self.size.to_string() {
                e.0 += 1;
            }
        }
        by_mode
    }
}

fn summary(r: &BTreeMap<&str, (u32, u32)>) -> String {
    r.iter().map(|(m, (done, n))| format!("{m} {done}/{n}")).collect::<Vec<_>>().join(", ")
}

fn broken(r: &BTreeMap<&str, (u32, u32)>) -> u32 {
    r.values().map(|(done, n)| n - done).sum()
}

/// Which server answers each of 9 UDP flows per VIP (3 clients × 3 source ports).
fn udp_flows() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for (vip, _) in VIPS {
        for src in CLIENTS {
            for sport in [40001u16, 40002, 40003] {
                let key = format!("{src}:{sport}->{vip}");
                let answer = udp_echo_from(vip, src, sport, "fleet").unwrap_or_else(|e| panic!("{key}: {e}"));
                m.insert(key, answer.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    }
    m
}

/// Scenario 1: New connections land on every instance, each counts its own share, and every instance
/// runs the same configuration (one digest).
fn spread(fl: &Fleet) {
    let digests: BTreeSet<String> = all()
        .iter()
        .map(|&i| fl.ctl(i, &["status"]).expect("status")["config_digest"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(digests.len(), 1, "one configuration digest across the fleet: {digests:?}");
    let before: Vec<u64> = all().iter().map(|&i| fl.tcp_sum(i, "new_flows")).collect();
    let n = 90;
    for k in 0..n {
        let (vip, _) = VIPS[k % 3];
        get(vip, "/", CLIENTS[(k / 3) % 3]).unwrap_or_else(|e| panic!("request {k}: {e}"));
    }
    // The counters reach ctl with the view, every 0.5 s.
    let count =
        || -> Vec<u64> { all().iter().zip(&before).map(|(&i, b)| fl.tcp_sum(i, "new_flows") - b).collect() };
    let t = Instant::now();
    while count().iter().sum::<u64>() < n as u64 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(600));
    let shares = count();
    let line: Vec<String> = shares
        .iter()
        .enumerate()
        .map(|(k, s)| format!("lb{} {s} ({:.0}%)", k + 1, 100.0 * *s as f64 / n as f64))
        .collect();
    println!(
        "  {n} connections over 3 VIPs: {}; config digest {digests:?} on every instance",
        line.join(", ")
    );
    assert_eq!(shares.iter().sum::<u64>(), n as u64, "each connection counted by exactly one instance");
    for (k, s) in shares.iter().enumerate() {
        assert!(*s >= n as u64 / 10, "lb{} took its share ({s} of {n})", k + 1);
    }
}

/// Scenario 2: `kill -9` of an instance while 20 downloads per mode run: the router stops using it
/// (BFD), the survivors take its flows to the same backends, every download completes; UDP
/// flows keep their server.
fn killed(fl: &Fleet) {
    let victim = 2;
    let udp_before = udp_flows();
    let base = fl.new_flows();
    let victim_base = fl.tcp_sum(victim, "new_flows");
    let t = transfers(20, 1_500_000, "150K");
    fl.wait_new_flows(base, t.len() as u64);
    let on_victim = fl.tcp_sum(victim, "new_flows") - victim_base;
    let t0 = Instant::now();
    fl.kill(victim);
    let at_kill = vip_frames_to(victim);
    fl.wait_routes("the router stops using the killed instance", Duration::from_secs(10), |r| {
        r.none_via(victim)
    });
    let gone = t0.elapsed();
    let lost = vip_frames_to(victim) - at_kill;
    let udp_after = udp_flows();
    let r = t.finish();
    let moved = udp_before.iter().filter(|(k, v)| udp_after.get(*k) != Some(v)).count();
    println!(
        "  lb{victim} killed with {on_victim} connections on it: the router stopped using it after {:.0} ms (BFD), having sent it {lost} more frames; downloads complete: {}; UDP flows on another server after: {moved}/{}",
        gone.as_secs_f64() * 1000.0,
        summary(&r),
        udp_before.len()
    );
    fl.restore(victim);
    assert_eq!(broken(&r), 0, "no connection broken");
    assert_eq!(moved, 0, "every UDP flow kept its server");
    assert!(gone <= Duration::from_millis(1000), "the router stopped using it within 1 s (goal 0.5 s)");
}

/// Scenario 3: `dsrlb ctl drain-instance`: the VIPs are withdrawn at once, the instance forwards while
/// the router moves its flows away, its traffic falls to zero, and it stops by itself.
fn drained(fl: &Fleet) {
    let victim = 1;
    let base = fl.new_flows();
    let victim_base = fl.tcp_sum(victim, "new_flows");
    let t = transfers(20, 1_500_000, "150K");
    fl.wait_new_flows(base, t.len() as u64);
    let on_victim = fl.tcp_sum(victim, "new_flows") - victim_base;
    let t0 = Instant::now();
    let said = fl.ctl(victim, &["drain-instance"]).expect("drain-instance");
    let withdrawn = fl
        .wait_routes("the drained instance's VIPs withdrawn", Duration::from_secs(5), |r| r.none_via(victim));
    // The frames the router sends it, sampled until the process ends: when did they stop?
    let mut last = vip_frames_to(victim);
    let mut last_moved = t0.elapsed();
    let mut after_withdrawal = 0;
    let status = loop {
        if let Some(st) = fl.wait_exit(victim, Duration::from_millis(20)) {
            break Some(st);
        }
        if t0.elapsed() > DRAIN_TIME + Duration::from_secs(10) {
            break None;
        }
        let now = vip_frames_to(victim);
        if now > last {
            if t0.elapsed() > withdrawn {
                after_withdrawal += now - last;
            }
            last = now;
            last_moved = t0.elapsed();
        }
    };
    let stopped = t0.elapsed();
    let r = t.finish();
    println!(
        "  {said}\n  lb{victim} had {on_victim} connections: withdrawn after {:.0} ms; the router sent it {after_withdrawal} frames for a VIP after that, the last {:.3} s after the drain began; it stopped after {:.1} s ({status:?}); downloads complete: {}",
        withdrawn.as_secs_f64() * 1000.0,
        last_moved.as_secs_f64(),
        stopped.as_secs_f64(),
        summary(&r)
    );
    fl.restore(victim);
    assert!(status.is_some_and(|s| s.success()), "it stopped by itself, cleanly");
    assert!(stopped >= DRAIN_TIME, "it forwarded for its drain time first");
    assert!(last_moved + Duration::from_secs(1) < stopped, "its traffic fell to zero before it stopped");
    assert_eq!(broken(&r), 0, "no connection broken");
}

/// Scenario 4: An instance joins while downloads run: it announces once its checks have settled, the
/// flows the router moves back to it reach it without state and go where they already are.
fn rejoin(fl: &Fleet) {
    let victim = 3;
    // SIGTERM (a service manager's stop) drains it as drain-instance does.
    let t = Instant::now();
    fl.signal(victim, "-TERM");
    fl.wait_routes("the stopped instance withdrawn", Duration::from_secs(5), |r| r.none_via(victim));
    let withdrawn = t.elapsed();
    let status = fl.wait_exit(victim, DRAIN_TIME + Duration::from_secs(5));
    let stopped = t.elapsed();
    println!(
        "  SIGTERM: lb{victim} withdrawn after {:.0} ms, stopped after {:.1} s ({status:?})",
        withdrawn.as_secs_f64() * 1000.0,
        stopped.as_secs_f64()
    );
    assert!(status.is_some_and(|s| s.success()) && stopped >= DRAIN_TIME, "drained, then stopped cleanly");
    let udp_before = udp_flows();
    let base = fl.new_flows();
    let t = transfers(20, 1_500_000, "150K");
    fl.wait_new_flows(base, t.len() as u64);
    let t0 = Instant::now();
    fl.start(victim);
    fl.wait_routes("the instance rejoined", Duration::from_secs(30), |r| r.all_via(&all()));
    let joined = t0.elapsed();
    let udp_after = udp_flows();
    let r = t.finish();
    let midflow = fl.stat(victim, "midflow_without_state");
    let forwarded = fl.stat(victim, "forwarded");
    let moved = udp_before.iter().filter(|(k, v)| udp_after.get(*k) != Some(v)).count();
    fl.wait_bfd_up(victim);
    println!(
        "  lb{victim} started during the downloads: in the router's routes {:.1} s later; {midflow} packets of flows that moved back reached it without state ({forwarded} forwarded); downloads complete: {}; UDP flows on another server: {moved}/{}",
        joined.as_secs_f64(),
        summary(&r),
        udp_before.len()
    );
    assert_eq!(broken(&r), 0, "no connection broken");
    assert_eq!(moved, 0, "every UDP flow kept its server");
    assert!(midflow > 0, "some flows moved back to the rejoined instance (else nothing was shown)");
}

/// Scenario 5: One instance loses its path to every backend (a bridge rule): its checks fail, it
/// withdraws the VIPs, the others serve every client.
fn path_cut(fl: &Fleet) {
    let victim = 3;
    let base = fl.new_flows();
    let t = transfers(10, 1_500_000, "150K");
    fl.wait_new_flows(base, t.len() as u64);
    let rule = std::env::temp_dir().join("dsrlb-e2e-fleet-cut.nft");
    std::fs::write(
        &rule,
        format!(
            "table bridge dsrlb-cut {{\n  chain forward {{\n    type filter hook forward priority 0;\n    \
             iifname \"v-lb{victim}\" oifname {{ \"v-s1\", \"v-s2\", \"v-s3\" }} drop\n  }}\n}}\n"
        ),
    )
    .unwrap();
    in_ns_ok("fab", &["nft", "-f", rule.to_str().unwrap()]);
    let withdrawn =
        fl.wait_routes("the cut-off instance withdrew", Duration::from_secs(15), |r| r.none_via(victim));
    let mut served = 0;
    for k in 0..30 {
        if get(VIPS[k % 3].0, "/", CLIENTS[k % 3]).is_ok() {
            served += 1;
        }
    }
    // What its ctl says (the view is at most 0.5 s old).
    let t2 = Instant::now();
    let mut status = fl.ctl(victim, &["status"]).expect("status");
    while status["announced"] != serde_json::json!([]) && t2.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(100));
        status = fl.ctl(victim, &["status"]).expect("status");
    }
    let r = t.finish();
    let _ = in_ns("fab", &["nft", "delete", "table", "bridge", "dsrlb-cut"]);
    println!(
        "  lb{victim} cut off from the servers: withdrew every VIP after {:.1} s (its checks: fall 3 × 0.5 s); it announces {}; 30 new requests: {served} served; downloads complete: {}",
        withdrawn.as_secs_f64(),
        status["announced"],
        summary(&r)
    );
    fl.wait_routes("the instance announced again once healed", Duration::from_secs(30), |r| {
        r.all_via(&all())
    });
    assert_eq!(status["announced"], serde_json::json!([]), "it announces nothing while it cannot serve");
    assert_eq!(served, 30, "no blackholing: every new request served");
    assert_eq!(broken(&r), 0, "no connection broken");
}

/// The last lines of the router's and instance `i`'s BIRD logs (the testbed has them log their
/// protocols' states and events).
fn bird_logs(i: usize) -> String {
    let tail = |name: &str| {
        let text = std::fs::read_to_string(format!("{STATE}/bird-{name}.log")).unwrap_or_default();
        // Without the periodic scans of interfaces and tables, logged every second.
        let lines: Vec<&str> =
            text.lines().filter(|l| !l.contains("Scanning") && !l.contains("Pruning")).collect();
        format!("BIRD {name}, last lines:\n{}", lines[lines.len().saturating_sub(60)..].join("\n"))
    };
    format!("{}\n{}", tail("rt"), tail(&format!("lb{i}")))
}

/// The router's BFD session with instance `i`: its state and since when.
fn bfd_session(i: usize) -> String {
    let o = in_ns_ok("rt", &["birdc", "-s", &format!("{STATE}/bird-rt.ctl"), "show", "bfd", "sessions"]);
    o.lines().find(|l| l.split_whitespace().next() == Some(&addr(i))).unwrap_or("").trim().to_string()
}

/// A host on the fabric floods an instance's own address, forging the router's address on
/// BFD's port: the frames take the policed lane (the router is a peer only from its own MAC),
/// what passes the policer is kept from the kernel (BGP and BFD only from a peer), and every
/// BGP and BFD session of the fleet stays up throughout. (Handed to BIRD, 5 000 such frames a
/// second made it log each one and flapped every session of the testbed's two cores.)
fn flood_spares_sessions(fl: &Fleet) {
    let victim = 1;
    let refused = |i| {
        let s = fl.ctl(i, &["stats"]).expect("stats");
        (s["drops"]["punt_policed"].as_u64().unwrap_or(0), s["to_kernel_refused"].as_u64().unwrap_or(0))
    };
    for i in all() {
        fl.wait_bfd_up(i);
    }
    let before = refused(victim);
    let sessions = all().iter().map(|&i| bfd_session(i)).collect::<Vec<_>>();
    let mac = format!("02:00:00:00:0{victim}:02");
    let args = [
        "eth0",
        &mac,
        "udp",
        "--dst",
        &addr(victim),
        "--port",
        "3784",
        "--src",
        "10.0.0.1",
        "--seconds",
        "5",
        "--pps",
        "50000",
    ];
    let f = flood("x1", &args);
    let t = Instant::now();
    let mut absent = 0;
    while t.elapsed() < Duration::from_secs(5) {
        if !fl.routes().all_via(&all()) {
            absent += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = flood_result(f);
    let after = all().iter().map(|&i| bfd_session(i)).collect::<Vec<_>>();
    let now = refused(victim);
    let (policed, kept) = (now.0 - before.0, now.1 - before.1);
    println!(
        "  x1 {sent} at lb{victim}'s BFD port as the router: {policed} refused by the policer, {kept} more kept from the kernel; the router's routes lacked an instance in {absent} samples; BFD sessions before: {sessions:?}, after: {after:?}"
    );
    assert_eq!(absent, 0, "every instance stayed in the router's routes");
    // A session that went down and up again would be Up "since" a later time; BIRD prints the
    // time as now minus its age, which moves by a millisecond between two looks.
    for (b, a) in sessions.iter().zip(&after) {
        let (b_state, b_since) = session_state(b);
        let (a_state, a_since) = session_state(a);
        assert!(
            b_state == "Up" && a_state == "Up" && a_since.abs_diff(b_since) <= 50,
            "no BFD session went down: before {b:?}, after {a:?}\n{}",
            bird_logs(victim)
        );
    }
    assert!(policed > 0 && kept > 0, "the flood reached the policer, and what passed it the filter");
}

/// A line of `birdc show bfd sessions`: the state and the time it has held since, in ms of the
/// day ("10.0.0.2  fab0  Up  22:54:48.718  0.100  0.300").
fn session_state(line: &str) -> (String, u64) {
    let f: Vec<&str> = line.split_whitespace().collect();
    let since = f.get(3).map_or(0, |t| {
        let mut parts = t.split([':', '.']).map(|x| x.parse::<u64>().unwrap_or(0));
        let (h, m, sec, ms) = (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        );
        ((h * 60 + m) * 60 + sec) * 1000 + ms
    });
    (f.get(2).unwrap_or(&"").to_string(), since)
}

/// The share of Maglev slots whose server changes when `added` joins `backends`.
fn maglev_changed(backends: &[&str], added: &str) -> f64 {
    let table = |ips: &[&str]| {
        let b: Vec<MaglevBackend> = ips
            .iter()
            .map(|ip| {
                let ip: Ipv4Addr = ip.parse().unwrap();
                MaglevBackend { id: u32::from(ip), seed: maglev_seed(ip.into()), weight: 1 }
            })
            .collect();
        MaglevTable::build(&b, dataplane::maglev::DEFAULT_SIZE)
    };
    let before = table(backends);
    let mut with: Vec<&str> = backends.to_vec();
    with.push(added);
    let after = table(&with);
    after.diff(&before) as f64 / after.len() as f64
}

/// Scenario 6: A backend joins every instance's configuration, then an instance fails: the flows it
/// held reach the survivors without state, and those whose Maglev slot changed owner now go to
/// another server and break. Reported against the share of slots that changed.
fn backend_added_while_failing(fl: &Fleet) {
    let victim = 2;
    let base = fl.new_flows();
    let victim_base = fl.tcp_sum(victim, "new_flows");
    let t = transfers(20, 2_000_000, "150K");
    let n = t.len();
    fl.wait_new_flows(base, n as u64);
    let on_victim = fl.tcp_sum(victim, "new_flows") - victim_base;
    let digest_before =
        fl.ctl(1, &["status"]).expect("status")["config_digest"].as_str().unwrap_or("").to_string();
    for i in all() {
        let text = std::fs::read_to_string(config(i)).unwrap();
        let added = text.replace(r#"(ip: "10.0.0.13")]"#, r#"(ip: "10.0.0.13"), (ip: "10.0.0.14")]"#);
        std::fs::write(config(i), added).unwrap();
        fl.ctl(i, &["reload"]).expect("reload");
    }
    let t1 = Instant::now();
    while !all().iter().all(|&i| {
        fl.ctl(i, &["backends"]).ok().and_then(|v| v.as_array().cloned()).is_some_and(|b| {
            b.iter().filter(|b| b["ip"] == "10.0.0.14").count() == 6
                && b.iter().filter(|b| b["ip"] == "10.0.0.14").all(|b| b["state"] == "up")
        })
    }) {
        assert!(t1.elapsed() < Duration::from_secs(20), "10.0.0.14 up on every instance");
        std::thread::sleep(Duration::from_millis(100));
    }
    let up_after = t1.elapsed();
    let digests: BTreeSet<String> = all()
        .iter()
        .map(|&i| fl.ctl(i, &["status"]).expect("status")["config_digest"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(digests.len(), 1, "one digest across the fleet after the reload: {digests:?}");
    assert!(!digests.contains(&digest_before), "the reload changed it");
    fl.kill(victim);
    let r = t.finish();
    let changed = maglev_changed(&["10.0.0.11", "10.0.0.12", "10.0.0.13"], "10.0.0.14");
    let b = broken(&r);
    println!(
        "  10.0.0.14 added on every instance (up after {:.1} s), then lb{victim} killed holding {on_victim} of {n} connections: {b} broken ({}); Maglev slots that changed server: {:.1}%, so about {:.1} of lb{victim}'s connections were expected to break",
        up_after.as_secs_f64(),
        summary(&r),
        changed * 100.0,
        on_victim as f64 * changed
    );
    // Back to the fleet's configuration.
    for i in all() {
        let text = std::fs::read_to_string(config(i)).unwrap();
        std::fs::write(config(i), text.replace(r#", (ip: "10.0.0.14")]"#, "]")).unwrap();
        if i != victim {
            fl.ctl(i, &["reload"]).expect("reload");
        }
    }
    fl.restore(victim);
    assert!(b as u64 <= on_victim, "only connections the failed instance held can break");
}
