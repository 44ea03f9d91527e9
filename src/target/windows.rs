//! The Windows attach layer: a live process opened with `OpenProcess`. Regions come from a
//! `VirtualQueryEx` walk of the whole user address space (MEM_COMMIT/RESERVE/FREE,
//! MEM_IMAGE/MAPPED/PRIVATE, PAGE_* protection), named by `GetMappedFileNameW` and classified by
//! `regions::foreign` into Sysinternals VMMap's types; usage per region comes from the working-set
//! blocks of `QueryWorkingSetEx`; memory from `ReadProcessMemory`; threads from a Toolhelp
//! snapshot. Not done yet: Heap and Stack refinement (process heaps, each thread's TEB), thread
//! registers and watchpoints (debug API), so those parts answer Unsupported or show private
//! memory as Private. Windows does not show physical frames to user space: `translate` is
//! unsupported. Compile-checked on Linux for x86_64-pc-windows-msvc; not yet run on Windows.

use crate::addr::{FileOffset, VirtAddr};
use crate::error::{Error, Result};
use crate::regions::classify::Explained;
use crate::regions::foreign::{self, mem};
use crate::regions::{Backing, Perms, Region};
use crate::target::{ProcessFacts, Target, TargetInfo, TargetKind, Thread};
use std::path::PathBuf;
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Diagnostics::Debug::ReadProcessMemory;
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, TH32CS_SNAPTHREAD, THREADENTRY32, Thread32First, Thread32Next,
};
use windows_sys::Win32::System::Memory::{MEMORY_BASIC_INFORMATION, VirtualQueryEx};
use windows_sys::Win32::System::ProcessStatus::{K32GetMappedFileNameW, K32QueryWorkingSetEx};
use windows_sys::Win32::System::SystemInformation::{GetSystemInfo, SYSTEM_INFO};
use windows_sys::Win32::System::Threading::{
    OpenProcess, PROCESS_QUERY_INFORMATION, PROCESS_VM_READ, QueryFullProcessImageNameW,
};

/// One `PSAPI_WORKING_SET_EX_INFORMATION`: the page's address and its attribute bits.
#[repr(C)]
#[derive(Clone, Copy)]
struct WsExInfo {
    virtual_address: usize,
    attributes: usize,
}

/// A region as VirtualQueryEx reports it.
#[derive(Clone, Debug)]
struct WinRegion {
    region: Region,
    state: u32,
    ty: u32,
    protect: u32,
}

/// A Windows process opened for query and read.
pub struct WinProcess {
    info: TargetInfo,
    handle: HANDLE,
    min_addr: u64,
    max_addr: u64,
    last: Vec<WinRegion>,
}

fn last_error() -> std::io::Error {
    std::io::Error::last_os_error()
}

impl WinProcess {
    pub fn attach(pid: i32) -> Result<WinProcess> {
        // SAFETY: OpenProcess takes plain values and returns a handle or null.
        let handle =
            unsafe { OpenProcess(PROCESS_QUERY_INFORMATION | PROCESS_VM_READ, 0, pid as u32) };
        if handle.is_null() {
            let e = last_error();
            return Err(match e.raw_os_error() {
                Some(5) => Error::Permission {
                    what: format!("OpenProcess({pid})"),
                    fix: "run vmscope as the process's user or elevated (SeDebugPrivilege)".into(),
                },
                Some(87) => Error::NoSuchProcess { pid },
                _ => Error::io(format!("OpenProcess({pid})"), e),
            });
        }
        // SAFETY: SYSTEM_INFO is plain data; GetSystemInfo fills it.
        let mut si: SYSTEM_INFO = unsafe { std::mem::zeroed() };
        // SAFETY: `si` is a valid SYSTEM_INFO to write.
        unsafe { GetSystemInfo(&mut si) };
        let mut name = vec![0u16; 32768];
        let mut len = name.len() as u32;
        // SAFETY: the buffer holds `len` UTF-16 units; the call writes at most that many.
        let ok = unsafe { QueryFullProcessImageNameW(handle, 0, name.as_mut_ptr(), &mut len) };
        let exe = (ok != 0).then(|| PathBuf::from(String::from_utf16_lossy(&name[..len as usize])));
        Ok(WinProcess {
            info: TargetInfo {
                pid,
                exe,
                arch: std::env::consts::ARCH,
                kind: TargetKind::Attached,
                page_size: u64::from(si.dwPageSize),
            },
            handle,
            min_addr: si.lpMinimumApplicationAddress as u64,
            max_addr: si.lpMaximumApplicationAddress as u64,
            last: Vec::new(),
        })
    }

    fn mapped_name(&self, addr: u64) -> Option<PathBuf> {
        let mut buf = vec![0u16; 1024];
        // SAFETY: the buffer holds buf.len() UTF-16 units; the call writes at most that many.
        let n = unsafe {
            K32GetMappedFileNameW(
                self.handle,
                addr as *const _,
                buf.as_mut_ptr(),
                buf.len() as u32,
            )
        };
        // A device path (\Device\HarddiskVolume3\Windows\System32\ntdll.dll), as Windows gives it.
        (n > 0).then(|| PathBuf::from(String::from_utf16_lossy(&buf[..n as usize])))
    }

