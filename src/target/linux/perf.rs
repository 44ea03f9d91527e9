//! perf events on a live Linux process, through the perf-event2 crate (it has every knob needed:
//! breakpoint and software events, `inherit`, `sigtrap`/`sig_data`, `remove_on_exec`, and the
//! mmap'd ring buffer). Three uses:
//! - page-fault sampling for `faults`: PERF_COUNT_SW_PAGE_FAULTS_MIN and _MAJ with
//!   sample_period 1 and IP | TID | TIME | ADDR, one event per thread and kind, inherited by
//!   threads created later (their samples land in their creator's ring buffer);
//! - breakpoint events with `sigtrap` for a stopping `watch` (see [`super::hwbp`]);
//! - sampled breakpoint events for `watch --passive`: pc and tid, no ptrace.
//!
//! Lost samples are counted honestly: the kernel counts every event even when the ring buffer
//! is full, so what the counters say minus what was read is what was lost.

use super::hwbp::Slot;
use super::ptrace::emergency;
use crate::addr::VirtAddr;
use crate::error::{Error, Result};
use crate::target::{FaultSample, FaultTotals, WatchAccess};
use perf_event::events::{Breakpoint, BreakpointAccess, Software};
use perf_event::{Builder, Counter, SampleFlag, Sampler};
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const PERF_RECORD_LOST: u32 = 2;
const PERF_RECORD_SAMPLE: u32 = 9;

/// How long one wait for samples lasts at most, so deadlines and Ctrl-C are seen promptly.
const POLL_SLICE: Duration = Duration::from_millis(100);

fn bp_event(s: &Slot) -> Breakpoint {
    let access = match s.access {
        WatchAccess::Write => BreakpointAccess::WRITE,
        WatchAccess::Read => BreakpointAccess::READ,
        WatchAccess::ReadWrite => BreakpointAccess::READ_WRITE,
    };
    Breakpoint::Data {
        access,
        addr: s.addr,
        len: u64::from(s.len),
    }
}

/// A breakpoint-event failure as the user needs it.
pub fn breakpoint_error(pid: i32, e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::ESRCH) => Error::Exited { pid, status: None },
        Some(libc::ENOSPC) => Error::Usage(format!(
            "no free hardware debug register in process {pid}: another debugger or perf session \
             holds them (vmscope needs one per watched piece)"
        )),
        Some(libc::EACCES) | Some(libc::EPERM) => Error::Permission {
            what: format!("perf breakpoint events on process {pid}"),
            fix: paranoid_fix(),
        },
        Some(libc::EINVAL) | Some(libc::E2BIG) | Some(libc::EOPNOTSUPP) => Error::Unsupported {
            what: format!("this hardware breakpoint ({e})"),
            target: format!("process {pid}"),
        },
        _ => Error::io(format!("perf_event_open (breakpoint) on process {pid}"), e),
    }
}

fn paranoid_fix() -> String {
    let level = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    format!(
        "kernel.perf_event_paranoid is {level}: run vmscope as root or with CAP_PERFMON, or lower \
         it (`sudo sysctl kernel.perf_event_paranoid=1`)"
    )
}

/// Breakpoint events that raise SIGTRAP in the thread that hits them, tagged with `sig_data`.
/// They live exactly as long as this value (and are closed first by the fatal-signal handler).
pub struct Breakpoints {
    counters: Vec<Counter>,
}

