//! Readers for the small text files of /proc/PID that are not the memory map: status, stat,
//! cmdline and the per-thread task/TID/{comm,stat,syscall}. Parsing is kept separate from I/O so
//! the parsers are tested on the kernel's real formats.

use crate::addr::VirtAddr;
use crate::target::{ProcessFacts, Syscall};

/// Fields of /proc/PID/status that `info` shows, in bytes (the file says kB).
pub fn parse_status(text: &str, facts: &mut ProcessFacts) {
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let kb = || {
            value
                .strip_suffix(" kB")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|v| v * 1024)
        };
        match key {
            "Name" => facts.name = value.to_string(),
            "State" => facts.state = value.to_string(),
            "Threads" => facts.threads = value.parse().unwrap_or(0),
            "VmSize" => facts.vm_size = kb(),
            "VmRSS" => facts.vm_rss = kb(),
            "RssAnon" => facts.rss_anon = kb(),
            "RssFile" => facts.rss_file = kb(),
            "RssShmem" => facts.rss_shmem = kb(),
            "VmSwap" => facts.vm_swap = kb(),
            _ => {}
        }
    }
}

/// The signal masks of /proc/PID/status: pending for the whole process (ShdPnd, where `kill`
/// puts a signal) and ignored (SigIgn). Bit N-1 is signal N.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalMasks {
    pub shared_pending: u64,
    pub ignored: u64,
}

pub fn parse_signal_masks(text: &str) -> SignalMasks {
    let mut masks = SignalMasks::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = u64::from_str_radix(value.trim(), 16).unwrap_or(0);
        match key {
            "ShdPnd" => masks.shared_pending = value,
            "SigIgn" => masks.ignored = value,
            _ => {}
        }
    }
    masks
}

/// The fields of /proc/PID/stat (or task/TID/stat) after the command name, which is wrapped in
/// parentheses and may itself contain `)` and spaces: split at the last `)`.
pub struct Stat<'a> {
    pub comm: &'a str,
    /// Fields from `state` (field 3) on.
    rest: Vec<&'a str>,
}

impl<'a> Stat<'a> {
    pub fn parse(text: &'a str) -> Option<Stat<'a>> {
        let open = text.find('(')?;
        let close = text.rfind(')')?;
        let comm = text.get(open + 1..close)?;
        let rest = text.get(close + 1..)?.split_whitespace().collect();
        Some(Stat { comm, rest })
    }

    /// Field `n` as numbered in proc(5) (1 = pid, 2 = comm, 3 = state...).
    pub fn field(&self, n: usize) -> Option<&'a str> {
        self.rest.get(n.checked_sub(3)?).copied()
    }

    pub fn state(&self) -> char {
        self.field(3).and_then(|s| s.chars().next()).unwrap_or('?')
    }
}

/// /proc/PID/stat's minflt (field 10) and majflt (field 12).
pub fn parse_faults(stat: &Stat<'_>, facts: &mut ProcessFacts) {
    facts.minflt = stat.field(10).and_then(|v| v.parse().ok());
    facts.majflt = stat.field(12).and_then(|v| v.parse().ok());
}

/// /proc/PID/cmdline: NUL-separated arguments.
pub fn parse_cmdline(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// What task/TID/syscall says: `running`, or the syscall number (-1 when blocked outside a
/// syscall), six arguments, the stack pointer and the program counter.
#[derive(Debug, PartialEq, Eq)]
pub struct SyscallState {
    pub number: Option<i64>,
    pub sp: VirtAddr,
    pub pc: VirtAddr,
}

pub fn parse_syscall(text: &str) -> Option<SyscallState> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    let hex = |s: &str| u64::from_str_radix(s.strip_prefix("0x")?, 16).ok();
    match fields.as_slice() {
        [nr, .., sp, pc] if fields.len() == 9 || fields.len() == 3 => Some(SyscallState {
            number: nr.parse::<i64>().ok().filter(|&n| n >= 0),
            sp: VirtAddr(hex(sp)?),
            pc: VirtAddr(hex(pc)?),
        }),
        _ => None,
    }
}

