//! The one registry of commands: names, aliases, summaries, usage, long help, the words the REPL
//! completes after them, and the handler. Help, completion and dispatch all read this table.

use super::{
    Invocation, Output, Session, control, examine, help, info, misc, regions, settings, threads,
};
use crate::error::Result;

pub type Handler = fn(&mut Session, &Invocation<'_>) -> Result<Output>;

/// What the REPL completes for a command's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Only the listed words (flags, keywords).
    Words,
    /// The listed words and command names (`help CMD`).
    Commands,
    /// The listed words and file names (`source FILE`).
    Files,
}

pub struct CommandSpec {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub summary: &'static str,
    pub usage: &'static str,
    pub help: &'static str,
    /// Flags and keywords completed after the command name.
    pub words: &'static [&'static str],
    pub completion: Completion,
    pub run: Handler,
}

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "help",
        aliases: &["h", "?"],
        summary: "list the commands, or explain one",
        usage: "help [COMMAND]",
        help: "Without an argument, lists every command with a one-line summary. With a command \
               name or alias, shows its usage and what it does.",
        words: &[],
        completion: Completion::Commands,
        run: help::run,
    },
    CommandSpec {
        name: "info",
        aliases: &["i"],
        summary: "the process: pid, executable, state, threads, memory totals, faults",
        usage: "info",
        help: "Shows the target's pid, executable, command line and state, its thread count, and \
               the kernel's own memory accounting from /proc/PID/status (VmSize, VmRSS, RssAnon, \
               RssFile, RssShmem, VmSwap) with the minor and major page-fault counts.",
        words: &[],
        completion: Completion::Words,
        run: info::run,
    },
    CommandSpec {
        name: "threads",
        aliases: &["thread"],
        summary: "every thread: tid, name, state, syscall, stack pointer and pc",
        usage: "threads",
        help: "Lists the target's threads from /proc/PID/task. A thread blocked in a system call \
               shows the call and its stack pointer and program counter (from task/TID/syscall); \
               when the target is stopped, sp and pc come from the registers.",
        words: &[],
        completion: Completion::Words,
        run: threads::run,
    },
    CommandSpec {
        name: "registers",
        aliases: &["regs"],
        summary: "general registers of a stopped thread",
        usage: "registers [TID]",
        help: "Shows the general registers of the main thread, or of TID. The target must be \
               stopped (`stop`).",
        words: &[],
        completion: Completion::Words,
        run: threads::run_registers,
    },
    CommandSpec {
        name: "regions",
        aliases: &["vmmap"],
        summary: "the memory map: every region with kind, usage and sharing; summary by kind",
        usage: "regions [ADDR [-A N] [-B N]] [PATTERN] [--kind K[,K]] [--perm w+x] [--gaps] \
                [--sort addr|size|rss|dirty|swap] [--top N] [--summary] [--wide] [--bytes]",
        help: "Lists every mapping with its range, size, resident (RSS), dirty and swapped bytes \
               (from /proc/PID/smaps), permissions, sharing mode (SM: PRV private, COW \
               copy-on-write, SHM shared, NUL nothing resident), kind and detail, then a summary \
               by kind with the largest free block.\n\
               Kinds: image (executable and libraries, by part: .text .rodata .relro .data .bss), \
               heap ([heap] and glibc arenas), stack (per thread), file, shared (shm, memfd, SysV, \
               shared anonymous), private (anonymous), guard (no access), system (vdso, vvar, \
               vsyscall), free (gaps).\n\
               regions ADDR shows the region holding ADDR (with -A/-B neighbours, free gaps \
               included); a PATTERN keeps regions whose detail or path contains it; --wide adds \
               PSS, private/shared clean/dirty, locked, THP, offset, dev:inode and VmFlags.",
        words: &[
            "--wide",
            "--bytes",
            "--gaps",
            "--summary",
            "--kind",
            "--perm",
            "--sort",
            "--top",
            "-A",
            "-B",
            "image",
            "heap",
            "stack",
            "file",
            "shared",
            "private",
            "guard",
            "system",
            "free",
            "addr",
            "size",
            "rss",
            "dirty",
            "swap",
        ],
        completion: Completion::Words,
        run: regions::run,
    },
    CommandSpec {
        name: "x",
        aliases: &["examine"],
        summary: "examine memory (gdb's x/FMT)",
        usage: "x[/NFU] EXPR",
        help: "Reads memory at EXPR and shows N units of size U in format F, as gdb does.\n\
               Formats: x hex, d signed decimal, u unsigned decimal, o octal, t binary, c char, \
               a address (annotated with what it points to), s C string.\n\
               Sizes: b byte, h halfword (2), w word (4), g giant (8).\n\
               Examples: x/8gx $sp   x/s $mapped   x/4dw [heap]+16   x/a *($sp+8)\n\
               Format and size are remembered; `x` with no address continues after the last.",
        words: &[],
        completion: Completion::Words,
        run: examine::run,
    },
    CommandSpec {
        name: "print",
        aliases: &["p"],
        summary: "evaluate an expression",
        usage: "print EXPR",
        help: "Evaluates an address expression and shows it in hex and decimal. Expressions: \
               numbers (0x7f00_1000, 4096), $registers when stopped ($pc, $sp, $rax...), \
               $convenience variables, regions ([heap], [stack]), + - * /, parentheses, and \
               *EXPR to read a pointer.",
        words: &[],
        completion: Completion::Words,
        run: misc::run_print,
    },
    CommandSpec {
        name: "stop",
        aliases: &["interrupt"],
        summary: "stop every thread (ptrace)",
        usage: "stop",
        help: "Seizes every thread with ptrace and stops it, so registers can be read. The target \
               stays stopped until `continue` or `detach`; vmscope always lets go of it when it \
               exits, however it exits.",
        words: &[],
        completion: Completion::Words,
        run: control::run_stop,
    },
    CommandSpec {
        name: "continue",
        aliases: &["c", "cont"],
        summary: "let a stopped target run again",
        usage: "continue",
        help: "Resumes every thread stopped by `stop`, delivering any signal that was held.",
        words: &[],
        completion: Completion::Words,
        run: control::run_continue,
    },
    CommandSpec {
        name: "detach",
        aliases: &[],
        summary: "let go of the target, leaving it running",
        usage: "detach",
        help: "Detaches from ptrace (if stopped, the target runs again) and forgets the target. \
               A process vmscope launched is killed instead, as gdb does.",
        words: &[],
        completion: Completion::Words,
        run: control::run_detach,
    },
    CommandSpec {
        name: "signal",
        aliases: &[],
        summary: "send a signal to the target or another process",
        usage: "signal SIGNAL [PID]",
        help: "Sends SIGNAL (SIGUSR1, USR1 or a number) to the target, or to PID (an expression: \
               `signal SIGUSR1 $child_pid`). It is the one command that acts on a process rather \
               than observing it; the demo uses it to make its child write to a shared page.",
        words: &["SIGUSR1", "SIGUSR2", "SIGCONT", "SIGSTOP", "SIGTERM"],
        completion: Completion::Words,
        run: control::run_signal,
    },
    CommandSpec {
        name: "attach",
        aliases: &[],
        summary: "inspect another process",
        usage: "attach PID",
        help: "Lets go of the current target (if any) and attaches passively to PID: nothing is \
               stopped until a command needs it.",
        words: &[],
        completion: Completion::Words,
        run: control::run_attach,
    },
    CommandSpec {
        name: "set",
        aliases: &[],
        summary: "change a setting or a convenience variable",
        usage: "set color on|off|auto | set json on|off | set $NAME = EXPR",
        help: "`set color` turns colored output on or off (auto: when stdout is a terminal and \
               NO_COLOR is unset). `set json` switches to one JSON document per command. \
               `set $NAME = EXPR` stores a value for later expressions. `set` alone lists them.",
        words: &["color", "json", "on", "off", "auto"],
        completion: Completion::Words,
        run: settings::run,
    },
    CommandSpec {
        name: "source",
        aliases: &[],
        summary: "run the commands in a file",
        usage: "source FILE",
        help: "Runs a command file: one command per line, `#` comments and blank lines skipped. \
               Stops at the first error with FILE:LINE: message.",
        words: &[],
        completion: Completion::Files,
        run: misc::run_source,
    },
    CommandSpec {
        name: "echo",
        aliases: &[],
        summary: "print text (for command files)",
        usage: "echo TEXT",
        help: "Prints TEXT. Command files use it to narrate; `\\n` is a newline.",
        words: &[],
        completion: Completion::Words,
        run: misc::run_echo,
    },
    CommandSpec {
        name: "quit",
        aliases: &["q", "exit"],
        summary: "let go of the target and exit",
        usage: "quit",
        help: "Detaches from the target (killing a process vmscope launched) and exits.",
        words: &[],
        completion: Completion::Words,
        run: misc::run_quit,
    },
];

/// The command named `name` or aliased so.
pub fn lookup(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS
        .iter()
        .find(|c| c.name == name || c.aliases.contains(&name))
}

/// Every name and alias, for completion.
pub fn all_names() -> impl Iterator<Item = &'static str> {
    COMMANDS
        .iter()
        .flat_map(|c| std::iter::once(c.name).chain(c.aliases.iter().copied()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn no_name_or_alias_repeats() {
        let mut seen = HashSet::new();
        for name in all_names() {
            assert!(seen.insert(name), "`{name}` is registered twice");
        }
    }

    #[test]
    fn every_command_is_documented() {
        for c in COMMANDS {
            assert!(!c.summary.is_empty() && !c.help.is_empty(), "{}", c.name);
            assert!(c.usage.starts_with(c.name), "usage of {} names it", c.name);
        }
    }
}
