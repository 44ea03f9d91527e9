//! `translate` against the pages fixture: frame numbers and bits compared with a plain read of
//! /proc/PID/pagemap done here, the zero page, untouched pages, file pages, huge pages, guard
//! regions, copy-on-write after fork, swap (when a swap file can be enabled), range counts
//! against smaps, the fallback without PAGEMAP_SCAN, privileges, bad input and a target that
//! exits midway.

mod common;

use common::*;
use serde_json::Value;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::process::Command;

const PAGE: u64 = 4096;

/// The raw pagemap entry of `addr` in `pid`, read here independently of vmscope.
fn pagemap(pid: i32, addr: u64) -> u64 {
    let f = File::open(format!("/proc/{pid}/pagemap")).unwrap();
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, addr / PAGE * 8).unwrap();
    u64::from_le_bytes(b)
}

fn pfn_of(raw: u64) -> u64 {
    raw & ((1 << 55) - 1)
}

/// Frame numbers, page flags and swap need root (CAP_SYS_ADMIN); says so loudly when missing.
fn frames_visible(test: &str) -> bool {
    if !is_root() {
        eprintln!("SKIPPED {test}: needs root (CAP_SYS_ADMIN) to see frame numbers and page flags");
    }
    is_root()
}

fn page(doc: &Value) -> &Value {
    &doc["pages"][0]
}

/// Smaps field `name` (kB) of the region starting at `start`.
fn smaps_field(pid: i32, start: u64, name: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let head = format!("{start:x}-");
    let mut inside = false;
    for line in text.lines() {
        if line.contains('-') && line.split_whitespace().count() >= 5 && !line.ends_with(" kB") {
            inside = line.starts_with(&head);
            continue;
        }
        if inside && let Some(v) = line.strip_prefix(&format!("{name}:")) {
            return v.trim().trim_end_matches(" kB").trim().parse().unwrap();
        }
    }
    panic!("no region at {start:#x} in smaps");
}

#[test]
fn frames_match_a_plain_pagemap_read() {
    if !frames_visible("frames_match_a_plain_pagemap_read") {
        return;
    }
    // Compares with pages the kernel may migrate between two reads: see `retried`.
    retried(3, || {
        let f = Fixture::start("pages");
        let pid = f.pid();
        let anon = f.addr("anon");
        let mut addrs: Vec<u64> = (0..64).map(|i| anon + i * PAGE + 0x123).collect();
        addrs.extend((0..4).map(|i| f.addr("file") + i * PAGE));
        addrs.extend((0..4).map(|i| f.addr("shm") + i * PAGE + 8));
        addrs.extend((0..8).map(|i| f.addr("cow") + i * PAGE));
        let cmds: Vec<String> = addrs.iter().map(|a| format!("translate {a:#x}")).collect();
        let cmds: Vec<&str> = cmds.iter().map(String::as_str).collect();
        let (docs, out) = json_batch(pid, &cmds);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(docs.len(), addrs.len());
        let mut present = 0;
        for (doc, &a) in docs.iter().zip(&addrs) {
            let raw = pagemap(pid, a);
            let p = page(doc);
            assert_eq!(hex(&doc["address"]), a);
            assert_eq!(hex(&p["page_base"]), a & !(PAGE - 1));
            assert_eq!(p["offset"], a % PAGE);
            assert_eq!(p["present"], raw >> 63 == 1, "{a:#x}");
            assert_eq!(p["exclusive"], raw >> 56 & 1 == 1, "{a:#x}");
            assert_eq!(p["file_shared"], raw >> 61 & 1 == 1, "{a:#x}");
            assert_eq!(p["swapped"], raw >> 62 & 1 == 1, "{a:#x}");
            if raw >> 63 == 1 {
                present += 1;
                assert_eq!(hex(&p["pfn"]), pfn_of(raw), "{a:#x}");
                assert_eq!(hex(&p["paddr"]), pfn_of(raw) * PAGE + a % PAGE);
                assert!(p["kpageflags"].is_array(), "{p}");
                assert!(p["mapcount"].is_u64() || pfn_of(raw) != 0);
            } else {
                assert!(p["pfn"].is_null() && p["paddr"].is_null(), "{p}");
            }
            assert_eq!(doc["pfn_visible"], true);
            assert_eq!(p["page_size"], PAGE);
        }
        assert!(present >= 30, "only {present} present pages compared");
    });
}

