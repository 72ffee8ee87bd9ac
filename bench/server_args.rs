//! Command line of the bench servers: `--workers N` and `--listen ADDR`, or
//! `BENCH_WORKERS` and `BENCH_LISTEN`.

pub struct ServerArgs {
    pub workers: usize,
    pub listen: String,
}

fn usage(name: &str) -> ! {
    eprintln!("usage: {name} [--workers N] [--listen ADDR]");
    std::process::exit(2);
}

/// Parses the arguments; `default_workers` and `default_listen` apply when
/// neither the flag nor the variable is given.
pub fn parse(name: &str, default_workers: usize, default_listen: &str) -> ServerArgs {
    let mut workers = std::env::var("BENCH_WORKERS").ok();
    let mut listen = std::env::var("BENCH_LISTEN").ok();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--workers" => workers = Some(args.next().unwrap_or_else(|| usage(name))),
            "--listen" => listen = Some(args.next().unwrap_or_else(|| usage(name))),
            _ => usage(name),
        }
    }
    let workers = match workers {
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or_else(|| usage(name)),
        None => default_workers,
    };
    ServerArgs {
        workers,
        listen: listen.unwrap_or_else(|| default_listen.to_owned()),
    }
}
