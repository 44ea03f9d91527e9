//! The vmscope command line: picks the target (`-p PID`, `-- PROG ARGS`, `--core FILE`, `demo`),
//! then runs the REPL, a batch of commands (`-ex`, `-x`), or commands from stdin. The only place
//! using anyhow.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use vmscope::command::{Session, Settings};
use vmscope::{demo, interrupt, render, repl, script, target};

const AFTER_HELP: &str = "\
Examples:
  vmscope demo                          the guided tour on a demo process
  vmscope -p 4242                       inspect a running process (it keeps running)
  vmscope -p 4242 --batch -ex 'x/4gx 0x7ffd5c3e1000'
  printf 'info\\nthreads\\n' | vmscope -p 4242
  vmscope -- ./myprog arg1 arg2         start a program and inspect it
  vmscope --core core.4242 --exe ./myprog   a core file (read-only)

gdb-style spellings are accepted: -ex CMD, -batch.

Ctrl-C ends the command running. Before a prompt it also stops the -ex/-x commands still to run
(or the demo's tour) and the prompt follows; with --batch or commands from a pipe it ends vmscope
(status 130), letting go of the target first.

Exit status:
  0  every command succeeded
  1  a command failed or was interrupted (or the target could not be opened)
  2  usage error (bad command-line arguments)
  128+N  ended by signal N (SIGINT, SIGTERM, SIGHUP), the target let go";

#[derive(Parser, Debug)]
#[command(
    name = "vmscope",
    version,
    about = "Explain a process's memory: regions, addresses, threads, pages.",
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// Attach to a running process (passively: it keeps running).
    #[arg(
        short = 'p',
        long = "pid",
        value_name = "PID",
        conflicts_with = "program"
    )]
    pid: Option<i32>,

    /// Open an ELF core file instead of a live process (read-only).
    #[arg(long = "core", value_name = "FILE", conflicts_with_all = ["pid", "program"])]
    core: Option<PathBuf>,

    /// With --core: the executable the core came from, when it is not (or no longer) at the path
    /// the core names.
    #[arg(long = "exe", value_name = "PATH", requires = "core")]
    exe: Option<PathBuf>,

    /// Open a snapshot saved with `snapshot save FILE` (read-only: regions, layout, diff, info).
    #[arg(
        long = "snapshot",
        value_name = "FILE",
        conflicts_with_all = ["pid", "program", "core"]
    )]
    snapshot: Option<PathBuf>,

    /// Run a command (repeatable; in order with -x).
    #[arg(long = "ex", value_name = "CMD", action = clap::ArgAction::Append)]
    ex: Vec<String>,

    /// Run the commands in FILE (repeatable; in order with -ex).
    #[arg(short = 'x', value_name = "FILE", action = clap::ArgAction::Append)]
    command_file: Vec<PathBuf>,

    /// Run the -ex/-x commands and exit instead of opening the REPL.
    #[arg(long)]
    batch: bool,

    /// In a -x file, report an error and go on instead of stopping at the first.
    #[arg(long)]
    keep_going: bool,

    /// One JSON document per command, on one line.
    #[arg(long)]
    json: bool,

    /// Color the output: auto (a terminal, and NO_COLOR unset), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    color: ColorChoice,

    #[command(subcommand)]
    mode: Option<Mode>,

    /// Start PROG with ARGS and inspect it: the first command sees it at its entry point with its
    /// libraries loaded, running on in its own process group, so Ctrl-C stops vmscope's command,
    /// not it (it is killed when vmscope exits, as in gdb).
    #[arg(last = true, value_name = "PROG [ARGS]")]
    program: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// The guided tour: start a demo process, show what vmscope sees, clean up.
    Demo,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// gdb's single-dash long options (`-ex`, `-batch`) spelled the clap way.
fn gdb_style(args: impl Iterator<Item = OsString>) -> Vec<OsString> {
    let mut seen_dashdash = false;
    args.map(|a| {
        if seen_dashdash {
            return a;
        }
        match a.to_str() {
            Some("--") => {
                seen_dashdash = true;
                a
            }
            Some("-ex") => "--ex".into(),
            Some("-batch") => "--batch".into(),
            _ => a,
        }
    })
    .collect()
}

