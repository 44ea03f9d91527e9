//! The Windows attach layer: a live process opened with `OpenProcess`. Regions come from a
//! `VirtualQueryEx` walk of the whole user address space (MEM_COMMIT/RESERVE/FREE,
//! MEM_IMAGE/MAPPED/PRIVATE, PAGE_* protection), classified by `regions::foreign` into Sysinternals
//! VMMap's types: images are named by `EnumProcessModulesEx` + `GetModuleFileNameExW`, other
//! mapped files by `GetMappedFileNameW` with the `\Device\HarddiskVolumeN` prefix turned into
//! its drive letter (`QueryDosDeviceW`), so `whatis` can open them; private allocations are Heap
//! when they are a heap of the PEB's ProcessHeaps array and Stack (with the thread id) when they
//! hold a thread's NT_TIB stack limit (TEB from `NtQueryInformationThread`). Free space is the
//! holes between the regions, which the shared summary turns into the Free row and the largest
//! free block. Usage per region comes from the working-set blocks of `QueryWorkingSetEx`; memory
//! from `ReadProcessMemory`; threads from a Toolhelp snapshot; `stop` suspends every thread and
//! `registers` reads them with `GetThreadContext` (x86_64); watchpoints attach with the debug API
//! (`DebugActiveProcess`) for the length of a `watch` and set Dr0–Dr7 of every thread (the
//! `watch` module; x86_64). A 32-bit (WOW64) process, found with `IsWow64Process2` at attach, is
//! read through both of its environments: its heaps from the 32-bit PEB's ProcessHeaps (and the
//! 64-bit PEB's, labelled `(64-bit wow64)`), its stacks from each thread's 32-bit TEB (and the
//! 64-bit thunk stack of its 64-bit TEB, labelled the same way), its registers with
//! `Wow64GetThreadContext` under the 32-bit names (eip, esp, ...), its watchpoints through the
//! WOW64_CONTEXT debug registers. Not done yet: heap segments beyond each heap's first
//! allocation. Windows does not show physical frames to user space: `translate` is unsupported.
//! Compile-checked on Linux for
//! x86_64-pc-windows-msvc; not yet run on Windows.

use crate::addr::{FileOffset, VirtAddr};
use crate::error::{Error, Result};
use crate::regions::classify::Explained;
use crate::regions::foreign::{self, mem};
use crate::regions::{Backing, Perms, Region};
use crate::target::{ProcessFacts, Target, TargetInfo, TargetKind, Thread};
use std::collections::HashMap;
use std::path::PathBuf;
use windows_sys::Wdk::System::Threading::{
    NtQueryInformationProcess, NtQueryInformationThread, ProcessWow64Information,
};
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, HMODULE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Storage::FileSystem::QueryDosDeviceW;
use windows_sys::Win32::System::Diagnostics::Debug::ReadProcessMemory;
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, TH32CS_SNAPTHREAD, THREADENTRY32, Thread32First, Thread32Next,
};
use windows_sys::Win32::System::Memory::{MEMORY_BASIC_INFORMATION, VirtualQueryEx};
use windows_sys::Win32::System::ProcessStatus::{
    K32EnumProcessModulesEx, K32GetMappedFileNameW, K32GetModuleFileNameExW, K32QueryWorkingSetEx,
};
use windows_sys::Win32::System::SystemInformation::{
    GetSystemInfo, IMAGE_FILE_MACHINE, IMAGE_FILE_MACHINE_ARMNT, IMAGE_FILE_MACHINE_I386,
    IMAGE_FILE_MACHINE_UNKNOWN, SYSTEM_INFO,
};
use windows_sys::Win32::System::Threading::{
    IsWow64Process, IsWow64Process2, OpenProcess, OpenThread, PROCESS_BASIC_INFORMATION,
    PROCESS_QUERY_INFORMATION, PROCESS_VM_READ, QueryFullProcessImageNameW, ResumeThread,
    SuspendThread, THREAD_GET_CONTEXT, THREAD_QUERY_INFORMATION, THREAD_SUSPEND_RESUME,
};

/// One `PSAPI_WORKING_SET_EX_INFORMATION`: the page's address and its attribute bits.
#[repr(C)]
#[derive(Clone, Copy)]
struct WsExInfo {
    virtual_address: usize,
    attributes: usize,
}

/// `THREAD_BASIC_INFORMATION` (ntddk.h), which windows-sys does not declare.
#[repr(C)]
struct ThreadBasicInformation {
    exit_status: i32,
    teb_base_address: usize,
    unique_process: usize,
    unique_thread: usize,
    affinity_mask: usize,
    priority: i32,
    base_priority: i32,
}

/// Offsets into the target's PEB and TEB of vmscope's own bitness (the ones NtQueryInformation*
/// class 0 gives; a WOW64 target's 32-bit PEB and TEB are read with `layout32`).
#[cfg(target_pointer_width = "64")]
mod layout {
    /// PEB.NumberOfHeaps (ULONG) and PEB.ProcessHeaps (PVOID*).
    pub const PEB_NUMBER_OF_HEAPS: u64 = 0xe8;
    pub const PEB_PROCESS_HEAPS: u64 = 0xf0;
    /// NT_TIB.StackBase and NT_TIB.StackLimit at the start of the TEB.
    pub const TIB_STACK_BASE: u64 = 0x08;
    pub const TIB_STACK_LIMIT: u64 = 0x10;
}
#[cfg(target_pointer_width = "32")]
mod layout {
    pub const PEB_NUMBER_OF_HEAPS: u64 = 0x88;
    pub const PEB_PROCESS_HEAPS: u64 = 0x90;
    pub const TIB_STACK_BASE: u64 = 0x04;
    pub const TIB_STACK_LIMIT: u64 = 0x08;
}
const PTR: usize = std::mem::size_of::<usize>();

/// Offsets into the 32-bit PEB and TEB of a WOW64 process, read from a 64-bit vmscope. Source:
/// System Informer's phnt header (winsiderss/systeminformer, phnt/include/ntwow64.h at commit
/// 42f99c04d280ad71bce2790edcf62cc8c7902f8a).
///
/// PEB32: from its `C_ASSERT(FIELD_OFFSET(PEB32, UnicodeCaseTableData) == 0x060)` the struct
/// goes on NumberOfProcessors 0x64, NtGlobalFlag 0x68, CriticalSectionTimeout (LARGE_INTEGER,
/// 8-aligned) 0x70, HeapSegmentReserve..HeapDeCommitFreeBlockThreshold 0x78-0x84 (32-bit),
/// NumberOfHeaps 0x88, MaximumNumberOfHeaps 0x8c, ProcessHeaps 0x90: a 32-bit pointer to an
/// array of 32-bit heap handles. Its address is NtQueryInformationProcess's
/// ProcessWow64Information (a ULONG_PTR).
///
/// TEB32: the header's `WOW64_GET_TEB32(teb64)` (from the SDK's wow64t.h) is the 64-bit TEB
/// plus `ALIGN_UP_BY(sizeof(TEB), PAGE_SIZE)`; the x64 TEB is 0x1838 bytes on Windows 10 and
/// 11, so the 32-bit TEB is 0x2000 past the 64-bit one. Checked at run time: NT_TIB32.Self
/// (0x18) must point at the TEB32 itself, or its stack is not labelled. NT_TIB32 (winnt.h):
/// ExceptionList 0, StackBase 4, StackLimit 8.
#[cfg(target_pointer_width = "64")]
mod layout32 {
    pub const PEB_NUMBER_OF_HEAPS: u64 = 0x88;
    pub const PEB_PROCESS_HEAPS: u64 = 0x90;
    pub const TEB32_FROM_TEB64: u64 = 0x2000;
    pub const TIB_STACK_BASE: u64 = 0x04;
    pub const TIB_STACK_LIMIT: u64 = 0x08;
    pub const TIB_SELF: u64 = 0x18;
}

