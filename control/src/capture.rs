//! Live packet capture (`dsrlb ctl capture`): what a port receives and sends, filtered by a
//! tcpdump expression, copied by the workers into buffers set aside at start, read by the ctl
//! client through the control socket and written as pcapng.
//!
//! Why not DPDK's `dpdk-dumpcap`: it is a secondary process that maps the primary's hugepage
//! memory, and dsrlb runs as one process with `--no-shconf` (and `--no-huge` on the testbed);
//! Debian 12's `dpdk` package does not ship it either. Docs: operations.md, "Capture".
//!
//! The workers see one word (`Tap::state`) per loop pass: which ports and directions are
//! captured and the session's generation. Nothing else is read while no capture runs, so ports
//! not being captured pay one load per pass. A session's filter, snap length and count are
//! written by the ctl thread only while no port is captured and every worker has passed its
//! loop since: a worker copies them once when it sees a new generation.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_queue::ArrayQueue;
use dataplane::bpf::{self, Insn, Program, MAX_INSNS};
use serde::{Deserialize, Serialize};

/// Bytes kept of a frame at most (the buffers' size).
pub const FRAME_ROOM: usize = 2048;
/// Buffers for captured frames, shared by all workers: what a slow reader may leave unread
/// before frames are missed (counted).
pub const FRAMES: usize = 1024;
/// Ports a capture can name (bits of the state word for each direction).
pub const MAX_PORTS: usize = 16;
/// A session nobody has read for this long is ended by the next start.
const ABANDONED: Duration = Duration::from_secs(10);

/// Which way a captured frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    Rx,
    Tx,
}

/// One captured frame, in a buffer that goes round between the workers and the reader.
pub struct Frame {
    tsc: u64,
    port: u16,
    dir: Dir,
    orig_len: u32,
    len: u16,
    data: [u8; FRAME_ROOM],
}

/// What the workers and the ctl threads share.
pub struct Tap {
    /// generation << 32 | tx ports << 16 | rx ports. No port bit: nothing captured.
    state: AtomicU64,
    snaplen: AtomicU32,
    /// Frames still wanted: workers stop copying at 0.
    remaining: AtomicU64,
    program_len: AtomicU32,
    program: Box<[AtomicU64]>,
    /// Frames that matched while every buffer waited for the reader.
    missed: AtomicU64,
    free: ArrayQueue<Box<Frame>>,
    full: ArrayQueue<Box<Frame>>,
    heartbeats: Vec<Arc<AtomicU64>>,
    session: Mutex<Option<Session>>,
}

struct Session {
    id: u64,
    /// The wall clock and the TSC at the start: frames' times are the one plus the TSC since.
    wall: Duration,
    tsc: u64,
    last_read: Instant,
}

/// A capture as the ctl client asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub port: u16,
    pub rx: bool,
    pub tx: bool,
    pub count: u64,
    pub snaplen: u16,
    pub filter: Option<Program>,
}

/// One frame as the ctl answer carries it.
#[derive(Debug, Serialize, Deserialize)]
pub struct FrameOut {
    /// Nanoseconds since the Unix epoch.
    pub time_ns: u64,
    pub port: u16,
    pub dir: Dir,
    pub orig_len: u32,
    /// The kept bytes, in hex.
    pub data: String,
}

/// The `capture-read` answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReadOut {
    pub frames: Vec<FrameOut>,
    /// The count is reached and every frame has been read.
    pub done: bool,
    /// Frames that matched but found no free buffer, so far.
    pub missed: u64,
}

impl Tap {
    /// The tap of an appliance whose workers beat these heartbeats. Sets aside the buffers.
    pub fn new(heartbeats: Vec<Arc<AtomicU64>>) -> Tap {
        let free = ArrayQueue::new(FRAMES);
        for _ in 0..FRAMES {
            let f =
                Box::new(Frame { tsc: 0, port: 0, dir: Dir::Rx, orig_len: 0, len: 0, data: [0; FRAME_ROOM] });
            let _ = free.push(f);
        }
        Tap {
            state: AtomicU64::new(0),
            snaplen: AtomicU32::new(FRAME_ROOM as u32),
            remaining: AtomicU64::new(0),
            program_len: AtomicU32::new(0),
            program: (0..MAX_INSNS).map(|_| AtomicU64::new(0)).collect(),
            missed: AtomicU64::new(0),
            free,
            full: ArrayQueue::new(FRAMES),
            heartbeats,
            session: Mutex::new(None),
        }
    }

