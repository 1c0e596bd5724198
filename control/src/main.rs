//! The `dsrlb` command: `run`, `check` and `ctl`.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use control::{app, ctl};

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
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();
    match Cli::parse().cmd {
        Cmd::Run { config, eal } => match app::run(app::RunArgs { config_path: config, extra_eal: eal }) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                log::error!("{e}");
                ExitCode::from(1)
            }
        },
        Cmd::Check { config } => match app::check(&config) {
            Ok(m) => {
                println!("{m}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        },
        Cmd::Ctl { socket, json, command } => {
            let (cmd, args) = command.split_first().expect("clap requires a command");
            match ctl::request(&socket, cmd, args) {
                Ok(data) => {
                    if json {
                        println!("{}", serde_json::to_string_pretty(&data).unwrap_or_default());
                    } else {
                        print!("{}", ctl::render(cmd, &data));
                    }
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