/// A thread's stack as its TEB's NT_TIB gives it.
struct TebStack {
    tid: i32,
    limit: u64,
    /// The 64-bit (thunk) stack of a WOW64 thread, beside its 32-bit one.
    wow64_native: bool,
}

/// A region as VirtualQueryEx reports it, with what the heaps and TEBs add.
#[derive(Clone, Debug)]
struct WinRegion {
    region: Region,
    state: u32,
    ty: u32,
    protect: u32,
    alloc_base: u64,
    /// Index in the PEB's ProcessHeaps when the allocation is one of the process heaps.
    heap: Option<usize>,
    /// The thread whose stack the allocation holds.
    stack_tid: Option<i32>,
    /// In a WOW64 process: the heap is one of the 64-bit PEB's, not the program's 32-bit ones.
    heap_wow64_native: bool,
    /// In a WOW64 process: the stack is the thread's 64-bit (wow64 thunk) stack.
    stack_wow64_native: bool,
}

/// A suspended thread: `stop` holds one per thread until `continue` or drop.
struct Suspended {
    tid: i32,
    handle: HANDLE,
}

/// A Windows process opened for query and read.
pub struct WinProcess {
    info: TargetInfo,
    handle: HANDLE,
    min_addr: u64,
    max_addr: u64,
    last: Vec<WinRegion>,
    /// `(\Device\HarddiskVolumeN, C:)` for each drive letter.
    devices: Vec<(String, String)>,
    suspended: Vec<Suspended>,
    /// Hardware watchpoints, armed only while `watch_wait` runs (the `watch` module).
    watches: crate::target::debugreg::Watches,
    /// The guest machine of a WOW64 process (IMAGE_FILE_MACHINE_I386, or _ARMNT on older ARM64
    /// Windows); IMAGE_FILE_MACHINE_UNKNOWN for a process of the system's own bitness.
    wow64: IMAGE_FILE_MACHINE,
}

