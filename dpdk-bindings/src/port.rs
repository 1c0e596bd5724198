//! Ethernet ports (physical NICs by PCI address, or virtual devices) and their queues.

use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrayvec::ArrayVec;

use crate::error::{DpdkError, Result};
use crate::ffi;
use crate::mbuf::{Burst, Mbuf};
use crate::mempool::Mempool;

/// How to bring a port up.
#[derive(Debug, Clone)]
pub struct PortConfig {
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_descriptors: u16,
    pub tx_descriptors: u16,
    /// IP MTU to set; `None` keeps the device default.
    pub mtu: Option<u16>,
    pub promiscuous: bool,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_descriptors: 1024,
            tx_descriptors: 1024,
            mtu: None,
            promiscuous: true,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Dropped by the NIC because software did not poll fast enough.
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_no_mbuf: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    pub up: bool,
    pub speed_mbps: u32,
    pub full_duplex: bool,
}

struct PortShared {
    id: u16,
    name: String,
    rx_queues: u16,
    tx_queues: u16,
    // One bit per queue handed out: a queue has exactly one owner (one lcore).
    rx_taken: AtomicU64,
    tx_taken: AtomicU64,
    // The RX queues refer to the pool's memory: keep it alive as long as the port.
    _pool: Arc<Mempool>,
}

impl Drop for PortShared {
    fn drop(&mut self) {
        // SAFETY: the port was configured by us and no queue handle remains (they hold an Arc);
        // stop and close release the device. Errors on teardown are ignored on purpose.
        unsafe {
            ffi::rte_eth_dev_stop(self.id);
            ffi::rte_eth_dev_close(self.id);
        }
    }
}

/// A configured port. Cloning shares it; the device is closed when the last handle and queue go.
#[derive(Clone)]
pub struct Port {
    inner: Arc<PortShared>,
}

fn check(op: &'static str, rc: i32) -> Result<()> {
    if rc < 0 {
        Err(DpdkError::from_rc(op, rc))
    } else {
        Ok(())
    }
}

