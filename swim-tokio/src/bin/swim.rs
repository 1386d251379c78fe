//! `swim`: run a SWIM cluster agent, or ask one about its members.
//!
//! ```text
//! swim agent --bind 127.0.0.1:7946 --name a --http 127.0.0.1:7947
//! swim agent --bind 127.0.0.1:7956 --join 127.0.0.1:7946 --meta role=web
//! swim members --http 127.0.0.1:7947
//! ```

use std::process::ExitCode;

use clap::Parser;
use swim_tokio::agent::cli::{Cli, Command, MembersArgs};
use swim_tokio::agent::settings::Settings;
use swim_tokio::agent::{client, init_logging, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One thread: an agent's work is a few datagrams a second, and idle
    // worker threads only cost memory.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("swim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Agent(args) => {
            let settings = match Settings::load(&args) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("swim: {e}");
                    return ExitCode::from(2);
                }
            };
            let log = match init_logging(settings.log_level.as_deref()) {
                Ok(log) => log,
                Err(e) => {
                    eprintln!("swim: {e}");
                    return ExitCode::from(2);
                }
            };
            // Printed once, here; the run loop does not log it too.
            match runtime.block_on(run::run(args, settings, log)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("swim: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Members(args) => runtime.block_on(members(args)),
    }
}

async fn members(args: MembersArgs) -> ExitCode {
    if args.json {
        match client::get(&args.http, &args.path()).await {
            Ok(body) => {
                println!("{body}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("swim: {}: {e}", args.http);
                ExitCode::FAILURE
            }
        }
    } else {
        match client::members_at(&args.http, &args.path()).await {
            Ok(members) => {
                print!("{}", client::table(&members));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("swim: {}: {e}", args.http);
                ExitCode::FAILURE
            }
        }
    }
}