/// The guest machine of a WOW64 process, IMAGE_FILE_MACHINE_UNKNOWN otherwise.
fn wow64_machine(handle: HANDLE) -> IMAGE_FILE_MACHINE {
    let (mut process, mut native) = (IMAGE_FILE_MACHINE_UNKNOWN, IMAGE_FILE_MACHINE_UNKNOWN);
    // SAFETY: writes two USHORTs; `handle` has PROCESS_QUERY_INFORMATION.
    if unsafe { IsWow64Process2(handle, &mut process, &mut native) } != 0 {
        return process;
    }
    // IsWow64Process2 failed (it should not on Windows 10 and later): the older call only says
    // whether the process is WOW64, which on an x64 system means x86.
    let mut wow64 = 0;
    // SAFETY: writes one BOOL; `handle` has PROCESS_QUERY_INFORMATION.
    if unsafe { IsWow64Process(handle, &mut wow64) } != 0 && wow64 != 0 {
        IMAGE_FILE_MACHINE_I386
    } else {
        IMAGE_FILE_MACHINE_UNKNOWN
    }
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
        let wow64 = wow64_machine(handle);
        Ok(WinProcess {
            info: TargetInfo {
                pid,
                exe,
                arch: match wow64 {
                    IMAGE_FILE_MACHINE_I386 => "x86",
                    IMAGE_FILE_MACHINE_ARMNT => "arm",
                    _ => std::env::consts::ARCH,
                },
                kind: TargetKind::Attached,
                page_size: u64::from(si.dwPageSize),
                // lpMaximumApplicationAddress is the last usable byte (0x7ffffffeffff on x64).
                user_space: crate::target::UserSpace {
                    start: VirtAddr(si.lpMinimumApplicationAddress as u64),
                    end: VirtAddr(si.lpMaximumApplicationAddress as u64 + 1),
                    extended_end: None,
                },
            },
            handle,
            min_addr: si.lpMinimumApplicationAddress as u64,
            max_addr: si.lpMaximumApplicationAddress as u64,
            last: Vec::new(),
            devices: dos_devices(),
            suspended: Vec::new(),
            watches: crate::target::debugreg::Watches::default(),
            wow64,
        })
    }

    /// Whether the process is a 32-bit one under WOW64.
    fn is_wow64(&self) -> bool {
        self.wow64 != IMAGE_FILE_MACHINE_UNKNOWN
    }

    /// Whether the process is an x86 one under WOW64 on this x64 vmscope: its thread state is a
    /// WOW64_CONTEXT.
    fn is_wow64_x86(&self) -> bool {
        cfg!(target_arch = "x86_64") && self.wow64 == IMAGE_FILE_MACHINE_I386
    }

    /// The registers of a suspended thread: the x86 WOW64_CONTEXT of a WOW64 thread, the native
    /// CONTEXT otherwise.
    fn registers_of(&self, tid: i32, handle: HANDLE) -> std::io::Result<crate::target::Registers> {
        if self.is_wow64_x86() {
            wow64_thread_registers(tid, handle)
        } else if self.is_wow64() {
            Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "reading the registers of a 32-bit ARM (WOW64) thread",
            ))
        } else {
            thread_registers(tid, handle)
        }
    }

    /// A `\Device\HarddiskVolumeN\...` path with its drive letter (`C:\...`) when a drive maps
    /// that device; unchanged otherwise.
    fn dos_path(&self, nt: String) -> PathBuf {
        PathBuf::from(foreign::dos_path(&nt, &self.devices).unwrap_or(nt))
    }

    /// Every loaded module's base address and full (drive-letter) path.
    fn modules(&self) -> HashMap<u64, PathBuf> {
        let mut out = HashMap::new();
        let mut mods: Vec<HMODULE> = vec![std::ptr::null_mut(); 1024];
        loop {
            let cb = (mods.len() * std::mem::size_of::<HMODULE>()) as u32;
            let mut needed = 0u32;
            // SAFETY: `mods` holds `cb` bytes of HMODULEs; the call writes at most that many and
            // says in `needed` how many it had. LIST_MODULES_ALL = 3.
            let ok = unsafe {
                K32EnumProcessModulesEx(self.handle, mods.as_mut_ptr(), cb, &mut needed, 3)
            };
            if ok == 0 {
                return out;
            }
            let n = needed as usize / std::mem::size_of::<HMODULE>();
            if n > mods.len() {
                mods.resize(n + 16, std::ptr::null_mut());
                continue;
            }
            mods.truncate(n);
            break;
        }
        let mut buf = vec![0u16; 32768];
        for m in mods {
            // SAFETY: the buffer holds buf.len() UTF-16 units; the call writes at most that many.
            let len = unsafe {
                K32GetModuleFileNameExW(self.handle, m, buf.as_mut_ptr(), buf.len() as u32)
            };
            if len > 0 {
                let name = String::from_utf16_lossy(&buf[..len as usize]);
                out.insert(m as u64, self.dos_path(name));
            }
        }
        out
    }

    /// Reads one pointer-sized value of the target.
    fn read_ptr(&self, addr: u64) -> Option<u64> {
        let mut b = [0u8; PTR];
        let mut got = 0usize;
        // SAFETY: ReadProcessMemory writes at most PTR bytes into `b`.
        let ok = unsafe {
            ReadProcessMemory(
                self.handle,
                addr as *const _,
                b.as_mut_ptr().cast(),
                PTR,
                &mut got,
            )
        };
        (ok != 0 && got == PTR).then(|| usize::from_ne_bytes(b) as u64)
    }

    /// Reads one 32-bit value of the target (a WOW64 process's pointers).
    #[cfg(target_pointer_width = "64")]
    fn read_u32(&self, addr: u64) -> Option<u32> {
        let mut b = [0u8; 4];
        let mut got = 0usize;
        // SAFETY: ReadProcessMemory writes at most 4 bytes into `b`.
        let ok = unsafe {
            ReadProcessMemory(
                self.handle,
                addr as *const _,
                b.as_mut_ptr().cast(),
                4,
                &mut got,
            )
        };
        (ok != 0 && got == 4).then(|| u32::from_le_bytes(b))
    }

    /// A WOW64 process's 32-bit heaps (their handles), in ProcessHeaps order, from its 32-bit
    /// PEB; empty for any other process.
    #[cfg(target_pointer_width = "64")]
    fn heaps32(&self) -> Vec<u64> {
        if !self.is_wow64() {
            return Vec::new();
        }
        let mut peb32 = 0usize;
        let mut len = 0u32;
        // SAFETY: ProcessWow64Information (26) writes one ULONG_PTR, the 32-bit PEB's address
        // (0 for a process that is not WOW64), into `peb32`, of the size passed.
        let status = unsafe {
            NtQueryInformationProcess(
                self.handle,
                ProcessWow64Information,
                (&mut peb32 as *mut usize).cast(),
                std::mem::size_of::<usize>() as u32,
                &mut len,
            )
        };
        let peb = peb32 as u64;
        if status < 0 || peb == 0 {
            return Vec::new();
        }
        let count = self
            .read_u32(peb + layout32::PEB_NUMBER_OF_HEAPS)
            .unwrap_or(0);
        let Some(array) = self.read_u32(peb + layout32::PEB_PROCESS_HEAPS) else {
            return Vec::new();
        };
        (0..u64::from(count.min(4096)))
            .map_while(|i| self.read_u32(u64::from(array) + i * 4).map(u64::from))
            .collect()
    }

    #[cfg(not(target_pointer_width = "64"))]
    fn heaps32(&self) -> Vec<u64> {
        Vec::new()
    }

    /// The 32-bit stack's limit of a WOW64 thread whose 64-bit TEB is at `teb`.
    #[cfg(target_pointer_width = "64")]
    fn stack32_limit(&self, teb: u64) -> Option<u64> {
        let teb32 = teb + layout32::TEB32_FROM_TEB64;
        if self.read_u32(teb32 + layout32::TIB_SELF).map(u64::from) != Some(teb32) {
            return None;
        }
        let base = self.read_u32(teb32 + layout32::TIB_STACK_BASE)?;
        let limit = self.read_u32(teb32 + layout32::TIB_STACK_LIMIT)?;
        (limit < base).then_some(u64::from(limit))
    }

    #[cfg(not(target_pointer_width = "64"))]
    fn stack32_limit(&self, _teb: u64) -> Option<u64> {
        None
    }

    /// The process heaps' addresses (their handles), in ProcessHeaps order, from the PEB.
    fn heaps(&self) -> Vec<u64> {
        // SAFETY: plain data, filled by NtQueryInformationProcess.
        let mut pbi: PROCESS_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
        let mut len = 0u32;
        // SAFETY: `pbi` is a PROCESS_BASIC_INFORMATION of the size passed (class 0).
        let status = unsafe {
            NtQueryInformationProcess(
                self.handle,
                0,
                (&mut pbi as *mut PROCESS_BASIC_INFORMATION).cast(),
                std::mem::size_of::<PROCESS_BASIC_INFORMATION>() as u32,
                &mut len,
            )
        };
        let peb = pbi.PebBaseAddress as u64;
        if status < 0 || peb == 0 {
            return Vec::new();
        }
        let count = self
            .read_ptr(peb + layout::PEB_NUMBER_OF_HEAPS)
            .map_or(0, |v| v as u32);
        let Some(array) = self.read_ptr(peb + layout::PEB_PROCESS_HEAPS) else {
            return Vec::new();
        };
        (0..u64::from(count.min(4096)))
            .map_while(|i| self.read_ptr(array + i * PTR as u64))
            .collect()
    }

    /// Each thread's stack from its TEB's NT_TIB; a WOW64 thread has two, the 32-bit one of its
    /// 32-bit TEB and the 64-bit thunk one of its 64-bit TEB.
    fn stacks(&self) -> Vec<TebStack> {
        let mut out = Vec::new();
        for tid in self.thread_ids().unwrap_or_default() {
            // SAFETY: plain call; returns a handle or null.
            let h = unsafe { OpenThread(THREAD_QUERY_INFORMATION, 0, tid as u32) };
            if h.is_null() {
                continue;
            }
            // SAFETY: plain data, filled by NtQueryInformationThread.
            let mut tbi: ThreadBasicInformation = unsafe { std::mem::zeroed() };
            let mut len = 0u32;
            // SAFETY: `tbi` is a THREAD_BASIC_INFORMATION of the size passed (class 0).
            let status = unsafe {
                NtQueryInformationThread(
                    h,
                    0,
                    (&mut tbi as *mut ThreadBasicInformation).cast(),
                    std::mem::size_of::<ThreadBasicInformation>() as u32,
                    &mut len,
                )
            };
            // SAFETY: the thread handle is ours and closed once.
            unsafe { CloseHandle(h) };
            let teb = tbi.teb_base_address as u64;
            if status < 0 || teb == 0 {
                continue;
            }
            let wow64 = self.is_wow64();
            if wow64 && let Some(limit) = self.stack32_limit(teb) {
                out.push(TebStack {
                    tid,
                    limit,
                    wow64_native: false,
                });
            }
            if let (Some(base), Some(limit)) = (
                self.read_ptr(teb + layout::TIB_STACK_BASE),
                self.read_ptr(teb + layout::TIB_STACK_LIMIT),
            ) && limit < base
            {
                out.push(TebStack {
                    tid,
                    limit,
                    wow64_native: wow64,
                });
            }
        }
        out
    }

    /// Marks the allocations that are process heaps or thread stacks.
    fn refine(&self, regions: &mut [WinRegion]) {
        let alloc_of = |regions: &[WinRegion], addr: u64| {
            regions
                .iter()
                .find(|w| w.region.start.get() <= addr && addr < w.region.end.get())
                .map(|w| w.alloc_base)
        };
        // A WOW64 process's own heaps are the 32-bit PEB's; its 64-bit PEB's are the wow64
        // layer's (`wow64_native`). Other processes have only the latter, as their own.
        let wow64 = self.is_wow64();
        let mut heap_of: HashMap<u64, (usize, bool)> = HashMap::new();
        for (native, heaps) in [(false, self.heaps32()), (wow64, self.heaps())] {
            for (i, h) in heaps.into_iter().enumerate() {
                if let Some(base) = alloc_of(regions, h) {
                    heap_of.entry(base).or_insert((i, native));
                }
            }
        }
        let mut stack_of: HashMap<u64, (i32, bool)> = HashMap::new();
        for s in self.stacks() {
            if let Some(base) = alloc_of(regions, s.limit) {
                stack_of.entry(base).or_insert((s.tid, s.wow64_native));
            }
        }
        for w in regions.iter_mut().filter(|w| w.ty == mem::PRIVATE) {
            let heap = heap_of.get(&w.alloc_base).copied();
            let stack = stack_of.get(&w.alloc_base).copied();
            w.heap = heap.map(|(i, _)| i);
            w.heap_wow64_native = heap.is_some_and(|(_, native)| native);
            w.stack_tid = stack.map(|(tid, _)| tid);
            w.stack_wow64_native = stack.is_some_and(|(_, native)| native);
        }
    }

    fn thread_ids(&self) -> Result<Vec<i32>> {
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
                out.push(te.th32ThreadID as i32);
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

    /// Lets every suspended thread run again and closes its handle.
    fn resume_all(&mut self) {
        for s in self.suspended.drain(..) {
            // SAFETY: the handle is ours, opened with THREAD_SUSPEND_RESUME and closed once.
            unsafe {
                ResumeThread(s.handle);
                CloseHandle(s.handle);
            }
        }
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
        let modules = self.modules();
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
                let alloc_base = mbi.AllocationBase as u64;
                let path = match ty {
                    mem::IMAGE => modules.get(&alloc_base).cloned().or_else(|| {
                        self.mapped_name(start)
                            .map(|p| self.dos_path(p.to_string_lossy().into_owned()))
                    }),
                    mem::MAPPED => self
                        .mapped_name(start)
                        .map(|p| self.dos_path(p.to_string_lossy().into_owned())),
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
                    alloc_base,
                    heap: None,
                    stack_tid: None,
                    heap_wow64_native: false,
                    stack_wow64_native: false,
                });
            }
            addr = end;
        }
        self.refine(&mut out);
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

    fn exited(&self) -> Error {
        Error::Exited {
            pid: self.info.pid,
            status: None,
        }
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
        foreign::replay(
            regions,
            &self.last,
            |w| &w.region,
            |region, w| {
                let has_file = region.backing.path().is_some();
                let ty = foreign::vmmap_type(
                    w.state,
                    w.ty,
                    has_file,
                    w.heap.is_some(),
                    w.stack_tid.is_some(),
                );
                let state = if w.state == mem::RESERVE {
                    "Reserved"
                } else {
                    "Committed"
                };
                // Only a WOW64 process has a second (64-bit) heap list and thunk stacks.
                let native = |n: bool| if n { " (64-bit wow64)" } else { "" };
                let owner = match (w.stack_tid, w.heap) {
                    (Some(tid), _) => {
                        format!(" Thread ID: {tid}{}", native(w.stack_wow64_native))
                    }
                    (None, Some(id)) => format!(" Heap ID: {id}{}", native(w.heap_wow64_native)),
                    _ => String::new(),
                };
                let sharing = crate::regions::kind::Sharing::of(&region);
                Explained {
                    kind: if w.state == mem::RESERVE && ty == foreign::VmmapType::Private {
                        crate::regions::kind::Kind::Guard
                    } else {
                        ty.kind()
                    },
                    detail: format!(
                        "{} {state} {}{owner}",
                        ty.name(),
                        foreign::protection_name(w.protect)
                    ),
                    sharing,
                    tid: w.stack_tid,
                    part: None,
                    region,
                }
            },
        )
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
        let tids = self.thread_ids()?;
        Ok(tids
            .into_iter()
            .map(|tid| {
                // A suspended thread's sp and pc come from its context; a running one's are
                // unknown.
                let held = self.suspended.iter().find(|s| s.tid == tid);
                let regs = held.and_then(|s| self.registers_of(s.tid, s.handle).ok());
                // A WOW64 thread's registers have the 32-bit names.
                let reg = |name: &str, x86: &str| {
                    regs.as_ref()
                        .and_then(|r| r.get(name).or_else(|| r.get(x86)))
                        .map(VirtAddr)
                };
                Thread {
                    tid,
                    name: String::new(),
                    state: if held.is_some() { 'T' } else { '?' },
                    syscall: None,
                    sp: reg("sp", "esp"),
                    pc: reg("pc", "eip"),
                }
            })
            .collect())
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

    fn registers(&mut self, tid: Option<i32>) -> Result<crate::target::Registers> {
        if self.suspended.is_empty() {
            return Err(Error::NotStopped {
                pid: self.info.pid,
                what: "registers".into(),
            });
        }
        let held = match tid {
            None => self.suspended.first(),
            Some(t) => self.suspended.iter().find(|s| s.tid == t),
        };
        let Some(held) = held else {
            return Err(Error::NotStopped {
                pid: self.info.pid,
                what: format!("the registers of thread {}", tid.unwrap_or_default()),
            });
        };
        let (tid, handle) = (held.tid, held.handle);
        if self.is_wow64() && !self.is_wow64_x86() {
            return Err(self.unsupported(
                "the registers of a 32-bit ARM (WOW64) thread: only x86 WOW64 threads \
                 (WOW64_CONTEXT) are read",
            ));
        }
        let call = if self.is_wow64() {
            "Wow64GetThreadContext"
        } else {
            "GetThreadContext"
        };
        self.registers_of(tid, handle).map_err(|e| {
            if self.alive() {
                Error::io(format!("{call} of thread {tid}"), e)
            } else {
                Error::Exited {
                    pid: self.info.pid,
                    status: None,
                }
            }
        })
    }

    /// Suspends every thread (SuspendThread); they stay suspended until `continue` or drop.
    fn stop(&mut self) -> Result<crate::target::StopReport> {
        if !self.alive() {
            return Err(Error::Exited {
                pid: self.info.pid,
                status: None,
            });
        }
        for tid in self.thread_ids()? {
            if self.suspended.iter().any(|s| s.tid == tid) {
                continue;
            }
            // SAFETY: plain call; returns a handle or null (a thread that just exited).
            let h = unsafe {
                OpenThread(
                    THREAD_SUSPEND_RESUME | THREAD_GET_CONTEXT | THREAD_QUERY_INFORMATION,
                    0,
                    tid as u32,
                )
            };
            if h.is_null() {
                continue;
            }
            // SAFETY: `h` is our thread handle with THREAD_SUSPEND_RESUME.
            if unsafe { SuspendThread(h) } == u32::MAX {
                // SAFETY: the handle is ours and closed once.
                unsafe { CloseHandle(h) };
                continue;
            }
            self.suspended.push(Suspended { tid, handle: h });
        }
        if self.suspended.is_empty() {
            return Err(Error::io(
                format!("suspending the threads of process {}", self.info.pid),
                last_error(),
            ));
        }
        Ok(crate::target::StopReport {
            pid: self.info.pid,
            threads: self.suspended.iter().map(|s| s.tid).collect(),
        })
    }

    fn resume(&mut self) -> Result<()> {
        if self.suspended.is_empty() {
            return Err(Error::NotStopped {
                pid: self.info.pid,
                what: "continue".into(),
            });
        }
        self.resume_all();
        Ok(())
    }

    fn detach(&mut self) -> Result<()> {
        self.resume_all();
        Ok(())
    }

    fn is_stopped(&self) -> bool {
        !self.suspended.is_empty()
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
        expression: &str,
        addr: VirtAddr,
        len: u64,
        access: crate::target::WatchAccess,
        passive: bool,
    ) -> Result<crate::target::WatchInfo> {
        if !self.alive() {
            return Err(self.exited());
        }
        self.watches.add(expression, addr, len, access, passive)
    }

    fn watch_book(&mut self) -> Option<&mut crate::target::debugreg::Watches> {
        Some(&mut self.watches)
    }

    /// DebugActiveProcess and Dr0-Dr7 on every thread: see the `watch` module.
    fn watch_wait(
        &mut self,
        until: Option<std::time::Instant>,
        max_hits: Option<u64>,
        on_event: &mut dyn FnMut(&mut dyn Target, crate::target::WatchEvent<'_>) -> Result<()>,
    ) -> Result<crate::target::WatchRun> {
        #[cfg(target_arch = "x86_64")]
        {
            watch::wait(self, until, max_hits, on_event)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (until, max_hits, on_event);
            Err(self.unsupported(
                "hardware watchpoints on this architecture (the Windows backend programs the \
                 x86_64 CONTEXT's Dr0-Dr7 only)",
            ))
        }
    }
}

impl Drop for WinProcess {
    fn drop(&mut self) {
        self.resume_all();
        // SAFETY: the process handle is ours and closed once.
        unsafe { CloseHandle(self.handle) };
    }
}

/// `(\Device\HarddiskVolumeN, X:)` for every drive letter that names a device.
fn dos_devices() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut buf = vec![0u16; 1024];
    for letter in b'A'..=b'Z' {
        let drive = format!("{}:", letter as char);
        let name: Vec<u16> = drive.encode_utf16().chain([0]).collect();
        // SAFETY: `name` is NUL-terminated; the buffer holds buf.len() UTF-16 units and the call
        // writes at most that many.
        let n = unsafe { QueryDosDeviceW(name.as_ptr(), buf.as_mut_ptr(), buf.len() as u32) };
        if n == 0 {
            continue;
        }
        // A list of NUL-terminated strings: the first is the current target.
        let first = buf[..n as usize].split(|&c| c == 0).next().unwrap_or(&[]);
        if !first.is_empty() {
            out.push((String::from_utf16_lossy(first), drive));
        }
    }
    out
}

