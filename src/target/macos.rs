//! The Mach attach layer: a live macOS process seen through its task port. Regions come from
//! `mach_vm_region_recurse` (descending into submaps such as the dyld shared cache) with
//! `vm_region_submap_info_64`, classified by `regions::foreign` into vmmap's types and share modes;
//! the loaded images come from `TASK_DYLD_INFO` (dyld_all_image_infos and each image's Mach-O
//! segments), so image segments are file-backed regions `whatis` can resolve; memory is read with
//! `mach_vm_read_overwrite`; threads with `task_threads` and `thread_get_state`. User space cannot
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
            },
            task,
            stopped: false,
            last: Vec::new(),
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

    /// vmmap's classification: image segments by name, other regions by user tag and share mode.
    fn classified(
        &mut self,
        regions: Vec<Region>,
    ) -> std::result::Result<Vec<Explained>, Vec<Region>> {
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
                Explained {
                    region,
                    kind,
                    detail: format!(
                        "{name} {}/{} SM={}",
                        foreign::prot_string(m.protection),
                        foreign::prot_string(m.max_protection),
                        foreign::share_mode_code(m.share_mode)
                    ),
                    sharing: foreign::share_mode_sharing(m.share_mode),
                    tid: None,
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
            out.push(Thread {
                // Mach names threads by port; the port name stands in for a tid.
                tid: p as i32,
                name: String::new(),
                state: if self.stopped { 'T' } else { '?' },
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
            Some(t) => ports.iter().copied().find(|&p| p as i32 == t),
        };
        let result = match port {
            Some(p) => self.thread_regs(p).map(|values| Registers {
                tid: p as i32,
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
            threads: ports.iter().map(|&p| p as i32).collect(),
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
        _expression: &str,
        _addr: VirtAddr,
        _len: u64,
        _access: crate::target::WatchAccess,
        _passive: bool,
    ) -> Result<crate::target::WatchInfo> {
        Err(self.unsupported(
            "hardware watchpoints (the Mach backend does not yet program the x86/ARM debug \
             state nor catch EXC_BREAKPOINT)",
        ))
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
