//! The request loop behind the control socket and the metrics endpoint: each connection gets a
//! short deadline to send its request and take its answer, requests are bounded in size, and
//! only a few connections are served at once — the rest are closed at once. A slow or hostile
//! client can then hold neither the control core nor memory.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver};
use log::warn;

/// Connections served at once; more are closed.
pub const MAX_CONNECTIONS: usize = 4;
/// Time a client has to send its request, and to take its answer.
pub const DEADLINE: Duration = Duration::from_secs(2);
/// The largest request read.
pub const MAX_REQUEST: u64 = 8 * 1024;

/// A connected stream that can be given deadlines.
pub trait Conn: Read + Write + Send + 'static {
    fn deadlines(&self, d: Duration) -> io::Result<()>;
}

impl Conn for UnixStream {
    fn deadlines(&self, d: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(d))?;
        self.set_write_timeout(Some(d))
    }
}

impl Conn for TcpStream {
    fn deadlines(&self, d: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(d))?;
        self.set_write_timeout(Some(d))
    }
}

/// Accept on `incoming` (one thread), hand each connection to one of `MAX_CONNECTIONS`
/// handler threads; `handle` gets the request (at most `MAX_REQUEST` bytes, read until
/// `complete` says it has all of it) and writes its answer.
pub fn spawn<C: Conn>(
    name: &str,
    incoming: impl Iterator<Item = io::Result<C>> + Send + 'static,
    complete: fn(&[u8]) -> bool,
    handle: impl Fn(&[u8], &mut C) -> io::Result<()> + Send + Sync + 'static,
) -> io::Result<()> {
    let (tx, rx) = bounded::<C>(0);
    let handle = Arc::new(handle);
    for k in 0..MAX_CONNECTIONS {
        let (rx, handle): (Receiver<C>, _) = (rx.clone(), handle.clone());
        std::thread::Builder::new().name(format!("{name}-{k}")).spawn(move || {
            for mut c in rx {
                let _ = serve_one(&mut c, complete, &*handle);
            }
        })?;
    }
    std::thread::Builder::new().name(format!("{name}-accept")).spawn(move || {
        let mut refused = 0u64;
        for c in incoming.flatten() {
            // Every handler busy: close this one rather than queue it.
            if tx.try_send(c).is_err() {
                refused += 1;
                if refused.is_power_of_two() {
                    warn!("{refused} connection(s) refused: every handler busy");
                }
            }
        }
    })?;
    Ok(())
}

fn serve_one<C: Conn>(
    c: &mut C,
    complete: fn(&[u8]) -> bool,
    handle: &dyn Fn(&[u8], &mut C) -> io::Result<()>,
) -> io::Result<()> {
    c.deadlines(DEADLINE)?;
    let mut req = Vec::with_capacity(256);
    let mut buf = [0u8; 1024];
    while !complete(&req) {
        let n = c.read(&mut buf)?;
        if n == 0 {
            break;
        }
        req.extend_from_slice(&buf[..n]);
        if req.len() as u64 > MAX_REQUEST {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "request too large"));
        }
    }
    handle(&req, c)?;
    c.flush()
}

/// A listener as an iterator of connections.
pub fn unix(l: UnixListener) -> impl Iterator<Item = io::Result<UnixStream>> + Send + 'static {
    std::iter::from_fn(move || Some(l.accept().map(|(s, _)| s)))
}

pub fn tcp(l: TcpListener) -> impl Iterator<Item = io::Result<TcpStream>> + Send + 'static {
    std::iter::from_fn(move || Some(l.accept().map(|(s, _)| s)))
}
