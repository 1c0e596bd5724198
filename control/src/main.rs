//! The `dsrlb` command: `run`, `check`, `ctl` and `replay`.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use control::{ctl, replay, startup};
use dataplane::wire::MacAddr;

#[derive(Parser)]
#[command(name = "dsrlb", version, about = "Direct Server Return layer-4 load balancer on DPDK")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the load balancer. Arguments after `--` are appended to the EAL arguments.
    Run {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(last = true)]
        eal: Vec<String>,
    },
    /// Validate a configuration file without starting anything.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Talk to a running dsrlb through its control socket.
    Ctl {
        #[arg(long, default_value = "/run/dsrlb.sock")]
        socket: PathBuf,
        /// Print the answer as JSON (for scripts).
        #[arg(long)]
        json: bool,
        /// status | services | backends | flows | stats | drain VIP BACKEND | undrain VIP BACKEND | reload
        #[arg(required = true)]
        command: Vec<String>,
    },
    /// Run the real pipeline over a capture, without DPDK: what the appliance would have sent.
    /// Every backend counts as healthy; unresolved next hops stand in as 02:00:<IPv4>.
    Replay {
        #[arg(long, short)]
        config: PathBuf,
        /// The capture to replay (pcap).
        #[arg(long = "in")]
        input: PathBuf,
        /// Where the frames the appliance would transmit go (pcap).
        #[arg(long = "out")]
        output: PathBuf,
        /// The port the captured frames arrive on.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// A port's MAC, PORT=aa:bb:cc:dd:ee:ff (default: the device's mac=, else 02:00:00:00:00:0N).
        #[arg(long, value_parser = parse_port_mac)]
        mac: Vec<(u16, MacAddr)>,
    },
}

fn parse_port_mac(s: &str) -> Result<(u16, MacAddr), String> {
    let (p, m) = s.split_once('=').ok_or("expected PORT=MAC")?;
    Ok((p.parse().map_err(|_| format!("{p:?} is not a port index"))?, m.parse()?))
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();
    // A panic anywhere (a worker lcore included) ends the process: a worker that died alone
    // would leave an appliance that answers ctl and metrics while its traffic is blackholed.
    // The release profile aborts on panic as well; this also logs it first.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        log::error!("fatal: {info}; aborting so that a supervisor restarts dsrlb");
        default_hook(info);
        std::process::abort();
    }));
    match Cli::parse().cmd {
        Cmd::Run { config, eal } => {
            match startup::run(startup::RunArgs { config_path: config, extra_eal: eal }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    log::error!("{e}");
                    ExitCode::from(1)
                }
            }
        }
        Cmd::Check { config } => match startup::check(&config) {
            Ok(m) => {
                println!("{m}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        },
        Cmd::Replay { config, input, output, port, mac } => {
            match replay::replay(&replay::ReplayArgs { config, input, output, in_port: port, macs: mac }) {
                Ok(summary) => {
                    print!("{summary}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("dsrlb replay: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Cmd::Ctl { socket, json, command } => {
            let (cmd, args) = command.split_first().expect("clap requires a command");
            let shown = ctl::request(&socket, cmd, args).and_then(|data| {
                if json {
                    Ok(format!("{}\n", serde_json::to_string_pretty(&data).unwrap_or_default()))
                } else {
                    ctl::render(cmd, &data)
                }
            });
            match shown {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("dsrlb ctl {cmd}: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