/// A CONTEXT on the 16-byte boundary GetThreadContext requires on x86_64.
#[cfg(target_arch = "x86_64")]
#[repr(C, align(16))]
struct AlignedContext(windows_sys::Win32::System::Diagnostics::Debug::CONTEXT);

/// The general registers of a suspended thread, named as gdb names them.
#[cfg(target_arch = "x86_64")]
fn thread_registers(tid: i32, handle: HANDLE) -> std::io::Result<crate::target::Registers> {
    use windows_sys::Win32::System::Diagnostics::Debug::{
        CONTEXT_CONTROL_AMD64, CONTEXT_INTEGER_AMD64, CONTEXT_SEGMENTS_AMD64, GetThreadContext,
    };
    // SAFETY: CONTEXT is plain data; all zeros is a valid value.
    let mut ctx: Box<AlignedContext> = Box::new(unsafe { std::mem::zeroed() });
    ctx.0.ContextFlags = CONTEXT_CONTROL_AMD64 | CONTEXT_INTEGER_AMD64 | CONTEXT_SEGMENTS_AMD64;
    // SAFETY: `ctx` is a 16-byte-aligned CONTEXT with ContextFlags set; `handle` is a suspended
    // thread opened with THREAD_GET_CONTEXT.
    if unsafe { GetThreadContext(handle, &mut ctx.0) } == 0 {
        return Err(last_error());
    }
    let c = &ctx.0;
    Ok(crate::target::Registers {
        tid,
        values: vec![
            ("rax", c.Rax),
            ("rbx", c.Rbx),
            ("rcx", c.Rcx),
            ("rdx", c.Rdx),
            ("rsi", c.Rsi),
            ("rdi", c.Rdi),
            ("rbp", c.Rbp),
            ("rsp", c.Rsp),
            ("r8", c.R8),
            ("r9", c.R9),
            ("r10", c.R10),
            ("r11", c.R11),
            ("r12", c.R12),
            ("r13", c.R13),
            ("r14", c.R14),
            ("r15", c.R15),
            ("rip", c.Rip),
            ("eflags", u64::from(c.EFlags)),
            ("cs", u64::from(c.SegCs)),
            ("ss", u64::from(c.SegSs)),
            ("ds", u64::from(c.SegDs)),
            ("es", u64::from(c.SegEs)),
            ("fs", u64::from(c.SegFs)),
            ("gs", u64::from(c.SegGs)),
        ],
    })
}

