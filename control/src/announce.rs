//! Telling a routing daemon which VIPs this instance should receive (a fleet behind ECMP): a
//! host route per VIP (/32, or /128 for IPv6) in a kernel table, on the exception interface of the VIPs' port. A daemon
//! (BIRD here: docs/fleet.md) imports the table and announces what is in it. The routes are
//! tied to the interface, and the interface to this process, so if dsrlb ends in any way the
//! kernel drops them and the daemon withdraws the VIPs.
//!
//! The routes are changed with iproute2 from a thread of their own: the control core only says
//! which set it wants, and never waits for a command.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};

use crossbeam_channel::{bounded, Sender, TrySendError};
use log::{info, warn};

/// The routes of one interface in one table, kept as the control core wants them.
pub struct Announcer {
    wanted: Sender<BTreeSet<IpAddr>>,
    /// The set last handed to the thread.
    last: Option<BTreeSet<IpAddr>>,
    /// The routes in the kernel now (as the thread last set them).
    installed: Arc<Mutex<BTreeSet<IpAddr>>>,
}

impl Announcer {
    /// Start with no route: whatever an earlier run left in `table` on `iface` goes.
    pub fn start(table: u32, iface: &str) -> std::io::Result<Announcer> {
        // Fails harmlessly when the table does not exist yet.
        for family in ["-4", "-6"] {
            let _ = Command::new("ip")
                .args([family, "route", "flush", "table", &table.to_string(), "dev", iface])
                .output();
        }
        let (tx, rx) = bounded::<BTreeSet<IpAddr>>(4);
        let installed = Arc::new(Mutex::new(BTreeSet::new()));
        let shared = installed.clone();
        let iface = iface.to_string();
        std::thread::Builder::new().name("dsrlb-announce".into()).spawn(move || {
            let mut now: BTreeSet<IpAddr> = BTreeSet::new();
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
    pub fn want(&mut self, vips: BTreeSet<IpAddr>) {
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
    pub fn announced(&self) -> Vec<IpAddr> {
        self.installed.lock().map(|s| s.iter().copied().collect()).unwrap_or_default()
    }

    /// Whether the routes in the kernel are the set last wanted.
    pub fn settled(&self) -> bool {
        let installed = self.installed.lock().map(|s| s.clone()).unwrap_or_default();
        self.last.as_ref().is_some_and(|w| *w == installed)
    }
}

fn route<'a>(op: &'a str, vip: IpAddr, iface: &'a str, table: u32) -> Vec<String> {
    let (family, host) =
        if vip.is_ipv6() { ("-6", format!("{vip}/128")) } else { ("-4", format!("{vip}/32")) };
    [family, "route", op, &host, "dev", iface, "table", &table.to_string(), "proto", "static"]
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
/// kernel's view of this port: it answers no ARP or neighbour solicitation itself (dsrlb does;
/// they never reach it), learns nothing from router advertisements, and speaks IPv6 only when
/// the port has IPv6 addresses (BGP over IPv6).
pub fn set_up_interface(
    iface: &str,
    mac: dataplane::wire::MacAddr,
    addrs: &[dataplane::wire::IpCidr],
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
    let v6 = addrs.iter().any(|a| a.is_v6());
    run(&["sysctl", "-qw", &format!("net.ipv6.conf.{iface}.disable_ipv6={}", u8::from(!v6))])?;
    if v6 {
        for (k, v) in
            [("accept_ra", "0"), ("autoconf", "0"), ("dad_transmits", "0"), ("accept_redirects", "0")]
        {
            run(&["sysctl", "-qw", &format!("net.ipv6.conf.{iface}.{k}={v}")])?;
        }
    }
    run(&["sysctl", "-qw", &format!("net.ipv4.conf.{iface}.arp_ignore=8")])?;
    for a in addrs {
        let a = a.to_string();
        if v6 && a.contains(':') {
            run(&["ip", "-6", "addr", "replace", &a, "dev", iface, "nodad"])?;
        } else {
            run(&["ip", "addr", "replace", &a, "dev", iface])?;
        }
    }
    run(&["ip", "link", "set", "dev", iface, "up"])
}
