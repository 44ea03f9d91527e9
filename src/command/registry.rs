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
    /// The listed words and symbol names, for commands that take address expressions.
    Expr,
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
        name: "translate",
        aliases: &["v2p"],
        summary: "virtual to physical: one page explained, or a range counted",
        usage: "translate EXPR [LEN] | translate [REGION] | translate --region EXPR \
                [--limit N] [--pid PID]",
        help: "For one address: the page base and offset, the page size (KernelPageSize), the \
               page frame number (PFN) and physical address, every page-table bit (present, \
               swapped with swap area and offset, exclusive, file/shared-anon, soft-dirty, \
               uffd-wp, guard), the frame's kernel page flags by name (/proc/kpageflags) and how \
               many page tables map it (/proc/kpagecount), the region and kind, and what the \
               state means.\n\
               For a range (EXPR LEN, a region name like [heap] or [stack], or --region EXPR for \
               the whole region holding EXPR): a table of the pages with runs in the same state \
               folded (`37 pages present, physically contiguous from 0x1a2b3000`), at most \
               --limit rows (default 64), and the counts: present, zero page, file, huge, \
               swapped, guard, not present, resident bytes. Counting uses the PAGEMAP_SCAN \
               ioctl (Linux 6.7+), else plain pagemap reads.\n\
               --pid PID looks at another process (the demo's child: --pid $child_pid). Frame \
               numbers and page flags need CAP_SYS_ADMIN (root); without it they are shown as \
               hidden, never as 0.",
        words: &["--region", "--limit", "--pid", "[heap]", "[stack]"],
        completion: Completion::Expr,
        run: super::translate::run,
    },
    CommandSpec {
        name: "shared",
        aliases: &[],
        summary: "physical frames this process shares with another (copy-on-write after fork)",
        usage: "shared PID2 [EXPR [LEN] | [REGION] | --region EXPR] [--pages] [--limit N]",
        help: "Compares the frame numbers of both processes' page tables and lists, per pair of \
               regions, how many physical frames both map and their size, and how many pages sit \
               at the same virtual address in both but on different frames (diverged: one of \
               them wrote its copy-on-write page). After fork, parent and child share every page \
               neither has written. A range limits the pages of this process that are compared; \
               --pages lists the pages (at most --limit, default 64). The zero page is not \
               counted. Needs CAP_SYS_ADMIN (root) to see frame numbers.",
        words: &["--pages", "--limit", "--region", "[heap]", "[stack]"],
        completion: Completion::Words,
        run: super::shared::run,
    },
    CommandSpec {
        name: "layout",
        aliases: &[],
        summary: "the address space drawn top to bottom, as in the textbook, with real addresses",
        usage: "layout [EXPR...] [--all] [--bytes]",
        help: "Draws the whole 64-bit address space as a column of boxes, highest address on top, \
               the way textbooks draw it: kernel space, the non-canonical hole, the main stack \
               (grows down), the mmap area (shared libraries, thread stacks, malloc arenas, \
               anonymous and file mappings; grows down), the heap (grows up), the program's own \
               .bss .data .relro .rodata .text, and the NULL page at the bottom. Every boundary \
               carries its real address; every box its size, permissions, RSS and what lives \
               there. Heights are on a log scale (one line below 16M, one more per 256x), so a \
               4K page and a 100T gap both fit.\n\
               EXPR marks where addresses fall (`layout $sp [heap] main`). The mmap area keeps \
               its 20 largest bands and folds the rest into `N more mappings`; --all draws every \
               band. --bytes gives exact sizes.",
        words: &["--all", "--bytes"],
        completion: Completion::Expr,
        run: super::layout::run,
    },
    CommandSpec {
        name: "snapshot",
        aliases: &["snap"],
        summary: "take the memory map of this moment, for diff; `save FILE` writes it",
        usage: "snapshot [save FILE]",
        help: "Takes every region with its usage, kind and detail (what `regions` shows), the \
               process facts (`info`) and the threads. `snapshot` alone keeps it in the session: \
               a later bare `diff` shows what changed since. `snapshot save FILE` also writes it \
               as versioned JSON (docs/json.md), which `diff FILE` compares with a later moment \
               and `vmscope --snapshot FILE` opens offline. Quote a file name with spaces.",
        words: &["save"],
        completion: Completion::Files,
        run: super::snapshot::run,
    },
    CommandSpec {
        name: "diff",
        aliases: &[],
        summary: "what changed in the memory map: regions added, removed, grown, shrunk...",
        usage: "diff [FILE [FILE2]] [--summary] [--bytes]",
        help: "Compares two memory maps: with no file, the last `regions` or `snapshot` of this \
               session with now; with FILE, that saved snapshot with now; with FILE FILE2, two \
               snapshots (no target needed). Regions are matched by start address, else by end \
               (a stack growing down), else by overlap with the same backing file or kind of \
               memory, and shown with what happened: added, removed, grown, shrunk, moved, perms \
               (mprotect), kind, usage (resident, dirty or swapped bytes changed) or sharing \
               (only the private/shared split changed: a copy-on-write page copied, another \
               process that let go of a library). A region cut out of another by mprotect or \
               munmap says `split from`; one swallowed by a neighbour, `merged into`. Then the \
               size, RSS, private, shared, dirty and swap of every kind, now and the change, \
               the largest free block, and the process's RSS and page faults.\n\
               --summary shows only the figures by kind; --bytes gives exact sizes.",
        words: &["--summary", "--bytes"],
        completion: Completion::Files,
        run: super::diff::run,
    },
    CommandSpec {
        name: "whatis",
        aliases: &["xinfo"],
        summary: "what is at an address: region, section, symbol, source line, thread, pointers",
        usage: "whatis EXPR... [--depth N] | whatis -f FILE [--depth N]",
        help: "Explains an address: the region holding it (range, permissions, kind, offset into \
               it), the file and file offset for file mappings; for executables and libraries \
               the ELF section, the symbol with offset and size (`main+17 (size 96)`), the \
               source file:line and the chain of inlined frames (from DWARF, in the file or its \
               separate debug file, found by build-id or .gnu_debuglink); for a stack, the thread \
               and the distance from its stack pointer; for free space, the gap and its \
               neighbours. Then the value stored there and what it points to, followed pointer \
               by pointer up to --depth (default 3): 0x7ffd... [stack of 4242] -> main+17.\n\
               Several addresses, or -f FILE with one address (or expression) per line, give \
               one line each.\n\
               Symbols work in every expression: main, global_counter, libc.so.6!malloc, \
               libc!malloc, 'mangled_or::demangled::name', main+0x10.",
        words: &["--depth", "-f"],
        completion: Completion::Expr,
        run: super::whatis::run,
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
        completion: Completion::Expr,
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
        completion: Completion::Expr,
        run: misc::run_print,
    },
    CommandSpec {
        name: "watch",
        aliases: &["w"],
        summary: "hardware watchpoint: each access with thread, pc, symbol, old -> new value",
        usage: "watch [EXPR [LEN]] [-w | -rw] [--passive] [--count N] [--for DURATION]",
        help: "Watches LEN bytes (default 8) at EXPR with the CPU's debug registers, on every \
               thread, threads created later included, and reports each access as it happens: \
               the hit number, the thread, the pc with its symbol and source line, and the value \
               before and after. Only the hitting thread is held, and only while the hit is \
               read; the program runs on. -w catches writes (the default), -rw reads or writes \
               (x86 cannot watch reads alone). A range that is unaligned or longer than 8 bytes \
               (up to 32) is split into aligned pieces of 1, 2, 4 or 8 bytes, one hardware slot \
               each; there are 4 slots in all.\n\
               It runs until Ctrl-C, --count N hits or --for DURATION (500ms, 2s, 1m), then \
               disarms: watches are armed only while `watch` runs, and `watch` with no address \
               runs the ones set before. --passive samples pc and tid with perf events instead, \
               without ptrace, so it works while gdb or lldb owns the process; it cannot show \
               values. `watches` lists them with their hit counts, `unwatch N|all` removes them.",
        words: &["-w", "-rw", "--passive", "--count", "--for"],
        completion: Completion::Expr,
        run: super::watch::run_watch,
    },
    CommandSpec {
        name: "watches",
        aliases: &[],
        summary: "the watchpoints, with their slots and hit counts",
        usage: "watches",
        help: "Lists every watch: number, address, length, access, hits so far, the hardware \
               slots it takes, and the expression it was set with.",
        words: &[],
        completion: Completion::Words,
        run: super::watch::run_watches,
    },
    CommandSpec {
        name: "unwatch",
        aliases: &[],
        summary: "remove a watchpoint, or all",
        usage: "unwatch N|all",
        help: "Removes watch N (as numbered by `watches`), or every watch, freeing its hardware \
               slots.",
        words: &["all"],
        completion: Completion::Words,
        run: super::watch::run_unwatch,
    },
    CommandSpec {
        name: "faults",
        aliases: &[],
        summary: "page faults sampled, attributed to regions, pages and code",
        usage: "faults [DURATION] [--major] [--by region|page|symbol] [--top N]",
        help: "Samples every page fault of every thread (threads created meanwhile included) \
               with perf events, each with its data address and pc, for DURATION (500ms, 2s, \
               1m) or until Ctrl-C. Then shows the faults by region (kind and detail as \
               `regions` says: minor, major, pages first touched, bytes), the pages that faulted \
               most, and the code that faulted most (symbol and source line). On a terminal a \
               line is refreshed every second. Faults the kernel counted but could not record \
               are shown as lost. --major samples major faults only (pages read from disk or \
               swap); --by page or --by symbol shows only that table; --top N sets the table \
               lengths (default 10).\n\
               Without perf events (kernel.perf_event_paranoid, a seccomp filter) it counts the \
               faults from /proc/PID/stat and says why per-region attribution is unavailable.",
        words: &["--major", "--by", "--top", "region", "page", "symbol"],
        completion: Completion::Words,
        run: super::faults::run,
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
               `signal SIGUSR1 $child_pid`), then watches the process's pending signals (up to \
               0.5 s) and says what became of it: delivered (a handler ran, or the default \
               action), ignored, or still pending (blocked by every thread, or the process is \
               stopped). So the next command sees what the handler did. It is the one command \
               that acts on a process rather than observing it; the demo uses it to make its \
               child write to a shared page.",
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
