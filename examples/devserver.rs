//! The demo's two small servers (`make run`), until killed:
//! a JWKS endpoint on 127.0.0.1:9080 (any path; the demo keys, or a file re-read when it changes,
//! so keys can be rotated live) and an echo upstream on 127.0.0.1:9081 that answers with the
//! request's path and headers as JSON.
//!
//! ```text
//! cargo run --example devserver -- [--jwks-port 9080] [--echo-port 9081] [--jwks FILE]
//! ```

#[path = "../tests/support/mint.rs"]
mod mint;
#[path = "../tests/support/servers.rs"]
mod servers;

use servers::{EchoUpstream, JwksServer};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: devserver [--jwks-port PORT (9080)] [--echo-port PORT (9081)] [--jwks FILE]";

struct Options {
    jwks_port: u16,
    echo_port: u16,
    jwks_file: Option<String>,
}

fn main() -> ExitCode {
    match parse(std::env::args().skip(1).collect()).and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("error: {why}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn parse(args: Vec<String>) -> Result<Options, String> {
    let mut opts = Options { jwks_port: 9080, echo_port: 9081, jwks_file: None };
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        let value = iter.next().ok_or_else(|| format!("{arg} needs a value"))?;
        let port = || value.parse::<u16>().map_err(|_| format!("{arg} {value:?} is not a port"));
        match arg.as_str() {
            "--jwks-port" => opts.jwks_port = port()?,
            "--echo-port" => opts.echo_port = port()?,
            "--jwks" => opts.jwks_file = Some(value),
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    Ok(opts)
}

/// The JWKS to serve now: the file's content, or the demo keys'.
fn current_jwks(file: Option<&str>) -> Result<String, String> {
    match file {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}")),
        None => mint::demo_jwks(),
    }
}

fn run(opts: Options) -> Result<(), String> {
    let mut body = current_jwks(opts.jwks_file.as_deref())?;
    let jwks = JwksServer::on_port(opts.jwks_port, &body)
        .map_err(|e| format!("JWKS on port {}: {e}", opts.jwks_port))?;
    let echo =
        EchoUpstream::on_port(opts.echo_port).map_err(|e| format!("echo on port {}: {e}", opts.echo_port))?;
    let source =
        opts.jwks_file.as_deref().map_or("the demo keys: demo-rsa demo-ec demo-ec384 demo-ed".into(), |f| {
            format!("{f}, re-read when it changes")
        });
    println!("JWKS  http://127.0.0.1:{}/jwks.json  ({source})", jwks.port());
    println!("echo  http://127.0.0.1:{}/", echo.port());
    loop {
        std::thread::sleep(Duration::from_millis(500));
        match current_jwks(opts.jwks_file.as_deref()) {
            Ok(now) if now != body => {
                jwks.set_body(&now);
                println!("JWKS changed ({} bytes), {} fetches so far", now.len(), jwks.hits());
                body = now;
            }
            Ok(_) => {}
            Err(why) => eprintln!("keeping the last JWKS: {why}"),
        }
    }
}
