//! Range counting over page tables: what `translate` pays to count a range, against the limit (a
//! bare PAGEMAP_SCAN loop) and the old way (chunked reads of /proc/PID/pagemap).
//!
//! The target is this bench re-run as a child holding two mappings: 64 GiB of private anonymous
//! memory (MAP_NORESERVE) with one page touched every 64 MiB (1,024 present pages: mostly
//! unpopulated), and 1 GiB populated page by page (262,144 present 4 KiB pages, no THP). For each,
//! in one run and interleaved round by round, it times:
//!
//! - (a) a bare PAGEMAP_SCAN loop: open /proc/PID/pagemap, ioctl until the range is walked,
//!   count present pages; the limit;
//! - (b) vmscope's `Target::pages` on an attached process and `Summary::count`: the counting
//!   `translate` does;
//! - (c) plain reads of /proc/PID/pagemap in 512 KiB chunks, counting present bits: the way
//!   before Linux 6.7 (vmscope's fallback), what every other tool does;
//! - (d) the whole `translate --region ADDR --limit 0` command in process (regions with usage,
//!   classification, the scan, the counts), for context;
//!
//! and prints medians, spreads, and ratios to (a). Budget: (b) within 2× of (a).
//!
//! `cargo bench --bench pagemap`; `VMSCOPE_BENCH_ITERS=N` sets the rounds.

mod common;

use common::{Case, ChildGuard, Stats, Table};
use linux_raw_sys::general::{PAGE_IS_PRESENT, PAGE_IS_SWAPPED, page_region, pm_scan_arg};
use std::fs::File;
use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::process::{Command, Stdio};
use vmscope::addr::VirtAddr;
use vmscope::pages::Summary;
use vmscope::target::Target;
use vmscope::target::linux::LinuxProcess;
use vmscope::target::linux::pagemap::PAGEMAP_SCAN;

const CHILD_ENV: &str = "VMSCOPE_BENCH_PAGEMAP_CHILD";
const PAGE: u64 = 4096;
const SPARSE: u64 = 64 << 30;
const SPARSE_STRIDE: u64 = 64 << 20;
const DENSE: u64 = 1 << 30;

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child();
    }
    println!(
        "vmscope bench: counting pages of a range (translate) against PAGEMAP_SCAN and pagemap reads"
    );
    println!("machine: {}", common::machine_summary());
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the target");
    let stdout = child.stdout.take().expect("piped");
    let child = ChildGuard(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("target facts");
    let mut words = line
        .split_whitespace()
        .map(|w| u64::from_str_radix(w, 16).unwrap());
    let (sparse, dense) = (words.next().unwrap(), words.next().unwrap());
    let pid = child.pid();
    println!(
        "target: pid {pid}, 64 GiB at {sparse:#x} (1,024 pages touched), 1 GiB at {dense:#x} (populated)"
    );

    let rounds = common::rounds(30);
    let mut table = Table::new(&["case", "median", "min – max", "vs bare scan", "present"]);
    for (label, start, len, want) in [
        ("64 GiB sparse", sparse, SPARSE, SPARSE / SPARSE_STRIDE),
        ("1 GiB populated", dense, DENSE, DENSE / PAGE),
    ] {
        let range = VirtAddr(start)..VirtAddr(start + len);
        let mut target = LinuxProcess::attach(pid).expect("attach");
        let mut session = vmscope::command::Session::new(vmscope::command::Settings {
            json: true,
            color: false,
        });
        session.set_target(Box::new(LinuxProcess::attach(pid).expect("attach")));
        let counts = [
            bare_scan(pid, start, start + len),
            vmscope_count(&mut target, range.clone()),
            chunked_reads(pid, start, len),
        ];
        assert!(
            counts.iter().all(|&c| c == want),
            "{label}: counts {counts:?}, want {want}"
        );
        let command = format!("translate --region {start:#x} --limit 0");
        let mut cases = vec![
            Case::new("(a) bare PAGEMAP_SCAN loop", || {
                black_box(bare_scan(pid, start, start + len));
            }),
            Case::new("(b) vmscope Target::pages + count", || {
                black_box(vmscope_count(&mut target, range.clone()));
            }),
            Case::new("(c) pagemap reads, 512 KiB chunks", || {
                black_box(chunked_reads(pid, start, len));
            }),
            Case::new("(d) vmscope `translate --region`", || {
                black_box(session.execute(&command).expect("translate"));
            }),
        ];
        let stats: Vec<Stats> = common::run_interleaved(rounds, &mut cases);
        let names: Vec<String> = cases.iter().map(|c| c.name.clone()).collect();
        drop(cases);
        for (name, s) in names.iter().zip(&stats) {
            table.row(vec![
                format!("{label}: {name}"),
                common::fmt_duration(s.median),
                s.spread(),
                common::ratio(s.median, stats[0].median),
                want.to_string(),
            ]);
        }
    }
    println!("{rounds} rounds, interleaved");
    table.print();
    println!("budget: (b) within 2x of (a)");
}