    /// Start a capture; returns its id. Refused while another runs, unless nobody has read it
    /// for a while (its client went away).
    pub fn start(&self, req: &Request, ports: usize) -> Result<u64, String> {
        if req.port as usize >= ports.min(MAX_PORTS) {
            return Err(format!("port {} does not exist (this appliance has {ports})", req.port));
        }
        if req.count == 0 || req.snaplen == 0 || !(req.rx || req.tx) {
            return Err("a capture needs a count, a snap length and a direction".into());
        }
        let mut s = self.session.lock().map_err(|_| "capture state unavailable".to_string())?;
        if let Some(old) = s.as_ref() {
            if old.last_read.elapsed() < ABANDONED {
                return Err(format!("capture {} is running; one at a time", old.id));
            }
            self.quiesce();
        }
        self.recycle();
        let insns = req.filter.as_ref().map(|p| p.insns()).unwrap_or(&[]);
        for (slot, i) in self.program.iter().zip(insns) {
            slot.store(pack(*i), Ordering::Relaxed);
        }
        self.program_len.store(insns.len() as u32, Ordering::Relaxed);
        self.snaplen.store(req.snaplen.min(FRAME_ROOM as u16) as u32, Ordering::Relaxed);
        self.remaining.store(req.count, Ordering::Relaxed);
        self.missed.store(0, Ordering::Relaxed);
        let generation = (self.state.load(Ordering::Relaxed) >> 32) + 1;
        let bit = 1u64 << req.port;
        let mask = if req.rx { bit } else { 0 } | if req.tx { bit << 16 } else { 0 };
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let session = Session { id: generation, wall, tsc: dpdk_bindings::tsc(), last_read: Instant::now() };
        // Release: a worker that sees the new generation sees the session's settings.
        self.state.store(generation << 32 | mask, Ordering::Release);
        *s = Some(session);
        Ok(generation)
    }

    /// Up to `max` captured frames of session `id`, oldest first.
    pub fn read(&self, id: u64, max: usize) -> Result<ReadOut, String> {
        let mut s = self.session.lock().map_err(|_| "capture state unavailable".to_string())?;
        let session =
            s.as_mut().filter(|x| x.id == id).ok_or_else(|| format!("no capture {id} is running"))?;
        session.last_read = Instant::now();
        let hz = dpdk_bindings::tsc_hz().max(1) as u128;
        let mut frames = Vec::new();
        while frames.len() < max {
            let Some(f) = self.full.pop() else { break };
            let since = f.tsc.saturating_sub(session.tsc) as u128 * 1_000_000_000 / hz;
            frames.push((
                f.tsc,
                FrameOut {
                    time_ns: (session.wall.as_nanos() + since) as u64,
                    port: f.port,
                    dir: f.dir,
                    orig_len: f.orig_len,
                    data: hex(&f.data[..f.len as usize]),
                },
            ));
            let _ = self.free.push(f);
        }
        // Workers fill the queue side by side: order this batch by time.
        frames.sort_by_key(|(t, _)| *t);
        let done = self.remaining.load(Ordering::Relaxed) == 0 && self.full.is_empty();
        Ok(ReadOut {
            frames: frames.into_iter().map(|(_, f)| f).collect(),
            done,
            missed: self.missed.load(Ordering::Relaxed),
        })
    }

    /// End session `id`: no port is captured once this returns.
    pub fn stop(&self, id: u64) -> Result<(), String> {
        let mut s = self.session.lock().map_err(|_| "capture state unavailable".to_string())?;
        if s.as_ref().map(|x| x.id) != Some(id) {
            return Err(format!("no capture {id} is running"));
        }
        self.quiesce();
        self.recycle();
        *s = None;
        Ok(())
    }