impl Breakpoints {
    /// One event per thread in `tids` and slot, inherited by the threads they create.
    pub fn open(tids: &[i32], slots: &[Slot], sig_data: Option<&[u64]>) -> io::Result<Breakpoints> {
        let mut out = Breakpoints {
            counters: Vec::new(),
        };
        for &tid in tids {
            for (i, s) in slots.iter().enumerate() {
                let mut b = Builder::new(bp_event(s));
                b.observe_pid(tid)
                    .any_cpu()
                    .sample_period(1)
                    .sample(SampleFlag::IP | SampleFlag::TID | SampleFlag::ADDR)
                    .inherit(true)
                    .inherit_thread(true)
                    .remove_on_exec(true)
                    .exclude_kernel(true)
                    .exclude_hv(true)
                    .enabled(true);
                if let Some(data) = sig_data {
                    b.sigtrap(true).sig_data(data[i]);
                }
                match b.build() {
                    Ok(c) => {
                        emergency::add_watch_fd(c.as_raw_fd());
                        out.counters.push(c);
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ESRCH) => break, // thread gone
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(out)
    }
}

impl Drop for Breakpoints {
    fn drop(&mut self) {
        for c in &self.counters {
            emergency::remove_watch_fd(c.as_raw_fd());
        }
        self.counters.clear();
    }
}

/// Sampled breakpoint events for `watch --passive`: one ring buffer per CPU and slot.
pub struct PassiveBreakpoints {
    pid: i32,
    events: Sampled,
    lost: u64,
}

/// One ring buffer (the event that owns it; others write into it through SET_OUTPUT).
struct Stream {
    sampler: Sampler,
    /// What its events count: the watch slot (breakpoints) or 1 for major faults (faults).
    tag: usize,
    samples: u64,
    /// The kernel said POLLHUP: the owning event's thread and every thread it created are gone.
    hup: bool,
}

/// Sampled events on every thread of a process, one per thread, CPU and tag. An inherited
/// per-task event cannot be mmap'd (the kernel refuses: all its children would write to one
/// buffer), so, as `perf record` does, each event is bound to one CPU, the first event of a
/// (CPU, tag) owns the ring buffer and the others are redirected into it
/// (PERF_EVENT_IOC_SET_OUTPUT, which perf-event2 does not wrap).
struct Sampled {
    streams: Vec<Stream>,
    /// The redirected events, kept open (and read for their counts), with their tags.
    followers: Vec<(usize, Counter)>,
    threads: usize,
}

const PERF_EVENT_IOC_SET_OUTPUT: libc::c_ulong = 0x2405;

/// The online CPUs, from /sys/devices/system/cpu/online (`0-3,6`).
fn online_cpus() -> Vec<usize> {
    let parsed: Option<Vec<usize>> = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|text| {
            let mut cpus = Vec::new();
            for part in text.trim().split(',') {
                match part.split_once('-') {
                    Some((a, b)) => cpus.extend(a.parse::<usize>().ok()?..=b.parse().ok()?),
                    None => cpus.push(part.parse().ok()?),
                }
            }
            Some(cpus)
        });
    parsed.filter(|c| !c.is_empty()).unwrap_or_else(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        (0..n).collect()
    })
}

impl Sampled {
    /// Opens `tags` events per thread and CPU on every thread of `pid`, again for threads born
    /// meanwhile, until no thread lacks them, then enables them all. `sizes` are the ring-buffer sizes tried in turn
    /// (the locked-memory limit, perf_event_mlock_kb, may refuse the larger).
    fn open(
        pid: i32,
        tags: usize,
        sizes: &[usize],
        build: &dyn Fn(i32, usize, usize) -> Builder<'static>,
    ) -> io::Result<Sampled> {
        let cpus = online_cpus();
        let mut done = std::collections::HashSet::new();
        let mut out = Sampled {
            streams: Vec::new(),
            followers: Vec::new(),
            threads: 0,
        };
        let mut leaders: std::collections::HashMap<(usize, usize), usize> = Default::default();
        loop {
            let tids =
                super::task_ids(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
            let new: Vec<i32> = tids.into_iter().filter(|t| !done.contains(t)).collect();
            if new.is_empty() {
                break;
            }
            'thread: for tid in new {
                done.insert(tid);
                for &cpu in &cpus {
                    for tag in 0..tags {
                        let gone = |e: &io::Error| e.raw_os_error() == Some(libc::ESRCH);
                        match leaders.get(&(cpu, tag)) {
                            None => {
                                let mut last = io::Error::from_raw_os_error(libc::ENOMEM);
                                let mut sampler = None;
                                for &size in sizes {
                                    let counter = match build(tid, cpu, tag).build() {
                                        Ok(c) => c,
                                        Err(e) if gone(&e) && tid != pid => continue 'thread,
                                        Err(e) => return Err(e),
                                    };
                                    match counter.sampled(size) {
                                        Ok(s) => {
                                            sampler = Some(s);
                                            break;
                                        }
                                        Err(e) => last = e,
                                    }
                                }
                                let sampler = sampler.ok_or(last)?;
                                leaders.insert((cpu, tag), out.streams.len());
                                out.streams.push(Stream {
                                    sampler,
                                    tag,
                                    samples: 0,
                                    hup: false,
                                });
                            }
                            Some(&leader) => {
                                let counter = match build(tid, cpu, tag).build() {
                                    Ok(c) => c,
                                    Err(e) if gone(&e) && tid != pid => continue 'thread,
                                    Err(e) => return Err(e),
                                };
                                let target = out.streams[leader].sampler.as_raw_fd();
                                // SAFETY: PERF_EVENT_IOC_SET_OUTPUT takes an fd; both are live
                                // perf event fds we own, on the same CPU.
                                let r = unsafe {
                                    libc::ioctl(
                                        counter.as_raw_fd(),
                                        PERF_EVENT_IOC_SET_OUTPUT as _,
                                        target,
                                    )
                                };
                                if r != 0 {
                                    return Err(io::Error::last_os_error());
                                }
                                out.followers.push((tag, counter));
                            }
                        }
                    }
                }
                out.threads += 1;
            }
        }
        // The events are built disabled (`build` must say so) and start together here, with
        // every ring buffer mapped: what happens before is in no count and no sample, instead
        // of counted and then lost for want of a buffer, or missed on the CPUs not yet opened.
        for s in &mut out.streams {
            s.sampler.as_counter_mut().enable()?;
        }
        for (_, c) in &mut out.followers {
            c.enable()?;
        }
        Ok(out)
    }

