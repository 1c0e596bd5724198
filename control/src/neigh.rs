//! The neighbour table: MACs of l2 backends and next-hop gateways, resolved by the control core
//! through the dataplane ports (ARP for IPv4, neighbour discovery for IPv6), refreshed before
//! they expire. An unresolved neighbour makes
//! its backends count as down (the seed: the MAC comes from the monitor bound to the service).
//!
//! Neither ARP nor neighbour discovery has authentication, and every host on the segment can
//! send them, so a MAC is taken only from a reply to a request of ours (an ARP reply, a
//! solicited advertisement), sent by the host it names (its Ethernet source is the MAC it
//! gives), for a host address (unicast, not ours). A reply naming another MAC for a neighbour
//! that is still answering is not taken at once: the old MAC is asked directly, and the new one
//! replaces it only if the old one stays silent (a replaced server), never while it answers
//! (a second host claiming the address: a conflict, logged and counted).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use dataplane::wire::{arp, MacAddr};

/// How long after our request a reply still answers it.
const ANSWER_WINDOW: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Default)]
struct Entry {
    mac: Option<MacAddr>,
    confirmed: Option<Instant>,
    last_request: Option<Instant>,
    /// Another MAC answered for this address while `mac` was valid: it replaces `mac` only if
    /// `mac`, asked directly, does not confirm before the retry interval is out.
    suspect: Option<Suspect>,
}

#[derive(Debug, Clone, Copy)]
struct Suspect {
    mac: MacAddr,
    since: Instant,
    /// The old MAC has been asked directly.
    asked_old: bool,
}

/// A MAC learned or changed: the snapshot must be rebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Resolved { port: u16, ip: IpAddr, mac: MacAddr },
    Changed { port: u16, ip: IpAddr, old: MacAddr, new: MacAddr },
    Expired { port: u16, ip: IpAddr },
}

/// An ARP packet or neighbour advertisement as it arrived: on which port, from which Ethernet
/// source. An advertisement is `OP_REPLY` when solicited, `OP_REQUEST` (taken as an
/// announcement) when not; its target and target link-layer address are the sender's.
#[derive(Debug, Clone, Copy)]
pub struct Heard {
    pub port: u16,
    pub eth_src: MacAddr,
    pub operation: u16,
    pub sender_mac: MacAddr,
    pub sender_ip: IpAddr,
}

/// What the table made of the ARP it heard, counted for the operator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArpCounters {
    /// Replies to our requests, taken (resolving, confirming or changing a MAC).
    pub taken: u64,
    /// Replies and announcements nobody asked for (gratuitous ARP, unsolicited replies), or
    /// about addresses we do not resolve: they change nothing.
    pub unsolicited: u64,
    /// Impossible MACs (broadcast, multicast, zero, ours) or an Ethernet source that is not
    /// the ARP sender.
    pub rejected: u64,
    /// A second MAC answered for a neighbour whose MAC still answers: kept the first.
    pub conflicts: u64,
    /// A neighbour's MAC replaced (the old one stopped answering).
    pub changes: u64,
}

/// A request to send: who has `ip`? — broadcast, or straight to `unicast_to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    pub port: u16,
    pub ip: IpAddr,
    pub unicast_to: Option<MacAddr>,
}

pub struct Neighbors {
    entries: HashMap<(u16, IpAddr), Entry>,
    refresh: Duration,
    expiry: Duration,
    /// Retry interval while a neighbour is unresolved; the time an old MAC has to answer.
    retry: Duration,
    own_macs: Vec<MacAddr>,
    pub counters: ArpCounters,
}

impl Neighbors {
    pub fn new(refresh: Duration, expiry: Duration) -> Self {
        Neighbors {
            entries: HashMap::new(),
            refresh,
            expiry,
            retry: Duration::from_millis(500),
            own_macs: Vec::new(),
            counters: ArpCounters::default(),
        }
    }

    /// The LB's own port MACs: never a neighbour's.
    pub fn set_own_macs(&mut self, macs: &[MacAddr]) {
        self.own_macs = macs.to_vec();
    }

    /// Set the neighbours to resolve; others are forgotten, known ones keep their MAC.
    pub fn set_wanted(&mut self, wanted: impl IntoIterator<Item = (u16, IpAddr)>) {
        let mut next = HashMap::new();
        for k in wanted {
            let e = self.entries.remove(&k).unwrap_or_default();
            next.insert(k, e);
        }
        self.entries = next;
    }

    fn valid(&self, e: &Entry, now: Instant) -> bool {
        matches!(e.confirmed, Some(t) if now.duration_since(t) < self.expiry)
    }

    /// The MAC of a neighbour, if confirmed recently enough.
    pub fn lookup(&self, port: u16, ip: IpAddr, now: Instant) -> Option<MacAddr> {
        let e = self.entries.get(&(port, ip))?;
        e.mac.filter(|_| self.valid(e, now))
    }