    /// Capture nothing, and wait until every worker has passed its loop since (so none is still
    /// reading the session's settings or holding a buffer).
    fn quiesce(&self) {
        let generation = (self.state.load(Ordering::Relaxed) >> 32) + 1;
        self.state.store(generation << 32, Ordering::Release);
        let seen: Vec<u64> = self.heartbeats.iter().map(|h| h.load(Ordering::Acquire)).collect();
        let deadline = Instant::now() + Duration::from_secs(1);
        // A stuck worker is the watchdog's business; do not wait for it forever.
        while Instant::now() < deadline
            && self.heartbeats.iter().zip(&seen).any(|(h, s)| h.load(Ordering::Acquire) < s + 2)
        {
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Every filled buffer back to the free list.
    fn recycle(&self) {
        while let Some(f) = self.full.pop() {
            let _ = self.free.push(f);
        }
    }
}

/// A worker's view of the tap: the settings of the generation it last saw, copied into memory
/// it owns (set aside when the worker starts: nothing is allocated while capturing).
pub struct WorkerTap {
    tap: Arc<Tap>,
    generation: u64,
    /// Bit p: received on port p; bit 16 + p: sent on port p.
    mask: u32,
    snaplen: usize,
    program: Vec<Insn>,
}

impl WorkerTap {
    pub fn new(tap: Arc<Tap>) -> WorkerTap {
        WorkerTap { tap, generation: 0, mask: 0, snaplen: FRAME_ROOM, program: Vec::with_capacity(MAX_INSNS) }
    }

    /// Once per loop pass: one load, and the session's settings when it changed.
    #[inline]
    pub fn refresh(&mut self) {
        let state = self.tap.state.load(Ordering::Acquire);
        if state >> 32 != self.generation {
            self.generation = state >> 32;
            self.mask = state as u32;
            if self.mask != 0 {
                self.load_settings();
            }
        }
    }

    #[cold]
    fn load_settings(&mut self) {
        let t = &self.tap;
        self.snaplen = (t.snaplen.load(Ordering::Relaxed) as usize).min(FRAME_ROOM);
        let n = (t.program_len.load(Ordering::Relaxed) as usize).min(MAX_INSNS);
        self.program.clear();
        self.program.extend(t.program[..n].iter().map(|w| unpack(w.load(Ordering::Relaxed))));
    }

    /// Whether frames received on `port` are captured.
    #[inline]
    pub fn rx(&self, port: u16) -> bool {
        self.mask & (1 << (port & 15)) != 0 && port < 16
    }

    /// Whether frames sent on `port` are captured.
    #[inline]
    pub fn tx(&self, port: u16) -> bool {
        self.mask & (1 << (16 + (port & 15))) != 0 && port < 16
    }

    /// Copy `frame` if the filter takes it and the count is not reached.
    #[cold]
    pub fn offer(&self, frame: &[u8], port: u16, dir: Dir) {
        let t = &self.tap;
        if t.remaining.load(Ordering::Relaxed) == 0 {
            return;
        }
        if !self.program.is_empty() && bpf::run(&self.program, frame) == 0 {
            return;
        }
        if t.remaining.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| r.checked_sub(1)).is_err() {
            return;
        }
        let Some(mut f) = t.free.pop() else {
            t.missed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let n = frame.len().min(self.snaplen);
        f.data[..n].copy_from_slice(&frame[..n]);
        (f.tsc, f.port, f.dir, f.orig_len, f.len) =
            (dpdk_bindings::tsc(), port, dir, frame.len() as u32, n as u16);
        // The queues hold every buffer there is: this push always has room.
        let _ = t.full.push(f);
    }
}

fn pack(i: Insn) -> u64 {
    (i.code as u64) << 48 | (i.jt as u64) << 40 | (i.jf as u64) << 32 | i.k as u64
}

fn unpack(w: u64) -> Insn {
    Insn { code: (w >> 48) as u16, jt: (w >> 40) as u8, jf: (w >> 32) as u8, k: w as u32 }
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// The bytes of `FrameOut::data`.
pub fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err("odd hex length".into());
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| e.to_string())).collect()
}

/// The ctl client's side: `dsrlb ctl capture`.
pub mod client {
    use std::borrow::Cow;
    use std::io::Write;
    use std::path::Path;
    use std::time::{Duration, Instant};

