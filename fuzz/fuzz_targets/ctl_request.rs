//! Fuzz the control socket's request parser and the table renderer.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = control::ctl::parse_request(data) {
        let answer = serde_json::from_slice(data).unwrap_or(serde_json::Value::Null);
        let _ = control::ctl::render(&req.cmd, &answer);
    }
});
