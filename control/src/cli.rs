//! The `dsrlb` command line, defined once: `--help`, the man pages and the shell completions
//! are all generated from these definitions (`dsrlb completions`, `dsrlb man`).

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};
use dataplane::wire::MacAddr;

/// The version line: the package version and the git revision it was built from.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("DSRLB_GIT_REV"), ")");

#[derive(Parser)]
#[command(
    name = "dsrlb",
    version = VERSION,
    about = "Direct Server Return layer-4 load balancer on DPDK",
    long_about = "Direct Server Return layer-4 load balancer on DPDK.\n\n\
        Clients send to a virtual IP (VIP); dsrlb picks a real server and forwards the packet by \
        one of three DSR methods (l2: the destination MAC only; ipip: an IP-in-IP tunnel; dscp: \
        a DSCP code marks the VIP and the destination becomes the server's address), and the \
        server answers the client directly.",
    after_help = "Documentation: /usr/share/doc/dsrlb (docs/ in the source), man dsrlb-run, dsrlb-ctl, ..."
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Run the load balancer in the foreground until SIGINT or SIGTERM (SIGHUP reloads).
    #[command(long_about = "Run the load balancer in the foreground.\n\n\
        Starts DPDK with the EAL arguments of the configuration (and any after `--`), brings up \
        the ports, the control core and one worker per further lcore. SIGHUP reloads the \
        configuration (all of it or none of it); SIGTERM stops, draining first when the instance \
        announces its VIPs; SIGINT stops at once.")]
    Run {
        /// The configuration file (RON; docs/configuration.md).
        #[arg(long, short, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
        config: PathBuf,
        /// More EAL arguments, appended to the configuration's `eal` (after `--`).
        #[arg(last = true, value_name = "EAL_ARG")]
        eal: Vec<String>,
    },
    /// Validate a configuration file without starting anything.
    #[command(long_about = "Validate a configuration file without starting anything.\n\n\
        Prints a summary and any advice on success; on failure the error names the field, with \
        its line and column, and the exit status is 1.")]
    Check {
        /// The configuration file to check.
        #[arg(long, short, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
        config: PathBuf,
    },
    /// Ask a running dsrlb through its control socket.
    Ctl(CtlArgs),
    /// Run the real pipeline over a capture, without DPDK: what the appliance would have sent.
    #[command(long_about = "Run the real pipeline over a capture, without DPDK.\n\n\
        Writes what the appliance would have transmitted. Every backend counts as healthy; an \
        unresolved next hop stands in as 02:00:<its IPv4 address>.")]
    Replay {
        /// The configuration whose services the pipeline runs.
        #[arg(long, short, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
        config: PathBuf,
        /// The capture to replay (pcap).
        #[arg(long = "in", value_name = "PCAP", value_hint = clap::ValueHint::FilePath)]
        input: PathBuf,
        /// Where the frames the appliance would transmit go (pcap).
        #[arg(long = "out", value_name = "PCAP", value_hint = clap::ValueHint::FilePath)]
        output: PathBuf,
        /// The port (index in the configuration) the captured frames arrive on.
        #[arg(long, default_value_t = 0, value_name = "INDEX")]
        port: u16,
        /// A port's MAC, as PORT=aa:bb:cc:dd:ee:ff (default: the device's mac=, else
        /// 02:00:00:00:00:0N); may be given once per port.
        #[arg(long, value_parser = parse_port_mac, value_name = "PORT=MAC")]
        mac: Vec<(u16, MacAddr)>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to standard output.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (dsrlb.1 and one per subcommand) into a directory.
    #[command(hide = true)]
    Man {
        /// The directory to write into (created if missing).
        #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
        out: PathBuf,
    },
}

#[derive(Args)]
pub struct CtlArgs {
    /// The control socket (the configuration's `control_socket`).
    #[arg(long, global = true, default_value = "/run/dsrlb.sock", value_name = "PATH", value_hint = clap::ValueHint::FilePath)]
    pub socket: PathBuf,
    /// Print the answer as JSON (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub cmd: CtlCmd,
}