    use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
    use pcap_file::pcapng::blocks::interface_description::{
        InterfaceDescriptionBlock, InterfaceDescriptionOption,
    };
    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::DataLink;

    use super::{unhex, Dir, ReadOut, FRAME_ROOM};
    use crate::ctl::request;

    /// What to capture and where to write it.
    pub struct Args<'a> {
        pub socket: &'a Path,
        pub port: u16,
        pub direction: &'a str,
        pub count: u64,
        pub snaplen: u16,
        /// A tcpdump expression, compiled here by `tcpdump -ddd`.
        pub filter: Option<&'a str>,
        /// A file, or "-" for standard output (to pipe into tcpdump -r -).
        pub out: &'a Path,
        /// Stop after this long even if fewer frames came.
        pub timeout: Duration,
    }

    /// Run a capture to the end; returns a one-line summary.
    pub fn run(a: &Args) -> Result<String, String> {
        let program = match a.filter {
            Some(expr) if !expr.trim().is_empty() => compile(expr)?,
            _ => String::new(),
        };
        let args = [
            a.port.to_string(),
            a.direction.to_string(),
            a.count.to_string(),
            a.snaplen.min(FRAME_ROOM as u16).to_string(),
            program,
        ];
        let id = request(a.socket, "capture-start", &args)
            .map_err(|e| e.to_string())?
            .get("id")
            .and_then(|v| v.as_u64())
            .ok_or("capture-start: no id in the answer")?
            .to_string();
        let result = collect(a, &id);
        // Stop whatever happened: the workers stop copying, the buffers go back.
        let _ = request(a.socket, "capture-stop", std::slice::from_ref(&id));
        result
    }

    fn collect(a: &Args, id: &str) -> Result<String, String> {
        let sink: Box<dyn Write> = if a.out == Path::new("-") {
            Box::new(std::io::stdout())
        } else {
            Box::new(std::fs::File::create(a.out).map_err(|e| format!("{}: {e}", a.out.display()))?)
        };
        let mut w = PcapNgWriter::new(std::io::BufWriter::new(sink)).map_err(|e| e.to_string())?;
        // One interface per port (its index is the port's): nanosecond timestamps.
        for port in 0..=a.port {
            w.write_pcapng_block(InterfaceDescriptionBlock {
                linktype: DataLink::ETHERNET,
                snaplen: a.snaplen as u32,
                options: vec![
                    InterfaceDescriptionOption::IfName(Cow::Owned(format!("dsrlb-port{port}"))),
                    InterfaceDescriptionOption::IfTsResol(9),
                ],
            })
            .map_err(|e| e.to_string())?;
        }
        let deadline = Instant::now() + a.timeout;
        let (mut written, mut missed) = (0u64, 0u64);
        while written < a.count {
            let r: ReadOut = serde_json::from_value(
                request(a.socket, "capture-read", &[id.to_string()]).map_err(|e| e.to_string())?,
            )
            .map_err(|e| format!("capture-read: {e}"))?;
            missed = r.missed;
            for f in r.frames.iter().take((a.count - written) as usize) {
                let data = unhex(&f.data)?;
                // EPB flags, bits 0-1: 1 inbound, 2 outbound.
                let flags = if f.dir == Dir::Rx { 1 } else { 2 };
                w.write_pcapng_block(EnhancedPacketBlock {
                    interface_id: f.port as u32,
                    timestamp: Duration::from_nanos(f.time_ns),
                    original_len: f.orig_len,
                    data: Cow::Owned(data),
                    options: vec![EnhancedPacketOption::Flags(flags)],
                })
                .map_err(|e| e.to_string())?;
                written += 1;
            }
            if r.done || Instant::now() >= deadline {
                break;
            }
            if r.frames.is_empty() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        w.into_inner().flush().map_err(|e| e.to_string())?;
        let mut summary = format!("{written} frame(s) captured on port {} to {}", a.port, a.out.display());
        if missed > 0 {
            summary.push_str(&format!(" ({missed} missed: the reader fell behind)"));
        }
        if written < a.count {
            summary.push_str(&format!(" (stopped after {:?}, {} asked)", a.timeout, a.count));
        }
        Ok(summary)
    }

    /// `tcpdump -ddd` of an expression, for Ethernet frames: the classic BPF program, as text.
    pub fn compile(expr: &str) -> Result<String, String> {
        let out = std::process::Command::new("tcpdump")
            .args(["-y", "EN10MB", "-ddd", "--", expr])
            .output()
            .map_err(|e| format!("compiling the filter needs tcpdump (apt install tcpdump): {e}"))?;
        if !out.status.success() {
            return Err(format!("filter {expr:?}: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        let text = String::from_utf8_lossy(&out.stdout).trim().replace('\n', ";");
        // Refused here rather than by the appliance: same check, clearer place.
        dataplane::bpf::Program::parse(&text).map_err(|e| format!("filter {expr:?}: {e}"))?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::testkit::{client_tcp, TCPDUMP_TCP_DST_80, VIP_L2};

    fn request(port: u16, count: u64, filter: Option<&str>) -> Request {
        Request {
            port,
            rx: true,
            tx: false,
            count,
            snaplen: 2048,
            filter: filter.map(|f| Program::parse(f).unwrap()),
        }
    }

    #[test]
    fn a_worker_copies_what_the_filter_takes_on_the_captured_port_only() {
        let tap = Arc::new(Tap::new(Vec::new()));
        let mut w = WorkerTap::new(tap.clone());
        w.refresh();
        assert!(!w.rx(0) && !w.tx(0), "nothing is captured before a start");
        let id = tap.start(&request(1, 3, Some(TCPDUMP_TCP_DST_80)), 2).unwrap();
        assert!(tap.start(&request(0, 1, None), 2).is_err(), "one capture at a time");
        w.refresh();
        assert!(w.rx(1) && !w.rx(0) && !w.tx(1));
        let web = client_tcp(VIP_L2, 40000, 80, 0x02, b"GET /");
        let other = client_tcp(VIP_L2, 40000, 443, 0x02, b"");
        for f in [&other, &web, &other, &web, &web, &web] {
            w.offer(f, 1, Dir::Rx);
        }
        let r = tap.read(id, 100).unwrap();
        assert_eq!(r.frames.len(), 3, "three asked, only port 80");
        assert!(r.done);
        assert!(r.frames.iter().all(|f| unhex(&f.data).unwrap() == web && f.port == 1 && f.dir == Dir::Rx));
        assert_eq!(r.frames[0].orig_len as usize, web.len());
        tap.stop(id).unwrap();
        w.refresh();
        assert!(!w.rx(1), "nothing is captured after the stop");
        assert!(tap.read(id, 1).is_err());
    }

    #[test]
    fn a_slow_reader_loses_frames_counted_not_buffers() {
        let tap = Arc::new(Tap::new(Vec::new()));
        let mut w = WorkerTap::new(tap.clone());
        let id = tap.start(&request(0, 5000, None), 1).unwrap();
        w.refresh();
        let frame = client_tcp(VIP_L2, 40000, 80, 0x10, b"");
        for _ in 0..FRAMES + 100 {
            w.offer(&frame, 0, Dir::Rx);
        }
        let mut got = 0;
        loop {
            let r = tap.read(id, 256).unwrap();
            if r.frames.is_empty() {
                assert_eq!(r.missed, 100);
                break;
            }
            got += r.frames.len();
        }
        assert_eq!(got, FRAMES);
        tap.stop(id).unwrap();
        // Every buffer is back: a new capture has all of them.
        let id = tap.start(&request(0, FRAMES as u64, None), 1).unwrap();
        w.refresh();
        for _ in 0..FRAMES {
            w.offer(&frame, 0, Dir::Rx);
        }
        assert_eq!(tap.missed.load(Ordering::Relaxed), 0);
        tap.stop(id).unwrap();
    }

    #[test]
    fn bad_requests_are_refused() {
        let tap = Tap::new(Vec::new());
        assert!(tap.start(&request(2, 1, None), 2).unwrap_err().contains("port 2 does not exist"));
        assert!(tap.start(&request(0, 0, None), 2).is_err());
        assert!(tap.stop(7).is_err());
    }
}