/// The x86 registers of a suspended WOW64 thread (WOW64_CONTEXT), under their 32-bit names.
#[cfg(target_arch = "x86_64")]
fn wow64_thread_registers(tid: i32, handle: HANDLE) -> std::io::Result<crate::target::Registers> {
    use windows_sys::Win32::System::Diagnostics::Debug::{
        WOW64_CONTEXT, WOW64_CONTEXT_CONTROL, WOW64_CONTEXT_INTEGER, WOW64_CONTEXT_SEGMENTS,
        Wow64GetThreadContext,
    };
    // SAFETY: WOW64_CONTEXT is plain data; all zeros is a valid value.
    let mut ctx: Box<WOW64_CONTEXT> = Box::new(unsafe { std::mem::zeroed() });
    ctx.ContextFlags = WOW64_CONTEXT_CONTROL | WOW64_CONTEXT_INTEGER | WOW64_CONTEXT_SEGMENTS;
    // SAFETY: `ctx` is a WOW64_CONTEXT (4-byte alignment is all it needs) with ContextFlags set;
    // `handle` is a suspended thread opened with THREAD_GET_CONTEXT.
    if unsafe { Wow64GetThreadContext(handle, &mut *ctx) } == 0 {
        return Err(last_error());
    }
    let c = &*ctx;
    Ok(crate::target::Registers {
        tid,
        values: vec![
            ("eax", u64::from(c.Eax)),
            ("ebx", u64::from(c.Ebx)),
            ("ecx", u64::from(c.Ecx)),
            ("edx", u64::from(c.Edx)),
            ("esi", u64::from(c.Esi)),
            ("edi", u64::from(c.Edi)),
            ("ebp", u64::from(c.Ebp)),
            ("esp", u64::from(c.Esp)),
            ("eip", u64::from(c.Eip)),
            ("eflags", u64::from(c.EFlags)),
            ("cs", u64::from(c.SegCs)),
            ("ss", u64::from(c.SegSs)),
            ("ds", u64::from(c.SegDs)),
            ("es", u64::from(c.SegEs)),
            ("fs", u64::from(c.SegFs)),
            ("gs", u64::from(c.SegGs)),
        ],
    })
}

/// WOW64_CONTEXT is read on x64 Windows only.
#[cfg(not(target_arch = "x86_64"))]
fn wow64_thread_registers(_tid: i32, _handle: HANDLE) -> std::io::Result<crate::target::Registers> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "reading WOW64 thread registers is implemented for x86_64 Windows only",
    ))
}

/// Other architectures' CONTEXT layouts are not read yet.
#[cfg(not(target_arch = "x86_64"))]
fn thread_registers(_tid: i32, _handle: HANDLE) -> std::io::Result<crate::target::Registers> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "reading thread registers is implemented for x86_64 Windows only",
    ))
}

/// Hardware watchpoints through the Windows debug API: `DebugActiveProcess` makes vmscope the
/// process's debugger for the length of one `watch` run. While a debug event is held (between
/// `WaitForDebugEvent` and `ContinueDebugEvent`) every thread of the process is frozen, so Dr0–Dr3
/// and Dr7 are set then with `SetThreadContext` (CONTEXT_DEBUG_REGISTERS): at the
/// CREATE_PROCESS and CREATE_THREAD events, which the system sends for every thread already
/// running at attach and for each new one. A data breakpoint traps after the access as
/// EXCEPTION_SINGLE_STEP; Dr6 says which slot fired, Rip is the instruction after the access, and
/// the watched bytes read then are the new value. Other exceptions go back to the program
/// (DBG_EXCEPTION_NOT_HANDLED), so its own first-chance handlers run. On every way out the
/// registers of every thread are cleared, the events already queued are drained, and
/// `DebugActiveProcessStop` detaches (kill-on-exit off, so the process runs on).
///
/// A 32-bit (WOW64) x86 process is watched the same way through its WOW64_CONTEXT
/// (`Wow64GetThreadContext`/`Wow64SetThreadContext`, WOW64_CONTEXT_DEBUG_REGISTERS: Dr0–Dr3, Dr6,
/// Dr7 as 32-bit values; watched addresses must lie below 4 GiB). A data breakpoint hit in its
/// 32-bit code reaches a 64-bit debugger as STATUS_WX86_SINGLE_STEP rather than
/// EXCEPTION_SINGLE_STEP, and Eip is the instruction after the access.
#[cfg(target_arch = "x86_64")]
mod watch {
    use super::{AlignedContext, WinProcess, last_error};
    use crate::addr::VirtAddr;
    use crate::error::{Error, Result};
    use crate::target::debugreg::{self, HitCount, Slot};
    use crate::target::{Target, WatchEvent, WatchRun};
    use std::collections::HashMap;
    use std::time::{Duration, Instant};
    use windows_sys::Win32::Foundation::{
        CloseHandle, DBG_CONTINUE, DBG_EXCEPTION_NOT_HANDLED, EXCEPTION_BREAKPOINT,
        EXCEPTION_SINGLE_STEP, HANDLE, NTSTATUS, STATUS_WX86_SINGLE_STEP,
    };
    use windows_sys::Win32::System::Diagnostics::Debug::{
        CONTEXT_CONTROL_AMD64, CONTEXT_DEBUG_REGISTERS_AMD64, CREATE_PROCESS_DEBUG_EVENT,
        CREATE_THREAD_DEBUG_EVENT, ContinueDebugEvent, DEBUG_EVENT, DebugActiveProcess,
        DebugActiveProcessStop, DebugSetProcessKillOnExit, EXCEPTION_DEBUG_EVENT,
        EXIT_PROCESS_DEBUG_EVENT, EXIT_THREAD_DEBUG_EVENT, GetThreadContext, LOAD_DLL_DEBUG_EVENT,
        SetThreadContext, WOW64_CONTEXT, WOW64_CONTEXT_CONTROL, WOW64_CONTEXT_DEBUG_REGISTERS,
        WaitForDebugEvent, Wow64GetThreadContext, Wow64SetThreadContext,
    };
    use windows_sys::Win32::System::Threading::{
        OpenThread, ResumeThread, SuspendThread, THREAD_GET_CONTEXT, THREAD_QUERY_INFORMATION,
        THREAD_SET_CONTEXT, THREAD_SUSPEND_RESUME,
    };