/// What `dsrlb ctl` can ask.
#[derive(Subcommand, Clone)]
pub enum CtlCmd {
    /// Version, uptime, workers, configuration epoch, ports with DPDK counters, neighbours.
    Status,
    /// Each service: VIP, mode, scheduler, backends up, packets, flows.
    Services,
    /// Each backend: state, health, MAC, last probe, packets, flows.
    Backends,
    /// Active and new flows per service and backend, flow-table occupancy by family.
    Flows,
    /// Dataplane counters: forwarded, punted, drops by reason, table events.
    Stats,
    /// Keep a backend's flows but send it no new ones.
    Drain(DrainArgs),
    /// Take a drained backend back into scheduling.
    Undrain(DrainArgs),
    /// Re-read the configuration file (as SIGHUP); a bad file changes nothing.
    Reload,
    /// A fleet member: withdraw every VIP, forward while the routers move away, then stop.
    DrainInstance,
    /// Capture what a port receives and sends into a pcapng file (Wireshark, tcpdump -r).
    #[command(long_about = "Capture what a port receives and sends into a pcapng file.\n\n\
        The workers copy the frames of that port that match the filter (a tcpdump expression, \
        compiled here by `tcpdump -ddd`) until COUNT are captured or the timeout passes. Other \
        ports are not slowed. Received frames are marked inbound, sent ones outbound. One \
        capture runs at a time.\n\n\
        Example: dsrlb ctl capture 0 --count 100 --filter 'tcp port 80' --out /tmp/web.pcapng")]
    Capture(CaptureArgs),
}

#[derive(Args, Clone)]
pub struct CaptureArgs {
    /// The port, by its index in the configuration's `ports` (0 is the first).
    #[arg(value_name = "PORT")]
    pub port: u16,
    /// How many frames to capture.
    #[arg(long, short = 'n', default_value_t = 100, value_name = "N")]
    pub count: u64,
    /// Where to write the pcapng file; "-" writes to standard output.
    #[arg(long, short = 'o', value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub out: PathBuf,
    /// Only frames this tcpdump expression matches (e.g. "tcp port 80 and host 10.0.0.9").
    #[arg(long, short = 'f', value_name = "EXPR")]
    pub filter: Option<String>,
    /// Frames received, sent, or both.
    #[arg(long, default_value = "both", value_parser = ["rx", "tx", "both"], value_name = "DIR")]
    pub direction: String,
    /// Bytes kept of each frame (at most 2048).
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u16).range(1..=2048), value_name = "BYTES")]
    pub snaplen: u16,
    /// Stop after this many seconds even if fewer frames came.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub timeout: f64,
}

#[derive(Args, Clone)]
pub struct DrainArgs {
    /// The service: VIP or VIP:PORT ([2001:db8::100]:80 for IPv6).
    #[arg(value_name = "VIP[:PORT]")]
    pub service: String,
    /// The backend's address.
    #[arg(value_name = "BACKEND")]
    pub backend: String,
}

impl CtlCmd {
    /// The request's command name and arguments on the control socket.
    pub fn request(&self) -> (&'static str, Vec<String>) {
        match self {
            CtlCmd::Status => ("status", vec![]),
            CtlCmd::Services => ("services", vec![]),
            CtlCmd::Backends => ("backends", vec![]),
            CtlCmd::Flows => ("flows", vec![]),
            CtlCmd::Stats => ("stats", vec![]),
            CtlCmd::Drain(a) => ("drain", vec![a.service.clone(), a.backend.clone()]),
            CtlCmd::Undrain(a) => ("undrain", vec![a.service.clone(), a.backend.clone()]),
            CtlCmd::Reload => ("reload", vec![]),
            CtlCmd::DrainInstance => ("drain-instance", vec![]),
            // A session of several requests: main runs it (capture::client).
            CtlCmd::Capture(_) => ("capture-start", vec![]),
        }
    }
}

fn parse_port_mac(s: &str) -> Result<(u16, MacAddr), String> {
    let (p, m) = s.split_once('=').ok_or("expected PORT=MAC")?;
    Ok((p.parse().map_err(|_| format!("{p:?} is not a port index"))?, m.parse()?))
}

/// Write a completion script for `shell` to `out`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    clap_complete::generate(shell, &mut Cli::command(), "dsrlb", out);
}

/// Write `dsrlb.1` and `dsrlb-SUB.1` for every visible subcommand (and `dsrlb-ctl-SUB.1`) into
/// `dir`; returns the files written.
pub fn man_pages(dir: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let mut cmd = Cli::command();
    cmd.build();
    write_pages(&cmd, "dsrlb", dir, &mut written)?;
    Ok(written)
}

fn write_pages(
    cmd: &clap::Command,
    name: &str,
    dir: &std::path::Path,
    written: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    let page = cmd.clone().name(name.to_string()).display_name(name.to_string());
    let path = dir.join(format!("{name}.1"));
    let mut buf = Vec::new();
    clap_mangen::Man::new(page).render(&mut buf)?;
    std::fs::write(&path, buf)?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}