    /// Stops counting (inherited events too) before the last drain.
    fn disable(&mut self) {
        for s in &mut self.streams {
            let _ = s.sampler.as_counter_mut().disable();
        }
        for (_, c) in &mut self.followers {
            let _ = c.disable();
        }
    }

    /// What the kernel counted, by tag (every event, inherited ones included).
    fn counts(&mut self, tags: usize) -> Vec<u64> {
        let mut counts = vec![0u64; tags];
        for s in &mut self.streams {
            counts[s.tag] += s.sampler.as_counter_mut().read().unwrap_or(0);
        }
        for (tag, c) in &mut self.followers {
            counts[*tag] += c.read().unwrap_or(0);
        }
        counts
    }

    /// Samples read, by tag.
    fn samples(&self, tags: usize) -> Vec<u64> {
        let mut samples = vec![0u64; tags];
        for s in &self.streams {
            samples[s.tag] += s.samples;
        }
        samples
    }
}

impl PassiveBreakpoints {
    pub fn open(pid: i32, slots: &[Slot]) -> io::Result<PassiveBreakpoints> {
        let page = super::page_size() as usize;
        let slots = slots.to_vec();
        let events = Sampled::open(
            pid,
            slots.len(),
            &[64 * page, 4 * page],
            &move |tid, cpu, i| {
                let mut b = Builder::new(bp_event(&slots[i]));
                b.observe_pid(tid)
                    .one_cpu(cpu)
                    .sample_period(1)
                    .sample(SampleFlag::IP | SampleFlag::TID)
                    .inherit(true)
                    .inherit_thread(true)
                    .exclude_kernel(true)
                    .exclude_hv(true)
                    .wakeup_events(1)
                    .enabled(false);
                b
            },
        )?;
        Ok(PassiveBreakpoints {
            pid,
            events,
            lost: 0,
        })
    }

    /// How many threads the events were opened on.
    pub fn threads(&self) -> usize {
        self.events.threads
    }

