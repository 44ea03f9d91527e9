//! Hardware watchpoint logic every backend shares, whatever the OS: the split of a watched range
//! into aligned hardware slots, the x86 debug-register encoding (DR7 enables, conditions and
//! lengths; DR6 hit bits), the ARM64 watchpoint control value (DBGWCR) and address (DBGWVR), and
//! the watch list of a target (ids, slot accounting, hit counting, last known values). The Linux
//! (`linux/hwbp.rs`), Windows (`windows.rs`) and macOS (`macos.rs`) backends only add how the
//! registers reach a thread and how a hit comes back; this module is pure and tested on every OS.

use crate::addr::VirtAddr;
use crate::error::{Error, Result};
use crate::target::{WatchAccess, WatchHit, WatchInfo};
use std::time::Instant;

/// Hardware watch slots per thread: DR0–DR3 on x86_64; arm64 cores have 2 to 16 and vmscope
/// uses the 4 every core has.
pub const SLOTS: usize = 4;

/// The longest range one watch may cover (four 8-byte slots, as gdb allows).
pub const MAX_LEN: u64 = 32;

/// One aligned piece of a watch: 1, 2, 4 or 8 bytes at an address that is a multiple of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub addr: u64,
    pub len: u8,
    pub access: WatchAccess,
}

/// Splits `len` bytes at `addr` into aligned pieces of 1, 2, 4 or 8 bytes, largest first, as gdb
/// does for x86 debug registers (the alignment perf breakpoints need on every architecture, and
/// the alignment that keeps each piece inside one ARM64 doubleword).
pub fn pieces(addr: u64, len: u64) -> Vec<(u64, u8)> {
    let mut out = Vec::new();
    let (mut at, end) = (addr, addr.saturating_add(len));
    while at < end {
        let size = [8u64, 4, 2, 1]
            .into_iter()
            .find(|&s| at % s == 0 && at + s <= end)
            .unwrap_or(1);
        out.push((at, size as u8));
        at += size;
    }
    out
}

/// x86 / x86_64 debug registers, as the Intel SDM vol. 3B §18.2 "Debug Registers" lays them out
/// (the same in AMD's APM vol. 2 §13.1.1).
pub mod x86 {
    use super::Slot;
    use crate::target::WatchAccess;

    /// DR7 R/Wn = 01: break on data writes only (SDM §18.2.4).
    pub const RW_WRITE: u64 = 0b01;
    /// DR7 R/Wn = 11: break on data reads or writes, not instruction fetches.
    pub const RW_READ_WRITE: u64 = 0b11;
    /// DR6 B0–B3 (bits 0–3): which breakpoint condition was met (SDM §18.2.3).
    pub const DR6_HITS: u64 = 0xf;

    /// The R/Wn field for an access; x86 cannot break on reads alone, so a read watch is armed
    /// as read-or-write (callers refuse `Read` on x86 before it gets here).
    pub fn rw_bits(access: WatchAccess) -> u64 {
        match access {
            WatchAccess::Write => RW_WRITE,
            WatchAccess::Read | WatchAccess::ReadWrite => RW_READ_WRITE,
        }
    }

    /// The LENn field: 00 = 1 byte, 01 = 2 bytes, 11 = 4 bytes, 10 = 8 bytes (SDM §18.2.5;
    /// 8 bytes in 64-bit mode only).
    pub fn len_bits(len: u8) -> u64 {
        match len {
            1 => 0b00,
            2 => 0b01,
            8 => 0b10,
            _ => 0b11,
        }
    }

    /// DR7 for `slots` armed in DR0.. order: the local enable Ln at bit 2n, R/Wn at bits
    /// 16+4n..17+4n and LENn at bits 18+4n..19+4n. Global enables (G0–G3) stay clear: the OS
    /// switches debug registers per thread.
    pub fn dr7(slots: &[Slot]) -> u64 {
        let mut dr7 = 0u64;
        for (i, s) in slots.iter().enumerate().take(4) {
            dr7 |= 1 << (2 * i);
            dr7 |= (rw_bits(s.access) | (len_bits(s.len) << 2)) << (16 + 4 * i);
        }
        dr7
    }

