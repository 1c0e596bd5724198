//! The operator's view, built from the control core's state and the workers' counters: a pure
//! function, so what `dsrlb ctl` and the metrics show is tested from known state.

use std::time::Instant;

use dataplane::snapshot::BackendState;
use dataplane::{Counters, DropReason};

use crate::runtime::Runtime;
use crate::view::{
    BackendRow, HealthState, NeighborRow, PortCounters, PortRow, ServiceRow, Stats, Status, View,
};

use super::links::WorkerStats;

/// What the control core counts itself (frames it handled and sent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ControlCounters {
    pub frames: u64,
    pub arp_replies: u64,
    pub echo_replies: u64,
    pub probe_replies: u64,
    /// Packets naming a probe in flight that did not come its way (port, next hop) or did not
    /// carry its ident, sequence or port.
    pub probe_replies_forged: u64,
    /// Frames handed to the kernel's exception interfaces, and sent for it.
    pub to_kernel: u64,
    pub from_kernel: u64,
    /// BGP and BFD from anyone but a configured peer: not handed to the kernel.
    pub to_kernel_refused: u64,
}

/// Everything the view is built from besides the runtime.
pub struct Inputs<'a> {
    pub now: Instant,
    pub start: Instant,
    pub config_path: &'a str,
    pub epoch: u64,
    pub reloads: u64,
    pub last_reload_error: Option<&'a str>,
    pub workers: &'a [WorkerStats],
    /// Milliseconds since each worker's loop last moved.
    pub worker_idle_ms: &'a [u64],
    pub ports: &'a [PortCounters],
    pub control: ControlCounters,
    /// The VIPs whose routes are in the kernel (a fleet member), or `None`.
    pub announced: Option<Vec<std::net::IpAddr>>,
    pub draining: bool,
    pub digest: &'a str,
}

