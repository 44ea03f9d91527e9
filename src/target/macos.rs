//! The Mach attach layer: a live macOS process seen through its task port. Regions come from
//! `mach_vm_region_recurse` (descending into submaps such as the dyld shared cache) with
//! `vm_region_submap_info_64`, classified by `regions::foreign` into vmmap's types and share modes;
//! the loaded images come from `TASK_DYLD_INFO` (dyld_all_image_infos and each image's Mach-O
//! segments), so image segments are file-backed regions `whatis` can resolve; memory is read with
//! `mach_vm_read_overwrite`; threads with `task_threads` and `thread_get_state`; watchpoints with
//! each thread's debug state and an EXC_BREAKPOINT exception port (the `watch` module). User space cannot
//! see physical frames on macOS, so `translate` and `shared` are unsupported. Compile-checked on
//! Linux for x86_64 and aarch64 macOS; not yet run on a Mac.

use crate::addr::{FileOffset, VirtAddr};
use crate::error::{Error, Result};
use crate::regions::classify::Explained;
use crate::regions::foreign::{self, MachPages};
use crate::regions::kind::Kind;
use crate::regions::{Backing, Perms, Region};
use crate::target::{ProcessFacts, Registers, StopReport, Target, TargetInfo, TargetKind, Thread};
use mach2::kern_return::{KERN_INVALID_ADDRESS, KERN_SUCCESS, kern_return_t};
use mach2::port::{MACH_PORT_NULL, mach_port_t};
use std::path::PathBuf;

/// The addresses a macOS process may map: MACH_VM_MIN_ADDRESS to MACH_VM_MAX_ADDRESS
/// (<mach/i386/vm_param.h>: 0x7fffffe00000, below the comm page; <mach/arm/vm_param.h> for
/// macOS: 0x7ffffe000000).
const USER_SPACE: crate::target::UserSpace = crate::target::UserSpace {
    start: VirtAddr(0),
    end: VirtAddr(if cfg!(target_arch = "aarch64") {
        0x7fff_fe00_0000
    } else {
        0x7fff_ffe0_0000
    }),
    extended_end: None,
};

/// One region as Mach reports it, with what vmmap would call it.
#[derive(Clone, Debug)]
struct MachRegion {
    region: Region,
    protection: u32,
    max_protection: u32,
    share_mode: u8,
    user_tag: u32,
    /// `__TEXT libobjc.A.dylib` when the region is a segment of a loaded image.
    segment: Option<String>,
}

/// A loaded image's segment (from dyld's image list and the image's Mach-O load commands).
#[derive(Clone, Debug)]
struct Segment {
    name: String,
    start: u64,
    end: u64,
    fileoff: u64,
    path: PathBuf,
}

/// A macOS process attached through `task_for_pid`.
pub struct MacProcess {
    info: TargetInfo,
    task: mach_port_t,
    stopped: bool,
    last: Vec<MachRegion>,
    /// Hardware watchpoints, armed only while `watch_wait` runs (the `watch` module).
    watches: crate::target::debugreg::Watches,
}

fn kr_error(what: &str, pid: i32, kr: kern_return_t) -> Error {
    Error::Usage(format!(
        "{what} for process {pid} failed: kern_return_t {kr}"
    ))
}

impl MacProcess {
    /// Gets the task port of `pid`: needs root or the `com.apple.security.cs.debugger`
    /// entitlement, and the target must not be protected by SIP / hardened runtime.
    pub fn attach(pid: i32) -> Result<MacProcess> {
        let mut task: mach_port_t = MACH_PORT_NULL;
        // SAFETY: task_for_pid writes one port name into `task`, a valid local.
        let kr =
            unsafe { mach2::traps::task_for_pid(mach2::traps::mach_task_self(), pid, &mut task) };
        if kr != KERN_SUCCESS {
            return Err(Error::Permission {
                what: format!("task_for_pid({pid}) (kern_return_t {kr})"),
                fix: "run as root, or sign vmscope with the com.apple.security.cs.debugger \
                      entitlement; SIP-protected processes cannot be inspected"
                    .into(),
            });
        }
        // SAFETY: sysconf has no memory-safety preconditions.
        let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
        let exe = proc_path(pid);
        Ok(MacProcess {
            info: TargetInfo {
                pid,
                exe,
                arch: std::env::consts::ARCH,
                kind: TargetKind::Attached,
                page_size,
                user_space: USER_SPACE,
            },
            task,
            stopped: false,
            last: Vec::new(),
            watches: crate::target::debugreg::Watches::default(),
        })
    }

    fn pid(&self) -> i32 {
        self.info.pid
    }

    /// Every VM entry of the task, descending into submaps (the shared region).
    fn walk(&mut self, images: &[Segment]) -> Result<Vec<MachRegion>> {
        use mach2::vm_region::vm_region_submap_info_64;
        let mut out = Vec::new();
        let mut addr: u64 = 0;
        let mut depth: u32 = 0;
        loop {
            let mut size: u64 = 0;
            // SAFETY: a plain C struct of integers, for which all-zero bytes are valid.
            let mut info: vm_region_submap_info_64 = unsafe { std::mem::zeroed() };
            let mut count = (std::mem::size_of::<vm_region_submap_info_64>() / 4) as u32;
            // SAFETY: every out-pointer points to a live local of the type the call expects;
            // `count` says how many 32-bit words `info` holds.
            let kr = unsafe {
                mach2::vm::mach_vm_region_recurse(
                    self.task,
                    &mut addr,
                    &mut size,
                    &mut depth,
                    &mut info as *mut _ as mach2::vm_region::vm_region_recurse_info_t,
                    &mut count,
                )
            };
            if kr == KERN_INVALID_ADDRESS {
                break; // past the last region
            }
            if kr != KERN_SUCCESS {
                return Err(self.gone_or(kr, "mach_vm_region_recurse"));
            }
            if info.is_submap != 0 {
                depth += 1;
                continue;
            }
            let (start, end) = (addr, addr.saturating_add(size));
            let seg = images.iter().find(|s| s.start <= start && start < s.end);
            let (read, write, exec) = (
                info.protection & 1 != 0,
                info.protection & 2 != 0,
                info.protection & 4 != 0,
            );
            let shared = matches!(
                info.share_mode,
                foreign::sm::SHARED | foreign::sm::TRUESHARED | foreign::sm::SHARED_ALIASED
            );
            let backing = match seg {
                Some(s) => Backing::File {
                    path: s.path.clone(),
                    deleted: false,
                },
                None if info.user_tag == 30 => Backing::Stack,
                None if shared => Backing::SharedAnonymous,
                None => Backing::AnonNamed {
                    name: foreign::user_tag_name(info.user_tag),
                },
            };
            let offset = seg.map_or(info.offset, |s| s.fileoff + (start - s.start));
            let pages = MachPages {
                share_mode: info.share_mode,
                resident: info.pages_resident,
                shared_now_private: info.pages_shared_now_private,
                swapped_out: info.pages_swapped_out,
                dirtied: info.pages_dirtied,
                ref_count: info.ref_count,
            };
            out.push(MachRegion {
                region: Region {
                    start: VirtAddr(start),
                    end: VirtAddr(end),
                    perms: Perms {
                        read,
                        write,
                        exec,
                        shared,
                    },
                    offset: FileOffset(offset),
                    dev: (0, 0),
                    inode: 0,
                    backing,
                    usage: Some(foreign::mach_usage(pages, self.info.page_size)),
                },
                protection: info.protection as u32,
                max_protection: info.max_protection as u32,
                share_mode: info.share_mode,
                user_tag: info.user_tag,
                segment: seg.map(|s| {
                    let base = s.path.file_name().map(|n| n.to_string_lossy().into_owned());
                    format!("{} {}", s.name, base.unwrap_or_default())
                }),
            });
            addr = end;
        }
        Ok(out)
    }