#[test]
fn zero_page_untouched_file_and_shared_pages() {
    if !frames_visible("zero_page_untouched_file_and_shared_pages") {
        return;
    }
    let f = Fixture::start("pages");
    let pid = f.pid();
    let anon = f.addr("anon");
    let (docs, out) = json_batch(
        pid,
        &[
            &format!("translate {:#x}", anon),
            &format!("translate {:#x}", anon + 20 * PAGE),
            &format!("translate {:#x}", anon + 40 * PAGE),
            &format!("translate {:#x}", f.addr("file")),
            &format!("translate {:#x}", f.addr("file") + 24 * PAGE),
            &format!("translate {:#x}", f.addr("shm")),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let [written, zero, untouched, file, file_cold, shm] = &docs[..] else {
        panic!("six documents: {docs:?}")
    };
    // Written before the fork: the child maps the same frame.
    let p = page(written);
    assert!(p["present"] == true && p["exclusive"] == false && p["zero"] == false);
    let flags = p["kpageflags"].to_string();
    assert!(flags.contains("ANON") && flags.contains("MMAP"), "{flags}");
    assert_eq!(p["mapcount"], 2);
    assert_eq!(written["regions"][0]["kind"], "private");

    let p = page(zero);
    assert!(p["present"] == true && p["zero"] == true, "{p}");
    assert!(p["kpageflags"].to_string().contains("ZERO_PAGE"), "{p}");
    assert!(zero["meaning"].as_str().unwrap().contains("zero page"));

    let p = page(untouched);
    assert!(p["present"] == false && p["swapped"] == false && p["pfn"].is_null());
    assert!(p["kpageflags"].is_null() && p["mapcount"].is_null());
    assert!(
        untouched["meaning"]
            .as_str()
            .unwrap()
            .starts_with("not present")
    );

    let p = page(file);
    assert!(p["present"] == true && p["file_shared"] == true, "{p}");
    assert!(!p["kpageflags"].to_string().contains("ANON"), "{p}");
    assert_eq!(file["regions"][0]["kind"], "file");
    assert!(file["meaning"].as_str().unwrap().contains("page cache"));
    assert_eq!(page(file_cold)["present"], false);

    let p = page(shm);
    assert!(p["present"] == true && p["file_shared"] == true, "{p}");
    assert_eq!(shm["regions"][0]["kind"], "shared");
    // fork does not copy the page tables of shared mappings: the child maps it on first use.
    assert_eq!(p["mapcount"], 1, "{p}");

    // The text explains the same page.
    let out = text_batch(pid, &[&format!("translate {:#x}", anon + 20 * PAGE + 5)]);
    let text = stdout(&out);
    for want in [
        "virtual",
        "region",
        "page size 4.0K",
        "PFN 0x",
        "physical address 0x",
        "present yes, swapped no",
        "the shared zero page",
        "ZERO_PAGE",
        "meaning",
    ] {
        assert!(text.contains(want), "missing `{want}`:\n{text}");
    }
}

#[test]
fn a_range_is_folded_and_counted_like_smaps() {
    if !frames_visible("a_range_is_folded_and_counted_like_smaps") {
        return;
    }
    // Compares with pages the kernel may migrate between two reads: see `retried`.
    retried(3, || {
        let f = Fixture::start("pages");
        let pid = f.pid();
        let anon = f.addr("anon");
        let (docs, out) = json_batch(
            pid,
            &[
                &format!("translate --region {:#x}", anon + 5),
                &format!("translate {anon:#x} 0x10000"),
                "translate [heap]",
                &format!("translate --region {anon:#x} --limit 2"),
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let whole = &docs[0];
        let s = &whole["summary"];
        assert_eq!(s["pages"], 64);
        assert_eq!(s["present"], 17, "{s}");
        assert_eq!(s["zero"], 1);
        assert_eq!(s["not_present"], 47);
        assert_eq!(s["swapped"], 0);
        assert_eq!(s["unmapped"], 0);
        assert_eq!(s["resident_bytes"], 16 * PAGE);
        // Independent truth: the kernel's own accounting of the region.
        assert_eq!(
            smaps_field(pid, anon, "Rss") * 1024,
            s["resident_bytes"].as_u64().unwrap()
        );
        assert_eq!(whole["method"], "pagemap_scan");
        let runs = whole["runs"].as_array().unwrap();
        let covered: u64 = runs.iter().map(|r| r["pages"].as_u64().unwrap()).sum();
        assert_eq!(covered, 64, "the rows cover the region");
        assert_eq!(whole["truncated"], false);
        assert_eq!(runs.last().unwrap()["state"], "not present");
        // Every present page's frame matches the plain read, and rows fold contiguous frames only.
        for r in runs.iter().filter(|r| r["state"] == "present") {
            let start = hex(&r["start"]);
            let first = pfn_of(pagemap(pid, start));
            assert_eq!(hex(&r["pfn"]), first);
            for k in 0..r["pages"].as_u64().unwrap() {
                assert_eq!(pfn_of(pagemap(pid, start + k * PAGE)), first + k, "{r}");
            }
        }
        assert_eq!(
            whole["pages"].as_array().unwrap().len(),
            17,
            "populated pages listed"
        );

        let part = &docs[1]["summary"];
        assert_eq!(
            (part["pages"].as_u64(), part["present"].as_u64()),
            (Some(16), Some(16))
        );

        let heap = &docs[2];
        assert_eq!(heap["regions"][0]["kind"], "heap");
        assert!(heap["summary"]["present"].as_u64().unwrap() >= 1);

        let cut = &docs[3];
        assert_eq!(cut["runs"].as_array().unwrap().len(), 2);
        assert_eq!(cut["truncated"], true);
        assert_eq!(cut["pages"].as_array().unwrap().len(), 2);
        assert_eq!(
            cut["summary"], whole["summary"],
            "the counts cover the whole range"
        );

        let out = text_batch(pid, &[&format!("translate --region {anon:#x}")]);
        let text = stdout(&out);
        assert!(
            text.contains("summary: 64 pages mapped: 17 present (1 zero page"),
            "{text}"
        );
        assert!(text.contains("not present"), "{text}");
        assert!(text.contains("resident: 64K (65536 bytes)"), "{text}");
    });
}

#[test]
fn the_fallback_without_pagemap_scan_counts_the_same() {
    // Without frame numbers the fallback cannot tell the zero page.
    if !frames_visible("the_fallback_without_pagemap_scan_counts_the_same") {
        return;
    }
    let f = Fixture::start("pages");
    let pid = f.pid().to_string();
    let cmds = [
        format!("translate --region {:#x}", f.addr("anon")),
        format!("translate --region {:#x}", f.addr("file")),
        format!("translate --region {:#x}", f.addr("shm")),
        format!("translate --region {:#x}", f.addr("guard")),
    ];
    let run = |env: Option<&str>| -> Vec<Value> {
        let mut c = Command::new(VMSCOPE);
        c.args(["-p", &pid, "--batch", "--json"])
            .env("NO_COLOR", "1");
        for cmd in &cmds {
            c.args(["-ex", cmd]);
        }
        if let Some(v) = env {
            c.env("VMSCOPE_PAGEMAP_SCAN", v);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let scan = run(None);
    let read = run(Some("off"));
    for (a, b) in scan.iter().zip(&read) {
        assert_eq!(a["method"], "pagemap_scan");
        assert_eq!(b["method"], "pagemap_read");
        assert_eq!(a["summary"], b["summary"]);
        assert_eq!(a["runs"], b["runs"]);
    }
}

/// AnonHugePages (kB) of the region holding `addr`.
fn anon_huge_kb(pid: i32, addr: u64) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut inside = false;
    for line in text.lines() {
        if let Some((range, _)) = line.split_once(' ')
            && let Some((lo, hi)) = range.split_once('-')
            && let (Ok(lo), Ok(hi)) = (u64::from_str_radix(lo, 16), u64::from_str_radix(hi, 16))
        {
            inside = lo <= addr && addr < hi;
            continue;
        }
        if inside && let Some(v) = line.strip_prefix("AnonHugePages:") {
            return v.trim().trim_end_matches(" kB").trim().parse().unwrap();
        }
    }
    panic!("no region holds {addr:#x} in smaps");
}

/// The fixture's transparent huge page, translated alone and as a range.
fn check_thp(f: &Fixture) {
    let pid = f.pid();
    let thp = f.addr("thp");
    let (docs, out) = json_batch(
        pid,
        &[
            &format!("translate {:#x}", thp + 0x1234),
            &format!("translate {thp:#x} 0x200000"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // The kernel may split a THP at any time (reclaim under memory pressure, as when the
    // swap test runs beside this one): the truth is what smaps says right after.
    let kept = anon_huge_kb(pid, thp);
    if kept < 2048 {
        eprintln!(
            "SKIPPED the THP checks: the kernel split the fixture's huge page during the test \
             (AnonHugePages now {kept} kB)"
        );
        return;
    }
    let p = page(&docs[0]);
    assert_eq!(p["huge"], true, "{p}");
    let flags = p["kpageflags"].to_string();
    assert!(
        flags.contains("THP") && flags.contains("COMPOUND_TAIL"),
        "{flags}"
    );
    assert_eq!(hex(&p["pfn"]), pfn_of(pagemap(pid, thp + 0x1234)));
    let s = &docs[1]["summary"];
    assert_eq!(
        (s["huge"].as_u64(), s["present"].as_u64()),
        (Some(512), Some(512))
    );
    // One huge page: 512 physically contiguous frames, one row.
    let runs = docs[1]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["contiguous"], true);
    assert_eq!(runs[0]["state"], "present huge");
}

#[test]
fn huge_pages_and_guard_regions() {
    if !frames_visible("huge_pages_and_guard_regions") {
        return;
    }
    // Compares with pages the kernel may migrate between two reads: see `retried`.
    retried(3, || {
        let f = Fixture::start("pages");
        let pid = f.pid();
        if f.facts["thp_ok"] == true {
            check_thp(&f);
        } else {
            eprintln!("SKIPPED: the kernel gave the fixture no transparent huge page");
        }
        if f.facts["guard_ok"] == true {
            let g = f.addr("guard");
            let (docs, out) = json_batch(
                pid,
                &[
                    &format!("translate {:#x}", g + PAGE),
                    &format!("translate {g:#x} 0x4000"),
                ],
            );
            assert!(out.status.success(), "{}", stderr(&out));
            let p = page(&docs[0]);
            assert!(
                p["guard"] == true && p["swapped"] == false && p["present"] == false,
                "{p}"
            );
            assert!(docs[0]["meaning"].as_str().unwrap().starts_with("guard"));
            let s = &docs[1]["summary"];
            assert_eq!(
                (s["guard"].as_u64(), s["swapped"].as_u64()),
                (Some(1), Some(0))
            );
            assert_eq!(
                (s["present"].as_u64(), s["not_present"].as_u64()),
                (Some(1), Some(2))
            );
        } else {
            eprintln!("SKIPPED: MADV_GUARD_INSTALL refused (a kernel before 6.15)");
        }
    });
}

#[test]
fn copy_on_write_after_fork_then_diverged() {
    if !frames_visible("copy_on_write_after_fork_then_diverged") {
        return;
    }
    // Compares with pages the kernel may migrate between two reads: see `retried`.
    retried(3, || {
        let f = Fixture::start("pages");
        let (pid, child) = (f.pid(), f.facts["child_pid"].as_i64().unwrap() as i32);
        let cow = f.addr("cow");
        let cmds = [
            format!("translate {cow:#x}"),
            format!("translate {cow:#x} --pid {child}"),
            format!("translate {:#x} --pid {child}", cow + PAGE),
        ];
        let cmds: Vec<&str> = cmds.iter().map(String::as_str).collect();
        let (before, out) = json_batch(pid, &cmds);
        assert!(out.status.success(), "{}", stderr(&out));
        let (p, c) = (page(&before[0]), page(&before[1]));
        assert_eq!(before[1]["pid"], child);
        assert_eq!(p["pfn"], c["pfn"], "same virtual address, same frame");
        assert_eq!(hex(&c["pfn"]), pfn_of(pagemap(child, cow)));
        assert!(p["exclusive"] == false && c["exclusive"] == false);
        assert_eq!(p["mapcount"], 2);
        assert!(
            before[0]["meaning"]
                .as_str()
                .unwrap()
                .contains("copy-on-write")
        );

        // SAFETY: kill sends SIGUSR1 to the fixture's child, which writes its page.
        unsafe { libc::kill(child, libc::SIGUSR1) };
        let flag = f.scratch.0.join("child-wrote");
        assert!(wait_until(5, || flag.exists()), "the child never wrote");
        let (after, out) = json_batch(pid, &cmds);
        assert!(out.status.success(), "{}", stderr(&out));
        let (p, c) = (page(&after[0]), page(&after[1]));
        assert_ne!(p["pfn"], c["pfn"], "same virtual address, different frames");
        assert_eq!(hex(&c["pfn"]), pfn_of(pagemap(child, cow)));
        assert_eq!(hex(&p["pfn"]), pfn_of(pagemap(pid, cow)));
        assert_eq!(
            (p["mapcount"].as_u64(), c["mapcount"].as_u64()),
            (Some(1), Some(1))
        );
        assert!(c["exclusive"] == true);
        // The page next to it was not written: still one frame for both.
        assert_eq!(page(&after[2])["pfn"], page(&before[2])["pfn"]);
        assert_eq!(page(&after[2])["mapcount"], 2);
    });
}

/// Swap enabled on a file in the scratch directory for the test's duration.
struct SwapFile(std::path::PathBuf);

impl SwapFile {
    fn enable(dir: &std::path::Path) -> Result<SwapFile, String> {
        let path = dir.join("swapfile");
        let f = File::create(&path).map_err(|e| e.to_string())?;
        f.set_len(32 << 20).map_err(|e| e.to_string())?;
        // A swap file must not be sparse: write it out.
        let zeros = vec![0u8; 1 << 20];
        for i in 0..32u64 {
            f.write_all_at(&zeros, i << 20).map_err(|e| e.to_string())?;
        }
        f.sync_all().map_err(|e| e.to_string())?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(|e| e.to_string())?;
        let run = |cmd: &str| -> Result<(), String> {
            let out = Command::new(cmd)
                .arg(&path)
                .output()
                .map_err(|e| format!("{cmd}: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!("{cmd}: {}", String::from_utf8_lossy(&out.stderr)))
            }
        };
        run("mkswap")?;
        run("swapon")?;
        Ok(SwapFile(path))
    }
}

impl Drop for SwapFile {
    fn drop(&mut self) {
        let _ = Command::new("swapoff").arg(&self.0).status();
    }
}

#[test]
fn swapped_pages_show_their_swap_slot() {
    if !frames_visible("swapped_pages_show_their_swap_slot") {
        return;
    }
    let f = Fixture::start("pages");
    let pid = f.pid();
    let swp = f.addr("swap");
    let _swap = match SwapFile::enable(&f.scratch.0) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "SKIPPED: the real swap path (cannot enable a swap file here: {e}); \
                 decoding of swap entries is covered by the unit tests in src/pages"
            );
            return;
        }
    };
    // SAFETY: kill sends SIGUSR2 to the fixture, which pages its swap region out.
    unsafe { libc::kill(pid, libc::SIGUSR2) };
    let flag = f.scratch.0.join("paged-out");
    assert!(
        wait_until(5, || flag.exists()),
        "the fixture never paged out"
    );
    let raw = pagemap(pid, swp);
    if raw >> 62 & 1 == 0 {
        eprintln!("SKIPPED: MADV_PAGEOUT left the pages resident (entry {raw:#x})");
        return;
    }
    let (docs, out) = json_batch(
        pid,
        &[
            &format!("translate {swp:#x}"),
            &format!("translate --region {swp:#x}"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let p = page(&docs[0]);
    assert!(
        p["swapped"] == true && p["present"] == false && p["pfn"].is_null(),
        "{p}"
    );
    let frame = pfn_of(raw);
    assert_eq!(p["swap_type"], frame & 31);
    assert_eq!(hex(&p["swap_offset"]), frame >> 5);
    assert!(
        docs[0]["meaning"]
            .as_str()
            .unwrap()
            .starts_with("swapped out")
    );
    let s = &docs[1]["summary"];
    assert_eq!(
        (s["swapped"].as_u64(), s["present"].as_u64()),
        (Some(8), Some(0))
    );
    assert_eq!(
        smaps_field(pid, swp, "Swap"),
        32,
        "smaps agrees: 8 pages in swap"
    );
    let out = text_batch(pid, &[&format!("translate {swp:#x}")]);
    assert!(stdout(&out).contains("in swap: area"), "{}", stdout(&out));
}

#[test]
fn without_cap_sys_admin_frames_are_hidden_not_zero() {
    if Command::new("setpriv").arg("--version").output().is_err() || !is_root() {
        eprintln!("SKIPPED: needs root and setpriv to drop CAP_SYS_ADMIN");
        return;
    }
    let f = Fixture::start("pages");
    let anon = f.addr("anon");
    let run = |json: bool, cmd: &str| {
        let mut c = Command::new("setpriv");
        c.args([
            "--inh-caps=-sys_admin",
            "--bounding-set=-sys_admin",
            VMSCOPE,
            "-p",
            &f.pid().to_string(),
            "--batch",
        ]);
        if json {
            c.arg("--json");
        }
        c.args(["-ex", cmd]).env("NO_COLOR", "1").output().unwrap()
    };
    let out = run(true, &format!("translate {anon:#x}"));
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let p = page(&doc);
    assert_eq!(doc["pfn_visible"], false);
    assert!(p["present"] == true && p["exclusive"] == false, "{p}");
    assert!(
        p["pfn"].is_null() && p["paddr"].is_null() && p["kpageflags"].is_null(),
        "{p}"
    );
    let text = stdout(&run(false, &format!("translate {anon:#x}")));
    assert!(
        text.contains("hidden") && text.contains("CAP_SYS_ADMIN"),
        "{text}"
    );
    assert!(!text.contains("PFN 0x0"), "{text}");
    // Range counting does not need frame numbers.
    let out = run(true, &format!("translate --region {anon:#x}"));
    let doc: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(doc["summary"]["present"], 17);
    assert_eq!(
        doc["summary"]["zero"], 1,
        "PAGEMAP_SCAN still tells the zero page"
    );
    let text = stdout(&run(false, &format!("translate --region {anon:#x}")));
    assert_eq!(
        text.matches("hidden: the kernel").count(),
        1,
        "said once:\n{text}"
    );
}

#[test]
fn bad_input_gives_clear_errors() {
    let f = Fixture::start("pages");
    for (cmd, want) in [
        ("translate 0x1000", "0x1000 is not mapped"),
        (
            "translate 0xfffffffffffff000 0x2000",
            "past the end of the address space",
        ),
        ("translate 0x10000 0", "the length must be more than zero"),
        ("translate 0x1000 0x1000", "nothing is mapped in"),
        ("translate", "an address, a range or a region is needed"),
        ("translate [nosuch]", "no region named [nosuch]"),
        ("translate --region 0x1000", "0x1000 is not mapped"),
        ("translate [heap] --limit x", "`x` is not a number"),
        ("translate [heap] --bogus", "unknown flag `--bogus`"),
        ("translate 1 2 3", "unexpected `3`"),
        (
            "translate [heap] --pid 999999999",
            "no process with pid 999999999",
        ),
    ] {
        assert_clear_error(f.pid(), cmd, want);
    }
}

#[test]
fn a_target_that_exits_midway_is_reported() {
    let mut f = Fixture::start("pages");
    let pid = f.pid();
    let anon = f.addr("anon");
    let mut s = Conversation::start(&["-p", &pid.to_string()]);
    s.ask(&format!("translate {anon:#x}"));
    f.kill_to_zombie();
    s.send(&format!("translate {anon:#x}"));
    s.send(&format!("translate {anon:#x} 0x4000"));
    s.send("translate [heap]");
    let (text, out) = s.finish();
    let err = stderr(&out);
    assert_eq!(
        err.matches(&format!("process {pid} exited")).count(),
        3,
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(text.contains("present yes"), "{text}");
}

#[test]
fn core_files_and_snapshots_have_no_page_tables() {
    let f = Fixture::start("pages");
    let anon = f.addr("anon");
    let snap = f.scratch.0.join("snap.json");
    let out = text_batch(f.pid(), &[&format!("snapshot save {}", snap.display())]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut files = vec![("--snapshot", snap.clone())];
    if Command::new("gcore").arg("--version").output().is_ok() {
        let prefix = f.scratch.0.join("core");
        let status = Command::new("gcore")
            .arg("-o")
            .arg(&prefix)
            .arg(f.pid().to_string())
            .output()
            .unwrap();
        let core = f.scratch.0.join(format!("core.{}", f.pid()));
        if status.status.success() && core.exists() {
            files.push(("--core", core));
        } else {
            eprintln!("SKIPPED: gcore could not dump the fixture; core files not tried");
        }
    } else {
        eprintln!("SKIPPED: no gcore to make a core file; only the snapshot is tried");
    }
    for (flag, file) in files {
        let child = f.facts["child_pid"].to_string();
        for cmd in [
            format!("translate {anon:#x}"),
            "translate [heap]".to_string(),
            format!("shared {child}"),
        ] {
            let out = vmscope(&[flag, file.to_str().unwrap(), "--batch", "-ex", &cmd]);
            assert_eq!(out.status.code(), Some(1), "{flag} {cmd}");
            let err = stderr(&out);
            assert!(
                err.contains("reading page tables is not supported on"),
                "{flag} {cmd}: {err}"
            );
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}
