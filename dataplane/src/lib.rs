//! The DSR forwarding engine: everything a worker core does to a packet, in pure Rust with no
//! DPDK dependency, so it is tested with real packet bytes anywhere.
//!
//! - `wire`: zero-copy header views; `parse`: one validated pass over a frame.
//! - `rewrite`: the `l2`, `ipip` and `dscp` rewrites, "fragmentation needed", inline routing.
//! - `table`/`flow`: the fixed-capacity flow table; `maglev`/`sched`: backend selection.
//! - `snapshot`: the immutable configuration workers forward with.
//! - `pipeline`: the per-packet stages and verdicts; `io`: the worker loop over any packet I/O.
//! - `testkit`: packets and snapshots for tests, benchmarks, the fuzzer and capture generators.

#![forbid(unsafe_code)]

pub mod bpf;
pub mod buf;
pub mod checksum;
pub mod counters;
pub mod crc;
pub mod flow;
pub mod io;
pub mod lookup;
pub mod maglev;
pub mod parse;
pub mod parse6;
pub mod persist;
pub mod pipeline;
pub mod ratelimit;
pub mod rewrite;
pub mod rewrite6;
pub mod sched;
pub mod snapshot;
pub mod table;
pub mod testkit;
pub mod wire;

pub use buf::{PacketBuf, PacketSink, VecPacket};
pub use counters::{Counters, DropReason};
pub use pipeline::{Punt, Verdict, Worker, WorkerConfig};
pub use snapshot::Snapshot;