    /// The exit of the task shows up as an invalid task port.
    fn gone_or(&self, kr: kern_return_t, what: &str) -> Error {
        // MACH_SEND_INVALID_DEST (0x10000003) and KERN_INVALID_ARGUMENT (4): the task is dead.
        if kr == 0x1000_0003 || kr == 4 {
            Error::Exited {
                pid: self.pid(),
                status: None,
            }
        } else {
            kr_error(what, self.pid(), kr)
        }
    }

    fn read_exact(&mut self, addr: u64, buf: &mut [u8]) -> Result<()> {
        let n = self.read(VirtAddr(addr), buf)?;
        if n < buf.len() {
            return Err(Error::Unreadable {
                addr: VirtAddr(addr),
                len: buf.len(),
                reason: "short read".into(),
            });
        }
        Ok(())
    }

    /// The loaded images' segments, from dyld_all_image_infos (TASK_DYLD_INFO).
    fn images(&mut self) -> Result<Vec<Segment>> {
        use mach2::task_info::{TASK_DYLD_INFO, TASK_DYLD_INFO_COUNT, task_dyld_info};
        let mut dyld = task_dyld_info::default();
        let mut count = TASK_DYLD_INFO_COUNT;
        // SAFETY: `dyld` is a task_dyld_info and `count` its size in natural_t words.
        let kr = unsafe {
            mach2::task::task_info(
                self.task,
                TASK_DYLD_INFO,
                &mut dyld as *mut _ as mach2::task_info::task_info_t,
                &mut count,
            )
        };
        if kr != KERN_SUCCESS {
            return Err(self.gone_or(kr, "task_info(TASK_DYLD_INFO)"));
        }
        let base = dyld.all_image_info_addr;
        // struct dyld_all_image_infos (64-bit): u32 version, u32 infoArrayCount, u64 infoArray.
        let mut head = [0u8; 16];
        self.read_exact(base, &mut head)?;
        let n = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes")) as u64;
        let array = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
        let mut segs = Vec::new();
        // struct dyld_image_info: u64 imageLoadAddress, u64 imageFilePath, u64 imageFileModDate.
        for i in 0..n.min(100_000) {
            let mut rec = [0u8; 24];
            if self.read_exact(array + i * 24, &mut rec).is_err() {
                continue;
            }
            let load = u64::from_le_bytes(rec[0..8].try_into().expect("8 bytes"));
            let path_ptr = u64::from_le_bytes(rec[8..16].try_into().expect("8 bytes"));
            let path = PathBuf::from(self.read_c_string(path_ptr));
            let _ = self.image_segments(load, &path, &mut segs);
        }
        segs.sort_by_key(|s| s.start);
        Ok(segs)
    }

    fn read_c_string(&mut self, addr: u64) -> String {
        let mut buf = vec![0u8; 1024];
        let n = self.read(VirtAddr(addr), &mut buf).unwrap_or(0);
        buf.truncate(n);
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    }

    /// Appends the LC_SEGMENT_64 ranges of the Mach-O image whose header is at `load`.
    fn image_segments(
        &mut self,
        load: u64,
        path: &std::path::Path,
        out: &mut Vec<Segment>,
    ) -> Result<()> {
        let mut hdr = [0u8; 32];
        self.read_exact(load, &mut hdr)?;
        let le32 = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4"));
        let le64 = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8"));
        if le32(&hdr, 0) != 0xfeed_facf {
            return Err(Error::usage("not a 64-bit Mach-O header"));
        }
        let sizeofcmds = le32(&hdr, 20) as usize;
        let mut cmds = vec![0u8; sizeofcmds.min(1 << 20)];
        self.read_exact(load + 32, &mut cmds)?;
        let mut at = 0;
        let mut raw = Vec::new();
        let mut text_vmaddr = None;
        while at + 8 <= cmds.len() {
            let (cmd, size) = (le32(&cmds, at), le32(&cmds, at + 4) as usize);
            if size < 8 || at + size > cmds.len() {
                break;
            }
            if cmd == 0x19 && size >= 72 {
                let name = &cmds[at + 8..at + 24];
                let end = name.iter().position(|&b| b == 0).unwrap_or(16);
                let name = String::from_utf8_lossy(&name[..end]).into_owned();
                let (vmaddr, vmsize, fileoff) = (
                    le64(&cmds, at + 24),
                    le64(&cmds, at + 32),
                    le64(&cmds, at + 40),
                );
                if name == "__TEXT" {
                    text_vmaddr = Some(vmaddr);
                }
                if vmsize > 0 && name != "__PAGEZERO" {
                    raw.push((name, vmaddr, vmsize, fileoff));
                }
            }
            at += size;
        }
        let slide = load.wrapping_sub(text_vmaddr.unwrap_or(load));
        for (name, vmaddr, vmsize, fileoff) in raw {
            let start = vmaddr.wrapping_add(slide);
            out.push(Segment {
                name,
                start,
                end: start.saturating_add(vmsize),
                fileoff,
                path: path.to_path_buf(),
            });
        }
        Ok(())
    }

    /// The task's thread ports (deallocated by the caller with `release_threads`).
    fn thread_ports(&mut self) -> Result<Vec<mach_port_t>> {
        let mut list: mach2::mach_types::thread_act_array_t = std::ptr::null_mut();
        let mut count: u32 = 0;
        // SAFETY: task_threads allocates the array in our address space and writes its address
        // and length into the two locals.
        let kr = unsafe { mach2::task::task_threads(self.task, &mut list, &mut count) };
        if kr != KERN_SUCCESS {
            return Err(self.gone_or(kr, "task_threads"));
        }
        // SAFETY: the kernel gave us `count` thread ports at `list`.
        let ports = unsafe { std::slice::from_raw_parts(list, count as usize) }.to_vec();
        // SAFETY: the array was allocated by the kernel in our task with vm_allocate; we own it.
        unsafe {
            mach2::vm::mach_vm_deallocate(
                mach2::traps::mach_task_self(),
                list as u64,
                u64::from(count) * std::mem::size_of::<mach_port_t>() as u64,
            );
        }
        Ok(ports)
    }

    fn release_threads(ports: &[mach_port_t]) {
        for &p in ports {
            // SAFETY: each port right came from task_threads and is released once.
            unsafe { mach2::mach_port::mach_port_deallocate(mach2::traps::mach_task_self(), p) };
        }
    }

