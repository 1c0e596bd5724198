//! Telling a routing daemon which VIPs this instance should receive (a fleet behind ECMP): a
//! /32 route per VIP in a kernel table, on the exception interface of the VIPs' port. A daemon
//! (BIRD here: docs/fleet.md) imports the table and announces what is in it. The routes are
//! tied to the interface, and the interface to this process, so if dsrlb ends in any way the
//! kernel drops them and the daemon withdraws the VIPs.
//!
//! The routes are changed with iproute2 from a thread of their own: the control core only says
//! which set it wants, and never waits for a command.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::{Arc, Mutex};

use crossbeam_channel::{bounded, Sender, TrySendError};
use log::{info, warn};

/// The routes of one interface in one table, kept as the control core wants them.
pub struct Announcer {
    wanted: Sender<BTreeSet<Ipv4Addr>>,
    /// The set last handed to the thread.
    last: Option<BTreeSet<Ipv4Addr>>,
    /// The routes in the kernel now (as the thread last set them).
    installed: Arc<Mutex<BTreeSet<Ipv4Addr>>>,
}

impl Announcer {
    /// Start with no route: whatever an earlier run left in `table` on `iface` goes.
    pub fn start(table: u32, iface: &str) -> std::io::Result<Announcer> {
        // Fails harmlessly when the table does not exist yet.
        let _ = Command::new("ip")
            .args(["-4", "route", "flush", "table", &table.to_string(), "dev", iface])
            .output();
        let (tx, rx) = bounded::<BTreeSet<Ipv4Addr>>(4);
        let installed = Arc::new(Mutex::new(BTreeSet::new()));
        let shared = installed.clone();
        let iface = iface.to_string();
        std::thread::Builder::new().name("dsrlb-announce".into()).spawn(move || {
            let mut now: BTreeSet<Ipv4Addr> = BTreeSet::new();
            while let Ok(mut want) = rx.recv() {
                // Only the newest wish matters.
                while let Ok(w) = rx.try_recv() {
                    want = w;
                }
                for vip in now.difference(&want).copied().collect::<Vec<_>>() {
                    if ip(&route("del", vip, &iface, table)) {
                        info!("announce: withdrew {vip}");
                        now.remove(&vip);
                    }
                }
                for vip in want.difference(&now).copied().collect::<Vec<_>>() {
                    if ip(&route("replace", vip, &iface, table)) {
                        info!("announce: announced {vip}");
                        now.insert(vip);
                    }
                }
                if let Ok(mut s) = shared.lock() {
                    s.clone_from(&now);
                }
            }
        })?;
        Ok(Announcer { wanted: tx, last: None, installed })
    }

    /// Want exactly these VIPs announced. Cheap when nothing changed.
    pub fn want(&mut self, vips: BTreeSet<Ipv4Addr>) {
        if self.last.as_ref() == Some(&vips) {
            return;
        }
        match self.wanted.try_send(vips.clone()) {
            Ok(()) => self.last = Some(vips),
            // The thread is behind: the next call hands it the newest set.
            Err(TrySendError::Full(_)) => {}
            Err(TrySendError::Disconnected(_)) => warn!("announce: the route thread has stopped"),
        }
    }

    /// The VIPs whose routes are in the kernel now.
    pub fn announced(&self) -> Vec<Ipv4Addr> {
        self.installed.lock().map(|s| s.iter().copied().collect()).unwrap_or_default()
    }

    /// Whether the routes in the kernel are the set last wanted.
    pub fn settled(&self) -> bool {
        let installed = self.installed.lock().map(|s| s.clone()).unwrap_or_default();
        self.last.as_ref().is_some_and(|w| *w == installed)
    }
}

fn route<'a>(op: &'a str, vip: Ipv4Addr, iface: &'a str, table: u32) -> Vec<String> {
    ["-4", "route", op, &format!("{vip}/32"), "dev", iface, "table", &table.to_string(), "proto", "static"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Run `ip ARGS`; whether it succeeded (failures are logged).
fn ip<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> bool {
    match Command::new("ip").args(args).output() {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            let what: Vec<String> = args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect();
            warn!("ip {}: {}", what.join(" "), String::from_utf8_lossy(&o.stderr).trim());
            false
        }
        Err(e) => {
            warn!("ip: {e}");
            false
        }
    }
}

/// Give the exception interface `iface` the port's MAC and addresses and bring it up, as the
/// kernel's view of this port: it answers no ARP itself (dsrlb does), and speaks no IPv6.
pub fn set_up_interface(
    iface: &str,
    mac: dataplane::wire::MacAddr,
    addrs: &[dataplane::wire::Ipv4Cidr],
) -> Result<(), String> {
    let run = |args: &[&str]| -> Result<(), String> {
        let o = Command::new(args[0]).args(&args[1..]).output().map_err(|e| format!("{}: {e}", args[0]))?;
        if !o.status.success() {
            return Err(format!("{}: {}", args.join(" "), String::from_utf8_lossy(&o.stderr).trim()));
        }
        Ok(())
    };
    let mac = mac.to_string();
    run(&["ip", "link", "set", "dev", iface, "address", &mac])?;
    run(&["sysctl", "-qw", &format!("net.ipv6.conf.{iface}.disable_ipv6=1")])?;
    run(&["sysctl", "-qw", &format!("net.ipv4.conf.{iface}.arp_ignore=8")])?;
    for a in addrs {
        let a = a.to_string();
        run(&["ip", "addr", "replace", &a, "dev", iface])?;
    }
    run(&["ip", "link", "set", "dev", iface, "up"])
}