    /// The slots (indexes below `armed`) whose B bit is set in `dr6`.
    pub fn fired(dr6: u64, armed: usize) -> Vec<usize> {
        (0..armed.min(4)).filter(|&i| dr6 & (1 << i) != 0).collect()
    }
}

/// ARM64 (AArch64) watchpoint registers DBGWVR<n>_EL1 / DBGWCR<n>_EL1, as the Arm ARM (DDI 0487)
/// §D13.3 "Debug registers" lays them out. Linux's NT_ARM_HW_WATCH regset and Darwin's
/// `ARM_DEBUG_STATE64` take these hardware values as they are.
pub mod arm64 {
    use super::Slot;
    use crate::target::WatchAccess;

    /// DBGWCR.E (bit 0): the watchpoint is enabled.
    pub const WCR_ENABLE: u32 = 1;
    /// DBGWCR.PAC (bits 2:1) = 0b10: match EL0 (user) accesses only.
    pub const WCR_PAC_EL0: u32 = 0b10 << 1;
    /// DBGWCR.LSC (bits 4:3): 01 loads, 10 stores, 11 both.
    pub const LSC_LOAD: u32 = 0b01;
    pub const LSC_STORE: u32 = 0b10;
    pub const LSC_BOTH: u32 = 0b11;

    /// The LSC field for an access.
    pub fn lsc(access: WatchAccess) -> u32 {
        match access {
            WatchAccess::Read => LSC_LOAD,
            WatchAccess::Write => LSC_STORE,
            WatchAccess::ReadWrite => LSC_BOTH,
        }
    }

    /// DBGWVR: the 8-byte-aligned doubleword holding the slot.
    pub fn wvr(s: &Slot) -> u64 {
        s.addr & !7
    }

    /// DBGWCR.BAS (bits 12:5): one bit per byte of the doubleword that is watched. A slot from
    /// [`super::pieces`] never crosses its doubleword.
    pub fn bas(s: &Slot) -> u32 {
        let len = u32::from(s.len.clamp(1, 8));
        let shift = (s.addr & 7) as u32;
        (((1u32 << len) - 1) << shift) & 0xff
    }

    /// The whole DBGWCR value: BAS, LSC, PAC = EL0, E; MASK, WT, LBN, SSC and HMC stay 0.
    pub fn wcr(s: &Slot) -> u32 {
        (bas(s) << 5) | (lsc(s.access) << 3) | WCR_PAC_EL0 | WCR_ENABLE
    }

    /// The slot a watchpoint exception with fault address `far` belongs to: the slot whose
    /// doubleword holds it, else (an access wider than the doubleword, such as `stp` or a vector
    /// store that starts below it, may report its own start) the nearest slot at most 64 bytes
    /// before it.
    pub fn fired(slots: &[Slot], far: u64) -> Option<usize> {
        if let Some(i) = slots
            .iter()
            .position(|s| (wvr(s)..wvr(s) + 8).contains(&far))
        {
            return Some(i);
        }
        slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.addr >= far && s.addr - far < 64)
            .min_by_key(|(_, s)| s.addr - far)
            .map(|(i, _)| i)
    }
}

/// What a backend's hardware and OS allow a watch to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Whether reads alone can be watched (ARM64 yes, x86 no).
    pub read_only: bool,
    /// The end of the user half of the address space.
    pub user_end: u64,
    /// Whether `--passive` (perf sampling, Linux only) exists.
    pub passive: bool,
}

impl Rules {
    /// x86_64: 47-bit user space, no read-only watches.
    pub const X86_64: Rules = Rules {
        read_only: false,
        user_end: 0x0000_8000_0000_0000,
        passive: false,
    };
    /// ARM64 with up to 52-bit user addresses (Linux).
    pub const ARM64: Rules = Rules {
        read_only: true,
        user_end: 0x0010_0000_0000_0000,
        passive: false,
    };

