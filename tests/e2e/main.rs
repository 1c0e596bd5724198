//! End-to-end tests: real TCP and UDP clients reach real kernel servers through the real dsrlb
//! binary, in every DSR mode, and the answers go straight back. Run as root (CI does); each
//! topology creates its namespaces and removes them, even when a case fails.
//!
//! EAL and the testbed are per process and slow to build, so this binary runs its cases in
//! order from its own main and prints one line per case and a closing "N passed, M failed".

mod fleet;
mod hardening;
mod harness;
mod inline;
mod ipv6;
mod one_arm;

use std::panic::{catch_unwind, AssertUnwindSafe};

use harness::Testbed;

type Case<T = Testbed> = (&'static str, fn(&T));
/// A topology: its name, how to bring it up, and the cases run on it.
type Topology = (&'static str, fn() -> Testbed, &'static [Case]);

fn run_cases<T>(
    tb: &T,
    cases: &[Case<T>],
    filter: &Option<String>,
    passed: &mut u32,
    failed: &mut Vec<String>,
) {
    for (name, case) in cases {
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let t = std::time::Instant::now();
        match catch_unwind(AssertUnwindSafe(|| case(tb))) {
            Ok(()) => {
                println!("test {name} ... ok ({:.1} s)", t.elapsed().as_secs_f64());
                *passed += 1;
            }
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                println!("test {name} ... FAILED ({:.1} s): {msg}", t.elapsed().as_secs_f64());
                failed.push(name.to_string());
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let filter = args.first().cloned();
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false);
    if !root {
        eprintln!("e2e: needs root (network namespaces, DPDK taps); run scripts/test.sh as root");
        std::process::exit(1);
    }
    let (mut passed, mut failed) = (0u32, Vec::new());
    let topologies: [Topology; 3] = [
        ("one-arm", one_arm::testbed, one_arm::CASES),
        ("inline", inline::testbed, inline::CASES),
        ("one-arm, hostile", hardening::testbed, hardening::CASES),
    ];
    for (topo, make, cases) in topologies {
        if filter
            .as_ref()
            .is_some_and(|f| !cases.iter().any(|(n, _)| n.contains(f.as_str())) && !topo.contains(f.as_str()))
        {
            continue;
        }
        let f =
            if filter.as_ref().is_some_and(|f| topo.contains(f.as_str())) { None } else { filter.clone() };
        println!("-- {topo} testbed");
        match catch_unwind(make) {
            Ok(tb) => {
                run_cases(&tb, cases, &f, &mut passed, &mut failed);
                drop(tb);
            }
            Err(_) => {
                println!("test {topo}_testbed_up ... FAILED");
                failed.push(format!("{topo}_testbed_up"));
                let _ = std::process::Command::new(harness::repo().join("scripts/testbed.sh"))
                    .arg("down")
                    .status();
            }
        }
    }
    // The fleet: several instances, each in its own namespace, behind a BIRD router.
    if filter.as_ref().is_none_or(|f| {
        "fleet".contains(f.as_str()) || fleet::CASES.iter().any(|(n, _)| n.contains(f.as_str()))
    }) {
        let f =
            if filter.as_ref().is_some_and(|f| "fleet".contains(f.as_str())) { None } else { filter.clone() };
        println!("-- fleet testbed");
        match catch_unwind(fleet::Fleet::up) {
            Ok(fl) => {
                run_cases(&fl, fleet::CASES, &f, &mut passed, &mut failed);
                drop(fl);
            }
            Err(_) => {
                println!("test fleet_testbed_up ... FAILED");
                failed.push("fleet_testbed_up".to_string());
                let _ = std::process::Command::new(harness::repo().join("scripts/testbed.sh"))
                    .arg("down")
                    .status();
            }
        }
    }
    println!("\ne2e: {passed} passed, {} failed", failed.len());
    if !failed.is_empty() {
        println!("failed: {}", failed.join(", "));
        std::process::exit(1);
    }
}