pub fn build(rt: &Runtime, i: &Inputs<'_>) -> View {
    let mut total = Counters::default();
    let mut active: Vec<u64> = Vec::new();
    let (mut flows, mut cap, mut tx_dropped) = (0u64, 0u64, 0u64);
    let (mut flows6, mut cap6) = (0u64, 0u64);
    let mut punt_dropped = [0u64; 3];
    for ws in i.workers {
        total.merge(&ws.counters);
        if active.len() < ws.active.len() {
            active.resize(ws.active.len(), 0);
        }
        for (a, b) in active.iter_mut().zip(&ws.active) {
            *a += *b as u64;
        }
        flows += ws.flows as u64;
        cap += ws.flow_capacity as u64;
        flows6 += ws.flows_ipv6 as u64;
        cap6 += ws.flow_capacity_ipv6 as u64;
        tx_dropped += ws.tx_dropped;
        for (a, b) in punt_dropped.iter_mut().zip(ws.punt_dropped) {
            *a += b;
        }
    }
    let backends: Vec<BackendRow> = rt
        .backends(i.now)
        .into_iter()
        .map(|b| {
            let s = &rt.cfg.services[b.service];
            let id = b.info.id;
            let c = total.backends.get(id as usize).copied().unwrap_or_default();
            BackendRow {
                id,
                service: s.name(),
                ip: b.info.real_ip,
                weight: b.info.weight,
                state: b.info.state,
                health: match (b.checked, b.health.probes, b.health.up) {
                    (false, _, _) => HealthState::Unchecked,
                    (true, 0, _) => HealthState::Pending,
                    (true, _, true) => HealthState::Passing,
                    (true, _, false) => HealthState::Failing,
                },
                drained: b.drained,
                mac: b.info.next_hop_mac.map(dataplane::wire::MacAddr),
                last_probe_ms: b.health.last_latency.map(|d| d.as_secs_f64() * 1e3),
                last_error: b.health.last_error.clone(),
                probes: b.health.probes,
                transitions: b.health.transitions,
                packets: c.packets,
                bytes: c.bytes,
                new_flows: c.new_flows,
                active_flows: active.get(id as usize).copied().unwrap_or(0),
            }
        })
        .collect();
    let services = rt
        .cfg
        .services
        .iter()
        .map(|s| {
            let id = rt.service_id(s);
            let c = total.services.get(id as usize).copied().unwrap_or_default();
            let name = s.name();
            let mine: Vec<&BackendRow> = backends.iter().filter(|r| r.service == name).collect();
            ServiceRow {
                id,
                vip: s.vip,
                port: s.port,
                protocol: s.protocol,
                mode: s.mode,
                scheduler: s.scheduler,
                persistence: s.persistence.as_ref().map(|p| format!("{} {}", p.by.name(), p.timeout)),
                backends_up: mine.iter().filter(|r| r.state == BackendState::Up).count(),
                backends: mine.len(),
                packets: c.packets,
                bytes: c.bytes,
                new_flows: c.new_flows,
                active_flows: mine.iter().map(|r| r.active_flows).sum(),
                name,
            }
        })
        .collect();
    let ports = rt
        .cfg
        .ports
        .iter()
        .enumerate()
        .map(|(k, pc)| PortRow {
            index: k as u16,
            device: pc.device.clone(),
            role: pc.role,
            mac: rt.port_macs[k],
            addresses: pc.addresses.clone(),
            mtu: pc.mtu,
            counters: i.ports.get(k).copied().unwrap_or_default(),
        })
        .collect();
    let neighbors =
        rt.neigh.list(i.now).into_iter().map(|(port, ip, mac)| NeighborRow { port, ip, mac }).collect();
    let stats = Stats {
        rx_packets: total.rx_packets,
        forwarded: total.forwarded,
        to_control: total.to_control,
        drops: DropReason::ALL.iter().map(|r| (r.name().to_string(), total.dropped(*r))).collect(),
        flows,
        flow_capacity: cap,
        flows_ipv6: flows6,
        flow_capacity_ipv6: cap6,
        stateless_fallbacks: total.stateless_fallbacks,
        midflow_without_state: total.midflow_without_state,
        embryonic_expired: total.embryonic_expired,
        reclaimed_on_insert: total.reclaimed_on_insert,
        expired_by_sweep: total.expired_by_sweep,
        rescheduled: total.rescheduled,
        icmp_errors_steered: total.icmp_errors_steered,
        frag_needed_sent: total.frag_needed_sent,
        frag_needed_rate_limited: total.frag_needed_rate_limited,
        outer_fragments: total.outer_fragments,
        inline_routed: total.inline_routed,
        tx_dropped,
        punt_dropped: dataplane::Punt::ALL
            .iter()
            .map(|k| (k.name().to_string(), punt_dropped[*k as usize]))
            .collect(),
        control_frames: i.control.frames,
        arp_replies_sent: i.control.arp_replies,
        arp_taken: rt.neigh.counters.taken,
        arp_unsolicited: rt.neigh.counters.unsolicited,
        arp_rejected: rt.neigh.counters.rejected,
        arp_conflicts: rt.neigh.counters.conflicts,
        arp_changes: rt.neigh.counters.changes,
        echo_replies_sent: i.control.echo_replies,
        probe_replies: i.control.probe_replies,
        probe_replies_forged: i.control.probe_replies_forged,
        to_kernel: i.control.to_kernel,
        from_kernel: i.control.from_kernel,
        to_kernel_refused: i.control.to_kernel_refused,
    };
    let up = i.now.saturating_duration_since(i.start);
    let status = Status {
        version: crate::cli::VERSION.into(),
        config: i.config_path.to_string(),
        uptime_s: up.as_secs(),
        uptime_ms: up.as_millis() as u64,
        workers: i.workers.len(),
        epoch: i.epoch,
        worker_epochs: i.workers.iter().map(|w| w.epoch).collect(),
        worker_heartbeat_age_ms: i.worker_idle_ms.to_vec(),
        reloads: i.reloads,
        last_reload_error: i.last_reload_error.map(str::to_string),
        ports,
        neighbors,
        announced: i.announced.clone(),
        draining: i.draining,
        config_digest: i.digest.to_string(),
    };
    View { status, services, backends, stats }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use dataplane::counters::TrafficCounters;
    use dataplane::wire::MacAddr;

    #[test]
    fn the_view_sums_workers_and_states_backends_from_known_state() {
        let cfg = Config::parse(
            r#"#![enable(implicit_some)]
(
    ports: [(device: "net_null0", addresses: ["10.0.0.2/24"])],
    services: [
        (vip: "10.0.0.100", port: 80, mode: dscp(7), persistence: (by: source_ip, timeout: 60.0),
         health_check: (check: tcp),
         backends: [(ip: "10.0.0.11"), (ip: "10.0.0.12", drain: true), (ip: "10.0.0.13")]),
    ],
)"#,
        )
        .unwrap();
        let now = Instant::now();
        let mut rt = Runtime::new(cfg, vec![MacAddr([2, 0, 0, 0, 0, 0xfe])]);
        for (ip, up) in [("10.0.0.11", true), ("10.0.0.12", true), ("10.0.0.13", false)] {
            let ip = ip.parse().unwrap();
            rt.neigh.assume(0, ip, MacAddr([2, 0, 0, 0, 0, 0x11]), now);
            let id = rt.backend_id(&rt.cfg.services[0].clone(), ip);
            let h = rt.health.get_mut(&id).unwrap();
            (h.up, h.probes) = (up, 3);
        }
        let mut w = WorkerStats::default();
        w.counters.ensure_ids(1, 3);
        w.counters.rx_packets = 10;
        w.counters.drop(DropReason::NoService);
        w.counters.services[0] = TrafficCounters { packets: 9, bytes: 900, new_flows: 3 };
        w.counters.backends[0] = TrafficCounters { packets: 5, bytes: 500, new_flows: 2 };
        w.active = vec![2, 1, 0];
        w.epoch = 4;
        let workers = [w.clone(), w];
        let v = build(
            &rt,
            &Inputs {
                now,
                start: now,
                config_path: "x.ron",
                epoch: 4,
                reloads: 1,
                last_reload_error: None,
                workers: &workers,
                worker_idle_ms: &[0, 0],
                ports: &[PortCounters::default()],
                control: ControlCounters { frames: 7, ..ControlCounters::default() },
                announced: None,
                draining: false,
                digest: "",
            },
        );
        let states: Vec<_> = v.backends.iter().map(|b| (b.state, b.health)).collect();
        assert_eq!(
            states,
            [
                (BackendState::Up, HealthState::Passing),
                (BackendState::Draining, HealthState::Passing),
                (BackendState::Down, HealthState::Failing)
            ]
        );
        assert_eq!((v.backends[0].packets, v.backends[0].active_flows), (10, 4), "summed over two workers");
        let s = &v.services[0];
        assert_eq!(
            (s.name.as_str(), s.backends_up, s.backends, s.packets, s.active_flows),
            ("10.0.0.100:80/tcp", 1, 3, 18, 6)
        );
        assert_eq!(s.persistence.as_deref(), Some("source_ip 60 s"));
        assert_eq!(s.mode.to_string(), "dscp(7)");
        assert_eq!((v.stats.rx_packets, v.stats.drops["no_service"], v.stats.control_frames), (20, 2, 7));
        assert_eq!((v.status.worker_epochs.clone(), v.status.workers), (vec![4, 4], 2));
    }
}
