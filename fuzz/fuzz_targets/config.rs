//! Fuzz the configuration parser and validator: arbitrary text never panics, and a file it
//! accepts builds a snapshot.
#![no_main]

use control::config::Config;
use control::runtime::Runtime;
use dataplane::wire::MacAddr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(cfg) = Config::parse(text) {
        let macs = vec![MacAddr([2, 0, 0, 0, 0, 2]); cfg.ports.len()];
        let mut rt = Runtime::new(cfg, macs);
        assert!(rt.build_snapshot(std::time::Instant::now()).is_ok());
    }
});