    /// Every region of the user address space, free ones included.
    fn walk(&mut self, usage: bool) -> Result<Vec<WinRegion>> {
        let mut out = Vec::new();
        let mut addr = self.min_addr;
        while addr < self.max_addr {
            // SAFETY: plain data, filled by VirtualQueryEx.
            let mut mbi: MEMORY_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
            // SAFETY: `mbi` is a MEMORY_BASIC_INFORMATION of the size passed.
            let n = unsafe {
                VirtualQueryEx(
                    self.handle,
                    addr as *const _,
                    &mut mbi,
                    std::mem::size_of::<MEMORY_BASIC_INFORMATION>(),
                )
            };
            if n == 0 {
                if out.is_empty() {
                    return Err(self.gone_or(last_error(), "VirtualQueryEx"));
                }
                break;
            }
            let start = mbi.BaseAddress as u64;
            let end = start + mbi.RegionSize as u64;
            let (state, ty, protect) = (mbi.State, mbi.Type, mbi.Protect);
            if state != mem::FREE {
                let path = match ty {
                    mem::IMAGE | mem::MAPPED => self.mapped_name(start),
                    _ => None,
                };
                let (read, write, exec) = foreign::protection_rwx(protect);
                let backing = match (&path, ty) {
                    (Some(p), _) => Backing::File {
                        path: p.clone(),
                        deleted: false,
                    },
                    (None, mem::MAPPED) => Backing::SharedAnonymous,
                    _ => Backing::Anonymous,
                };
                // Reserved regions have no working set: zero usage, so sums stay right.
                let usage = match (usage, state) {
                    (false, _) => None,
                    (true, mem::COMMIT) => Some(self.working_set(start, end)?),
                    (true, _) => Some(crate::regions::Usage {
                        kernel_page_size: self.info.page_size,
                        ..Default::default()
                    }),
                };
                out.push(WinRegion {
                    region: Region {
                        start: VirtAddr(start),
                        end: VirtAddr(end),
                        perms: Perms {
                            read,
                            write,
                            exec,
                            shared: ty == mem::MAPPED && protect & 0x88 == 0,
                        },
                        offset: FileOffset(start - mbi.AllocationBase as u64),
                        dev: (0, 0),
                        inode: 0,
                        backing,
                        usage,
                    },
                    state,
                    ty,
                    protect,
                });
            }
            addr = end;
        }
        Ok(out)
    }

    /// The region's usage from QueryWorkingSetEx, one block per page.
    fn working_set(&self, start: u64, end: u64) -> Result<crate::regions::Usage> {
        let ps = self.info.page_size;
        let mut blocks = Vec::new();
        let mut at = start;
        while at < end {
            let chunk_end = end.min(at + 4096 * ps);
            let mut infos: Vec<WsExInfo> = (at..chunk_end)
                .step_by(ps as usize)
                .map(|va| WsExInfo {
                    virtual_address: va as usize,
                    attributes: 0,
                })
                .collect();
            let cb = (infos.len() * std::mem::size_of::<WsExInfo>()) as u32;
            // SAFETY: `infos` is an array of PSAPI_WORKING_SET_EX_INFORMATION-shaped records of
            // `cb` bytes; the call fills in the attribute words.
            let ok = unsafe { K32QueryWorkingSetEx(self.handle, infos.as_mut_ptr().cast(), cb) };
            if ok == 0 {
                return Err(self.gone_or(last_error(), "QueryWorkingSetEx"));
            }
            blocks.extend(infos.iter().map(|i| i.attributes as u64));
            at = chunk_end;
        }
        Ok(foreign::working_set_usage(blocks, ps))
    }

    fn gone_or(&self, e: std::io::Error, what: &str) -> Error {
        // ERROR_ACCESS_DENIED after exit, ERROR_INVALID_HANDLE, ERROR_PARTIAL_COPY on a dead
        // process: check whether it still runs.
        if !self.alive() {
            return Error::Exited {
                pid: self.info.pid,
                status: None,
            };
        }
        Error::io(format!("{what} on process {}", self.info.pid), e)
    }

    fn alive(&self) -> bool {
        let mut code = 0u32;
        // SAFETY: writes one u32 exit code.
        let ok = unsafe {
            windows_sys::Win32::System::Threading::GetExitCodeProcess(self.handle, &mut code)
        };
        ok != 0 && code == 259 // STILL_ACTIVE
    }
}

impl Target for WinProcess {
    fn info(&self) -> &TargetInfo {
        &self.info
    }

    fn regions(&mut self) -> Result<Vec<Region>> {
        let walked = self.walk(false)?;
        let regions = walked.iter().map(|w| w.region.clone()).collect();
        self.last = walked;
        Ok(regions)
    }

    fn regions_with_usage(&mut self) -> Result<Vec<Region>> {
        let walked = self.walk(true)?;
        let regions = walked.iter().map(|w| w.region.clone()).collect();
        self.last = walked;
        Ok(regions)
    }

