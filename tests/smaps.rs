//! Usage per region (/proc/PID/smaps through `Target::regions_with_usage`) on real processes,
//! checked against independent oracles: the kernel's own totals in /proc/PID/smaps_rollup (read
//! here with a separate, naive parser) and the ranges of /proc/PID/maps. The targets are the facts
//! fixture and a real program nobody here wrote (a threaded python3), both stopped through the
//! library so their memory holds still while the files are compared.

mod common;
use common::*;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use vmscope::addr::VirtAddr;
use vmscope::regions::{self, Region, Usage};
use vmscope::target::Target;

/// /proc/PID/smaps_rollup: its header range and its `Key: N kB` fields in kB.
struct Rollup {
    range: (u64, u64),
    kb: HashMap<String, u64>,
}

fn read_rollup(pid: i32) -> Rollup {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().expect("rollup header");
    assert!(header.ends_with("[rollup]"), "{header}");
    let range = range_of(header);
    let kb = lines
        .map(|line| {
            let (key, value) = line.split_once(':').unwrap();
            let value = value.trim().strip_suffix(" kB").unwrap();
            (key.to_owned(), value.parse().unwrap())
        })
        .collect();
    Rollup { range, kb }
}

/// The `start-end` of a maps-style line.
fn range_of(line: &str) -> (u64, u64) {
    let range = line.split(' ').next().unwrap();
    let (start, end) = range.split_once('-').unwrap();
    (
        u64::from_str_radix(start, 16).unwrap(),
        u64::from_str_radix(end, 16).unwrap(),
    )
}

fn maps_ranges(pid: i32) -> Vec<(u64, u64)> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap()
        .lines()
        .map(range_of)
        .collect()
}

fn usage(r: &Region) -> &Usage {
    r.usage
        .as_ref()
        .unwrap_or_else(|| panic!("no usage for {:?}", r.start))
}

/// Stops the target and compares smaps with smaps_rollup and maps, read while it is stopped.
/// Returns the regions compared.
///
/// Stopping freezes the target's own memory, not the rest of the machine: the PSS of shared
/// pages (libc, the fixture binary shared with other tests' copies) changes whenever another
/// process maps or unmaps them, and reclaim may clear accessed bits (Referenced). So the
/// comparison is made between two identical reads of smaps with the rollup read between them,
/// and retried when they differ or disagree with the rollup.
fn check_against_kernel(t: &mut dyn Target) -> Vec<Region> {
    let pid = t.info().pid;
    t.stop().unwrap();
    let mut attempts = 0;
    let (list, rollup, ranges) = loop {
        attempts += 1;
        let before = t.regions_with_usage().unwrap();
        let rollup = read_rollup(pid);
        let ranges = maps_ranges(pid);
        let after = t.regions_with_usage().unwrap();
        // A process can also map and unmap the shared pages entirely between two reads of
        // smaps (the parallel tests start and end processes all the time): a disagreement is
        // retried too, and only one that lasts every attempt fails.
        let why = match before == after {
            true => match sums_agree(&before, &rollup) {
                Ok(()) => break (before, rollup, ranges),
                Err(why) => why,
            },
            false => match before.iter().zip(&after).find(|(a, b)| a != b) {
                Some((a, b)) => format!("smaps of {pid} never held still:\n{a:?}\n{b:?}"),
                None => format!(
                    "smaps of {pid} never held still: {} regions, then {}",
                    before.len(),
                    after.len()
                ),
            },
        };
        if attempts == 200 {
            panic!("{why}");
        }
    };
    if attempts > 1 {
        eprintln!("note: smaps of {pid} agreed with smaps_rollup on attempt {attempts}");
    }

    // One region per line of maps, same ranges, same order; the header fields as regions() has
    // them.
    let got: Vec<(u64, u64)> = list.iter().map(|r| (r.start.get(), r.end.get())).collect();
    assert_eq!(got, ranges);
    let plain = t.regions().unwrap();
    let stripped: Vec<Region> = list
        .iter()
        .cloned()
        .map(|r| Region { usage: None, ..r })
        .collect();
    assert_eq!(stripped, plain);

    // smaps_rollup walks the mm's VMAs; smaps also shows the gate VMA ([vsyscall]), which is not
    // one of them, so the rollup range ends where the last ordinary region ends.
    let ordinary: Vec<&Region> = list
        .iter()
        .filter(|r| r.backing != regions::Backing::Vsyscall)
        .collect();
    assert_eq!(
        rollup.range,
        (ordinary[0].start.get(), ordinary.last().unwrap().end.get())
    );
    for r in &list {
        if r.backing == regions::Backing::Vsyscall {
            assert_eq!(usage(r).rss, 0, "the gate page has no RSS to add");
        }
    }

    t.resume().unwrap();
    list
}