/// A bare PAGEMAP_SCAN loop: present pages in [start, end).
fn bare_scan(pid: i32, start: u64, end: u64) -> u64 {
    let f = File::open(format!("/proc/{pid}/pagemap")).expect("open pagemap");
    let mut vec = vec![
        page_region {
            start: 0,
            end: 0,
            categories: 0
        };
        1024
    ];
    let mut at = start;
    let mut present = 0;
    while at < end {
        let mut arg = pm_scan_arg {
            size: std::mem::size_of::<pm_scan_arg>() as u64,
            flags: 0,
            start: at,
            end,
            walk_end: 0,
            vec: vec.as_mut_ptr() as u64,
            vec_len: vec.len() as u64,
            max_pages: 0,
            category_inverted: 0,
            category_mask: 0,
            category_anyof_mask: (PAGE_IS_PRESENT | PAGE_IS_SWAPPED) as u64,
            return_mask: (PAGE_IS_PRESENT | PAGE_IS_SWAPPED) as u64,
        };
        // SAFETY: the kernel writes at most vec_len regions into `vec`, which outlives the call.
        let n = unsafe { libc::ioctl(f.as_raw_fd(), PAGEMAP_SCAN as _, &mut arg) };
        assert!(n >= 0, "PAGEMAP_SCAN: {}", std::io::Error::last_os_error());
        let got = &vec[..n as usize];
        present += got
            .iter()
            .filter(|r| r.categories & PAGE_IS_PRESENT as u64 != 0)
            .map(|r| (r.end - r.start) / PAGE)
            .sum::<u64>();
        at = arg.walk_end.max(got.last().map_or(0, |r| r.end));
    }
    present
}

/// What `translate` does to count: the backend's scan, then the counts.
fn vmscope_count(target: &mut LinuxProcess, range: std::ops::Range<VirtAddr>) -> u64 {
    let scan = target.pages(range.clone()).expect("pages");
    let pages = range.end.offset_from(range.start) / PAGE;
    Summary::count(&scan.runs, &[range], pages, PAGE).present
}

/// Present pages from plain reads of pagemap in 512 KiB chunks.
fn chunked_reads(pid: i32, start: u64, len: u64) -> u64 {
    let f = File::open(format!("/proc/{pid}/pagemap")).expect("open pagemap");
    let mut buf = vec![0u8; 512 << 10];
    let total = len / PAGE * 8;
    let mut done = 0;
    let mut present = 0;
    while done < total {
        let n = (buf.len() as u64).min(total - done) as usize;
        f.read_exact_at(&mut buf[..n], start / PAGE * 8 + done)
            .expect("read pagemap");
        present += buf[..n]
            .chunks_exact(8)
            .filter(|c| c[7] & 0x80 != 0)
            .count() as u64;
        done += n as u64;
    }
    present
}

/// The target: maps, touches, prints both addresses, and waits to die with the bench.
fn child() -> ! {
    // SAFETY: plain mmap/madvise/prctl calls on memory this process owns; the mappings live
    // until the process exits.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let sparse = libc::mmap(std::ptr::null_mut(), SPARSE as usize, prot, flags, -1, 0);
        assert_ne!(sparse, libc::MAP_FAILED, "mmap 64 GiB");
        libc::madvise(sparse, SPARSE as usize, libc::MADV_NOHUGEPAGE);
        for off in (0..SPARSE).step_by(SPARSE_STRIDE as usize) {
            (sparse as *mut u8).add(off as usize).write_volatile(1);
        }
        let dense = libc::mmap(std::ptr::null_mut(), DENSE as usize, prot, flags, -1, 0);
        assert_ne!(dense, libc::MAP_FAILED, "mmap 1 GiB");
        libc::madvise(dense, DENSE as usize, libc::MADV_NOHUGEPAGE);
        for off in (0..DENSE).step_by(PAGE as usize) {
            (dense as *mut u8).add(off as usize).write_volatile(1);
        }
        println!("{:x} {:x}", sparse as u64, dense as u64);
        use std::io::Write;
        let _ = std::io::stdout().flush();
        loop {
            libc::pause();
        }
    }
}
