//! One error type per concern of the appliance (Firecracker's style): what failed, with the
//! part of the configuration or the device it is about.

use std::fmt;

use crate::config::ConfigError;

/// `dsrlb run` could not start; nothing is left running.
#[derive(Debug)]
pub enum StartError {
    Config {
        path: String,
        error: ConfigError,
    },
    Eal(String),
    /// EAL gave no lcore besides the main one.
    NoWorkerLcore,
    Mempool {
        mbufs: u32,
        data_room: u16,
        error: String,
    },
    /// `ports[index]` (its device name) could not be found or started.
    Port {
        index: usize,
        device: String,
        error: String,
    },
    Launch {
        lcore: u32,
        error: String,
    },
    Signals(String),
    ControlSocket {
        path: String,
        error: String,
    },
    Metrics {
        addr: String,
        error: String,
    },
    Snapshot(String),
    /// Another dsrlb runs this configuration (it holds the lock beside its control socket).
    AlreadyRunning {
        lock: String,
    },
    /// The routes that announce the VIPs could not be managed.
    Announce(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config { path, error } => write!(f, "{path}:{error}"),
            StartError::Eal(e) => write!(f, "EAL: {e}"),
            StartError::NoWorkerLcore => f.write_str(
                "no worker lcore: give EAL at least two cores (e.g. -l 0-1); the first runs the control core",
            ),
            StartError::Mempool { mbufs, data_room, error } => {
                write!(f, "mempool of {mbufs} x {data_room} B: {error}")
            }
            StartError::Port { index, device, error } => write!(f, "ports[{index}] {device}: {error}"),
            StartError::Launch { lcore, error } => write!(f, "launch worker on lcore {lcore}: {error}"),
            StartError::Signals(e) => write!(f, "signal handlers: {e}"),
            StartError::ControlSocket { path, error } => write!(f, "control socket {path}: {error}"),
            StartError::Metrics { addr, error } => write!(f, "metrics on {addr}: {error}"),
            StartError::Snapshot(e) => write!(f, "first snapshot: {e}"),
            StartError::AlreadyRunning { lock } => {
                write!(f, "another dsrlb runs with this control socket (it holds {lock}): nothing started")
            }
            StartError::Announce(e) => write!(f, "announce: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A reload was refused; the running configuration is unchanged.
#[derive(Debug)]
pub enum ReloadError {
    Config(ConfigError),
    /// These settings change only with a restart.
    NeedsRestart(String),
    /// The new snapshot could not be handed to every worker (a stuck worker); retried.
    NotPublished,
}

impl fmt::Display for ReloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReloadError::Config(e) => write!(f, "{e}"),
            ReloadError::NeedsRestart(fields) => {
                write!(f, "{fields} change only with a restart; nothing changed")
            }
            ReloadError::NotPublished => f.write_str("snapshot could not be published; will retry"),
        }
    }
}

impl std::error::Error for ReloadError {}

/// `dsrlb ctl` could not get an answer.
#[derive(Debug)]
pub enum CtlError {
    /// Nothing listens on the socket.
    Connect {
        socket: String,
        error: String,
    },
    Io(String),
    /// The answer was not the protocol's JSON.
    Protocol(String),
    /// dsrlb answered with an error.
    Refused(String),
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CtlError::Connect { socket, error } => write!(f, "cannot reach dsrlb at {socket}: {error}"),
            CtlError::Io(e) => write!(f, "{e}"),
            CtlError::Protocol(e) => write!(f, "bad answer: {e}"),
            CtlError::Refused(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for CtlError {}