    /// VMMap's classification: type from MEM_* state and type, protection as VMMap prints it.
    fn classified(
        &mut self,
        regions: Vec<Region>,
    ) -> std::result::Result<Vec<Explained>, Vec<Region>> {
        if regions.len() != self.last.len()
            || regions
                .iter()
                .zip(&self.last)
                .any(|(a, b)| a.start != b.region.start)
        {
            return Err(regions);
        }
        Ok(regions
            .into_iter()
            .zip(&self.last)
            .map(|(region, w)| {
                let has_file = region.backing.path().is_some();
                let ty = foreign::vmmap_type(w.state, w.ty, has_file, false, false);
                let state = if w.state == mem::RESERVE {
                    "Reserved"
                } else {
                    "Committed"
                };
                let sharing = crate::regions::kind::Sharing::of(&region);
                Explained {
                    kind: if w.state == mem::RESERVE && ty == foreign::VmmapType::Private {
                        crate::regions::kind::Kind::Guard
                    } else {
                        ty.kind()
                    },
                    detail: format!(
                        "{} {state} {}",
                        ty.name(),
                        foreign::protection_name(w.protect)
                    ),
                    sharing,
                    tid: None,
                    part: None,
                    region,
                }
            })
            .collect())
    }

    fn read(&mut self, addr: VirtAddr, buf: &mut [u8]) -> Result<usize> {
        let mut got = 0usize;
        // SAFETY: ReadProcessMemory writes at most buf.len() bytes into `buf`.
        let ok = unsafe {
            ReadProcessMemory(
                self.handle,
                addr.0 as *const _,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut got,
            )
        };
        if ok == 0 && got == 0 {
            if !self.alive() {
                return Err(Error::Exited {
                    pid: self.info.pid,
                    status: None,
                });
            }
            return Err(Error::Unreadable {
                addr,
                len: buf.len(),
                reason: last_error().to_string(),
            });
        }
        Ok(got)
    }

    fn threads(&mut self) -> Result<Vec<Thread>> {
        // SAFETY: plain call; returns a snapshot handle or INVALID_HANDLE_VALUE.
        let snap = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) };
        if snap == INVALID_HANDLE_VALUE {
            return Err(Error::io("CreateToolhelp32Snapshot", last_error()));
        }
        // SAFETY: plain data; dwSize must be set before Thread32First.
        let mut te: THREADENTRY32 = unsafe { std::mem::zeroed() };
        te.dwSize = std::mem::size_of::<THREADENTRY32>() as u32;
        let mut out = Vec::new();
        // SAFETY: `te` is a THREADENTRY32 with dwSize set; `snap` is our snapshot handle.
        let mut ok = unsafe { Thread32First(snap, &mut te) };
        while ok != 0 {
            if te.th32OwnerProcessID == self.info.pid as u32 {
                out.push(Thread {
                    tid: te.th32ThreadID as i32,
                    name: String::new(),
                    state: '?',
                    syscall: None,
                    sp: None,
                    pc: None,
                });
            }
            // SAFETY: as above.
            ok = unsafe { Thread32Next(snap, &mut te) };
        }
        // SAFETY: the snapshot handle is ours and closed once.
        unsafe { CloseHandle(snap) };
        if out.is_empty() {
            return Err(Error::Exited {
                pid: self.info.pid,
                status: None,
            });
        }
        Ok(out)
    }

    fn facts(&mut self) -> Result<ProcessFacts> {
        let regions = self.regions_with_usage()?;
        let threads = self.threads()?.len() as u64;
        let name = self
            .info
            .exe
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let usage = regions.iter().filter_map(|r| r.usage.as_ref());
        Ok(ProcessFacts {
            name,
            state: "running".into(),
            threads,
            vm_size: Some(regions.iter().map(|r| r.size()).sum()),
            vm_rss: Some(usage.map(|u| u.rss).sum()),
            ..ProcessFacts::default()
        })
    }

    fn registers(&mut self, _tid: Option<i32>) -> Result<crate::target::Registers> {
        Err(self.unsupported(
            "registers (the Windows backend does not yet suspend threads for GetThreadContext)",
        ))
    }

    fn pages(&mut self, _range: std::ops::Range<VirtAddr>) -> Result<crate::pages::PageScan> {
        Err(self.unsupported(
            "reading page tables (Windows does not show physical frames to user space)",
        ))
    }

    fn page_entries(
        &mut self,
        _start: VirtAddr,
        _count: usize,
    ) -> Result<crate::pages::PageEntries> {
        Err(self.unsupported(
            "reading page tables (Windows does not show physical frames to user space)",
        ))
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
            "hardware watchpoints (the Windows backend does not yet use DebugActiveProcess \
             and Dr0-Dr7)",
        ))
    }
}

impl Drop for WinProcess {
    fn drop(&mut self) {
        // SAFETY: the process handle is ours and closed once.
        unsafe { CloseHandle(self.handle) };
    }
}