    /// WaitForDebugEvent's answer when nothing happened within its timeout.
    const ERROR_SEM_TIMEOUT: i32 = 121;
    /// How long one wait for a debug event lasts, so Ctrl-C and `--for` are noticed.
    const TICK: Duration = Duration::from_millis(50);

    /// A thread of the debuggee: its handle from a CREATE_* event (the system closes it), or
    /// from OpenThread (ours to close).
    struct DbgThread {
        handle: HANDLE,
        owned: bool,
    }

    /// One attached debugging session.
    struct Debuggee {
        pid: u32,
        slots: Vec<Slot>,
        threads: HashMap<u32, DbgThread>,
        /// The thread of the debug event held now (every thread is frozen while it is).
        held: Option<u32>,
        /// How the held event is to be continued.
        status: NTSTATUS,
        armed_reported: bool,
        attach_break_seen: bool,
        finished: bool,
        /// A WOW64 (x86) process: its debug registers are in each thread's WOW64_CONTEXT.
        wow64: bool,
    }

    impl Drop for Debuggee {
        /// A panic while reporting must not leave the registers set and the debugger attached.
        fn drop(&mut self) {
            self.finish();
        }
    }

    /// The thread context parts in `flags` of a frozen or suspended thread.
    fn context(handle: HANDLE, flags: u32) -> std::io::Result<Box<AlignedContext>> {
        // SAFETY: CONTEXT is plain data; all zeros is a valid value.
        let mut ctx: Box<AlignedContext> = Box::new(unsafe { std::mem::zeroed() });
        ctx.0.ContextFlags = flags;
        // SAFETY: `ctx` is a 16-byte-aligned CONTEXT with ContextFlags set; `handle` has
        // THREAD_GET_CONTEXT and its thread is not running (debug event held, or suspended).
        if unsafe { GetThreadContext(handle, &mut ctx.0) } == 0 {
            return Err(last_error());
        }
        Ok(ctx)
    }

    /// Programs Dr0–Dr3 with `slots` (none: every slot off), clears Dr6, sets Dr7.
    fn set_debug_registers(handle: HANDLE, slots: &[Slot]) -> std::io::Result<()> {
        let mut ctx = context(handle, CONTEXT_DEBUG_REGISTERS_AMD64)?;
        let addr = |i: usize| slots.get(i).map_or(0, |s| s.addr);
        let c = &mut ctx.0;
        (c.Dr0, c.Dr1, c.Dr2, c.Dr3) = (addr(0), addr(1), addr(2), addr(3));
        c.Dr6 = 0;
        c.Dr7 = debugreg::x86::dr7(slots);
        c.ContextFlags = CONTEXT_DEBUG_REGISTERS_AMD64;
        // SAFETY: `ctx` is a valid, aligned CONTEXT whose flags select the debug registers
        // only; `handle` has THREAD_SET_CONTEXT and its thread is not running.
        if unsafe { SetThreadContext(handle, &ctx.0) } == 0 {
            return Err(last_error());
        }
        Ok(())
    }

    /// Dr6 and Rip of a thread stopped at an exception; Dr6 is cleared for the next hit.
    fn take_dr6(handle: HANDLE) -> std::io::Result<(u64, u64)> {
        let mut ctx = context(
            handle,
            CONTEXT_DEBUG_REGISTERS_AMD64 | CONTEXT_CONTROL_AMD64,
        )?;
        let (dr6, rip) = (ctx.0.Dr6, ctx.0.Rip);
        ctx.0.Dr6 = 0;
        ctx.0.ContextFlags = CONTEXT_DEBUG_REGISTERS_AMD64;
        // SAFETY: as in `set_debug_registers`; only the debug registers are written back.
        if unsafe { SetThreadContext(handle, &ctx.0) } == 0 {
            return Err(last_error());
        }
        Ok((dr6, rip))
    }

    /// The WOW64_CONTEXT parts in `flags` of a frozen or suspended WOW64 thread.
    fn wow64_context(handle: HANDLE, flags: u32) -> std::io::Result<Box<WOW64_CONTEXT>> {
        // SAFETY: WOW64_CONTEXT is plain data; all zeros is a valid value.
        let mut ctx: Box<WOW64_CONTEXT> = Box::new(unsafe { std::mem::zeroed() });
        ctx.ContextFlags = flags;
        // SAFETY: `ctx` is a WOW64_CONTEXT (4-byte alignment suffices) with ContextFlags set;
        // `handle` has THREAD_GET_CONTEXT and its thread is not running.
        if unsafe { Wow64GetThreadContext(handle, &mut *ctx) } == 0 {
            return Err(last_error());
        }
        Ok(ctx)
    }

    /// `set_debug_registers` for a WOW64 thread: Dr0–Dr3, Dr6 and Dr7 of its WOW64_CONTEXT.
    /// The slots' addresses are below 4 GiB (`wait` checks).
    fn set_debug_registers32(handle: HANDLE, slots: &[Slot]) -> std::io::Result<()> {
        let mut ctx = wow64_context(handle, WOW64_CONTEXT_DEBUG_REGISTERS)?;
        let addr = |i: usize| slots.get(i).map_or(0, |s| s.addr as u32);
        (ctx.Dr0, ctx.Dr1, ctx.Dr2, ctx.Dr3) = (addr(0), addr(1), addr(2), addr(3));
        ctx.Dr6 = 0;
        // Every Dr7 field (L/G enables, R/W and LEN per slot) is in its low 32 bits.
        ctx.Dr7 = debugreg::x86::dr7(slots) as u32;
        ctx.ContextFlags = WOW64_CONTEXT_DEBUG_REGISTERS;
        // SAFETY: `ctx` is a valid WOW64_CONTEXT whose flags select the debug registers only;
        // `handle` has THREAD_SET_CONTEXT and its thread is not running.
        if unsafe { Wow64SetThreadContext(handle, &*ctx) } == 0 {
            return Err(last_error());
        }
        Ok(())
    }

    /// `take_dr6` for a WOW64 thread: Dr6 and Eip of its WOW64_CONTEXT; Dr6 is cleared.
    fn take_dr6_32(handle: HANDLE) -> std::io::Result<(u64, u64)> {
        let mut ctx = wow64_context(
            handle,
            WOW64_CONTEXT_DEBUG_REGISTERS | WOW64_CONTEXT_CONTROL,
        )?;
        let (dr6, eip) = (u64::from(ctx.Dr6), u64::from(ctx.Eip));
        ctx.Dr6 = 0;
        ctx.ContextFlags = WOW64_CONTEXT_DEBUG_REGISTERS;
        // SAFETY: as in `set_debug_registers32`; only the debug registers are written back.
        if unsafe { Wow64SetThreadContext(handle, &*ctx) } == 0 {
            return Err(last_error());
        }
        Ok((dr6, eip))
    }

    impl Debuggee {
        /// Programs the debug registers of one thread of this process with `slots`.
        fn program(&self, handle: HANDLE, slots: &[Slot]) -> std::io::Result<()> {
            if self.wow64 {
                set_debug_registers32(handle, slots)
            } else {
                set_debug_registers(handle, slots)
            }
        }

