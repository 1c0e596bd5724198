//! The `dsrlb` command: `run`, `check`, `ctl`, `replay`, `completions` (defined in `cli`).

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use control::cli::{Cli, Cmd};
use control::{cli, ctl, replay, startup};

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
        Cmd::Ctl(cli::CtlArgs { socket, cmd: cli::CtlCmd::Capture(c), .. }) => {
            let args = control::capture::client::Args {
                socket: &socket,
                port: c.port,
                direction: &c.direction,
                count: c.count,
                snaplen: c.snaplen,
                filter: c.filter.as_deref(),
                out: &c.out,
                timeout: std::time::Duration::from_secs_f64(c.timeout.clamp(0.1, 86_400.0)),
            };
            match control::capture::client::run(&args) {
                Ok(summary) => {
                    eprintln!("{summary}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("dsrlb ctl capture: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Cmd::Ctl(a) => {
            let (cmd, args) = a.cmd.request();
            let shown = ctl::request(&a.socket, cmd, &args).and_then(|data| {
                if a.json {
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
        Cmd::Completions { shell } => {
            cli::completions(shell, &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Cmd::Man { out } => match cli::man_pages(&out) {
            Ok(files) => {
                for f in files {
                    println!("{}", f.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("dsrlb man: {}: {e}", out.display());
                ExitCode::from(1)
            }
        },
    }
}
