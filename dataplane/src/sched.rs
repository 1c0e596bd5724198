//! Picking a backend for a new flow, per service scheduler. Hash-based schedulers read the
//! service's Maglev table so every worker (and every LB sharing a configuration) agrees.

use crate::flow::{hash_addr, hash_addr6, FlowTable, FlowTable6};
use crate::parse::{Fragment, Parsed};
use crate::parse6::Parsed6;
use crate::snapshot::{Scheduler, Snapshot};

/// Smooth weighted round robin state for one service (nginx's algorithm): per backend a
/// running credit; each pick adds every weight, takes the largest, subtracts the total.
#[derive(Debug, Clone, Default)]
pub struct WrrState {
    credit: Vec<i64>,
}

impl WrrState {
    pub fn new(backends: usize) -> Self {
        WrrState { credit: vec![0; backends] }
    }

    fn pick(&mut self, eligible: &[(u32, u32)]) -> Option<u32> {
        if eligible.is_empty() || self.credit.len() != eligible.len() {
            return None;
        }
        let total: i64 = eligible.iter().map(|(_, w)| *w as i64).sum();
        let mut best = 0;
        for (i, (_, w)) in eligible.iter().enumerate() {
            self.credit[i] += *w as i64;
            if self.credit[i] > self.credit[best] {
                best = i;
            }
        }
        self.credit[best] -= total;
        Some(eligible[best].0)
    }
}

/// The backend any worker of any instance gives a flow of service position `svc` without state
/// for it: the service's Maglev table on what the scheduler hashes — the source or destination
/// address for those hashes, the flow otherwise. Round robin and least connections have no
/// stateless answer; for them this is their documented rule: Maglev on the flow.
#[inline]
pub fn consistent(snap: &Snapshot, svc: usize, src: [u8; 4], dst: [u8; 4], flow_hash: u64) -> Option<u32> {
    let table = snap.maglev(svc);
    match snap.services[svc].scheduler {
        Scheduler::SourceHash => table.lookup(hash_addr(src)),
        Scheduler::DestinationHash => table.lookup(hash_addr(dst)),
        _ => table.lookup(flow_hash),
    }
}

/// `consistent` for an IPv6 flow.
#[inline]
pub fn consistent6(snap: &Snapshot, svc: usize, src: [u8; 16], dst: [u8; 16], flow_hash: u64) -> Option<u32> {
    let table = snap.maglev(svc);
    match snap.services[svc].scheduler {
        Scheduler::SourceHash => table.lookup(hash_addr6(src)),
        Scheduler::DestinationHash => table.lookup(hash_addr6(dst)),
        _ => table.lookup(flow_hash),
    }
}

/// `pick` for an IPv6 flow; least connections counts the IPv6 table's flows (an IPv6
/// service's flows are all there).
pub fn pick6(
    snap: &Snapshot,
    svc: usize,
    p: &Parsed6,
    flow_hash: u64,
    wrr: &mut WrrState,
    flows: &FlowTable6,
) -> Option<u32> {
    if p.fragment != Fragment::Whole {
        return consistent6(snap, svc, p.src, p.dst, flow_hash);
    }
    match snap.services[svc].scheduler {
        Scheduler::WeightedRoundRobin => wrr.pick(&snap.eligible[svc]),
        Scheduler::LeastConnections => least_connections(&snap.eligible[svc], |b| flows.active(b), flow_hash),
        _ => consistent6(snap, svc, p.src, p.dst, flow_hash),
    }
}

/// The backend for a new flow of service position `svc`, or `None` if none is healthy.
#[inline]
pub fn pick(
    snap: &Snapshot,
    svc: usize,
    p: &Parsed,
    flow_hash: u64,
    wrr: &mut WrrState,
    flows: &FlowTable,
) -> Option<u32> {
    // Fragments are scheduled statelessly (their flow hash has no ports), so that every
    // fragment, on whichever worker, reaches the same backend as the datagram's first one.
    if p.fragment != Fragment::Whole {
        return consistent(snap, svc, p.src, p.dst, flow_hash);
    }
    match snap.services[svc].scheduler {
        Scheduler::WeightedRoundRobin => wrr.pick(&snap.eligible[svc]),
        Scheduler::LeastConnections => least_connections(&snap.eligible[svc], |b| flows.active(b), flow_hash),
        _ => consistent(snap, svc, p.src, p.dst, flow_hash),
    }
}

/// Fewest active flows per unit of weight; ties start from a hash-chosen backend so that
/// simultaneous new flows spread instead of all landing on the first.
fn least_connections(eligible: &[(u32, u32)], active: impl Fn(u32) -> u32, flow_hash: u64) -> Option<u32> {
    if eligible.is_empty() {
        return None;
    }
    let n = eligible.len();
    let start = (flow_hash % n as u64) as usize;
    let mut best = eligible[start];
    let mut best_active = active(best.0) as u64;
    for k in 1..n {
        let c = eligible[(start + k) % n];
        let a = active(c.0) as u64;
        // a / w < best_active / best_w without division
        if a * (best.1 as u64) < best_active * (c.1 as u64) {
            best = c;
            best_active = a;
        }
    }
    Some(best.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_wrr_follows_weights_and_interleaves() {
        let mut w = WrrState::new(3);
        let el = [(10, 5), (11, 1), (12, 1)];
        let seq: Vec<u32> = (0..7).map(|_| w.pick(&el).unwrap()).collect();
        assert_eq!(seq.iter().filter(|&&b| b == 10).count(), 5);
        assert_eq!(seq.iter().filter(|&&b| b == 11).count(), 1);
        assert_eq!(seq, vec![10, 10, 11, 10, 12, 10, 10], "nginx's smooth sequence for 5:1:1");
    }

    #[test]
    fn least_connections_prefers_idle_per_weight() {
        use crate::flow::FlowSlot;
        let mut ft = FlowTable::new(64, 8);
        for i in 0..4u16 {
            let k = crate::flow::FlowKey::new(6, [1, 1, 1, 1], [2, 2, 2, 2], i, 80);
            ft.insert(FlowSlot::new(k.id(0), 1, 0, 1000), k.hash(), 0);
        }
        let k = crate::flow::FlowKey::new(6, [1, 1, 1, 1], [2, 2, 2, 2], 9, 80);
        ft.insert(FlowSlot::new(k.id(0), 2, 0, 1000), k.hash(), 0);
        // backend 1: 4 flows weight 4 (ratio 1); backend 2: 1 flow weight 1 (ratio 1); backend 3 idle.
        for h in 0..10 {
            assert_eq!(least_connections(&[(1, 4), (2, 1), (3, 1)], |b| ft.active(b), h), Some(3));
        }
        // Give backend 2 a second flow: 2 per unit of weight against backend 1's 1.
        let k = crate::flow::FlowKey::new(6, [1, 1, 1, 1], [2, 2, 2, 2], 10, 80);
        ft.insert(FlowSlot::new(k.id(0), 2, 0, 1000), k.hash(), 0);
        for h in 0..10 {
            assert_eq!(least_connections(&[(1, 4), (2, 1)], |b| ft.active(b), h), Some(1));
        }
        assert_eq!(least_connections(&[], |b| ft.active(b), 0), None);
    }
}