        /// Dr6 and the instruction pointer of a thread stopped at an exception; clears Dr6.
        fn dr6(&self, handle: HANDLE) -> std::io::Result<(u64, u64)> {
            if self.wow64 {
                take_dr6_32(handle)
            } else {
                take_dr6(handle)
            }
        }

        /// Whether `code` is the single-step exception a data breakpoint raises: a WOW64
        /// process's 32-bit code raises STATUS_WX86_SINGLE_STEP.
        fn is_single_step(&self, code: NTSTATUS) -> bool {
            code == EXCEPTION_SINGLE_STEP || (self.wow64 && code == STATUS_WX86_SINGLE_STEP)
        }

        /// Adds a thread from a CREATE_* event and arms it (the process is frozen).
        fn add_thread(&mut self, tid: u32, handle: HANDLE) -> Result<()> {
            if let Some(old) = self.threads.insert(
                tid,
                DbgThread {
                    handle,
                    owned: false,
                },
            ) && old.owned
            {
                // SAFETY: a handle we opened, replaced by the system's one, closed once.
                unsafe { CloseHandle(old.handle) };
            }
            self.arm(tid, handle)
        }

        fn arm(&self, tid: u32, handle: HANDLE) -> Result<()> {
            self.program(handle, &self.slots)
                .map_err(|e| Error::io(format!("setting Dr0-Dr7 of thread {tid}"), e))
        }

        /// Arms the threads the Toolhelp list has and no debug event named (a belt to the
        /// braces of the CREATE_THREAD events sent at attach): suspended while their context
        /// is written.
        fn arm_running(&mut self, p: &WinProcess) -> Result<usize> {
            let tids = p.thread_ids().unwrap_or_default();
            for tid in tids.into_iter().map(|t| t as u32) {
                if self.threads.contains_key(&tid) {
                    continue;
                }
                // SAFETY: plain call; returns a handle or null (a thread that just exited).
                let h = unsafe {
                    OpenThread(
                        THREAD_GET_CONTEXT
                            | THREAD_SET_CONTEXT
                            | THREAD_SUSPEND_RESUME
                            | THREAD_QUERY_INFORMATION,
                        0,
                        tid,
                    )
                };
                if h.is_null() {
                    continue;
                }
                self.threads.insert(
                    tid,
                    DbgThread {
                        handle: h,
                        owned: true,
                    },
                );
                // SAFETY: `h` is our handle with THREAD_SUSPEND_RESUME.
                let suspended = unsafe { SuspendThread(h) } != u32::MAX;
                let armed = self.arm(tid, h);
                if suspended {
                    // SAFETY: undoes our SuspendThread on the same handle.
                    unsafe { ResumeThread(h) };
                }
                armed?;
            }
            Ok(self.threads.len())
        }

        fn forget_thread(&mut self, tid: u32) {
            if let Some(t) = self.threads.remove(&tid)
                && t.owned
            {
                // SAFETY: a handle we opened, closed once.
                unsafe { CloseHandle(t.handle) };
            }
        }

        /// Gives the held event back to the system with its status.
        fn continue_held(&mut self) {
            let status = std::mem::replace(&mut self.status, DBG_CONTINUE);
            if let Some(tid) = self.held.take() {
                // SAFETY: plain call continuing the event WaitForDebugEvent gave this thread.
                unsafe { ContinueDebugEvent(self.pid, tid, status) };
            }
        }

        /// Clears every thread's slots, drains the events already queued and detaches. Runs on
        /// every way out of a watch.
        fn finish(&mut self) {
            if std::mem::replace(&mut self.finished, true) {
                return;
            }
            let frozen = self.held.is_some();
            for t in self.threads.values() {
                // Without an event held the threads run: suspend each while it is written.
                // SAFETY: handles with THREAD_SUSPEND_RESUME (events' handles have it too).
                let suspended = !frozen && unsafe { SuspendThread(t.handle) } != u32::MAX;
                let _ = self.program(t.handle, &[]);
                if suspended {
                    // SAFETY: undoes our SuspendThread on the same handle.
                    unsafe { ResumeThread(t.handle) };
                }
            }
            self.continue_held();
            // A hit raised just before the registers were cleared may be queued: take it (an
            // unclaimed single-step exception would reach the program and could kill it).
            for _ in 0..256 {
                // SAFETY: DEBUG_EVENT is plain data; WaitForDebugEvent fills it.
                let mut ev: DEBUG_EVENT = unsafe { std::mem::zeroed() };
                // SAFETY: `ev` is a DEBUG_EVENT to write.
                if unsafe { WaitForDebugEvent(&mut ev, 20) } == 0 {
                    break;
                }
                self.held = Some(ev.dwThreadId);
                self.status = match ev.dwDebugEventCode {
                    EXCEPTION_DEBUG_EVENT => {
                        // SAFETY: the union member the event code names.
                        let code = unsafe { ev.u.Exception.ExceptionRecord.ExceptionCode };
                        let ours = self.is_single_step(code)
                            && self.threads.get(&ev.dwThreadId).is_some_and(|t| {
                                self.dr6(t.handle).is_ok_and(|(dr6, _)| {
                                    !debugreg::x86::fired(dr6, self.slots.len()).is_empty()
                                })
                            });
                        let attach_break = code == EXCEPTION_BREAKPOINT && !self.attach_break_seen;
                        if ours || attach_break {
                            self.attach_break_seen |= attach_break;
                            DBG_CONTINUE
                        } else {
                            DBG_EXCEPTION_NOT_HANDLED
                        }
                    }
                    CREATE_THREAD_DEBUG_EVENT | CREATE_PROCESS_DEBUG_EVENT => {
                        // SAFETY: the union members the event code names.
                        let file = unsafe {
                            if ev.dwDebugEventCode == CREATE_PROCESS_DEBUG_EVENT {
                                ev.u.CreateProcessInfo.hFile
                            } else {
                                std::ptr::null_mut()
                            }
                        };
                        close_file(file);
                        DBG_CONTINUE
                    }
                    LOAD_DLL_DEBUG_EVENT => {
                        // SAFETY: the union member the event code names.
                        close_file(unsafe { ev.u.LoadDll.hFile });
                        DBG_CONTINUE
                    }
                    _ => DBG_CONTINUE,
                };
                self.continue_held();
            }
            for tid in self.threads.keys().copied().collect::<Vec<_>>() {
                self.forget_thread(tid);
            }
            // SAFETY: plain call; detaches the debugger this thread attached.
            unsafe { DebugActiveProcessStop(self.pid) };
        }
    }

    /// Closes a file handle a debug event handed over (the debugger owns it).
    fn close_file(h: HANDLE) {
        if !h.is_null() {
            // SAFETY: the event gave us this handle to close, once.
            unsafe { CloseHandle(h) };
        }
    }