    /// General registers of one thread port, by name.
    fn thread_regs(&self, port: mach_port_t) -> Result<Vec<(&'static str, u64)>> {
        #[cfg(target_arch = "x86_64")]
        {
            use mach2::structs::x86_thread_state64_t;
            let mut st = x86_thread_state64_t::new();
            let mut count = x86_thread_state64_t::count();
            // SAFETY: `st` is the x86_THREAD_STATE64 struct and `count` its size in words.
            let kr = unsafe {
                mach2::thread_act::thread_get_state(
                    port,
                    mach2::thread_status::x86_THREAD_STATE64,
                    &mut st as *mut _ as mach2::thread_status::thread_state_t,
                    &mut count,
                )
            };
            if kr != KERN_SUCCESS {
                return Err(self.gone_or(kr, "thread_get_state"));
            }
            Ok(vec![
                ("rax", st.__rax),
                ("rbx", st.__rbx),
                ("rcx", st.__rcx),
                ("rdx", st.__rdx),
                ("rsi", st.__rsi),
                ("rdi", st.__rdi),
                ("rbp", st.__rbp),
                ("rsp", st.__rsp),
                ("r8", st.__r8),
                ("r9", st.__r9),
                ("r10", st.__r10),
                ("r11", st.__r11),
                ("r12", st.__r12),
                ("r13", st.__r13),
                ("r14", st.__r14),
                ("r15", st.__r15),
                ("rip", st.__rip),
                ("eflags", st.__rflags),
                ("cs", st.__cs),
                ("fs", st.__fs),
                ("gs", st.__gs),
            ])
        }
        #[cfg(target_arch = "aarch64")]
        {
            use mach2::structs::arm_thread_state64_t;
            let mut st = arm_thread_state64_t::new();
            let mut count = arm_thread_state64_t::count();
            // SAFETY: `st` is the ARM_THREAD_STATE64 struct and `count` its size in words.
            let kr = unsafe {
                mach2::thread_act::thread_get_state(
                    port,
                    mach2::thread_status::ARM_THREAD_STATE64,
                    &mut st as *mut _ as mach2::thread_status::thread_state_t,
                    &mut count,
                )
            };
            if kr != KERN_SUCCESS {
                return Err(self.gone_or(kr, "thread_get_state"));
            }
            const X: [&str; 29] = [
                "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12",
                "x13", "x14", "x15", "x16", "x17", "x18", "x19", "x20", "x21", "x22", "x23", "x24",
                "x25", "x26", "x27", "x28",
            ];
            let mut v: Vec<(&'static str, u64)> = X.iter().copied().zip(st.__x).collect();
            v.extend([
                ("fp", st.__fp),
                ("lr", st.__lr),
                ("sp", st.__sp),
                ("pc", st.__pc),
                ("cpsr", u64::from(st.__cpsr)),
            ]);
            Ok(v)
        }
    }
}

/// The executable's path by proc_pidpath.
fn proc_path(pid: i32) -> Option<PathBuf> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: proc_pidpath writes at most `buf.len()` bytes into `buf`.
    let n = unsafe { libc::proc_pidpath(pid, buf.as_mut_ptr().cast(), buf.len() as u32) };
    if n <= 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(PathBuf::from(String::from_utf8_lossy(&buf).into_owned()))
}