    /// Take `mac` for a wanted neighbour without asking (a capture replayed, a test); whether
    /// it changed anything.
    pub fn assume(&mut self, port: u16, ip: IpAddr, mac: MacAddr, now: Instant) -> bool {
        let Some(e) = self.entries.get_mut(&(port, ip)) else { return false };
        let changed = e.mac != Some(mac) || e.confirmed.is_none();
        (e.mac, e.confirmed, e.suspect) = (Some(mac), Some(now), None);
        changed
    }

    /// An ARP packet arrived; the change it makes, if any (most make none).
    pub fn heard(&mut self, h: &Heard, now: Instant) -> Option<Change> {
        let mac = h.sender_mac;
        if h.eth_src != mac || !mac.is_unicast() || self.own_macs.contains(&mac) {
            self.counters.rejected += 1;
            return None;
        }
        let (expiry, retry) = (self.expiry, self.retry);
        let (port, ip) = (h.port, h.sender_ip);
        let Some(e) = self.entries.get_mut(&(port, ip)) else {
            self.counters.unsolicited += 1;
            return None;
        };
        let answers_us = h.operation == arp::OP_REPLY
            && e.last_request.is_some_and(|t| now.duration_since(t) <= ANSWER_WINDOW);
        if !answers_us {
            self.counters.unsolicited += 1;
            return None;
        }
        self.counters.taken += 1;
        let valid = matches!(e.confirmed, Some(t) if now.duration_since(t) < expiry);
        match e.mac {
            Some(old) if old == mac => {
                e.confirmed = Some(now);
                if e.suspect.take().is_some() {
                    // The old MAC answered after another had claimed the address.
                    self.counters.conflicts += 1;
                }
                None
            }
            Some(old) if valid => {
                match &mut e.suspect {
                    Some(s) if s.mac == mac => {
                        if now.duration_since(s.since) >= retry && e.confirmed.is_some_and(|c| c < s.since) {
                            // The old MAC stayed silent when asked: a replaced server.
                            e.mac = Some(mac);
                            e.confirmed = Some(now);
                            e.suspect = None;
                            self.counters.changes += 1;
                            return Some(Change::Changed { port, ip, old, new: mac });
                        }
                    }
                    Some(_) => self.counters.conflicts += 1,
                    None => e.suspect = Some(Suspect { mac, since: now, asked_old: false }),
                }
                None
            }
            previous => {
                e.mac = Some(mac);
                e.confirmed = Some(now);
                e.suspect = None;
                Some(match previous {
                    Some(old) if old != mac => {
                        self.counters.changes += 1;
                        Change::Changed { port, ip, old, new: mac }
                    }
                    _ => Change::Resolved { port, ip, mac },
                })
            }
        }
    }

    /// Requests to send now: unresolved neighbours every `retry`, resolved ones every `refresh`
    /// (well before `expiry`, so a live neighbour never lapses), an old MAC straight away when
    /// another claimed its address; plus the neighbours that just expired, and those replaced
    /// because their old MAC stayed silent.
    pub fn due(&mut self, now: Instant) -> (Vec<Ask>, Vec<Change>) {
        let mut ask = Vec::new();
        let mut changes = Vec::new();
        let (expiry, refresh, retry) = (self.expiry, self.refresh, self.retry);
        for (&(port, ip), e) in self.entries.iter_mut() {
            let valid = matches!(e.confirmed, Some(t) if now.duration_since(t) < expiry);
            if !valid && e.mac.is_some() && e.confirmed.is_some() {
                changes.push(Change::Expired { port, ip });
                e.confirmed = None;
            }
            if let Some(s) = &mut e.suspect {
                if !s.asked_old {
                    s.asked_old = true;
                    e.last_request = Some(now);
                    ask.push(Ask { port, ip, unicast_to: e.mac });
                    continue;
                }
                if now.duration_since(s.since) >= retry {
                    // Its answer window is out: ask everyone again; a reply from the new MAC
                    // alone (the old stays silent) makes the change.
                    e.last_request = Some(now);
                    ask.push(Ask { port, ip, unicast_to: None });
                    continue;
                }
            }
            let every = if valid { refresh } else { retry };
            if e.last_request.is_none_or(|t| now.duration_since(t) >= every) {
                e.last_request = Some(now);
                ask.push(Ask { port, ip, unicast_to: None });
            }
        }
        (ask, changes)
    }