    /// Runs the watches of `p` until `max_hits`, `until`, Ctrl-C or the process's exit.
    pub fn wait(
        p: &mut WinProcess,
        until: Option<Instant>,
        max_hits: Option<u64>,
        on_event: &mut dyn FnMut(&mut dyn Target, WatchEvent<'_>) -> Result<()>,
    ) -> Result<WatchRun> {
        if p.watches.is_empty() {
            return Err(Error::usage(
                "no watches: set one with `watch EXPR [LEN] [-w|-rw]`",
            ));
        }
        if !p.alive() {
            return Err(p.exited());
        }
        let wow64 = p.is_wow64();
        if wow64 && !p.is_wow64_x86() {
            return Err(p.unsupported(
                "hardware watchpoints in a 32-bit ARM (WOW64) process: only x86 WOW64 threads \
                 (WOW64_CONTEXT debug registers) are programmed",
            ));
        }
        if wow64
            && let Some((_, slot)) = p
                .watches
                .slots()
                .into_iter()
                .find(|(_, s)| s.addr > u64::from(u32::MAX))
        {
            return Err(Error::usage(format!(
                "watch at {:#x}: the process is 32-bit (WOW64) and its debug registers hold 32-bit \
                 addresses; watch an address below 4 GiB",
                slot.addr
            )));
        }
        for (i, (addr, len)) in p.watches.ranges().into_iter().enumerate() {
            let mut buf = vec![0u8; len];
            let read = p.read(addr, &mut buf);
            let value = debugreg::value(read, buf)?;
            p.watches.set_last(i, value);
        }
        let pid = p.info.pid as u32;
        // SAFETY: plain call; makes this thread the process's debugger.
        if unsafe { DebugActiveProcess(pid) } == 0 {
            let e = last_error();
            return Err(match e.raw_os_error() {
                Some(5) => Error::Permission {
                    what: format!("DebugActiveProcess({pid})"),
                    fix: "run vmscope as the process's user or elevated (SeDebugPrivilege); a \
                          process already under a debugger cannot take a second one"
                        .into(),
                },
                _ => Error::io(
                    format!("DebugActiveProcess({pid}) (is another debugger attached?)"),
                    e,
                ),
            });
        }
        // SAFETY: plain call; detaching must leave the process running, not kill it.
        unsafe { DebugSetProcessKillOnExit(0) };
        let mut dbg = Debuggee {
            pid,
            slots: p.watches.slots().into_iter().map(|(_, s)| s).collect(),
            threads: HashMap::new(),
            held: None,
            status: DBG_CONTINUE,
            armed_reported: false,
            attach_break_seen: false,
            finished: false,
            wow64,
        };
        let mut count = HitCount::new(max_hits);
        let ended = run(p, &mut dbg, until, &mut count, on_event);
        dbg.finish();
        match ended? {
            Exit::Ended(why) => Ok(WatchRun {
                backend: "debug-registers".into(),
                hits: count.total,
                lost: 0,
                ended: why.into(),
            }),
            Exit::Exited(code) => Err(Error::Exited {
                pid: p.info.pid,
                status: Some(format!("exit code {code}")),
            }),
        }
    }

    enum Exit {
        Ended(&'static str),
        Exited(u32),
    }

    /// Tells `on_event` the watches are armed, once, after arming what is running.
    fn report_armed(
        p: &mut WinProcess,
        dbg: &mut Debuggee,
        on_event: &mut dyn FnMut(&mut dyn Target, WatchEvent<'_>) -> Result<()>,
    ) -> Result<()> {
        if dbg.armed_reported {
            return Ok(());
        }
        let threads = dbg.arm_running(p)?;
        dbg.armed_reported = true;
        on_event(
            p,
            WatchEvent::Armed {
                backend: "debug-registers",
                threads,
            },
        )
    }

    /// The debug-event loop. Each event is held (the process frozen) until the next turn or
    /// `Debuggee::finish`.
    fn run(
        p: &mut WinProcess,
        dbg: &mut Debuggee,
        until: Option<Instant>,
        count: &mut HitCount,
        on_event: &mut dyn FnMut(&mut dyn Target, WatchEvent<'_>) -> Result<()>,
    ) -> Result<Exit> {
        loop {
            // Checked while the last event is still held, so `finish` disarms a frozen process.
            if let Some(why) = count.end_reason(until) {
                return Ok(Exit::Ended(why));
            }
            dbg.continue_held();
            let wait = until
                .map(|u| u.saturating_duration_since(Instant::now()))
                .unwrap_or(TICK)
                .min(TICK);
            // SAFETY: DEBUG_EVENT is plain data; WaitForDebugEvent fills it.
            let mut ev: DEBUG_EVENT = unsafe { std::mem::zeroed() };
            // SAFETY: `ev` is a DEBUG_EVENT to write.
            if unsafe { WaitForDebugEvent(&mut ev, wait.as_millis() as u32) } == 0 {
                let e = last_error();
                if e.raw_os_error() != Some(ERROR_SEM_TIMEOUT) {
                    return Err(Error::io(
                        format!("WaitForDebugEvent (process {})", dbg.pid),
                        e,
                    ));
                }
                // Quiet since attach: every thread has had its CREATE event by now.
                report_armed(p, dbg, on_event)?;
                continue;
            }
            let tid = ev.dwThreadId;
            dbg.held = Some(tid);
            match ev.dwDebugEventCode {
                CREATE_PROCESS_DEBUG_EVENT => {
                    // SAFETY: the union member the event code names.
                    let info = unsafe { ev.u.CreateProcessInfo };
                    close_file(info.hFile);
                    dbg.add_thread(tid, info.hThread)?;
                }
                CREATE_THREAD_DEBUG_EVENT => {
                    // SAFETY: the union member the event code names.
                    let info = unsafe { ev.u.CreateThread };
                    dbg.add_thread(tid, info.hThread)?;
                }
                EXIT_THREAD_DEBUG_EVENT => dbg.forget_thread(tid),
                LOAD_DLL_DEBUG_EVENT => {
                    // SAFETY: the union member the event code names.
                    close_file(unsafe { ev.u.LoadDll.hFile });
                }
                EXIT_PROCESS_DEBUG_EVENT => {
                    // SAFETY: the union member the event code names.
                    let code = unsafe { ev.u.ExitProcess.dwExitCode };
                    for tid in dbg.threads.keys().copied().collect::<Vec<_>>() {
                        dbg.forget_thread(tid);
                    }
                    return Ok(Exit::Exited(code));
                }
                EXCEPTION_DEBUG_EVENT => {
                    // SAFETY: the union member the event code names.
                    let code = unsafe { ev.u.Exception.ExceptionRecord.ExceptionCode };
                    dbg.status = if code == EXCEPTION_BREAKPOINT && !dbg.attach_break_seen {
                        // The break-in thread DebugActiveProcess starts: the attach is complete.
                        dbg.attach_break_seen = true;
                        report_armed(p, dbg, on_event)?;
                        DBG_CONTINUE
                    } else if dbg.is_single_step(code) {
                        on_single_step(p, dbg, tid, count, on_event)?
                    } else {
                        // The program's own exception: its handlers get it first.
                        DBG_EXCEPTION_NOT_HANDLED
                    };
                }
                _ => {}
            }
        }
    }

    /// A single-step exception: a hit of ours when Dr6 names an armed slot (reported, then
    /// DBG_CONTINUE), the program's own otherwise.
    fn on_single_step(
        p: &mut WinProcess,
        dbg: &mut Debuggee,
        tid: u32,
        count: &mut HitCount,
        on_event: &mut dyn FnMut(&mut dyn Target, WatchEvent<'_>) -> Result<()>,
    ) -> Result<NTSTATUS> {
        if !dbg.threads.contains_key(&tid) {
            dbg.arm_running(p)?;
        }
        let Some(thread) = dbg.threads.get(&tid) else {
            return Ok(DBG_EXCEPTION_NOT_HANDLED);
        };
        let (dr6, rip) = dbg
            .dr6(thread.handle)
            .map_err(|e| Error::io(format!("reading Dr6 of thread {tid}"), e))?;
        let fired = debugreg::x86::fired(dr6, dbg.slots.len());
        if fired.is_empty() {
            return Ok(DBG_EXCEPTION_NOT_HANDLED);
        }
        report_armed(p, dbg, on_event)?;
        let owners: Vec<usize> = p.watches.slots().into_iter().map(|(w, _)| w).collect();
        let mut seen = Vec::new();
        for slot in fired {
            let Some(&w) = owners.get(slot) else { continue };
            if seen.contains(&w) || count.done() {
                continue;
            }
            seen.push(w);
            let (addr, len) = p.watches.ranges()[w];
            let mut buf = vec![0u8; len];
            let read = p.read(addr, &mut buf);
            let new = debugreg::value(read, buf)?;
            // Rip is past the access: data breakpoints trap after the instruction.
            let hit = p.watches.hit(w, tid as i32, Some(VirtAddr(rip)), new);
            count.total += 1;
            on_event(p, WatchEvent::Hit(&hit))?;
        }
        Ok(DBG_CONTINUE)
    }
}