fn sp_pc(regs: &[(&'static str, u64)]) -> (Option<VirtAddr>, Option<VirtAddr>) {
    let get = |names: &[&str]| {
        regs.iter()
            .find(|(n, _)| names.contains(n))
            .map(|&(_, v)| VirtAddr(v))
    };
    (get(&["rsp", "sp"]), get(&["rip", "pc"]))
}

// `thread_info` and its THREAD_IDENTIFIER_INFO / THREAD_EXTENDED_INFO flavors are not in mach2
// 0.7; the libc crate (already a dependency) declares them after <mach/thread_info.h> and
// <mach/thread_act.h>. Their layouts are pinned here to the header's, so a change in either
// crate cannot go unnoticed: `thread_identifier_info` is three uint64_t; `thread_extended_info`
// is two uint64_t, eight integer_t and `char pth_name[MAXTHREADNAMESIZE = 64]`.
const _: () = assert!(std::mem::size_of::<libc::thread_identifier_info>() == 24);
const _: () = assert!(std::mem::size_of::<libc::thread_extended_info>() == 112);
const _: () = assert!(libc::THREAD_IDENTIFIER_INFO_COUNT == 6);
const _: () = assert!(libc::THREAD_EXTENDED_INFO_COUNT == 28);

/// The system-wide 64-bit thread id of a thread port (THREAD_IDENTIFIER_INFO), the one lldb
/// (`tid = 0x1c2f3`), vmmap and spindump show; None when the thread is gone.
fn thread_id(port: mach_port_t) -> Option<u64> {
    let mut info = libc::thread_identifier_info::default();
    let mut count = libc::THREAD_IDENTIFIER_INFO_COUNT;
    // SAFETY: `info` is a thread_identifier_info (layout checked above) and `count` its size in
    // natural_t words; the kernel writes at most that many words into it.
    let kr = unsafe {
        libc::thread_info(
            port,
            libc::THREAD_IDENTIFIER_INFO as libc::thread_flavor_t,
            &mut info as *mut libc::thread_identifier_info as libc::thread_info_t,
            &mut count,
        )
    };
    (kr == KERN_SUCCESS && info.thread_id != 0).then_some(info.thread_id)
}

/// The name and scheduler run state of a thread port (THREAD_EXTENDED_INFO: what
/// proc_pidinfo(PROC_PIDTHREADINFO) gives, without needing the pid); None when the thread is
/// gone.
fn thread_extended(port: mach_port_t) -> Option<(String, i32)> {
    let mut info = libc::thread_extended_info::default();
    let mut count = libc::THREAD_EXTENDED_INFO_COUNT;
    // SAFETY: `info` is a thread_extended_info (layout checked above) and `count` its size in
    // natural_t words; the kernel writes at most that many words into it.
    let kr = unsafe {
        libc::thread_info(
            port,
            libc::THREAD_EXTENDED_INFO as libc::thread_flavor_t,
            &mut info as *mut libc::thread_extended_info as libc::thread_info_t,
            &mut count,
        )
    };
    (kr == KERN_SUCCESS).then(|| (c_name(&info.pth_name), info.pth_run_state))
}

/// A NUL-terminated C name in a fixed array (the whole array when it has no NUL), lossy UTF-8.
fn c_name(raw: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .map(|&c| c as u8)
        .take_while(|&b| b != 0)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The /proc-style letter of a Mach run state (<mach/thread_info.h> TH_STATE_*).
fn run_state_letter(state: i32) -> char {
    match state {
        libc::TH_STATE_RUNNING => 'R',
        libc::TH_STATE_STOPPED => 'T',
        libc::TH_STATE_WAITING => 'S',
        libc::TH_STATE_UNINTERRUPTIBLE => 'D',
        // Terminating: its last moments, as Linux's 'X' (dead).
        libc::TH_STATE_HALTED => 'X',
        _ => '?',
    }
}

/// The tid vmscope shows for a thread port, the same everywhere in this backend (`threads`,
/// `registers`, `stop`, stack labels, watch hits).
///
/// A Mach thread has two names: the port name of our send right to it (local to vmscope's task,
/// different in every task holding the thread, and recycled) and the 64-bit system-wide thread
/// id that lldb, vmmap, sample and spindump show. The tid is the thread id whenever it fits in
/// [`Thread::tid`]'s i32 unchanged (a positive i32 converts back to the same u64): thread ids
/// count up from boot and stay far below 2^31 in practice. It is never truncated: an id that
/// does not fit, or a thread whose id cannot be read (it just ended), gets its port name
/// instead, and [`port_of_tid`] maps either back to the port.
fn tid_of(port: mach_port_t) -> i32 {
    thread_id(port)
        .and_then(|id| i32::try_from(id).ok())
        .unwrap_or(port as i32)
}

/// The thread port among `ports` (from `task_threads`) that [`tid_of`] names `tid`. A thread
/// whose real thread id is `tid` wins over one whose port name fell back to the same number.
fn port_of_tid(ports: &[mach_port_t], tid: i32) -> Option<mach_port_t> {
    let ids: Vec<(mach_port_t, i32)> = ports.iter().map(|&p| (p, tid_of(p))).collect();
    ids.iter()
        .find(|&&(p, t)| t == tid && t != p as i32)
        .or_else(|| ids.iter().find(|&&(_, t)| t == tid))
        .map(|&(p, _)| p)
}

impl Target for MacProcess {
    fn info(&self) -> &TargetInfo {
        &self.info
    }

    fn regions(&mut self) -> Result<Vec<Region>> {
        let mut r = self.regions_with_usage()?;
        for region in &mut r {
            region.usage = None;
        }
        Ok(r)
    }

    fn regions_with_usage(&mut self) -> Result<Vec<Region>> {
        // Without the image list, regions are still right; only image names are missing.
        let images = self.images().unwrap_or_default();
        let walked = self.walk(&images)?;
        let regions = walked.iter().map(|m| m.region.clone()).collect();
        self.last = walked;
        Ok(regions)
    }

    /// vmmap's classification: image segments by name, other regions by user tag and share mode;
    /// a Stack region holding a thread's stack pointer is that thread's (`thread TID`, where
    /// vmmap writes its index), with the tid `threads` gives it.
    fn classified(
        &mut self,
        regions: Vec<Region>,
    ) -> std::result::Result<Vec<Explained>, Vec<Region>> {
        // Without the threads (the task just ended), the stacks are still Stack, unowned.
        let sps: Vec<(i32, VirtAddr)> = self
            .threads()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|t| Some((t.tid, t.sp?)))
            .collect();
        foreign::replay(
            regions,
            &self.last,
            |m| &m.region,
            |region, m| {
                let (kind, name) = match &m.segment {
                    Some(seg) => (Kind::Image, seg.clone()),
                    None => (
                        foreign::user_tag_kind(m.user_tag, m.share_mode, m.protection),
                        foreign::user_tag_name(m.user_tag),
                    ),
                };
                let tid = sps
                    .iter()
                    .find(|&&(_, sp)| kind == Kind::Stack && region.contains(sp))
                    .map(|&(tid, _)| tid);
                let owner = tid.map(|t| format!(" thread {t}")).unwrap_or_default();
                Explained {
                    detail: format!(
                        "{name} {}/{} SM={}{owner}",
                        foreign::prot_string(m.protection),
                        foreign::prot_string(m.max_protection),
                        foreign::share_mode_code(m.share_mode)
                    ),
                    region,
                    kind,
                    sharing: foreign::share_mode_sharing(m.share_mode),
                    tid,
                    part: None,
                }
            },
        )
    }

    fn read(&mut self, addr: VirtAddr, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0usize;
        // Page by page, so a read that runs into an unmapped page returns what came before it.
        while done < buf.len() {
            let at = addr.0 + done as u64;
            let page_end = (at / self.info.page_size + 1) * self.info.page_size;
            let want = ((page_end - at) as usize).min(buf.len() - done);
            let mut got: u64 = 0;
            // SAFETY: the kernel writes at most `want` bytes into our buffer at `done`, which
            // has at least `want` bytes left.
            let kr = unsafe {
                mach2::vm::mach_vm_read_overwrite(
                    self.task,
                    at,
                    want as u64,
                    buf.as_mut_ptr().add(done) as u64,
                    &mut got,
                )
            };
            if kr != KERN_SUCCESS || got == 0 {
                if done > 0 {
                    break;
                }
                if kr == KERN_INVALID_ADDRESS || kr == 2 {
                    return Err(Error::Unreadable {
                        addr,
                        len: buf.len(),
                        reason: format!("not mapped readable (kern_return_t {kr})"),
                    });
                }
                return Err(self.gone_or(kr, "mach_vm_read_overwrite"));
            }
            done += got as usize;
        }
        Ok(done)
    }

    fn threads(&mut self) -> Result<Vec<Thread>> {
        let ports = self.thread_ports()?;
        let mut out = Vec::new();
        for &p in &ports {
            let (sp, pc) = self
                .thread_regs(p)
                .map(|r| sp_pc(&r))
                .unwrap_or((None, None));
            let (name, run_state) = thread_extended(p).unzip();
            out.push(Thread {
                tid: tid_of(p),
                name: name.unwrap_or_default(),
                // A thread parked by task_suspend need not report TH_STATE_STOPPED (it may
                // read as waiting): while vmscope holds the task, every thread is stopped.
                state: match run_state {
                    _ if self.stopped => 'T',
                    Some(s) => run_state_letter(s),
                    None => '?',
                },
                syscall: None,
                sp,
                pc,
            });
        }
        Self::release_threads(&ports);
        Ok(out)
    }

    fn facts(&mut self) -> Result<ProcessFacts> {
        use mach2::task_info::{MACH_TASK_BASIC_INFO, mach_task_basic_info};
        let mut info = mach_task_basic_info::default();
        let mut count =
            (std::mem::size_of::<mach_task_basic_info>() / std::mem::size_of::<u32>()) as u32;
        // SAFETY: `info` is a mach_task_basic_info and `count` its size in natural_t words.
        let kr = unsafe {
            mach2::task::task_info(
                self.task,
                MACH_TASK_BASIC_INFO,
                &mut info as *mut _ as mach2::task_info::task_info_t,
                &mut count,
            )
        };
        if kr != KERN_SUCCESS {
            return Err(self.gone_or(kr, "task_info(MACH_TASK_BASIC_INFO)"));
        }
        let ports = self.thread_ports()?;
        Self::release_threads(&ports);
        let name = self
            .info
            .exe
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(ProcessFacts {
            name,
            state: if info.suspend_count > 0 {
                "stopped"
            } else {
                "running"
            }
            .into(),
            threads: ports.len() as u64,
            vm_size: Some(info.virtual_size),
            vm_rss: Some(info.resident_size),
            ..ProcessFacts::default()
        })
    }

    fn registers(&mut self, tid: Option<i32>) -> Result<Registers> {
        if !self.stopped {
            return Err(Error::NotStopped {
                pid: self.pid(),
                what: "registers".into(),
            });
        }
        let ports = self.thread_ports()?;
        let port = match tid {
            None => ports.first().copied(),
            Some(t) => port_of_tid(&ports, t),
        };
        let result = match port {
            Some(p) => self.thread_regs(p).map(|values| Registers {
                tid: tid_of(p),
                values,
            }),
            None => Err(Error::usage(format!(
                "process {} has no thread {}",
                self.pid(),
                tid.unwrap_or(0)
            ))),
        };
        Self::release_threads(&ports);
        result
    }

    fn stop(&mut self) -> Result<StopReport> {
        // SAFETY: task_suspend only takes the task port we hold.
        let kr = unsafe { mach2::task::task_suspend(self.task) };
        if kr != KERN_SUCCESS {
            return Err(self.gone_or(kr, "task_suspend"));
        }
        self.stopped = true;
        let ports = self.thread_ports()?;
        Self::release_threads(&ports);
        Ok(StopReport {
            pid: self.pid(),
            threads: ports.iter().map(|&p| tid_of(p)).collect(),
        })
    }

    fn resume(&mut self) -> Result<()> {
        if !self.stopped {
            return Ok(());
        }
        // SAFETY: task_resume only takes the task port we hold; it undoes our task_suspend.
        let kr = unsafe { mach2::task::task_resume(self.task) };
        if kr != KERN_SUCCESS {
            return Err(self.gone_or(kr, "task_resume"));
        }
        self.stopped = false;
        Ok(())
    }

    fn pages(&mut self, _range: std::ops::Range<VirtAddr>) -> Result<crate::pages::PageScan> {
        Err(self
            .unsupported("reading page tables (macOS does not show physical frames to user space)"))
    }

    fn page_entries(
        &mut self,
        _start: VirtAddr,
        _count: usize,
    ) -> Result<crate::pages::PageEntries> {
        Err(self
            .unsupported("reading page tables (macOS does not show physical frames to user space)"))
    }

    fn watch_set(
        &mut self,
        expression: &str,
        addr: VirtAddr,
        len: u64,
        access: crate::target::WatchAccess,
        passive: bool,
    ) -> Result<crate::target::WatchInfo> {
        self.watches.add(expression, addr, len, access, passive)
    }

    fn watch_book(&mut self) -> Option<&mut crate::target::debugreg::Watches> {
        Some(&mut self.watches)
    }

    /// The thread debug state and an EXC_BREAKPOINT port: see the `watch` module.
    fn watch_wait(
        &mut self,
        until: Option<std::time::Instant>,
        max_hits: Option<u64>,
        on_event: &mut dyn FnMut(&mut dyn Target, crate::target::WatchEvent<'_>) -> Result<()>,
    ) -> Result<crate::target::WatchRun> {
        watch::wait(self, until, max_hits, on_event)
    }

    fn detach(&mut self) -> Result<()> {
        self.resume()
    }

    fn is_stopped(&self) -> bool {
        self.stopped
    }
}

impl Drop for MacProcess {
    fn drop(&mut self) {
        let _ = self.resume();
        // SAFETY: the task port right was ours from task_for_pid and is released once.
        unsafe {
            mach2::mach_port::mach_port_deallocate(mach2::traps::mach_task_self(), self.task)
        };
    }
}

/// Hardware watchpoints through the thread debug state and a Mach exception port, armed only
/// while `watch` runs. Each thread of the task gets the debug registers with `thread_set_state`
/// (x86_64: `x86_DEBUG_STATE64`, DR0–DR3 + DR7; arm64: `ARM_DEBUG_STATE64`, DBGWVR/DBGWCR), and
/// the task-wide debug state (`task_set_state`) is set too, so threads born meanwhile inherit it;
/// `task_threads` is polled as well to arm any thread that did not. The task's EXC_BREAKPOINT
/// exception port is pointed at a receive right of ours (`EXCEPTION_DEFAULT |
/// MACH_EXCEPTION_CODES`), so a hit arrives as a `mach_exception_raise` message while the hitting
/// thread waits for the reply:
/// - x86_64: DR6 in the thread's debug state says which slot fired (the kernel copies it there);
///   the access is done, so the bytes read now are the new value.
/// - arm64: code[0] is EXC_ARM_DA_DEBUG and code[1] the fault address. ARM watchpoints trap
///   before the access completes, so the thread is stepped over it (MDSCR_EL1.SS, watchpoints
///   off) and the hit is reported at the step's exception, with the new value.
///
/// Exceptions that are not ours are answered KERN_FAILURE, which sends them on to the host port
/// and the BSD signal (SIGTRAP) as if vmscope were not there. A task that already has an
/// EXC_BREAKPOINT handler (lldb, debugserver) is refused: one debugger at a time. On every way
/// out the debug state of every thread and of the task is cleared, queued exceptions are
/// answered, and the exception port is put back.
mod watch {
    use super::MacProcess;
    use crate::addr::VirtAddr;
    use crate::error::{Error, Result};
    use crate::target::debugreg::{self, HitCount, Slot};
    use crate::target::{Target, WatchEvent, WatchRun};
    use mach2::exception_types::{
        EXC_BREAKPOINT, EXC_MASK_BREAKPOINT, EXCEPTION_DEFAULT, MACH_EXCEPTION_CODES,
        exception_behavior_t, exception_mask_t,
    };
    use mach2::kern_return::{KERN_FAILURE, KERN_SUCCESS, kern_return_t};
    use mach2::message::{
        MACH_MSGH_BITS_REMOTE_MASK, MACH_RCV_MSG, MACH_RCV_TIMED_OUT, MACH_RCV_TIMEOUT,
        MACH_SEND_MSG, MACH_SEND_TIMEOUT, mach_msg, mach_msg_body_t, mach_msg_header_t,
        mach_msg_port_descriptor_t,
    };
    use mach2::port::{MACH_PORT_NULL, MACH_PORT_RIGHT_RECEIVE, mach_port_t};
    use mach2::thread_status::{THREAD_STATE_NONE, thread_state_flavor_t, thread_state_t};

    /// This process's own task port.
    fn mach_task_self() -> mach_port_t {
        // SAFETY: reads the task-self port name the runtime keeps; no preconditions.
        unsafe { mach2::traps::mach_task_self() }
    }
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    /// How long one receive waits, so Ctrl-C, `--for` and new threads are noticed.
    const TICK: Duration = Duration::from_millis(50);
    /// `mach_exception_raise` in mach_exc.defs (subsystem 2405); its reply is id + 100.
    const MACH_EXCEPTION_RAISE: i32 = 2405;
    /// The NDR record of a little-endian host (mach/ndr.h: int_rep NDR_INT_LITTLE_ENDIAN = 1,
    /// ASCII characters, IEEE floats).
    const NDR_LITTLE_ENDIAN: [u8; 8] = [0, 0, 0, 0, 1, 0, 0, 0];

    /// The request of `mach_exception_raise` as the MIG-generated `mach_excServer.c` declares it
    /// (`__Request__mach_exception_raise_t`, under `#pragma pack(4)`): the header (24 bytes); a
    /// complex-message body counting 2 descriptors (4); the thread and task send rights as port
    /// descriptors (12 each); the NDR record (8); `exception_type_t exception` (4);
    /// `mach_msg_type_number_t codeCnt` (4); `int64_t code[2]` (16, 4-byte aligned at offset 68,
    /// hence `packed(4)`). The kernel appends a trailer after it.
    #[repr(C, packed(4))]
    #[derive(Clone, Copy)]
    struct ExcRequest {
        head: mach_msg_header_t,
        body: mach_msg_body_t,
        thread: mach_msg_port_descriptor_t,
        task: mach_msg_port_descriptor_t,
        ndr: [u8; 8],
        exception: i32,
        code_cnt: u32,
        code: [i64; 2],
    }
    const _: () = assert!(std::mem::size_of::<ExcRequest>() == 84);

    /// `__Reply__mach_exception_raise_t`: header, NDR record, `kern_return_t RetCode`.
    #[repr(C, packed(4))]
    struct ExcReply {
        head: mach_msg_header_t,
        ndr: [u8; 8],
        ret_code: kern_return_t,
    }
    const _: () = assert!(std::mem::size_of::<ExcReply>() == 36);

    /// A receive buffer for one request and its trailer.
    #[repr(C, align(8))]
    struct RecvBuf([u8; 512]);

    #[cfg(target_arch = "x86_64")]
    mod arch {
        use super::Slot;
        use crate::target::debugreg;

        /// `x86_debug_state64_t` (mach/i386/_structs.h): `__dr0` … `__dr7`, 64 bits each.
        #[repr(C)]
        #[derive(Clone, Copy, Default)]
        pub struct DebugState {
            pub dr: [u64; 8],
        }

        /// `x86_DEBUG_STATE64` (mach/i386/thread_status.h).
        pub const FLAVOR: i32 = 11;

        /// DR0–DR3 with the slots' addresses, DR7 enabling them.
        pub fn armed(slots: &[Slot]) -> DebugState {
            let mut st = DebugState::default();
            for (i, s) in slots.iter().enumerate().take(4) {
                st.dr[i] = s.addr;
            }
            st.dr[7] = debugreg::x86::dr7(slots);
            st
        }
    }

    #[cfg(target_arch = "aarch64")]
    mod arch {
        use super::Slot;
        use crate::target::debugreg::arm64;

        /// `arm_debug_state64_t` (mach/arm/_structs.h): breakpoint value/control registers,
        /// watchpoint value/control registers (16 each, 64 bits), and MDSCR_EL1.
        #[repr(C)]
        #[derive(Clone, Copy, Default)]
        pub struct DebugState {
            pub bvr: [u64; 16],
            pub bcr: [u64; 16],
            pub wvr: [u64; 16],
            pub wcr: [u64; 16],
            pub mdscr_el1: u64,
        }

        /// `ARM_DEBUG_STATE64` (mach/arm/thread_status.h).
        pub const FLAVOR: i32 = 15;
        /// MDSCR_EL1.SS (bit 0): software step; Darwin turns it into a one-instruction step.
        pub const MDSCR_SS: u64 = 1;
        /// `EXC_ARM_DA_DEBUG` (mach/arm/exception.h): a watchpoint (debug data abort).
        pub const EXC_ARM_DA_DEBUG: i64 = 0x102;

        /// DBGWVR/DBGWCR n for slot n.
        pub fn armed(slots: &[Slot]) -> DebugState {
            let mut st = DebugState::default();
            for (i, s) in slots.iter().enumerate().take(16) {
                st.wvr[i] = arm64::wvr(s);
                st.wcr[i] = u64::from(arm64::wcr(s));
            }
            st
        }

        /// Watchpoints off, one instruction stepped.
        pub fn stepping() -> DebugState {
            DebugState {
                mdscr_el1: MDSCR_SS,
                ..DebugState::default()
            }
        }
    }

    use arch::DebugState;

    /// The debug state's size in `natural_t` words, as thread_set_state counts it.
    const STATE_COUNT: u32 = (std::mem::size_of::<DebugState>() / 4) as u32;

    fn set_thread_state(port: mach_port_t, st: &DebugState) -> kern_return_t {
        // SAFETY: `st` is the repr(C) struct of flavor FLAVOR and STATE_COUNT its size in words;
        // the kernel only reads it (and stops the thread itself while it writes the state).
        unsafe {
            mach2::thread_act::thread_set_state(
                port,
                arch::FLAVOR as thread_state_flavor_t,
                st as *const DebugState as thread_state_t,
                STATE_COUNT,
            )
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn get_thread_state(port: mach_port_t) -> Option<DebugState> {
        let mut st = DebugState::default();
        let mut count = STATE_COUNT;
        // SAFETY: `st` is the repr(C) struct of flavor FLAVOR and `count` its size in words.
        let kr = unsafe {
            mach2::thread_act::thread_get_state(
                port,
                arch::FLAVOR as thread_state_flavor_t,
                &mut st as *mut DebugState as thread_state_t,
                &mut count,
            )
        };
        (kr == KERN_SUCCESS).then_some(st)
    }

    fn set_task_state(task: mach_port_t, st: &DebugState) -> kern_return_t {
        // SAFETY: as in `set_thread_state`; the task keeps a copy for threads created later.
        unsafe {
            mach2::task::task_set_state(
                task,
                arch::FLAVOR as thread_state_flavor_t,
                st as *const DebugState as thread_state_t,
                STATE_COUNT,
            )
        }
    }

    fn release(port: mach_port_t) {
        if port != MACH_PORT_NULL {
            // SAFETY: one user reference of a send right we hold, released once.
            unsafe { mach2::mach_port::mach_port_deallocate(mach_task_self(), port) };
        }
    }

    /// One watch run: our exception port and the threads armed.
    struct Session {
        task: mach_port_t,
        pid: i32,
        /// Our receive right (with a send right made from it) for EXC_BREAKPOINT.
        port: mach_port_t,
        /// Whether the task's EXC_BREAKPOINT port is ours now (to put back).
        installed: bool,
        /// Whether the task-wide debug state was set (to clear).
        task_state: bool,
        slots: Vec<Slot>,
        /// The watch index of each slot.
        owners: Vec<usize>,
        /// Armed threads, each holding one reference to its port name.
        threads: HashMap<mach_port_t, ()>,
        /// arm64: threads stepping over a watched access, with the watch and the pc of the hit.
        #[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
        steps: HashMap<mach_port_t, (usize, Option<VirtAddr>)>,
        finished: bool,
    }

    impl Session {
        /// Allocates our exception port and makes it the task's EXC_BREAKPOINT handler, unless a
        /// debugger holds that already.
        fn install(p: &MacProcess, slots: Vec<Slot>, owners: Vec<usize>) -> Result<Session> {
            let (task, pid) = (p.task, p.pid());
            let mut masks: [exception_mask_t; 32] = [0; 32];
            let mut handlers: [mach_port_t; 32] = [0; 32];
            let mut behaviors: [exception_behavior_t; 32] = [0; 32];
            let mut flavors: [thread_state_flavor_t; 32] = [0; 32];
            let mut count: u32 = 32;
            // SAFETY: four arrays of 32 entries and their count; the kernel fills at most that
            // many and gives us a send right for each handler, released below.
            let kr = unsafe {
                mach2::task::task_get_exception_ports(
                    task,
                    EXC_MASK_BREAKPOINT,
                    masks.as_mut_ptr(),
                    &mut count,
                    handlers.as_mut_ptr(),
                    behaviors.as_mut_ptr(),
                    flavors.as_mut_ptr(),
                )
            };
            if kr != KERN_SUCCESS {
                return Err(p.gone_or(kr, "task_get_exception_ports"));
            }
            let taken = handlers[..count.min(32) as usize]
                .iter()
                .any(|&h| h != MACH_PORT_NULL);
            handlers[..count.min(32) as usize]
                .iter()
                .for_each(|&h| release(h));
            if taken {
                return Err(Error::Usage(format!(
                    "process {pid} already has a breakpoint exception handler (a debugger such \
                     as lldb?), and a task's EXC_BREAKPOINT goes to one handler: detach it first"
                )));
            }
            let me = mach_task_self();
            let mut port: mach_port_t = MACH_PORT_NULL;
            // SAFETY: writes one port name into `port`.
            let kr = unsafe {
                mach2::mach_port::mach_port_allocate(me, MACH_PORT_RIGHT_RECEIVE, &mut port)
            };
            if kr != KERN_SUCCESS {
                return Err(super::kr_error("mach_port_allocate", pid, kr));
            }
            let mut s = Session {
                task,
                pid,
                port,
                installed: false,
                task_state: false,
                slots,
                owners,
                threads: HashMap::new(),
                steps: HashMap::new(),
                finished: false,
            };
            // SAFETY: makes a send right from the receive right we just allocated.
            let kr = unsafe {
                mach2::mach_port::mach_port_insert_right(
                    me,
                    port,
                    port,
                    mach2::message::MACH_MSG_TYPE_MAKE_SEND,
                )
            };
            if kr != KERN_SUCCESS {
                return Err(super::kr_error("mach_port_insert_right", pid, kr));
            }
            // SAFETY: plain call with the task port and our port's send right (copied).
            let kr = unsafe {
                mach2::task::task_set_exception_ports(
                    task,
                    EXC_MASK_BREAKPOINT,
                    port,
                    (EXCEPTION_DEFAULT | MACH_EXCEPTION_CODES) as exception_behavior_t,
                    THREAD_STATE_NONE,
                )
            };
            if kr != KERN_SUCCESS {
                return Err(p.gone_or(kr, "task_set_exception_ports"));
            }
            s.installed = true;
            Ok(s)
        }

        /// Arms the threads not armed yet; returns how many threads the task has (0: it is
        /// gone).
        fn arm_new(&mut self, p: &mut MacProcess) -> Result<usize> {
            let ports = match p.thread_ports() {
                Ok(ports) => ports,
                Err(Error::Exited { .. }) => return Ok(0),
                Err(e) => return Err(e),
            };
            let n = ports.len();
            let state = arch::armed(&self.slots);
            for port in ports {
                if self.threads.contains_key(&port) {
                    release(port); // a second reference to a thread we hold already
                    continue;
                }
                let kr = set_thread_state(port, &state);
                // A thread that just ended (its port dead) cannot be armed and needs not be.
                if kr != KERN_SUCCESS
                    && kr != 0x1000_0003
                    && kr != mach2::kern_return::KERN_TERMINATED
                {
                    release(port);
                    return Err(super::kr_error(
                        "thread_set_state (debug state)",
                        self.pid,
                        kr,
                    ));
                }
                self.threads.insert(port, ());
            }
            Ok(n)
        }

        /// Waits up to `timeout` for one exception message.
        fn receive(&self, timeout: Duration) -> Result<Option<ExcRequest>> {
            let mut buf = RecvBuf([0; 512]);
            let head = buf.0.as_mut_ptr() as *mut mach_msg_header_t;
            // SAFETY: `buf` is 512 writable, 8-aligned bytes owned by us; the kernel writes one
            // message of at most that size into it.
            let mr = unsafe {
                mach_msg(
                    head,
                    MACH_RCV_MSG | MACH_RCV_TIMEOUT,
                    0,
                    512,
                    self.port,
                    timeout.as_millis().min(u32::MAX as u128) as u32,
                    MACH_PORT_NULL,
                )
            };
            if mr == MACH_RCV_TIMED_OUT {
                return Ok(None);
            }
            if mr != KERN_SUCCESS {
                return Err(super::kr_error("mach_msg (receive)", self.pid, mr));
            }
            // SAFETY: the header of the message just received is initialized.
            let (id, size) = unsafe { ((*head).msgh_id, (*head).msgh_size) };
            if id != MACH_EXCEPTION_RAISE || (size as usize) < std::mem::size_of::<ExcRequest>() {
                // Not a request of ours: free what it carries.
                // SAFETY: a received message in our buffer, destroyed once.
                unsafe { mach2::message::mach_msg_destroy(head) };
                return Ok(None);
            }
            // SAFETY: the message is at least an ExcRequest long; packed, read unaligned.
            Ok(Some(unsafe {
                std::ptr::read_unaligned(buf.0.as_ptr() as *const ExcRequest)
            }))
        }

        /// Answers a request (KERN_SUCCESS resumes the thread; anything else passes the
        /// exception on) and releases the thread and task rights it carried.
        fn reply(&self, req: &ExcRequest, ret: kern_return_t) {
            let head = req.head;
            let mut reply = ExcReply {
                head: mach_msg_header_t {
                    msgh_bits: head.msgh_bits & MACH_MSGH_BITS_REMOTE_MASK,
                    msgh_size: std::mem::size_of::<ExcReply>() as u32,
                    msgh_remote_port: head.msgh_remote_port,
                    msgh_local_port: MACH_PORT_NULL,
                    msgh_voucher_port: MACH_PORT_NULL,
                    msgh_id: head.msgh_id + 100,
                },
                ndr: NDR_LITTLE_ENDIAN,
                ret_code: ret,
            };
            // SAFETY: `reply` is a complete, simple message sent to the send-once reply right
            // the request carried; the kernel only reads it.
            unsafe {
                mach_msg(
                    &mut reply.head,
                    MACH_SEND_MSG | MACH_SEND_TIMEOUT,
                    std::mem::size_of::<ExcReply>() as u32,
                    0,
                    MACH_PORT_NULL,
                    100,
                    MACH_PORT_NULL,
                )
            };
            let (thread, task) = (req.thread, req.task);
            release(thread.name);
            release(task.name);
        }

        /// Clears the debug state of the task and of every thread armed, answers the exceptions
        /// already queued, and puts the exception port back. Runs on every way out.
        fn finish(&mut self) {
            if self.finished {
                return;
            }
            self.finished = true;
            let off = DebugState::default();
            if self.task_state {
                let _ = set_task_state(self.task, &off);
            }
            for &port in self.threads.keys() {
                let _ = set_thread_state(port, &off);
            }
            if self.installed {
                // A thread stopped at a hit raised before the clear: let it go on (x86: the
                // access is done; arm64: it runs the access again, unwatched now).
                while let Ok(Some(req)) = self.receive(Duration::from_millis(20)) {
                    let ours = self.threads.contains_key(&{ req.thread }.name);
                    self.reply(&req, if ours { KERN_SUCCESS } else { KERN_FAILURE });
                }
                // SAFETY: plain call; no handler again, as before the watch.
                unsafe {
                    mach2::task::task_set_exception_ports(
                        self.task,
                        EXC_MASK_BREAKPOINT,
                        MACH_PORT_NULL,
                        EXCEPTION_DEFAULT as exception_behavior_t,
                        THREAD_STATE_NONE,
                    )
                };
            }
            for (&port, _) in self.threads.iter() {
                release(port);
            }
            self.threads.clear();
            // SAFETY: destroys our receive right (and the send right made from it), once.
            unsafe { mach2::mach_port::mach_port_destroy(mach_task_self(), self.port) };
        }
    }

    impl Drop for Session {
        fn drop(&mut self) {
            self.finish();
        }
    }

    /// Reads watch `w`'s bytes now and reports its hit.
    fn report(
        p: &mut MacProcess,
        w: usize,
        tid: i32,
        pc: Option<VirtAddr>,
        count: &mut HitCount,
        on_event: &mut dyn FnMut(&mut dyn Target, WatchEvent<'_>) -> Result<()>,
    ) -> Result<()> {
        let (addr, len) = p.watches.ranges()[w];
        let mut buf = vec![0u8; len];
        let read = p.read(addr, &mut buf);
        let new = debugreg::value(read, buf)?;
        let hit = p.watches.hit(w, tid, pc, new);
        count.total += 1;
        on_event(p, WatchEvent::Hit(&hit))
    }

    fn pc_of(p: &MacProcess, thread: mach_port_t) -> Option<VirtAddr> {
        p.thread_regs(thread).ok().and_then(|r| super::sp_pc(&r).1)
    }

    /// An EXC_BREAKPOINT: a hit of ours (KERN_SUCCESS once handled) or not (KERN_FAILURE).
    #[cfg(target_arch = "x86_64")]
    fn on_breakpoint(
        p: &mut MacProcess,
        s: &mut Session,
        req: &ExcRequest,
        count: &mut HitCount,
        on_event: &mut dyn FnMut(&mut dyn Target, WatchEvent<'_>) -> Result<()>,
    ) -> Result<kern_return_t> {
        let thread = { req.thread }.name;
        let Some(mut st) = get_thread_state(thread) else {
            return Ok(KERN_FAILURE);
        };
        let fired = debugreg::x86::fired(st.dr[6], s.slots.len());
        if fired.is_empty() {
            return Ok(KERN_FAILURE);
        }
        st.dr[6] = 0;
        let _ = set_thread_state(thread, &st);
        let pc = pc_of(p, thread);
        let mut seen = Vec::new();
        for slot in fired {
            let w = s.owners[slot];
            if seen.contains(&w) || count.done() {
                continue;
            }
            seen.push(w);
            report(p, w, super::tid_of(thread), pc, count, on_event)?;
        }
        Ok(KERN_SUCCESS)
    }

    /// An EXC_BREAKPOINT: a watchpoint of ours (stepped over, reported when the step is done),
    /// the end of such a step, or not ours (KERN_FAILURE).
    #[cfg(target_arch = "aarch64")]
    fn on_breakpoint(
        p: &mut MacProcess,
        s: &mut Session,
        req: &ExcRequest,
        count: &mut HitCount,
        on_event: &mut dyn FnMut(&mut dyn Target, WatchEvent<'_>) -> Result<()>,
    ) -> Result<kern_return_t> {
        let thread = { req.thread }.name;
        let code = { req.code };
        if let Some((w, pc)) = s.steps.remove(&thread) {
            // The watched access is done: watch again, then report with the new value.
            let kr = set_thread_state(thread, &arch::armed(&s.slots));
            if kr != KERN_SUCCESS {
                return Err(super::kr_error("thread_set_state (debug state)", s.pid, kr));
            }
            report(p, w, super::tid_of(thread), pc, count, on_event)?;
            return Ok(KERN_SUCCESS);
        }
        if code[0] != arch::EXC_ARM_DA_DEBUG {
            return Ok(KERN_FAILURE);
        }
        let Some(slot) = debugreg::arm64::fired(&s.slots, code[1] as u64) else {
            return Ok(KERN_FAILURE);
        };
        let pc = pc_of(p, thread);
        let kr = set_thread_state(thread, &arch::stepping());
        if kr != KERN_SUCCESS {
            return Err(super::kr_error("thread_set_state (single step)", s.pid, kr));
        }
        s.steps.insert(thread, (s.owners[slot], pc));
        Ok(KERN_SUCCESS)
    }

    enum Exit {
        Ended(&'static str),
        Exited,
    }

    fn run(
        p: &mut MacProcess,
        s: &mut Session,
        until: Option<Instant>,
        count: &mut HitCount,
        on_event: &mut dyn FnMut(&mut dyn Target, WatchEvent<'_>) -> Result<()>,
    ) -> Result<Exit> {
        let state = arch::armed(&s.slots);
        // Best effort: Darwin copies a task's debug state into threads it creates.
        s.task_state = set_task_state(s.task, &state) == KERN_SUCCESS;
        let threads = s.arm_new(p)?;
        if threads == 0 {
            return Ok(Exit::Exited);
        }
        on_event(
            p,
            WatchEvent::Armed {
                backend: "debug-state",
                threads,
            },
        )?;
        loop {
            if let Some(why) = count.end_reason(until) {
                return Ok(Exit::Ended(why));
            }
            if s.arm_new(p)? == 0 {
                return Ok(Exit::Exited);
            }
            let wait = until
                .map(|u| u.saturating_duration_since(Instant::now()))
                .unwrap_or(TICK)
                .min(TICK);
            let Some(req) = s.receive(wait)? else {
                continue;
            };
            let outcome = if { req.exception } == EXC_BREAKPOINT as i32 {
                on_breakpoint(p, s, &req, count, on_event)
            } else {
                Ok(KERN_FAILURE)
            };
            // Answer even when reporting failed, so the thread does not wait for ever.
            s.reply(&req, *outcome.as_ref().unwrap_or(&KERN_SUCCESS));
            outcome?;
        }
    }

    /// Runs the watches of `p` until `max_hits`, `until`, Ctrl-C or the task's end.
    pub fn wait(
        p: &mut MacProcess,
        until: Option<Instant>,
        max_hits: Option<u64>,
        on_event: &mut dyn FnMut(&mut dyn Target, WatchEvent<'_>) -> Result<()>,
    ) -> Result<WatchRun> {
        if p.watches.is_empty() {
            return Err(Error::usage(
                "no watches: set one with `watch EXPR [LEN] [-w|-rw|-r]`",
            ));
        }
        for (i, (addr, len)) in p.watches.ranges().into_iter().enumerate() {
            let mut buf = vec![0u8; len];
            let read = p.read(addr, &mut buf);
            let value = debugreg::value(read, buf)?;
            p.watches.set_last(i, value);
        }
        let (owners, slots): (Vec<usize>, Vec<Slot>) = p.watches.slots().into_iter().unzip();
        let mut s = Session::install(p, slots, owners)?;
        let mut count = HitCount::new(max_hits);
        let ended = run(p, &mut s, until, &mut count, on_event);
        s.finish();
        match ended? {
            Exit::Ended(why) => Ok(WatchRun {
                backend: "debug-state".into(),
                hits: count.total,
                lost: 0,
                ended: why.into(),
            }),
            Exit::Exited => Err(Error::Exited {
                pid: p.pid(),
                status: None,
            }),
        }
    }
}
