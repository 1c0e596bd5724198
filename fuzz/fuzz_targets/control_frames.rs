//! Fuzz the control core with the frames workers punt to it: arbitrary bytes as a sequence of
//! frames (ARP, echo, probe answers and anything else) into a whole control core on in-memory
//! links, with a moving clock. Nothing may panic; everything it sends is ARP, IPv4 or IPv6.
#![no_main]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use control::config::Config;
use control::core::mem::MemLinks;
use control::core::ControlCore;
use control::runtime::Runtime;
use control::view::View;
use dataplane::wire::{EthernetFrame, MacAddr, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use libfuzzer_sys::fuzz_target;

const CONFIG: &str = include_str!("../../docs/examples/testbed-one-arm.ron");

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut rt = Runtime::new(Config::parse(CONFIG).unwrap(), vec![MacAddr([2, 0, 0, 0, 0, 2])]);
    let snap = Arc::new(rt.build_snapshot(t0).unwrap());
    let mut cc = ControlCore::new(
        MemLinks::default(),
        rt,
        snap,
        "x.ron".into(),
        Arc::new(Mutex::new(View::default())),
        t0,
    );
    // Frames: [len byte][len bytes]..., each followed by 5 ms of the control core's time.
    let (mut i, mut k) = (0usize, 0u64);
    while i < data.len() {
        let len = data[i] as usize;
        let frame = &data[i + 1..(i + 1 + len).min(data.len())];
        i += 1 + len;
        cc.links_mut().punted.push_back((0, frame.to_vec()));
        k += 1;
        cc.poll(t0 + Duration::from_millis(5 * k));
    }
    for (_, f) in &cc.links().sent {
        let e = EthernetFrame::new_checked(f).expect("an Ethernet frame");
        assert!(matches!(e.ethertype(), ETHERTYPE_ARP | ETHERTYPE_IPV4 | ETHERTYPE_IPV6));
    }
});
