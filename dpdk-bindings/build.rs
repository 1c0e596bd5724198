//! Finds the system DPDK (>= 22.11) with pkg-config, compiles the C shim with
//! DPDK's own cflags and generates FFI declarations with an allowlist, so the
//! build stays small and does not depend on every DPDK header compiling.

use std::env;
use std::path::PathBuf;

const MIN_DPDK: &str = "22.11";

fn main() {
    println!("cargo:rerun-if-changed=csrc/shim.h");
    println!("cargo:rerun-if-changed=csrc/shim.c");

    let dpdk =
        match pkg_config::Config::new().atleast_version(MIN_DPDK).cargo_metadata(false).probe("libdpdk") {
            Ok(lib) => lib,
            Err(e) => panic!(
                "dpdk-bindings needs DPDK >= {MIN_DPDK} found by pkg-config ({e}).\n\
             On Debian 12 install it with: apt-get install dpdk-dev libdpdk-dev \
             (or run scripts/setup.sh as root)."
            ),
        };

    // Link only the libraries we call; PMDs (net_tap, net_pcap, ...) are loaded by EAL as plugins.
    for dir in &dpdk.link_paths {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
    for lib in
        ["rte_eal", "rte_mempool", "rte_mbuf", "rte_ring", "rte_ethdev", "rte_bus_vdev", "rte_net_ring"]
    {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }

    // DPDK's cflags carry -include rte_config.h and -march; pass them to both cc and clang.
    let cflags: Vec<String> = pkg_config_cflags();

    let mut build = cc::Build::new();
    build.file("csrc/shim.c").opt_level(3).warnings(false);
    for f in &cflags {
        build.flag(f);
    }
    build.compile("dsrlb_shim");

    let mut bindings = bindgen::Builder::default()
        .header("csrc/shim.h")
        .clang_args(cflags.iter())
        .allowlist_function("dsrlb_.*")
        .allowlist_function("rte_eal_(init|cleanup|remote_launch|wait_lcore|mp_wait_lcore)")
        .allowlist_function("rte_(lcore_count|get_next_lcore|get_main_lcore|lcore_is_enabled|socket_id|lcore_to_socket_id|get_tsc_hz|strerror|delay_us_block)")
        .allowlist_function("rte_pktmbuf_pool_create|rte_mempool_free|rte_pktmbuf_free_bulk")
        .allowlist_function("rte_eth_(dev_configure|dev_info_get|rx_queue_setup|tx_queue_setup|dev_start|dev_stop|dev_close|dev_socket_id|dev_count_avail|dev_get_port_by_name|dev_get_name_by_port|macaddr_get|dev_default_mac_addr_set|dev_set_mtu|dev_get_mtu|promiscuous_enable|promiscuous_disable|promiscuous_get|allmulticast_enable|stats_get|stats_reset|xstats_get|xstats_get_names|dev_is_valid_port|dev_rss_hash_update|dev_rss_reta_update)")
        .allowlist_function("rte_vdev_(init|uninit)")
        .allowlist_function("rte_ring_(create|free)|rte_eth_from_rings")
        .allowlist_type("rte_eth_conf|rte_eth_dev_info|rte_eth_rxconf|rte_eth_txconf|rte_eth_stats|rte_eth_xstat|rte_eth_xstat_name|rte_ether_addr|rte_mbuf|rte_mempool|rte_ring")
        .allowlist_var("RTE_MAX_LCORE|RTE_MAX_ETHPORTS|RTE_PKTMBUF_HEADROOM|RTE_MBUF_DEFAULT_BUF_SIZE|SOCKET_ID_ANY|RTE_ETH_XSTATS_NAME_SIZE")
        .rustified_enum("rte_eth_rx_mq_mode|rte_eth_tx_mq_mode")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    if let Ok(target) = env::var("TARGET") {
        bindings = bindings.clang_arg(format!("--target={target}"));
    }
    let bindings = bindings.generate().expect("bindgen failed on DPDK headers (is libclang-dev installed?)");

    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("dpdk_ffi.rs");
    bindings.write_to_file(out).expect("writing bindings");
}

/// pkg-config's parsed include paths lose `-include rte_config.h` and `-march`, which DPDK
/// headers need; ask for the raw cflags instead.
fn pkg_config_cflags() -> Vec<String> {
    let out = std::process::Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .expect("running pkg-config --cflags libdpdk");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut flags = Vec::new();
    let mut it = text.split_whitespace();
    while let Some(f) = it.next() {
        if f == "-include" {
            if let Some(h) = it.next() {
                flags.push("-include".to_string());
                flags.push(h.to_string());
            }
        } else {
            flags.push(f.to_string());
        }
    }
    flags
}