/// One step of a batch: a command or a command file, in command-line order.
enum Step {
    Command(String),
    File(PathBuf),
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).and_then(|a| a.to_str()) == Some(demo::TARGET_ARG) {
        demo::run_target();
    }
    let matches = Cli::command().get_matches_from(gdb_style(args.into_iter()));
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let steps = ordered_steps(&cli, &matches);
    interrupt::install();
    let code = match run(cli, steps) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("vmscope: {e}");
            1
        }
    };
    std::process::exit(code);
}

fn ordered_steps(cli: &Cli, matches: &clap::ArgMatches) -> Vec<Step> {
    let mut steps: Vec<(usize, Step)> = Vec::new();
    if let Some(idx) = matches.indices_of("ex") {
        steps.extend(idx.zip(&cli.ex).map(|(i, c)| (i, Step::Command(c.clone()))));
    }
    if let Some(idx) = matches.indices_of("command_file") {
        steps.extend(
            idx.zip(&cli.command_file)
                .map(|(i, f)| (i, Step::File(f.clone()))),
        );
    }
    steps.sort_by_key(|(i, _)| *i);
    steps.into_iter().map(|(_, s)| s).collect()
}

fn run(cli: Cli, steps: Vec<Step>) -> anyhow::Result<bool> {
    let settings = Settings {
        json: cli.json,
        color: match cli.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => render::color_auto(),
        },
    };
    let mut session = Session::new(settings);
    let interactive = std::io::stdin().is_terminal();
    // With a REPL to follow, Ctrl-C during the tour or the -ex/-x commands stops them and goes
    // on to the prompt, as in gdb; without one it ends vmscope.
    interrupt::set_repl_active(interactive && !cli.batch);

    if matches!(cli.mode, Some(Mode::Demo)) {
        let (target, facts) = demo::start_target()?;
        session.set_target(target);
        let result = demo::tour(&mut session, &facts);
        let mut ok = match result {
            Ok(ok) => ok,
            Err(e) => {
                session.report("tour", &e);
                false
            }
        };
        if interactive && !cli.batch && !session.quit_requested {
            ok = repl::run(&mut session);
        }
        drop(session); // kills the demo target and, through PDEATHSIG, its child
        demo::clean_up(&facts);
        return Ok(ok);
    }

    if let Some(pid) = cli.pid {
        session.set_target(target::attach(pid)?);
    } else if let Some(file) = &cli.snapshot {
        session.set_target(Box::new(target::snapshot::SnapshotTarget::open(file)?));
    } else if let Some(core) = &cli.core {
        session.set_target(Box::new(target::core::CoreFile::open(
            core,
            cli.exe.as_deref(),
        )?));
    } else if let Some((prog, args)) = cli.program.split_first() {
        #[cfg(target_os = "linux")]
        session.set_target(Box::new(target::linux::LinuxProcess::launch(
            std::path::Path::new(prog),
            args,
        )?));
        #[cfg(not(target_os = "linux"))]
        anyhow::bail!("launching {prog} {args:?} is not supported on this OS yet");
    }

    let mut ok = true;
    interrupt::clear_stop();
    for step in &steps {
        if session.quit_requested {
            break;
        }
        match step {
            Step::Command(line) => ok &= session.run_line(line),
            Step::File(path) => match script::run_file(&mut session, path, cli.keep_going) {
                Ok(all) => ok &= all,
                Err(e) => {
                    session.report("source", &e);
                    ok = false;
                }
            },
        }
        if interrupt::stop_requested() {
            if !std::ptr::eq(step, steps.last().unwrap_or(step)) {
                eprintln!("vmscope: interrupted: the remaining commands were not run");
            }
            ok = false;
            break;
        }
    }
    if cli.batch || session.quit_requested {
        return Ok(ok);
    }
    if interactive {
        ok = repl::run(&mut session) && (steps.is_empty() || ok);
    } else {
        // Commands from a pipe or file, one per line; every one runs, failures are counted.
        for line in std::io::stdin().lock().lines() {
            let line = line?;
            ok &= session.run_line(&line);
            if session.quit_requested {
                break;
            }
        }
    }
    Ok(ok)
}