/// Whether the sums of smaps over `list` agree with the kernel's rollup; if not, the first
/// disagreement.
fn sums_agree(list: &[Region], rollup: &Rollup) -> Result<(), String> {
    let mut sum = Usage::default();
    for r in list {
        sum += usage(r);
        assert!(usage(r).kernel_page_size >= 4096, "{r:?}");
    }
    let kb = |key: &str| {
        *rollup
            .kb
            .get(key)
            .unwrap_or_else(|| panic!("smaps_rollup has no {key}"))
    };
    let bytes = |key: &str| kb(key) * 1024;
    let same = |name: &str, sum: u64, rollup: u64| match sum == rollup {
        true => Ok(()),
        false => Err(format!("{name}: sum over regions {sum}, rollup {rollup}")),
    };

    // Exact: these are whole pages counted in bytes and printed as `bytes >> 10` both per VMA and
    // in the rollup (fs/proc/task_mmu.c, __show_smap), and pages are multiples of 1 kB, so
    // nothing is lost to rounding and the sums must match to the byte.
    same("Rss", sum.rss, bytes("Rss"))?;
    same("Shared_Clean", sum.shared_clean, bytes("Shared_Clean"))?;
    same("Shared_Dirty", sum.shared_dirty, bytes("Shared_Dirty"))?;
    same("Private_Clean", sum.private_clean, bytes("Private_Clean"))?;
    same("Private_Dirty", sum.private_dirty, bytes("Private_Dirty"))?;
    same("Referenced", sum.referenced, bytes("Referenced"))?;
    same("Anonymous", sum.anonymous, bytes("Anonymous"))?;
    same("Swap", sum.swap, bytes("Swap"))?;
    same(
        "AnonHugePages + ShmemPmdMapped + FilePmdMapped",
        sum.thp,
        bytes("AnonHugePages") + bytes("ShmemPmdMapped") + bytes("FilePmdMapped"),
    )?;

    // Within rounding: Pss, Pss_Dirty, SwapPss and Locked are proportional shares kept in fixed
    // point (bytes << PSS_SHIFT, 12 bits) and printed as `fixed >> PSS_SHIFT >> 10`, i.e. floor
    // of kB. smaps floors each VMA's share, the rollup floors the sum of the unrounded shares,
    // so the rollup is at least the sum of the VMAs' values and exceeds it by less than 1 kB per
    // VMA that contributes (Locked is the PSS of VM_LOCKED VMAs, not a page count). A VMA whose
    // pages are all mapped once loses nothing, so with no sharing this is exact too.
    let within = |name: &str, sum_bytes: u64, contributing: usize| {
        let rollup_kb = kb(name);
        assert_eq!(sum_bytes % 1024, 0, "{name}: smaps prints whole kB");
        let sum_kb = sum_bytes / 1024;
        match sum_kb <= rollup_kb && rollup_kb - sum_kb < contributing.max(1) as u64 {
            true => Ok(()),
            false => Err(format!(
                "{name}: sum over regions {sum_kb} kB, rollup {rollup_kb} kB, {contributing} \
                 regions contribute"
            )),
        }
    };
    let resident = list.iter().filter(|r| usage(r).rss > 0).count();
    let swapped = list.iter().filter(|r| usage(r).swap > 0).count();
    let locked = list
        .iter()
        .filter(|r| usage(r).rss > 0 && usage(r).has_flag("lo"))
        .count();
    within("Pss", sum.pss, resident)?;
    within("Pss_Dirty", sum.pss_dirty, resident)?;
    within("SwapPss", sum.swap_pss, swapped)?;
    within("Locked", sum.locked, locked)?;
    // And the rollup's own split of Pss adds up to (almost) its Pss: each part is floored.
    let parts = kb("Pss_Anon") + kb("Pss_File") + kb("Pss_Shmem");
    assert!(parts <= kb("Pss") && kb("Pss") - parts < 3, "Pss split");
    Ok(())
}

