//! Real packets through DPDK virtual devices with our bindings.
//!
//! EAL can be initialised once per process, so this binary has its own `main` and runs its cases
//! in order against one EAL. It re-runs itself inside a network namespace it creates (and removes)
//! so the `net_tap` case's kernel interface and traffic never touch the host's namespace.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrayvec::ArrayVec;
use dpdk_bindings::{Burst, Eal, Mbuf, Mempool, Port, PortConfig, MAX_BURST};

const NS_ENV: &str = "DSRLB_VDEV_TEST_NETNS";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo test -- --list` and filters from libtest don't apply here; run everything.
    if args.iter().any(|a| a == "--list") {
        return;
    }
    if std::env::var_os(NS_ENV).is_none() && is_root() {
        std::process::exit(rerun_in_netns());
    }
    let eal = Eal::init([
        "dsrlb-vdev-test",
        "--no-huge",
        "-m",
        "512",
        "--no-pci",
        "--no-shconf",
        // Its own runtime directory, which scripts/test.sh removes after the run.
        "--file-prefix",
        "dsrlb-vdev",
        "-l",
        "0-1",
        "--log-level",
        "lib.eal:warning",
    ])
    .expect("EAL init");
    let eal = Arc::new(eal);
    let pool =
        Arc::new(Mempool::new("test_pool", 4095, 0, Mempool::default_data_room(), None).expect("pool"));

    type Case = (&'static str, fn(&Arc<Eal>, &Arc<Mempool>));
    let mut cases: Vec<Case> = vec![
        ("eal_second_init_is_refused", eal_second_init_is_refused),
        ("lcore_launch_runs_on_worker", lcore_launch_runs_on_worker),
        ("mbuf_prepend_adj_trim", mbuf_prepend_adj_trim),
        ("pool_running_dry_is_an_error", pool_running_dry_is_an_error),
        ("burst_fill_from_keeps_order_and_the_rest", burst_fill_from_keeps_order_and_the_rest),
        ("ring_roundtrip_bytes_and_stats", ring_roundtrip_bytes_and_stats),
        ("rx_burst_into_appends_up_to_its_room", rx_burst_into_appends_up_to_its_room),
        ("pcap_receives_and_writes_frames", pcap_receives_and_writes_frames),
        ("null_multiqueue_queues_owned_once", null_multiqueue_queues_owned_once),
    ];
    if std::env::var_os(NS_ENV).is_some() {
        cases.push(("tap_exchanges_frames_with_kernel", tap_exchanges_frames_with_kernel));
    } else {
        println!("note: not root, net_tap case not run");
    }

    let (mut passed, mut failed) = (0, 0);
    for (name, case) in cases {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(&eal, &pool)));
        match r {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    println!("\nvdev: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

fn rerun_in_netns() -> i32 {
    let ns = format!("dsrlb-vdev-{}", std::process::id());
    let ok = Command::new("ip").args(["netns", "add", &ns]).status().map(|s| s.success()).unwrap_or(false);
    if !ok {
        eprintln!("could not create namespace {ns}");
        return 1;
    }
    let exe = std::env::current_exe().expect("current exe");
    let status = Command::new("ip").args(["netns", "exec", &ns]).arg(exe).env(NS_ENV, &ns).status();
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    status.ok().and_then(|s| s.code()).unwrap_or(1)
}

/// An Ethernet/IPv4/UDP frame with a recognisable payload.
fn frame(i: u8, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    let ip_len = (len - 14) as u16;
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 0, 0, i]);
    f[30..34].copy_from_slice(&[10, 0, 1, 1]);
    for (k, b) in f[42..].iter_mut().enumerate() {
        *b = i.wrapping_add(k as u8);
    }
    f
}

fn send(pool: &Mempool, tx: &mut dpdk_bindings::TxQueue, frames: &[Vec<u8>]) {
    let mut burst = Burst::new();
    for f in frames {
        let mut m = pool.alloc().expect("mbuf");
        assert!(m.append(f.len()));
        m.data_mut().copy_from_slice(f);
        burst.push(m).ok().expect("burst room");
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while !burst.is_empty() && Instant::now() < deadline {
        tx.tx_burst(&mut burst);
    }
    assert!(burst.is_empty(), "tx queue did not take every packet");
}

fn receive(rx: &mut dpdk_bindings::RxQueue, want: usize, timeout: Duration) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut burst = Burst::new();
    while got.len() < want && Instant::now() < deadline {
        rx.rx_burst(&mut burst);
        got.extend(burst.drain().map(|m| m.data().to_vec()));
    }
    got
}

fn eal_second_init_is_refused(_: &Arc<Eal>, _: &Arc<Mempool>) {
    let e = Eal::init(["again", "--no-huge"]).err().expect("second init must fail");
    assert!(e.to_string().contains("already initialised"), "{e}");
}

fn lcore_launch_runs_on_worker(eal: &Arc<Eal>, _: &Arc<Mempool>) {
    let workers = eal.worker_lcores();
    assert_eq!(workers, vec![1], "-l 0-1 gives one worker lcore");
    assert_eq!(eal.main_lcore(), 0);
    let job = eal.launch(1, || Eal::current_lcore() as i32 + 100).expect("launch");
    assert_eq!(job.join(), 101);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {})); // the panic below is expected; keep the output clean
    let job = eal.launch(1, || panic!("a panicking job")).expect("launch");
    let rc = job.join();
    std::panic::set_hook(hook);
    assert_eq!(rc, -1, "a panic becomes -1, not an abort");
}

fn mbuf_prepend_adj_trim(_: &Arc<Eal>, pool: &Arc<Mempool>) {
    let mut m = pool.alloc().expect("mbuf");
    assert!(m.is_empty());
    let head = m.headroom();
    assert!(head >= 128, "standard headroom is 128, got {head}");
    assert!(m.append(60));
    m.data_mut().copy_from_slice(&frame(7, 60));
    assert!(m.prepend(20));
    assert_eq!(m.len(), 80);
    assert_eq!(m.headroom(), head - 20);
    m.data_mut()[..20].fill(0xAB);
    assert_eq!(&m.data()[20..], &frame(7, 60)[..]);
    assert!(m.adj(20));
    assert_eq!(m.data(), &frame(7, 60)[..]);
    assert!(m.trim(10));
    assert_eq!(m.len(), 50);
    assert!(!m.trim(51), "trimming more than the packet is refused");
    assert!(!m.adj(51));
    assert!(!m.prepend(head + 1), "prepending past the headroom is refused");
    assert_eq!(m.len(), 50, "a refused operation changes nothing");
    assert!(m.set_len(64));
    assert_eq!(m.len(), 64);
    assert_eq!(m.pkt_len(), 64, "the packet length follows every change");
    let tail = m.tailroom();
    assert!(!m.append(tail + 1), "appending past the tailroom is refused");
    assert!(m.append(tail));
    assert_eq!((m.tailroom(), m.len(), m.pkt_len()), (0, 64 + tail, 64 + tail));
    assert!(m.prepend(head));
    assert_eq!((m.headroom(), m.pkt_len()), (0, 64 + tail + head));
}

fn pool_running_dry_is_an_error(_: &Arc<Eal>, _: &Arc<Mempool>) {
    let small = Mempool::new("dry_pool", 63, 0, 256 + 128, None).expect("small pool");
    let mut held = Vec::new();
    while let Some(m) = small.alloc() {
        held.push(m);
        assert!(held.len() <= 63);
    }
    assert_eq!(held.len(), 63);
    assert_eq!(small.available(), 0);
    let mut b = Burst::new();
    assert!(small.alloc_bulk(&mut b, 4).is_err(), "bulk alloc from an empty pool fails");
    assert!(b.is_empty());
    held.truncate(10);
    assert_eq!(small.available(), 53);
    small.alloc_bulk(&mut b, 8).expect("bulk alloc after returns");
    assert_eq!(b.len(), 8);
    drop(b);
    drop(held);
    assert_eq!(small.available(), 63, "every mbuf is back");
}

fn burst_fill_from_keeps_order_and_the_rest(_: &Arc<Eal>, _: &Arc<Mempool>) {
    let pool = Mempool::new("fill_pool", 127, 0, 256 + 128, None).expect("pool");
    let mbuf = |i: u8| {
        let mut m = pool.alloc().expect("mbuf");
        assert!(m.append(1));
        m.data_mut()[0] = i;
        m
    };
    let mut b = Burst::new();
    for i in 0..60 {
        assert!(b.push(mbuf(i)).is_ok(), "room");
    }
    let mut more = (60..70).map(mbuf).collect::<Vec<_>>().into_iter();
    assert_eq!(b.fill_from(&mut more), 4, "only what fits is taken");
    assert!(b.is_full());
    assert_eq!(more.len(), 6, "the rest stays with the caller");
    let order: Vec<u8> = b.as_slice().iter().map(|m| m.data()[0]).collect();
    assert_eq!(order, (0..64).collect::<Vec<u8>>());
    b.clear();
    assert_eq!(b.fill_from(&mut more), 6);
    assert_eq!(b.as_slice().iter().map(|m| m.data()[0]).collect::<Vec<u8>>(), (64..70).collect::<Vec<u8>>());
    drop(b);
    assert_eq!(pool.available(), 127, "every mbuf is back");
}

fn ring_roundtrip_bytes_and_stats(eal: &Arc<Eal>, pool: &Arc<Mempool>) {
    eal.create_vdev("net_ring0", "").expect("net_ring0");
    let id = Port::find("net_ring0").expect("find net_ring0");
    let port = Port::start(id, &PortConfig::default(), pool.clone()).expect("start");
    assert_eq!(port.name(), "net_ring0");
    let mut tx = port.tx_queue(0).unwrap();
    let mut rx = port.rx_queue(0).unwrap();
    let frames: Vec<Vec<u8>> = (0..40).map(|i| frame(i, 60 + i as usize * 7)).collect();
    send(pool, &mut tx, &frames);
    let got = receive(&mut rx, frames.len(), Duration::from_secs(2));
    assert_eq!(got, frames, "net_ring loops TX back to RX byte for byte");
    let st = port.stats().unwrap();
    assert_eq!(st.tx_packets, 40);
    assert_eq!(st.rx_packets, 40);
    println!("  net_ring0: sent and received {} frames, {} bytes", st.rx_packets, st.rx_bytes);
}

/// `rx_burst_into` writes straight into an `ArrayVec` of mbufs: after what it holds, no more
/// than its room, in order; `tx_burst_from` sends from one; every mbuf goes back to the pool.
fn rx_burst_into_appends_up_to_its_room(eal: &Arc<Eal>, _: &Arc<Mempool>) {
    let pool = Arc::new(Mempool::new("into_pool", 255, 0, Mempool::default_data_room(), None).expect("pool"));
    eal.create_vdev("net_ring1", "").expect("net_ring1");
    let port = Port::start(Port::find("net_ring1").expect("find"), &PortConfig::default(), pool.clone())
        .expect("start");
    let (mut tx, mut rx) = (port.tx_queue(0).unwrap(), port.rx_queue(0).unwrap());
    let frames: Vec<Vec<u8>> = (0..12).map(|i| frame(i, 60 + i as usize)).collect();
    send(&pool, &mut tx, &frames);
    let mut out: ArrayVec<Mbuf, 8> = ArrayVec::new();
    let first = pool.alloc().expect("mbuf");
    out.push(first);
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(2);
    while got < 7 && Instant::now() < deadline {
        got += rx.rx_burst_into(&mut out);
    }
    assert_eq!(got, 7, "only the room it had");
    assert!(out.is_full());
    assert_eq!(rx.rx_burst_into(&mut out), 0, "none when full");
    let bytes: Vec<Vec<u8>> = out[1..].iter().map(|m| m.data().to_vec()).collect();
    assert_eq!(bytes, frames[..7], "appended after what it held, in order");
    out.clear();
    while got < 12 && Instant::now() < deadline {
        got += rx.rx_burst_into(&mut out);
    }
    assert_eq!(out.iter().map(|m| m.data().to_vec()).collect::<Vec<_>>(), frames[7..]);
    // And back out from the same vector: the device takes them all, the vector is left empty.
    assert_eq!(tx.tx_burst_from(&mut out), 5);
    assert!(out.is_empty());
    assert_eq!(receive(&mut rx, 5, Duration::from_secs(2)), frames[7..], "sent in order, byte for byte");
    drop(out);
    drop((tx, rx, port));
    assert_eq!(pool.available(), 255, "every mbuf is back");
}

fn write_pcap(path: &PathBuf, frames: &[Vec<u8>]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        out.extend_from_slice(&(i as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    std::fs::write(path, out).unwrap();
}

fn read_pcap(path: &PathBuf) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).unwrap();
    let mut frames = Vec::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        let caplen = u32::from_le_bytes(data[off + 8..off + 12].try_into().unwrap()) as usize;
        off += 16;
        frames.push(data[off..off + caplen].to_vec());
        off += caplen;
    }
    frames
}

fn pcap_receives_and_writes_frames(eal: &Arc<Eal>, pool: &Arc<Mempool>) {
    let dir = std::env::temp_dir().join(format!("dsrlb-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (inp, outp) = (dir.join("in.pcap"), dir.join("out.pcap"));
    let frames: Vec<Vec<u8>> = (0..5).map(|i| frame(i, 64 + 100 * i as usize)).collect();
    write_pcap(&inp, &frames);
    eal.create_vdev("net_pcap0", &format!("rx_pcap={},tx_pcap={}", inp.display(), outp.display()))
        .expect("net_pcap0");
    let port =
        Port::start(Port::find("net_pcap0").unwrap(), &PortConfig::default(), pool.clone()).expect("start");
    let mut rx = port.rx_queue(0).unwrap();
    let got = receive(&mut rx, 5, Duration::from_secs(2));
    assert_eq!(got, frames, "frames read from the capture arrive byte for byte");
    let mut tx = port.tx_queue(0).unwrap();
    let back: Vec<Vec<u8>> = got.iter().rev().cloned().collect();
    send(pool, &mut tx, &back);
    drop((rx, tx, port)); // closing the port flushes the capture file
    assert_eq!(read_pcap(&outp), back, "frames sent are written to the capture");
    std::fs::remove_dir_all(&dir).unwrap();
    println!("  net_pcap0: received 5 frames from a capture, wrote 5 back");
}

fn null_multiqueue_queues_owned_once(eal: &Arc<Eal>, pool: &Arc<Mempool>) {
    eal.create_vdev("net_null0", "").expect("net_null0");
    let cfg = PortConfig { rx_queues: 4, tx_queues: 4, ..PortConfig::default() };
    let port = Port::start(Port::find("net_null0").unwrap(), &cfg, pool.clone()).expect("start 4 queues");
    assert_eq!(port.rx_queue_count(), 4);
    let mut rxs: Vec<_> = (0..4).map(|q| port.rx_queue(q).expect("queue")).collect();
    assert!(port.rx_queue(2).is_err(), "a queue has one owner");
    assert!(port.rx_queue(4).is_err(), "queue 4 does not exist");
    let mut txs: Vec<_> = (0..4).map(|q| port.tx_queue(q).expect("queue")).collect();
    // net_null generates packets on every RX queue and swallows everything sent.
    for (rx, tx) in rxs.iter_mut().zip(txs.iter_mut()) {
        let mut b = Burst::new();
        let n = rx.rx_burst(&mut b);
        assert_eq!(n, MAX_BURST, "queue {} delivered a full burst", rx.queue_id());
        let sent = tx.tx_burst(&mut b);
        assert_eq!(sent, n);
    }
    let st = port.stats().unwrap();
    assert_eq!(st.rx_packets, 4 * MAX_BURST as u64);
    assert!(!port.xstats().unwrap().is_empty(), "xstats are listed");
}

fn ip(args: &[&str]) {
    let ok = Command::new("ip").args(args).status().map(|s| s.success()).unwrap_or(false);
    assert!(ok, "ip {args:?} failed");
}

fn sysfs_counter(dev: &str, name: &str) -> u64 {
    std::fs::read_to_string(format!("/sys/class/net/{dev}/statistics/{name}"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn tap_exchanges_frames_with_kernel(eal: &Arc<Eal>, pool: &Arc<Mempool>) {
    let dev = "dsrlbtap0";
    eal.create_vdev("net_tap0", &format!("iface={dev},mac=02:00:00:00:aa:01")).expect("net_tap0");
    let port =
        Port::start(Port::find("net_tap0").unwrap(), &PortConfig::default(), pool.clone()).expect("start");
    assert_eq!(port.mac().unwrap(), [2, 0, 0, 0, 0xaa, 1]);
    ip(&["link", "set", dev, "address", "02:00:00:00:bb:01"]);
    ip(&["addr", "add", "192.0.2.1/24", "dev", dev]);
    ip(&["link", "set", dev, "up"]);
    let mut rx = port.rx_queue(0).unwrap();
    let mut tx = port.tx_queue(0).unwrap();

    // The kernel resolves 192.0.2.2 by ARP: its request must reach DPDK through the tap.
    let mut ping =
        Command::new("ping").args(["-c", "3", "-i", "0.3", "-W", "1", "192.0.2.2"]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut arp = None;
    let mut b = Burst::new();
    while arp.is_none() && Instant::now() < deadline {
        rx.rx_burst(&mut b);
        arp = b.drain().map(|m| m.data().to_vec()).find(|f| f.len() >= 42 && f[12..14] == [0x08, 0x06]);
    }
    let _ = ping.wait();
    let arp = arp.expect("ARP request from the kernel arrives on the DPDK side");
    assert_eq!(&arp[6..12], &[2, 0, 0, 0, 0xbb, 1], "sent by the kernel side of the tap");
    assert_eq!(&arp[38..42], &[192, 0, 2, 2], "asking for 192.0.2.2");

    // And a frame sent by DPDK arrives in the kernel.
    let before = sysfs_counter(dev, "rx_packets");
    let mut f = frame(9, 80);
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0xbb, 1]);
    send(pool, &mut tx, &[f.clone(), f]);
    std::thread::sleep(Duration::from_millis(200));
    let after = sysfs_counter(dev, "rx_packets");
    assert_eq!(after - before, 2, "the kernel counted both frames DPDK sent");
    println!("  net_tap0: received the kernel's ARP request, kernel received 2 frames");
}