    /// The rules of the machine vmscope runs on.
    pub const fn host() -> Rules {
        let mut r = if cfg!(target_arch = "aarch64") {
            Rules::ARM64
        } else if cfg!(target_arch = "x86_64") {
            Rules::X86_64
        } else {
            Rules {
                read_only: false,
                user_end: u64::MAX,
                passive: false,
            }
        };
        if cfg!(target_os = "macos") && cfg!(target_arch = "aarch64") {
            // Darwin's arm64 user space ends below 2^47 (MACH_VM_MAX_ADDRESS).
            r.user_end = 0x0000_8000_0000_0000;
        }
        r.passive = cfg!(target_os = "linux");
        r
    }
}

/// A watch as the target keeps it, with its last known value.
#[derive(Clone, Debug)]
struct Watch {
    info: WatchInfo,
    last: Option<Vec<u8>>,
}

/// The watch list of one target. Watches are only armed while the backend's `watch_wait` runs.
#[derive(Debug)]
pub struct Watches {
    list: Vec<Watch>,
    next_id: u32,
    rules: Rules,
}

impl Default for Watches {
    fn default() -> Watches {
        Watches::with_rules(Rules::host())
    }
}

impl Watches {
    pub fn with_rules(rules: Rules) -> Watches {
        Watches {
            list: Vec::new(),
            next_id: 0,
            rules,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Watch number `i` (an index into the list, not an id).
    pub fn info(&self, i: usize) -> &WatchInfo {
        &self.list[i].info
    }

    pub fn all_passive(&self) -> bool {
        self.list.iter().all(|w| w.info.passive)
    }

    fn slots_used(&self) -> usize {
        self.list.iter().map(|w| w.info.slots.len()).sum()
    }

    /// The slots to arm, in order, each with the index of its watch.
    pub fn slots(&self) -> Vec<(usize, Slot)> {
        let mut out = Vec::new();
        for (i, w) in self.list.iter().enumerate() {
            for &(addr, len) in &w.info.slots {
                out.push((
                    i,
                    Slot {
                        addr: addr.get(),
                        len,
                        access: w.info.access,
                    },
                ));
            }
        }
        out
    }

    /// Each watch's `(address, length)`, in list order.
    pub fn ranges(&self) -> Vec<(VirtAddr, usize)> {
        self.list
            .iter()
            .map(|w| (w.info.address, w.info.len as usize))
            .collect()
    }

    /// Remembers the value of watch `i`, the "old" of its next hit.
    pub fn set_last(&mut self, i: usize, value: Option<Vec<u8>>) {
        self.list[i].last = value;
    }

    pub fn list(&self) -> Vec<WatchInfo> {
        self.list.iter().map(|w| w.info.clone()).collect()
    }

    pub fn clear(&mut self, id: Option<u32>) -> Result<Vec<u32>> {
        match id {
            None => Ok(self.list.drain(..).map(|w| w.info.id).collect()),
            Some(id) => {
                let i = self
                    .list
                    .iter()
                    .position(|w| w.info.id == id)
                    .ok_or_else(|| {
                        let ids: Vec<String> =
                            self.list.iter().map(|w| w.info.id.to_string()).collect();
                        Error::usage(if ids.is_empty() {
                            format!("no watch {id}: there are no watches")
                        } else {
                            format!("no watch {id} (watches: {})", ids.join(" "))
                        })
                    })?;
                self.list.remove(i);
                Ok(vec![id])
            }
        }
    }

    /// Validates and adds a watch.
    pub fn add(
        &mut self,
        expression: &str,
        addr: VirtAddr,
        len: u64,
        access: WatchAccess,
        passive: bool,
    ) -> Result<WatchInfo> {
        if len == 0 || len > MAX_LEN {
            return Err(Error::usage(format!(
                "a watch covers 1 to {MAX_LEN} bytes, not {len}"
            )));
        }
        if passive && !self.rules.passive {
            return Err(Error::usage(
                "passive watches sample with Linux perf events and exist on Linux only: drop \
                 --passive (a watch here holds the hitting thread only while its hit is read)",
            ));
        }
        if access == WatchAccess::Read && !self.rules.read_only {
            return Err(Error::usage(
                "x86 debug registers cannot watch reads alone: use -rw to catch reads or writes",
            ));
        }
        if addr
            .get()
            .checked_add(len)
            .is_none_or(|end| end > self.rules.user_end)
        {
            return Err(Error::usage(format!(
                "{addr} is not a user-space address: hardware watchpoints watch the program's \
                 own memory"
            )));
        }
        if let Some(other) = self.list.iter().find(|w| w.info.passive != passive) {
            return Err(Error::usage(format!(
                "watch {} is {}: a target's watches are all passive or all stopping (`unwatch {}` \
                 first)",
                other.info.id,
                if other.info.passive {
                    "passive"
                } else {
                    "not passive"
                },
                other.info.id
            )));
        }
        let slots: Vec<(VirtAddr, u8)> = pieces(addr.get(), len)
            .into_iter()
            .map(|(a, l)| (VirtAddr(a), l))
            .collect();
        let free = SLOTS - self.slots_used();
        if slots.len() > free {
            let why = if slots.len() > 1 {
                format!(
                    "{len} bytes at {addr} need {} hardware slots (aligned pieces of 1, 2, 4 or 8 \
                     bytes)",
                    slots.len()
                )
            } else {
                "this watch needs 1 hardware slot".to_string()
            };
            return Err(Error::usage(format!(
                "{why}, and {free} of the {SLOTS} are free: `unwatch` one, or watch fewer bytes"
            )));
        }
        self.next_id += 1;
        let info = WatchInfo {
            id: self.next_id,
            expression: expression.to_string(),
            address: addr,
            len,
            access,
            passive,
            slots,
            hits: 0,
        };
        self.list.push(Watch {
            info: info.clone(),
            last: None,
        });
        Ok(info)
    }

    /// Counts a hit of watch number `w` (an index) by thread `tid`: the hit to report, with the
    /// remembered value as "old" and `new` (the value read now; None when passive or unreadable)
    /// remembered for the next hit.
    pub fn hit(
        &mut self,
        w: usize,
        tid: i32,
        pc: Option<VirtAddr>,
        new: Option<Vec<u8>>,
    ) -> WatchHit {
        let watch = &mut self.list[w];
        watch.info.hits += 1;
        let old = if new.is_some() {
            watch.last.clone()
        } else {
            None
        };
        if new.is_some() {
            watch.last.clone_from(&new);
        }
        WatchHit {
            id: watch.info.id,
            tid,
            pc,
            old,
            new,
            hit: watch.info.hits,
        }
    }
}

/// The value of a watched range from a read of `buf.len()` bytes: the bytes when all came, None
/// when the memory is unreadable; other errors (the target exited) are passed on.
pub fn value(read: Result<usize>, buf: Vec<u8>) -> Result<Option<Vec<u8>>> {
    match read {
        Ok(n) if n == buf.len() => Ok(Some(buf)),
        Ok(_) | Err(Error::Unreadable { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Hits of one `watch_wait` run, against its `max_hits`.
#[derive(Clone, Copy, Debug)]
pub struct HitCount {
    pub total: u64,
    pub max: Option<u64>,
}

impl HitCount {
    pub fn new(max: Option<u64>) -> HitCount {
        HitCount { total: 0, max }
    }

    pub fn done(&self) -> bool {
        self.max.is_some_and(|m| self.total >= m)
    }

    /// Why a run stops, checked between events: `count`, `interrupted` (Ctrl-C) or `time`.
    pub fn end_reason(&self, until: Option<Instant>) -> Option<&'static str> {
        if self.done() {
            Some("count")
        } else if crate::interrupt::check().is_err() {
            Some("interrupted")
        } else if until.is_some_and(|u| Instant::now() >= u) {
            Some("time")
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(addr: u64, len: u8, access: WatchAccess) -> Slot {
        Slot { addr, len, access }
    }

    #[test]
    fn pieces_are_aligned_and_cover_the_range() {
        type Case = (u64, u64, &'static [(u64, u8)]);
        let cases: &[Case] = &[
            (0x1000, 8, &[(0x1000, 8)]),
            (0x1000, 4, &[(0x1000, 4)]),
            (0x1004, 8, &[(0x1004, 4), (0x1008, 4)]),
            (0x1001, 3, &[(0x1001, 1), (0x1002, 2)]),
            (
                0x1000,
                32,
                &[(0x1000, 8), (0x1008, 8), (0x1010, 8), (0x1018, 8)],
            ),
            (0x1003, 6, &[(0x1003, 1), (0x1004, 4), (0x1008, 1)]),
        ];
        for &(addr, len, want) in cases {
            assert_eq!(pieces(addr, len), want, "{addr:#x}+{len}");
        }
    }

    #[test]
    fn dr7_encoding_follows_the_sdm() {
        // One 8-byte write watch in DR0: L0 (bit 0), R/W0 = 01 (bits 16-17), LEN0 = 10
        // (bits 18-19): 0b1001 << 16 | 1.
        assert_eq!(x86::dr7(&[s(0x1000, 8, WatchAccess::Write)]), 0x9_0001);
        // A 1-byte write in DR0 and a 4-byte read/write in DR1: L0, L1 (bit 2), R/W1 = 11 and
        // LEN1 = 11 (bits 20-23).
        let two = [
            s(0x1000, 1, WatchAccess::Write),
            s(0x1004, 4, WatchAccess::ReadWrite),
        ];
        assert_eq!(x86::dr7(&two), 0x1 | 0x4 | (0b01 << 16) | (0b1111 << 20));
        // Four 2-byte writes: L0-L3 = 0x55, each nibble R/W = 01, LEN = 01 -> 0x5555.
        let four: Vec<Slot> = (0..4)
            .map(|i| s(0x2000 + 2 * i, 2, WatchAccess::Write))
            .collect();
        assert_eq!(x86::dr7(&four), 0x5555_0055);
        assert_eq!(x86::dr7(&[]), 0);
    }

    #[test]
    fn dr6_names_the_slots_that_fired() {
        // DR6 reads 0xffff0ff0 with no hit (reserved bits set); B1 set is a hit in slot 1.
        assert_eq!(x86::fired(0xffff_0ff0, 4), Vec::<usize>::new());
        assert_eq!(x86::fired(0xffff_0ff2, 4), vec![1]);
        assert_eq!(x86::fired(0xffff_0ff5, 4), vec![0, 2]);
        // A B bit of a slot vmscope did not arm is not ours.
        assert_eq!(x86::fired(0x8, 2), Vec::<usize>::new());
        // BS (single step, bit 14) alone is not a watch hit.
        assert_eq!(x86::fired(0x4000, 4), Vec::<usize>::new());
    }

    #[test]
    fn wcr_encoding_follows_the_arm_arm() {
        // A 4-byte store watch at 0x...1004: WVR 0x...1000, BAS 0b1111_0000, LSC 10,
        // PAC 10, E 1 -> (0xf0 << 5) | (0b10 << 3) | (0b10 << 1) | 1 = 0x1e15.
        let w = s(0x1004, 4, WatchAccess::Write);
        assert_eq!(arm64::wvr(&w), 0x1000);
        assert_eq!(arm64::bas(&w), 0xf0);
        assert_eq!(arm64::wcr(&w), 0x1e15);
        // An aligned 8-byte load/store watch: BAS 0xff, LSC 11 -> 0x1fe0 | 0x18 | 0x4 | 1.
        let w = s(0x2000, 8, WatchAccess::ReadWrite);
        assert_eq!(arm64::wcr(&w), 0x1ffd);
        // One byte read at offset 3: BAS 0b1000, LSC 01 -> 0x100 | 0x8 | 0x4 | 1 = 0x10d.
        let w = s(0x3003, 1, WatchAccess::Read);
        assert_eq!(arm64::wvr(&w), 0x3000);
        assert_eq!(arm64::wcr(&w), 0x10d);
    }

    #[test]
    fn arm64_fault_address_picks_the_slot() {
        let slots = [
            s(0x1000, 8, WatchAccess::Write),
            s(0x1010, 4, WatchAccess::Write),
        ];
        assert_eq!(arm64::fired(&slots, 0x1003), Some(0));
        assert_eq!(arm64::fired(&slots, 0x1014), Some(1));
        // A 16-byte `stp` at 0x1008 reports its start: the nearest slot above.
        assert_eq!(arm64::fired(&slots, 0x1008), Some(1));
        assert_eq!(arm64::fired(&slots, 0x9000), None);
    }

    #[test]
    fn slot_accounting_names_the_free_slots() {
        let mut w = Watches::with_rules(Rules {
            passive: true,
            ..Rules::X86_64
        });
        w.add("a", VirtAddr(0x1000), 16, WatchAccess::Write, false)
            .unwrap();
        let e = w
            .add("b", VirtAddr(0x2001), 8, WatchAccess::Write, false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("need 4 hardware slots") && e.contains("2 of the 4"),
            "{e}"
        );
        w.add("c", VirtAddr(0x3000), 16, WatchAccess::ReadWrite, false)
            .unwrap();
        let e = w
            .add("d", VirtAddr(0x4000), 1, WatchAccess::Write, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("0 of the 4 are free"), "{e}");
        assert!(
            w.add("p", VirtAddr(0x5000), 8, WatchAccess::Write, true)
                .is_err()
        );
        assert_eq!(w.clear(Some(1)).unwrap(), vec![1]);
        assert!(
            w.clear(Some(9))
                .unwrap_err()
                .to_string()
                .contains("no watch 9")
        );
        for bad in [0, 33] {
            assert!(
                w.add("z", VirtAddr(0x1000), bad, WatchAccess::Write, false)
                    .is_err()
            );
        }
        assert!(
            w.add(
                "k",
                VirtAddr(0xffff_8000_0000_0000),
                8,
                WatchAccess::Write,
                false
            )
            .unwrap_err()
            .to_string()
            .contains("not a user-space address")
        );
    }

    #[test]
    fn rules_refuse_what_the_hardware_cannot_do() {
        let mut x86 = Watches::with_rules(Rules::X86_64);
        let e = x86
            .add("r", VirtAddr(0x1000), 4, WatchAccess::Read, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("-rw"), "{e}");
        let e = x86
            .add("p", VirtAddr(0x1000), 4, WatchAccess::Write, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Linux only"), "{e}");
        let mut arm = Watches::with_rules(Rules::ARM64);
        assert!(
            arm.add("r", VirtAddr(0x1000), 4, WatchAccess::Read, false)
                .is_ok()
        );
    }

    #[test]
    fn hits_carry_old_and_new_values() {
        let mut w = Watches::with_rules(Rules::X86_64);
        w.add("g", VirtAddr(0x1000), 4, WatchAccess::Write, false)
            .unwrap();
        w.set_last(0, Some(vec![1, 0, 0, 0]));
        let h = w.hit(0, 7, Some(VirtAddr(0x400000)), Some(vec![2, 0, 0, 0]));
        assert_eq!((h.id, h.tid, h.hit), (1, 7, 1));
        assert_eq!(h.old.as_deref(), Some(&[1, 0, 0, 0][..]));
        assert_eq!(h.new.as_deref(), Some(&[2, 0, 0, 0][..]));
        // Unreadable now: no values, and the remembered one stays.
        let h = w.hit(0, 7, None, None);
        assert_eq!((h.hit, h.old, h.new), (2, None, None));
        let h = w.hit(0, 8, None, Some(vec![3, 0, 0, 0]));
        assert_eq!(h.old.as_deref(), Some(&[2, 0, 0, 0][..]));
        assert_eq!(w.info(0).hits, 3);
        let mut c = HitCount::new(Some(2));
        assert!(!c.done());
        c.total = 2;
        assert!(c.done());
        assert_eq!(c.end_reason(None), Some("count"));
        assert!(HitCount::new(None).end_reason(None).is_none());
        assert_eq!(
            value(Ok(2), vec![0; 4]).unwrap(),
            None,
            "a short read is no value"
        );
        assert_eq!(value(Ok(4), vec![9; 4]).unwrap(), Some(vec![9; 4]));
    }
}
