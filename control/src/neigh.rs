//! The neighbour (ARP) table: MACs of l2 backends and next-hop gateways, resolved by the control
//! core through the dataplane ports, refreshed before they expire. An unresolved neighbour makes
//! its backends count as down (the seed: the MAC comes from the monitor bound to the service).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dataplane::wire::MacAddr;

#[derive(Debug, Clone)]
struct Entry {
    mac: Option<MacAddr>,
    confirmed: Option<Instant>,
    last_request: Option<Instant>,
}

/// A MAC learned or changed: the snapshot must be rebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Resolved { port: u16, ip: Ipv4Addr, mac: MacAddr },
    Changed { port: u16, ip: Ipv4Addr, old: MacAddr, new: MacAddr },
    Expired { port: u16, ip: Ipv4Addr },
}

pub struct Neighbors {
    entries: HashMap<(u16, Ipv4Addr), Entry>,
    refresh: Duration,
    expiry: Duration,
    /// Retry interval while a neighbour is unresolved.
    retry: Duration,
}

impl Neighbors {
    pub fn new(refresh: Duration, expiry: Duration) -> Self {
        Neighbors { entries: HashMap::new(), refresh, expiry, retry: Duration::from_millis(500) }
    }

    /// Set the neighbours to resolve; others are forgotten, known ones keep their MAC.
    pub fn set_wanted(&mut self, wanted: impl IntoIterator<Item = (u16, Ipv4Addr)>) {
        let mut next = HashMap::new();
        for k in wanted {
            let e =
                self.entries.remove(&k).unwrap_or(Entry { mac: None, confirmed: None, last_request: None });
            next.insert(k, e);
        }
        self.entries = next;
    }

    /// The MAC of a neighbour, if confirmed recently enough.
    pub fn lookup(&self, port: u16, ip: Ipv4Addr, now: Instant) -> Option<MacAddr> {
        let e = self.entries.get(&(port, ip))?;
        match (e.mac, e.confirmed) {
            (Some(m), Some(t)) if now.duration_since(t) < self.expiry => Some(m),
            _ => None,
        }
    }

    /// An ARP packet from `ip` with `mac` arrived on `port`.
    pub fn learn(&mut self, port: u16, ip: Ipv4Addr, mac: MacAddr, now: Instant) -> Option<Change> {
        let e = self.entries.get_mut(&(port, ip))?;
        let was_valid = matches!(e.confirmed, Some(t) if now.duration_since(t) < self.expiry);
        let change = match e.mac {
            Some(old) if old != mac => Some(Change::Changed { port, ip, old, new: mac }),
            Some(_) if was_valid => None,
            _ => Some(Change::Resolved { port, ip, mac }),
        };
        e.mac = Some(mac);
        e.confirmed = Some(now);
        change
    }

    /// Neighbours to ask for now: unresolved ones every `retry`, resolved ones every `refresh`
    /// (well before `expiry`, so a live neighbour never lapses); plus those that just expired.
    pub fn due(&mut self, now: Instant) -> (Vec<(u16, Ipv4Addr)>, Vec<Change>) {
        let mut ask = Vec::new();
        let mut expired = Vec::new();
        for (&(port, ip), e) in self.entries.iter_mut() {
            let valid = matches!(e.confirmed, Some(t) if now.duration_since(t) < self.expiry);
            if !valid && e.mac.is_some() && e.confirmed.is_some() {
                expired.push(Change::Expired { port, ip });
                e.confirmed = None;
            }
            let every = if valid { self.refresh } else { self.retry };
            let due = match e.last_request {
                None => true,
                Some(t) => now.duration_since(t) >= every,
            };
            if due {
                e.last_request = Some(now);
                ask.push((port, ip));
            }
        }
        (ask, expired)
    }

    /// (port, ip, mac if valid) of every neighbour, for ctl.
    pub fn list(&self, now: Instant) -> Vec<(u16, Ipv4Addr, Option<MacAddr>)> {
        let mut v: Vec<_> = self.entries.keys().map(|&(p, ip)| (p, ip, self.lookup(p, ip, now))).collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_refresh_change_expire() {
        let t0 = Instant::now();
        let ip = Ipv4Addr::new(10, 0, 0, 11);
        let mut n = Neighbors::new(Duration::from_secs(30), Duration::from_secs(90));
        n.set_wanted([(0, ip)]);
        assert_eq!(n.due(t0).0, vec![(0, ip)]);
        assert!(n.due(t0 + Duration::from_millis(100)).0.is_empty(), "not again at once");
        assert_eq!(n.due(t0 + Duration::from_millis(600)).0.len(), 1, "unresolved: retried soon");
        assert_eq!(n.lookup(0, ip, t0), None);
        let m1 = MacAddr([2, 0, 0, 0, 0, 1]);
        assert!(matches!(n.learn(0, ip, m1, t0), Some(Change::Resolved { .. })));
        assert_eq!(n.lookup(0, ip, t0 + Duration::from_secs(1)), Some(m1));
        assert_eq!(n.learn(0, ip, m1, t0 + Duration::from_secs(2)), None, "same MAC: no change");
        assert!(n.due(t0 + Duration::from_secs(10)).0.is_empty(), "resolved: refresh later");
        assert_eq!(n.due(t0 + Duration::from_secs(31)).0.len(), 1);
        let m2 = MacAddr([2, 0, 0, 0, 0, 2]);
        assert!(
            matches!(n.learn(0, ip, m2, t0 + Duration::from_secs(32)), Some(Change::Changed { .. })),
            "replaced server"
        );
        let later = t0 + Duration::from_secs(200);
        let (_, exp) = n.due(later);
        assert_eq!(exp, vec![Change::Expired { port: 0, ip }]);
        assert_eq!(n.lookup(0, ip, later), None);
        assert_eq!(n.learn(0, Ipv4Addr::new(10, 0, 0, 99), m1, later), None, "unwanted: ignored");
    }
}