impl Port {
    /// The port id of a device by its name: a PCI address (`0000:3b:00.0`) or vdev (`net_tap0`).
    pub fn find(name: &str) -> Result<u16> {
        let c = CString::new(name)
            .map_err(|_| DpdkError::other("rte_eth_dev_get_port_by_name", "NUL in name"))?;
        let mut id: u16 = 0;
        // SAFETY: c is NUL-terminated; id is a valid out-pointer.
        let rc = unsafe { ffi::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        if rc != 0 {
            return Err(DpdkError::other("rte_eth_dev_get_port_by_name", format!("no port named {name:?}")));
        }
        Ok(id)
    }

    /// Number of ports EAL found.
    pub fn count() -> u16 {
        // SAFETY: a plain getter.
        unsafe { ffi::rte_eth_dev_count_avail() }
    }

    /// Configure port `id` with `cfg`, RSS over IPv4/IPv6 addresses and TCP/UDP ports when it has
    /// several RX queues, RX buffers from `pool`; then start it.
    pub fn start(id: u16, cfg: &PortConfig, pool: Arc<Mempool>) -> Result<Port> {
        // SAFETY: plain validity check on a value.
        if unsafe { ffi::rte_eth_dev_is_valid_port(id) } == 0 {
            return Err(DpdkError::other("rte_eth_dev_configure", format!("port {id} does not exist")));
        }
        if cfg.rx_queues == 0 || cfg.tx_queues == 0 || cfg.rx_queues > 64 || cfg.tx_queues > 64 {
            return Err(DpdkError::other("rte_eth_dev_configure", "queue counts must be 1..=64"));
        }
        let mut info = ffi::rte_eth_dev_info::default();
        // SAFETY: info is a valid out-pointer sized for the struct bindgen generated.
        check("rte_eth_dev_info_get", unsafe { ffi::rte_eth_dev_info_get(id, &mut info) })?;
        if cfg.rx_queues > info.max_rx_queues || cfg.tx_queues > info.max_tx_queues {
            return Err(DpdkError::other(
                "rte_eth_dev_configure",
                format!(
                    "port {id} supports at most {} RX / {} TX queues, asked {} / {}",
                    info.max_rx_queues, info.max_tx_queues, cfg.rx_queues, cfg.tx_queues
                ),
            ));
        }

        let mut conf = ffi::rte_eth_conf::default();
        // SAFETY: a constant from the shim.
        let rss_hf = unsafe { ffi::dsrlb_rss_ip_l4() } & info.flow_type_rss_offloads;
        if cfg.rx_queues > 1 && rss_hf != 0 {
            conf.rxmode.mq_mode = ffi::rte_eth_rx_mq_mode::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
        }
        // SAFETY: conf is fully initialised (defaults plus the fields above) and outlives the call.
        check("rte_eth_dev_configure", unsafe {
            ffi::rte_eth_dev_configure(id, cfg.rx_queues, cfg.tx_queues, &conf)
        })?;

        if let Some(mtu) = cfg.mtu {
            // SAFETY: configured port; a plain value.
            check("rte_eth_dev_set_mtu", unsafe { ffi::rte_eth_dev_set_mtu(id, mtu) })?;
        }

        // SAFETY: plain getter.
        let socket = unsafe { ffi::rte_eth_dev_socket_id(id) };
        let socket = if socket < 0 { 0 } else { socket as u32 };
        for q in 0..cfg.rx_queues {
            // SAFETY: a null rxconf selects the driver default; the pool outlives the port.
            let rc = unsafe {
                ffi::rte_eth_rx_queue_setup(
                    id,
                    q,
                    cfg.rx_descriptors,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            check("rte_eth_rx_queue_setup", rc)?;
        }
        for q in 0..cfg.tx_queues {
            // SAFETY: a null txconf selects the driver default.
            let rc =
                unsafe { ffi::rte_eth_tx_queue_setup(id, q, cfg.tx_descriptors, socket, std::ptr::null()) };
            check("rte_eth_tx_queue_setup", rc)?;
        }
        // SAFETY: configured with all queues set up.
        check("rte_eth_dev_start", unsafe { ffi::rte_eth_dev_start(id) })?;
        if cfg.promiscuous {
            // SAFETY: started port; some vdevs refuse (-ENOTSUP), which is harmless.
            unsafe { ffi::rte_eth_promiscuous_enable(id) };
        } else {
            // SAFETY: as above: some vdevs cannot filter; software then checks the MAC.
            unsafe { ffi::rte_eth_promiscuous_disable(id) };
            // IPv6 neighbour discovery asks on multicast groups (solicited-node): a filtering
            // NIC must let multicast in. SAFETY: started port; -ENOTSUP is harmless as above.
            unsafe { ffi::rte_eth_allmulticast_enable(id) };
        }

        let name = port_name(id);
        Ok(Port {
            inner: Arc::new(PortShared {
                id,
                name,
                rx_queues: cfg.rx_queues,
                tx_queues: cfg.tx_queues,
                rx_taken: AtomicU64::new(0),
                tx_taken: AtomicU64::new(0),
                _pool: pool,
            }),
        })
    }

    pub fn id(&self) -> u16 {
        self.inner.id
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn rx_queue_count(&self) -> u16 {
        self.inner.rx_queues
    }

    pub fn tx_queue_count(&self) -> u16 {
        self.inner.tx_queues
    }

    /// The port's MAC address.
    pub fn mac(&self) -> Result<[u8; 6]> {
        let mut a = ffi::rte_ether_addr::default();
        // SAFETY: a is a valid out-pointer.
        check("rte_eth_macaddr_get", unsafe { ffi::rte_eth_macaddr_get(self.inner.id, &mut a) })?;
        Ok(a.addr_bytes)
    }

    /// Give the port another MAC (the devices that cannot refuse with an error).
    pub fn set_mac(&self, mac: [u8; 6]) -> Result<()> {
        let mut a = ffi::rte_ether_addr { addr_bytes: mac };
        // SAFETY: a is a valid address the call only reads.
        check("rte_eth_dev_default_mac_addr_set", unsafe {
            ffi::rte_eth_dev_default_mac_addr_set(self.inner.id, &mut a)
        })
    }

    pub fn mtu(&self) -> Result<u16> {
        let mut mtu = 0u16;
        // SAFETY: mtu is a valid out-pointer.
        check("rte_eth_dev_get_mtu", unsafe { ffi::rte_eth_dev_get_mtu(self.inner.id, &mut mtu) })?;
        Ok(mtu)
    }

    pub fn set_mtu(&self, mtu: u16) -> Result<()> {
        // SAFETY: plain values.
        check("rte_eth_dev_set_mtu", unsafe { ffi::rte_eth_dev_set_mtu(self.inner.id, mtu) })
    }

    pub fn link(&self) -> Result<LinkStatus> {
        let (mut speed, mut up, mut fd) = (0u32, 0i32, 0i32);
        // SAFETY: valid out-pointers.
        check("rte_eth_link_get_nowait", unsafe {
            ffi::dsrlb_link_get(self.inner.id, &mut speed, &mut up, &mut fd)
        })?;
        Ok(LinkStatus { up: up != 0, speed_mbps: speed, full_duplex: fd != 0 })
    }

    pub fn promiscuous(&self) -> bool {
        // SAFETY: plain getter.
        unsafe { ffi::rte_eth_promiscuous_get(self.inner.id) == 1 }
    }

    pub fn stats(&self) -> Result<PortStats> {
        let mut s = ffi::rte_eth_stats::default();
        // SAFETY: s is a valid out-pointer.
        check("rte_eth_stats_get", unsafe { ffi::rte_eth_stats_get(self.inner.id, &mut s) })?;
        Ok(PortStats {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_missed: s.imissed,
            rx_errors: s.ierrors,
            tx_errors: s.oerrors,
            rx_no_mbuf: s.rx_nombuf,
        })
    }

    /// The driver's extended statistics, by name.
    pub fn xstats(&self) -> Result<Vec<(String, u64)>> {
        let id = self.inner.id;
        // SAFETY: a null array with size 0 asks for the count only.
        let n = unsafe { ffi::rte_eth_xstats_get_names(id, std::ptr::null_mut(), 0) };
        check("rte_eth_xstats_get_names", n)?;
        let n = n as usize;
        let mut names = vec![ffi::rte_eth_xstat_name::default(); n];
        let mut values = vec![ffi::rte_eth_xstat::default(); n];
        // SAFETY: both arrays hold n elements, as we tell DPDK.
        let got = unsafe { ffi::rte_eth_xstats_get_names(id, names.as_mut_ptr(), n as u32) };
        check("rte_eth_xstats_get_names", got)?;
        // SAFETY: as above.
        let got2 = unsafe { ffi::rte_eth_xstats_get(id, values.as_mut_ptr(), n as u32) };
        check("rte_eth_xstats_get", got2)?;
        let m = (got as usize).min(got2 as usize).min(n);
        Ok(values[..m]
            .iter()
            .map(|v| {
                let name = &names[v.id as usize % n].name;
                // SAFETY: DPDK writes NUL-terminated names into the fixed 64-byte field.
                let s = unsafe { CStr::from_ptr(name.as_ptr()) }.to_string_lossy().into_owned();
                (s, v.value)
            })
            .collect())
    }

    pub fn reset_stats(&self) {
        // SAFETY: plain call on a valid port.
        unsafe { ffi::rte_eth_stats_reset(self.inner.id) };
    }

    /// Hand out RX queue `q`; each queue can be taken once, by the lcore that will poll it.
    pub fn rx_queue(&self, q: u16) -> Result<RxQueue> {
        take(&self.inner.rx_taken, q, self.inner.rx_queues, "rx queue")?;
        Ok(RxQueue { port: self.clone(), queue: q })
    }

    /// Hand out TX queue `q`; each queue can be taken once.
    pub fn tx_queue(&self, q: u16) -> Result<TxQueue> {
        take(&self.inner.tx_taken, q, self.inner.tx_queues, "tx queue")?;
        Ok(TxQueue { port: self.clone(), queue: q })
    }
}

fn take(bits: &AtomicU64, q: u16, count: u16, what: &'static str) -> Result<()> {
    if q >= count {
        return Err(DpdkError::other(what, format!("queue {q} does not exist (port has {count})")));
    }
    let bit = 1u64 << q;
    if bits.fetch_or(bit, Ordering::AcqRel) & bit != 0 {
        return Err(DpdkError::other(what, format!("queue {q} is already owned")));
    }
    Ok(())
}

fn port_name(id: u16) -> String {
    let mut buf = [0 as std::ffi::c_char; 64];
    // SAFETY: buf holds 64 bytes, more than RTE_ETH_NAME_MAX_LEN requires for typical names;
    // DPDK writes a NUL-terminated name or fails.
    let rc = unsafe { ffi::rte_eth_dev_get_name_by_port(id, buf.as_mut_ptr()) };
    if rc != 0 {
        return format!("port{id}");
    }
    // SAFETY: NUL-terminated by DPDK on success.
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
}

/// One RX queue, owned by the single lcore that polls it.
pub struct RxQueue {
    port: Port,
    queue: u16,
}

impl RxQueue {
    pub fn port_id(&self) -> u16 {
        self.port.id()
    }

    pub fn queue_id(&self) -> u16 {
        self.queue
    }

    /// Receive into the free space of `burst`; returns how many packets arrived.
    #[inline]
    pub fn rx_burst(&mut self, burst: &mut Burst) -> usize {
        self.rx_burst_max(burst, crate::MAX_BURST)
    }

    /// Receive at most `max` packets into the free space of `burst`.
    #[inline]
    pub fn rx_burst_max(&mut self, burst: &mut Burst, max: usize) -> usize {
        let (spare, room) = burst.spare();
        let room = room.min(max);
        if room == 0 {
            return 0;
        }
        // SAFETY: this queue has a single owner (us, &mut self), `spare` has room for `room`
        // pointers and DPDK writes at most that many valid mbufs, which the burst then owns.
        let n = unsafe { ffi::dsrlb_rx_burst(self.port.id(), self.queue, spare, room as u16) } as usize;
        burst.grow(n);
        n
    }

    /// Receive up to `out`'s spare capacity, appended to it; returns how many arrived. DPDK
    /// writes the packets straight into `out`, so a worker that works on an `ArrayVec` of mbufs
    /// moves no pointer twice.
    #[inline]
    pub fn rx_burst_into<const N: usize>(&mut self, out: &mut ArrayVec<Mbuf, N>) -> usize {
        let (len, room) = (out.len(), out.remaining_capacity().min(u16::MAX as usize));
        if room == 0 {
            return 0;
        }
        // SAFETY: `Mbuf` is `repr(transparent)` over `NonNull<rte_mbuf>`, which has the layout
        // of the `*mut rte_mbuf` DPDK writes; `out` has room for `room` values past its `len`
        // (as_mut_ptr points at its whole buffer, initialised or not). This queue has a single
        // owner (&mut self), and DPDK writes exactly `n <= room` valid, non-null mbufs that no
        // one else owns, so the `n` values past `len` are initialised `Mbuf`s when `set_len`
        // hands them to `out`.
        unsafe {
            let spare = out.as_mut_ptr().add(len).cast::<*mut ffi::rte_mbuf>();
            let n = ffi::dsrlb_rx_burst(self.port.id(), self.queue, spare, room as u16) as usize;
            out.set_len(len + n);
            n
        }
    }
}

/// One TX queue, owned by a single lcore.
pub struct TxQueue {
    port: Port,
    queue: u16,
}

impl TxQueue {
    pub fn port_id(&self) -> u16 {
        self.port.id()
    }

    pub fn queue_id(&self) -> u16 {
        self.queue
    }

    /// Send packets from the front of `burst`; returns how many DPDK took. The ones it did not
    /// take stay in the burst (at the front), still owned by the caller: nothing leaks.
    #[inline]
    pub fn tx_burst(&mut self, burst: &mut Burst) -> usize {
        if burst.is_empty() {
            return 0;
        }
        let len = burst.len();
        // SAFETY: single owner of this queue; the first `len` pointers are valid owned mbufs, and
        // DPDK takes ownership of exactly the first `n` it reports.
        let n =
            unsafe { ffi::dsrlb_tx_burst(self.port.id(), self.queue, burst.raw_ptrs(), len as u16) } as usize;
        burst.consume_front(n);
        n
    }

    /// Send packets from the front of `pkts`, as `tx_burst` does from a `Burst`: DPDK reads the
    /// vector's own array, and the ones it did not take move to the front, still owned by the
    /// caller. Returns how many DPDK took.
    #[inline]
    pub fn tx_burst_from<const N: usize>(&mut self, pkts: &mut ArrayVec<Mbuf, N>) -> usize {
        let len = pkts.len();
        if len == 0 {
            return 0;
        }
        // SAFETY: `Mbuf` is `repr(transparent)` over `NonNull<rte_mbuf>`, so the vector's first
        // `len` values are an array of valid owned `*mut rte_mbuf`, of which DPDK reads the
        // first `offer` (a count that fits its u16). This queue has a single owner (&mut self).
        // DPDK takes ownership of exactly the first `n <= offer` it reports: those slots are
        // then overwritten, never dropped, by a bitwise move of the `len - n` it left, and
        // `set_len` makes the vector own exactly those.
        unsafe {
            let ptrs = pkts.as_mut_ptr().cast::<*mut ffi::rte_mbuf>();
            let offer = len.min(u16::MAX as usize);
            let n = (ffi::dsrlb_tx_burst(self.port.id(), self.queue, ptrs, offer as u16) as usize).min(offer);
            std::ptr::copy(ptrs.add(n), ptrs, len - n);
            pkts.set_len(len - n);
            n
        }
    }
}