impl SyscallState {
    pub fn syscall(&self) -> Option<Syscall> {
        self.number.map(|number| Syscall {
            number,
            name: syscall_name(number),
        })
    }
}

/// Names of the x86_64 system calls a thread is commonly found blocked in. A full table would be
/// 400 lines of data for a label; the number is always shown, the name when it is one of these.
#[cfg(target_arch = "x86_64")]
pub fn syscall_name(number: i64) -> Option<&'static str> {
    Some(match number {
        0 => "read",
        1 => "write",
        7 => "poll",
        17 => "pread64",
        23 => "select",
        34 => "pause",
        35 => "nanosleep",
        43 => "accept",
        45 => "recvfrom",
        47 => "recvmsg",
        61 => "wait4",
        130 => "rt_sigsuspend",
        128 => "rt_sigtimedwait",
        202 => "futex",
        230 => "clock_nanosleep",
        232 => "epoll_wait",
        247 => "waitid",
        270 => "pselect6",
        271 => "ppoll",
        281 => "epoll_pwait",
        288 => "accept4",
        441 => "epoll_pwait2",
        _ => return None,
    })
}

#[cfg(not(target_arch = "x86_64"))]
pub fn syscall_name(_number: i64) -> Option<&'static str> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_masks_from_status() {
        // As a process that ignores SIGINT (2) and SIGQUIT (3), with SIGUSR1 (10) pending.
        let text = "SigQ:\t1/62844\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000200\n\
                    SigBlk:\t0000000000000000\nSigIgn:\t0000000000000006\n";
        assert_eq!(
            parse_signal_masks(text),
            SignalMasks {
                shared_pending: 1 << 9,
                ignored: 0b110,
            }
        );
    }

    #[test]
    fn status_fields_in_bytes() {
        let text = "Name:\tcat\nState:\tS (sleeping)\nVmSize:\t    8200 kB\nVmRSS:\t     1024 kB\n\
                    RssAnon:\t      96 kB\nRssFile:\t     928 kB\nRssShmem:\t       0 kB\n\
                    VmSwap:\t       0 kB\nThreads:\t3\n";
        let mut f = ProcessFacts::default();
        parse_status(text, &mut f);
        assert_eq!(f.name, "cat");
        assert_eq!(f.state, "S (sleeping)");
        assert_eq!(f.vm_size, Some(8200 * 1024));
        assert_eq!(f.vm_rss, Some(1024 * 1024));
        assert_eq!(f.rss_anon, Some(96 * 1024));
        assert_eq!(f.vm_swap, Some(0));
        assert_eq!(f.threads, 3);
    }

    #[test]
    fn stat_with_parens_in_comm() {
        let text = "4242 (a) b) c) S 1 4242 4242 0 -1 4194304 120 0 3 0 0 0 0 0 20 0 1 0";
        let s = Stat::parse(text).unwrap();
        assert_eq!(s.comm, "a) b) c");
        assert_eq!(s.state(), 'S');
        let mut f = ProcessFacts::default();
        parse_faults(&s, &mut f);
        assert_eq!(f.minflt, Some(120));
        assert_eq!(f.majflt, Some(3));
    }

    #[test]
    fn syscall_file_forms() {
        let blocked = "230 0x1 0x0 0x7ffc1 0x7ffc2 0x0 0x0 0x7ffd5c3e1a08 0x7f11e0c5a9e5\n";
        let s = parse_syscall(blocked).unwrap();
        assert_eq!(s.number, Some(230));
        assert_eq!(s.sp, VirtAddr(0x7ffd5c3e1a08));
        assert_eq!(s.pc, VirtAddr(0x7f11e0c5a9e5));
        assert_eq!(s.syscall().unwrap().name, Some("clock_nanosleep"));
        let stopped = parse_syscall("-1 0x7ffd5c3e1a08 0x401000\n").unwrap();
        assert_eq!(stopped.number, None);
        assert_eq!(stopped.pc, VirtAddr(0x401000));
        assert_eq!(parse_syscall("running\n"), None);
        assert_eq!(parse_syscall(""), None);
    }

    #[test]
    fn cmdline_split() {
        assert_eq!(parse_cmdline(b"sleep\x0010\x00"), vec!["sleep", "10"]);
    }
}
