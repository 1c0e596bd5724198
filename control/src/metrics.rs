//! Prometheus metrics over HTTP (bound to 127.0.0.1 by default), encoded with the
//! `prometheus-client` crate from the latest view.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use dataplane::snapshot::BackendState;

use crate::view::{HealthState, View};

type Labels = Vec<(String, String)>;

/// Serve `/metrics` on `addr` from the latest view (bounded connections, short deadlines:
/// `serve.rs`).
pub fn serve(addr: SocketAddr, view: Arc<Mutex<View>>) -> Result<(), String> {
    let listener = std::net::TcpListener::bind(addr).map_err(|e| e.to_string())?;
    crate::serve::spawn(
        "dsrlb-metrics",
        crate::serve::tcp(listener),
        |req| req.windows(4).any(|w| w == b"\r\n\r\n") || req.windows(2).any(|w| w == b"\n\n"),
        move |req, out| {
            let path = std::str::from_utf8(req).ok().and_then(|r| r.split_whitespace().nth(1)).unwrap_or("");
            let (status, body) = if path == "/metrics" {
                let v = view.lock().map(|v| v.clone()).unwrap_or_default();
                ("200 OK", render(&v))
            } else {
                ("404 Not Found", "dsrlb: metrics at /metrics\n".to_string())
            };
            write!(
                out,
                "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        },
    )
    .map_err(|e| e.to_string())
}

fn counter(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, Counter> {
    let f = Family::<Labels, Counter>::default();
    reg.register(name, help, f.clone());
    f
}

fn gauge(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, Gauge> {
    let f = Family::<Labels, Gauge>::default();
    reg.register(name, help, f.clone());
    f
}

fn l(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The text exposition of a view.
pub fn render(v: &View) -> String {
    let mut reg = Registry::with_prefix("dsrlb");
    let port_pkts = counter(&mut reg, "port_packets", "Packets per port and direction (DPDK counters)");
    let port_bytes = counter(&mut reg, "port_bytes", "Bytes per port and direction (DPDK counters)");
    let port_err =
        counter(&mut reg, "port_errors", "Missed, errored and no-mbuf packets per port (DPDK counters)");
    for p in &v.status.ports {
        let i = p.index.to_string();
        let c = &p.counters;
        port_pkts.get_or_create(&l(&[("port", &i), ("dir", "rx")])).inc_by(c.rx_packets);
        port_pkts.get_or_create(&l(&[("port", &i), ("dir", "tx")])).inc_by(c.tx_packets);
        port_bytes.get_or_create(&l(&[("port", &i), ("dir", "rx")])).inc_by(c.rx_bytes);
        port_bytes.get_or_create(&l(&[("port", &i), ("dir", "tx")])).inc_by(c.tx_bytes);
        port_err.get_or_create(&l(&[("port", &i), ("kind", "rx_missed")])).inc_by(c.rx_missed);
        port_err.get_or_create(&l(&[("port", &i), ("kind", "rx_errors")])).inc_by(c.rx_errors);
        port_err.get_or_create(&l(&[("port", &i), ("kind", "tx_errors")])).inc_by(c.tx_errors);
        port_err.get_or_create(&l(&[("port", &i), ("kind", "rx_no_mbuf")])).inc_by(c.rx_no_mbuf);
    }
    let sp = counter(&mut reg, "service_packets", "Packets forwarded per service");
    let sb = counter(&mut reg, "service_bytes", "Bytes forwarded per service");
    let sn = counter(&mut reg, "service_new_flows", "New flows per service");
    let sa = gauge(&mut reg, "service_active_flows", "Active flows per service");
    let su = gauge(&mut reg, "service_backends_up", "Backends taking new flows per service");
    for s in &v.services {
        let mode = s.mode.to_string();
        let lab = l(&[("service", &s.name), ("mode", &mode)]);
        sp.get_or_create(&lab).inc_by(s.packets);
        sb.get_or_create(&lab).inc_by(s.bytes);
        sn.get_or_create(&lab).inc_by(s.new_flows);
        sa.get_or_create(&lab).set(s.active_flows as i64);
        su.get_or_create(&lab).set(s.backends_up as i64);
    }
    let bp = counter(&mut reg, "backend_packets", "Packets forwarded per backend");
    let bb = counter(&mut reg, "backend_bytes", "Bytes forwarded per backend");
    let bn = counter(&mut reg, "backend_new_flows", "New flows per backend");
    let ba = gauge(&mut reg, "backend_active_flows", "Active flows per backend");
    let bu =
        gauge(&mut reg, "backend_up", "1 if the backend takes new flows (healthy, MAC known, not drained)");
    let bh = gauge(&mut reg, "backend_health_passing", "1 if the backend's health checks pass");
    let bl = gauge(&mut reg, "backend_probe_latency_microseconds", "Latency of the last successful probe");
    for b in &v.backends {
        let ip = b.ip.to_string();
        let lab = l(&[("service", &b.service), ("backend", &ip)]);
        bp.get_or_create(&lab).inc_by(b.packets);
        bb.get_or_create(&lab).inc_by(b.bytes);
        bn.get_or_create(&lab).inc_by(b.new_flows);
        ba.get_or_create(&lab).set(b.active_flows as i64);
        bu.get_or_create(&lab).set((b.state == BackendState::Up) as i64);
        bh.get_or_create(&lab).set((b.health != HealthState::Failing) as i64);
        if let Some(ms) = b.last_probe_ms {
            bl.get_or_create(&lab).set((ms * 1000.0) as i64);
        }
    }
    let drops = counter(&mut reg, "drops", "Packets dropped by the dataplane, by reason");
    for (k, n) in &v.stats.drops {
        drops.get_or_create(&l(&[("reason", k)])).inc_by(*n);
    }
    let dp = counter(&mut reg, "dataplane_packets", "Packets by what the dataplane did with them");
    dp.get_or_create(&l(&[("verdict", "received")])).inc_by(v.stats.rx_packets);
    dp.get_or_create(&l(&[("verdict", "forwarded")])).inc_by(v.stats.forwarded);
    dp.get_or_create(&l(&[("verdict", "to_control")])).inc_by(v.stats.to_control);
    let ft =
        gauge(&mut reg, "flow_table_entries", "Flow-table entries in use and capacity, summed over workers");
    ft.get_or_create(&l(&[("kind", "used")])).set(v.stats.flows as i64);
    ft.get_or_create(&l(&[("kind", "capacity")])).set(v.stats.flow_capacity as i64);
    let ft6 = gauge(&mut reg, "flow_table_ipv6_entries", "Of those, the IPv6 tables' entries and capacity");
    ft6.get_or_create(&l(&[("kind", "used")])).set(v.stats.flows_ipv6 as i64);
    ft6.get_or_create(&l(&[("kind", "capacity")])).set(v.stats.flow_capacity_ipv6 as i64);
    let ev = counter(&mut reg, "flow_table_events", "Flow-table events");
    ev.get_or_create(&l(&[("event", "stateless_fallback")])).inc_by(v.stats.stateless_fallbacks);
    ev.get_or_create(&l(&[("event", "midflow_without_state")])).inc_by(v.stats.midflow_without_state);
    ev.get_or_create(&l(&[("event", "embryonic_expired")])).inc_by(v.stats.embryonic_expired);
    ev.get_or_create(&l(&[("event", "reclaimed_on_insert")])).inc_by(v.stats.reclaimed_on_insert);
    ev.get_or_create(&l(&[("event", "expired_by_sweep")])).inc_by(v.stats.expired_by_sweep);
    ev.get_or_create(&l(&[("event", "rescheduled")])).inc_by(v.stats.rescheduled);
    let hb = gauge(&mut reg, "worker_heartbeat_age_milliseconds", "Since each worker's loop last moved");
    for (w, age) in v.status.worker_heartbeat_age_ms.iter().enumerate() {
        hb.get_or_create(&l(&[("worker", &w.to_string())])).set(*age as i64);
    }
    let pd =
        counter(&mut reg, "punt_dropped", "Frames for the control core that found its rings full, by kind");
    for (k, n) in &v.stats.punt_dropped {
        pd.get_or_create(&l(&[("kind", k)])).inc_by(*n);
    }
    let txd =
        counter(&mut reg, "tx_dropped", "Frames the devices did not take (refused, or their queue full)");
    txd.get_or_create(&l(&[])).inc_by(v.stats.tx_dropped);
    let cf =
        counter(&mut reg, "control_frames", "Frames the control core handled, sent and refused, by kind");
    for (k, n) in [
        ("handled", v.stats.control_frames),
        ("arp_reply_sent", v.stats.arp_replies_sent),
        ("echo_reply_sent", v.stats.echo_replies_sent),
        ("probe_reply", v.stats.probe_replies),
        ("probe_reply_forged", v.stats.probe_replies_forged),
        ("to_kernel", v.stats.to_kernel),
        ("from_kernel", v.stats.from_kernel),
        ("to_kernel_refused", v.stats.to_kernel_refused),
    ] {
        cf.get_or_create(&l(&[("kind", k)])).inc_by(n);
    }
    let arp = counter(&mut reg, "arp", "ARP the control core heard, by what it made of it");
    for (k, n) in [
        ("taken", v.stats.arp_taken),
        ("unsolicited", v.stats.arp_unsolicited),
        ("rejected", v.stats.arp_rejected),
        ("conflict", v.stats.arp_conflicts),
        ("changed", v.stats.arp_changes),
    ] {
        arp.get_or_create(&l(&[("kind", k)])).inc_by(n);
    }
    let digest = gauge(
        &mut reg,
        "config_digest",
        "1, labelled with the digest of what must agree across a fleet (services, backends, weights)",
    );
    digest.get_or_create(&l(&[("digest", &v.status.config_digest)])).set(1);
    if let Some(vips) = &v.status.announced {
        let ann =
            gauge(&mut reg, "vip_announced", "1 for each VIP this fleet member announces to its routers");
        for vip in vips {
            ann.get_or_create(&l(&[("vip", &vip.to_string())])).set(1);
        }
        let dr = gauge(&mut reg, "instance_draining", "1 while this fleet member drains before it stops");
        dr.get_or_create(&l(&[])).set(v.status.draining as i64);
    }
    let mut out = String::new();
    let _ = encode(&mut out, &reg);
    out
}

#[cfg(test)]
mod server {
    use super::*;
    use std::io::Read;
    use std::time::{Duration, Instant};

    #[test]
    fn idle_connections_do_not_stop_the_scrape() {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        serve(addr, Arc::new(Mutex::new(View::default()))).unwrap();
        let idle: Vec<std::net::TcpStream> = (0..crate::serve::MAX_CONNECTIONS + 4)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        let t = Instant::now();
        let body = loop {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = c.write_all(b"GET /metrics HTTP/1.0\r\n\r\n");
            let mut body = String::new();
            let _ = c.read_to_string(&mut body);
            if body.starts_with("HTTP/1.0 200") || t.elapsed() > Duration::from_secs(10) {
                break body;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(body.contains("dsrlb_dataplane_packets_total"), "{body}");
        assert!(t.elapsed() < crate::serve::DEADLINE * 3, "scraped within the deadline: {:?}", t.elapsed());
        drop(idle);
    }
}