    /// (port, ip, mac if valid) of every neighbour, for ctl.
    pub fn list(&self, now: Instant) -> Vec<(u16, IpAddr, Option<MacAddr>)> {
        let mut v: Vec<_> = self.entries.keys().map(|&(p, ip)| (p, ip, self.lookup(p, ip, now))).collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 11));
    const M1: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const M2: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    fn reply(mac: MacAddr) -> Heard {
        Heard { port: 0, eth_src: mac, operation: arp::OP_REPLY, sender_mac: mac, sender_ip: IP }
    }

    fn table(t0: Instant) -> Neighbors {
        let mut n = Neighbors::new(Duration::from_secs(30), Duration::from_secs(90));
        n.set_own_macs(&[MacAddr([2, 0, 0, 0, 0, 0xfe])]);
        n.set_wanted([(0, IP)]);
        assert_eq!(n.due(t0).0, vec![Ask { port: 0, ip: IP, unicast_to: None }]);
        n
    }

    fn secs(t0: Instant, s: f64) -> Instant {
        t0 + Duration::from_secs_f64(s)
    }

    #[test]
    fn resolve_refresh_expire() {
        let t0 = Instant::now();
        let mut n = table(t0);
        assert!(n.due(secs(t0, 0.1)).0.is_empty(), "not again at once");
        assert_eq!(n.due(secs(t0, 0.6)).0.len(), 1, "unresolved: retried soon");
        assert_eq!(n.heard(&reply(M1), secs(t0, 0.7)), Some(Change::Resolved { port: 0, ip: IP, mac: M1 }));
        assert_eq!(n.lookup(0, IP, secs(t0, 1.0)), Some(M1));
        assert!(n.due(secs(t0, 10.0)).0.is_empty(), "resolved: refresh later");
        assert_eq!(n.due(secs(t0, 31.0)).0.len(), 1);
        assert_eq!(n.heard(&reply(M1), secs(t0, 31.1)), None, "the same MAC: confirmed, no change");
        let (_, changes) = n.due(secs(t0, 200.0));
        assert_eq!(changes, vec![Change::Expired { port: 0, ip: IP }]);
        assert_eq!(n.lookup(0, IP, secs(t0, 200.0)), None);
    }

    #[test]
    fn announcements_and_impossible_macs_change_nothing() {
        let t0 = Instant::now();
        let mut n = table(t0);
        n.heard(&reply(M1), secs(t0, 0.1));
        let evil = MacAddr([2, 0, 0, 0, 0, 0x66]);
        // Gratuitous ARP and an unsolicited reply, long after our request.
        let grat = Heard { operation: arp::OP_REQUEST, ..reply(evil) };
        assert_eq!(n.heard(&grat, secs(t0, 5.0)), None);
        assert_eq!(n.heard(&reply(evil), secs(t0, 5.0)), None);
        // Answers to our request with impossible MACs, or a forged sender.
        n.due(secs(t0, 31.0));
        for bad in [
            MacAddr::BROADCAST,
            MacAddr::ZERO,
            MacAddr([1, 0, 0x5e, 0, 0, 1]),
            MacAddr([2, 0, 0, 0, 0, 0xfe]),
        ] {
            assert_eq!(n.heard(&reply(bad), secs(t0, 31.1)), None, "{bad}");
        }
        assert_eq!(
            n.heard(&Heard { eth_src: evil, ..reply(M2) }, secs(t0, 31.1)),
            None,
            "sender not the source"
        );
        assert_eq!(n.lookup(0, IP, secs(t0, 31.2)), Some(M1));
        let c = n.counters;
        assert_eq!((c.unsolicited, c.rejected, c.changes), (2, 5, 0));
    }

    #[test]
    fn a_second_mac_replaces_the_first_only_if_the_first_stays_silent() {
        let t0 = Instant::now();
        let mut n = table(t0);
        n.heard(&reply(M1), secs(t0, 0.1));
        // Refresh: an impostor answers too. The old MAC is asked directly, and answers.
        n.due(secs(t0, 31.0));
        assert_eq!(n.heard(&reply(M2), secs(t0, 31.01)), None);
        assert_eq!(n.due(secs(t0, 31.02)).0, vec![Ask { port: 0, ip: IP, unicast_to: Some(M1) }]);
        assert_eq!(n.heard(&reply(M1), secs(t0, 31.03)), None);
        assert_eq!((n.lookup(0, IP, secs(t0, 32.0)), n.counters.conflicts), (Some(M1), 1));
        // Later the server is replaced: only the new MAC answers, the old stays silent.
        n.due(secs(t0, 62.0));
        assert_eq!(n.heard(&reply(M2), secs(t0, 62.01)), None, "not at once");
        assert_eq!(n.due(secs(t0, 62.02)).0, vec![Ask { port: 0, ip: IP, unicast_to: Some(M1) }]);
        assert_eq!(n.due(secs(t0, 62.6)).0, vec![Ask { port: 0, ip: IP, unicast_to: None }], "asked again");
        assert_eq!(
            n.heard(&reply(M2), secs(t0, 62.61)),
            Some(Change::Changed { port: 0, ip: IP, old: M1, new: M2 }),
            "the old one stayed silent for the retry interval"
        );
        assert_eq!(n.lookup(0, IP, secs(t0, 63.0)), Some(M2));
    }
}