    /// Moves the hits recorded so far into `out` as (slot, tid, pc); false once the process is
    /// gone.
    pub fn drain(&mut self, out: &mut Vec<(usize, i32, u64)>) -> bool {
        for s in &mut self.events.streams {
            let tag = s.tag;
            drain_stream(s, &mut self.lost, |body| {
                if body.len() >= 16 {
                    let pc = u64_at(body, 0);
                    let tid = u32_at(body, 12) as i32;
                    out.push((tag, tid, pc));
                }
            });
        }
        super::process_alive(self.pid)
    }

    pub fn poll(&mut self, timeout: Duration) {
        poll_streams(&mut self.events.streams, timeout);
    }

    /// Closes the events; returns the hits lost to a full ring buffer.
    pub fn close(mut self) -> u64 {
        self.events.disable();
        let mut ignored = Vec::new();
        self.drain(&mut ignored);
        let tags = self
            .events
            .streams
            .iter()
            .map(|s| s.tag + 1)
            .max()
            .unwrap_or(0);
        let counts = self.events.counts(tags);
        let samples = self.events.samples(tags);
        let counted: u64 = counts
            .iter()
            .zip(&samples)
            .map(|(c, s)| c.saturating_sub(*s))
            .sum();
        counted.max(self.lost)
    }
}

/// Reads every record of a ring buffer: sample bodies go to `on_sample`, lost counts add up.
fn drain_stream(s: &mut Stream, lost: &mut u64, mut on_sample: impl FnMut(&[u8])) {
    let mut samples = 0;
    while let Some(record) = s.sampler.next_record() {
        match record.ty() {
            PERF_RECORD_SAMPLE => {
                samples += 1;
                on_sample(&record.to_contiguous());
            }
            PERF_RECORD_LOST => {
                let body = record.to_contiguous();
                if body.len() >= 16 {
                    *lost += u64_at(&body, 8);
                }
            }
            _ => {}
        }
    }
    s.samples += samples;
}

/// Waits until a stream has data (past its watermark) or `timeout`; notes hung-up streams.
fn poll_streams(streams: &mut [Stream], timeout: Duration) {
    let mut fds: Vec<libc::pollfd> = Vec::with_capacity(streams.len());
    let mut which = Vec::with_capacity(streams.len());
    for (i, s) in streams.iter().enumerate() {
        if !s.hup {
            fds.push(libc::pollfd {
                fd: s.sampler.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
            which.push(i);
        }
    }
    if fds.is_empty() {
        std::thread::sleep(timeout.min(POLL_SLICE));
        return;
    }
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `fds` is a live, correctly sized array of pollfd for the duration of the call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n > 0 {
        for (fd, &i) in fds.iter().zip(&which) {
            if fd.revents & libc::POLLHUP != 0 {
                streams[i].hup = true;
            }
        }
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(w)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_ne_bytes(w)
}

/// Opens the page-fault events of every thread; `with_kernel` also samples faults taken inside
/// system calls (copy_to_user into fresh pages), which /proc's minflt counts too.
fn open_fault_events(pid: i32, major_only: bool, with_kernel: bool) -> io::Result<Sampled> {
    let page = super::page_size() as usize;
    let kinds: Vec<Software> = if major_only {
        vec![Software::PAGE_FAULTS_MAJ]
    } else {
        vec![Software::PAGE_FAULTS_MIN, Software::PAGE_FAULTS_MAJ]
    };
    // Large buffers: a burst of faults must fit between two drains (40 bytes a fault).
    let sizes = [4 << 20, 512 << 10, 64 << 10, 2 * page];
    let n = kinds.len();
    let mut events = Sampled::open(pid, n, &sizes, &move |tid, cpu, kind| {
        let size = 4 << 20;
        let mut b = Builder::new(kinds[kind]);
        b.observe_pid(tid)
            .one_cpu(cpu)
            .sample_period(1)
            .sample(SampleFlag::IP | SampleFlag::TID | SampleFlag::TIME | SampleFlag::ADDR)
            .inherit(true)
            .inherit_thread(true)
            .exclude_kernel(!with_kernel)
            .exclude_hv(true)
            .wakeup_watermark(size / 8)
            .enabled(false);
        b
    })?;
    if major_only {
        // One kind only, and it is the major one.
        for s in &mut events.streams {
            s.tag = 1;
        }
        for (tag, _) in &mut events.followers {
            *tag = 1;
        }
    }
    Ok(events)
}

/// Samples page faults of `pid` until `until` or Ctrl-C, handing batches to `on_batch` at least
/// every `tick`.
pub fn sample_faults(
    pid: i32,
    major_only: bool,
    until: Option<Instant>,
    tick: Duration,
    on_batch: &mut dyn FnMut(&[FaultSample]) -> Result<()>,
) -> Result<FaultTotals> {
    let mut events = match open_fault_events(pid, major_only, true) {
        Ok(s) => s,
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)) => {
            open_fault_events(pid, major_only, false).map_err(|e| fault_error(pid, e))?
        }
        Err(e) => return Err(fault_error(pid, e)),
    };
    let mut totals = FaultTotals::default();
    let mut batch: Vec<FaultSample> = Vec::with_capacity(1 << 14);
    let mut next_tick = Instant::now() + tick;
    let mut lost_records = 0;
    loop {
        drain_faults(&mut events.streams, &mut batch, &mut lost_records);
        let now = Instant::now();
        if now >= next_tick || batch.len() >= 1 << 16 {
            on_batch(&batch)?;
            batch.clear();
            if now >= next_tick {
                next_tick = now + tick;
            }
        }
        if crate::interrupt::check().is_err() || until.is_some_and(|u| now >= u) {
            break;
        }
        if !super::process_alive(pid) {
            totals.exited = true;
            break;
        }
        let mut wait = next_tick.saturating_duration_since(now).min(POLL_SLICE);
        if let Some(u) = until {
            wait = wait.min(u.saturating_duration_since(now));
        }
        poll_streams(&mut events.streams, wait);
    }
    events.disable();
    drain_faults(&mut events.streams, &mut batch, &mut lost_records);
    on_batch(&batch)?;
    let counts = events.counts(2);
    let samples = events.samples(2);
    totals.minor = counts[0];
    totals.major = counts[1];
    let counted_lost: u64 = counts
        .iter()
        .zip(&samples)
        .map(|(c, s)| c.saturating_sub(*s))
        .sum();
    totals.lost = counted_lost.max(lost_records);
    Ok(totals)
}

fn drain_faults(streams: &mut [Stream], batch: &mut Vec<FaultSample>, lost: &mut u64) {
    for s in streams.iter_mut() {
        let major = s.tag == 1;
        drain_stream(s, lost, |body| {
            if body.len() >= 32 {
                batch.push(FaultSample {
                    pc: VirtAddr(u64_at(body, 0)),
                    tid: u32_at(body, 12) as i32,
                    time_ns: u64_at(body, 16),
                    addr: VirtAddr(u64_at(body, 24)),
                    major,
                });
            }
        });
    }
}

/// Why fault sampling cannot run, as an [`Error::Unsupported`] the command falls back on.
fn fault_error(pid: i32, e: io::Error) -> Error {
    let why = match e.raw_os_error() {
        Some(libc::ESRCH) => return Error::Exited { pid, status: None },
        Some(libc::EACCES) | Some(libc::EPERM) => {
            format!("perf_event_open was refused ({e}); {}", paranoid_fix())
        }
        Some(libc::ENOSYS) => {
            "perf_event_open is not available (ENOSYS: a kernel without perf events, or a seccomp \
             filter)"
                .to_string()
        }
        _ => format!("perf_event_open failed: {e}"),
    };
    Error::Unsupported {
        what: format!("page-fault sampling with perf events: {why}"),
        target: format!("process {pid}"),
    }
}