#[test]
fn fixture_usage_adds_up_to_smaps_rollup() {
    let f = Fixture::start("facts");
    f.wait_paused();
    let mut t = vmscope::target::attach(f.pid()).unwrap();
    let list = check_against_kernel(t.as_mut());
    assert!(
        wait_until(5, || f.state() == 'S'),
        "not running again after resume: state {}",
        f.state()
    );

    let at = |key: &str| {
        regions::find(&list, VirtAddr(f.addr(key)))
            .unwrap_or_else(|| panic!("no region holds {key}"))
    };
    // Pages the fixture wrote: resident, and anonymous or not as the kernel sees them.
    let none = usage(at("prot_none"));
    assert!(none.rss >= 4096 && none.anonymous >= 4096, "{none:?}");
    assert!(!none.has_flag("rd") && !none.has_flag("wr"), "{none:?}");
    let heap = usage(at("heap"));
    assert!(heap.rss >= 4096 && heap.private_dirty >= 4096, "{heap:?}");
    // One page of shmem (memfd, System V) written once: resident, dirty, shared-flagged, and not
    // anonymous.
    for key in ["memfd_map", "sysv_map"] {
        let region = at(key);
        assert_eq!(region.size(), 4096, "{key}");
        let u = usage(region);
        assert_eq!(u.rss, 4096, "{key}: {u:?}");
        assert_eq!(u.anonymous, 0, "{key}: {u:?}");
        // smaps' "private" means mapped by one process, not MAP_PRIVATE: this MAP_SHARED page
        // is mapped here only.
        assert_eq!(u.private_dirty, 4096, "{key}: {u:?}");
        assert_eq!(u.pss, 4096, "{key}: {u:?}");
        assert!(u.has_flag("sh") && u.has_flag("wr"), "{key}: {u:?}");
    }
    // A read-only private file page that was read: clean.
    let spaced = usage(at("spaced_map"));
    assert_eq!(spaced.dirty(), 0, "{spaced:?}");
    assert!(spaced.has_flag("rd") && !spaced.has_flag("wr"));
}

/// A real program nobody here wrote, killed when the test ends however it ends.
struct Python(Child);

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Python {
    /// Runs `python3 -c SCRIPT` and waits for the first line it prints, which it returns. None
    /// (and a loud note) when this machine has no python3.
    fn start(test: &str, script: &str) -> Option<(Python, String)> {
        let child = match Command::new("python3")
            .args(["-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("SKIPPED {test}: no python3 on PATH");
                return None;
            }
            Err(e) => panic!("start python3: {e}"),
        };
        let mut python = Python(child);
        let mut line = String::new();
        BufReader::new(python.0.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        Some((python, line))
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

#[test]
fn python_usage_adds_up_to_smaps_rollup() {
    const SCRIPT: &str = "import threading,time; \
        [threading.Thread(target=time.sleep, args=(60,)).start() for _ in range(4)]; \
        print('ready', flush=True); time.sleep(60)";
    let Some((python, line)) = Python::start("python_usage_adds_up_to_smaps_rollup", SCRIPT) else {
        return;
    };
    assert_eq!(line, "ready\n");
    let mut t = vmscope::target::attach(python.pid()).unwrap();
    let list = check_against_kernel(t.as_mut());
    // Five threads (four 8 MiB thread stacks with their guard pages): a real, busy map.
    assert!(list.len() > 20, "{} regions", list.len());
    assert!(
        list.iter().any(|r| r.backing.path().is_some_and(|p| p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("python")))),
        "no python binary or library mapped"
    );
}

/// The sums that are zero in the other tests: memory mapped by transparent huge pages (an 8 MiB
/// anonymous mapping with MADV_HUGEPAGE, written) and locked memory (mlockall, which makes
/// Locked the PSS of every mapping, shared libraries included, so its rounding is exercised).
#[test]
fn huge_pages_and_locked_memory_add_up_to_smaps_rollup() {
    const SCRIPT: &str = "import ctypes, mmap, time
size = 8 << 20
m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
m.madvise(mmap.MADV_HUGEPAGE)
m.write(b'x' * size)
libc = ctypes.CDLL(None, use_errno=True)
print('ready', libc.mlockall(1), flush=True)
time.sleep(60)";
    let test = "huge_pages_and_locked_memory_add_up_to_smaps_rollup";
    let Some((python, line)) = Python::start(test, SCRIPT) else {
        return;
    };
    let mut t = vmscope::target::attach(python.pid()).unwrap();
    let list = check_against_kernel(t.as_mut());
    let mut sum = Usage::default();
    for r in &list {
        sum += usage(r);
    }
    if sum.thp == 0 {
        // THP is best effort: the kernel may find no free 2 MiB page.
        eprintln!("NOTE {test}: the kernel gave no transparent huge page; THP sums were 0 = 0");
    } else {
        assert_eq!(sum.thp % (2 << 20), 0, "THP comes in 2 MiB pages");
    }
    if line == "ready 0\n" {
        assert!(sum.locked > 0, "mlockall succeeded but nothing is Locked");
        assert!(list.iter().any(|r| usage(r).has_flag("lo")));
    } else {
        eprintln!("NOTE {test}: mlockall failed ({line:?}); Locked sums were 0 = 0");
    }
}
