//! `shared` against the pages fixture and its forked child: the frames both map, compared with
//! plain reads of both processes' /proc/PID/pagemap done here; pages diverging after the child
//! writes; an unrelated process; bad input; a target that exits midway.

mod common;

use common::*;
use serde_json::Value;
use std::fs::File;
use std::os::unix::fs::FileExt;

const PAGE: u64 = 4096;

/// Frame numbers of `count` pages from `addr` in `pid` (None when not present), read here.
fn frames(pid: i32, addr: u64, count: u64) -> Vec<Option<u64>> {
    let f = File::open(format!("/proc/{pid}/pagemap")).unwrap();
    let mut b = vec![0u8; count as usize * 8];
    f.read_exact_at(&mut b, addr / PAGE * 8).unwrap();
    b.chunks_exact(8)
        .map(|c| {
            let raw = u64::from_le_bytes(c.try_into().unwrap());
            (raw >> 63 == 1).then_some(raw & ((1 << 55) - 1))
        })
        .collect()
}

/// Frame numbers need root (CAP_SYS_ADMIN); says so loudly when missing.
fn frames_visible(test: &str) -> bool {
    let root = is_root();
    if !root {
        eprintln!("SKIPPED {test}: needs root (CAP_SYS_ADMIN) to see frame numbers");
    }
    root
}

fn row_at(doc: &Value, start: u64) -> Option<&Value> {
    doc["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| hex(&r["start"]) == start)
}

/// Pages at the same address in both processes on the same frame, counted here.
fn same_frames(pid: i32, child: i32, addr: u64, count: u64) -> (u64, u64) {
    let (a, b) = (frames(pid, addr, count), frames(child, addr, count));
    let mut same = 0;
    let mut differ = 0;
    for (x, y) in a.iter().zip(&b) {
        match (x, y) {
            (Some(x), Some(y)) if x == y => same += 1,
            (Some(_), Some(_)) => differ += 1,
            _ => {}
        }
    }
    (same, differ)
}

#[test]
fn parent_and_child_share_until_the_child_writes() {
    if !frames_visible("parent_and_child_share_until_the_child_writes") {
        return;
    }
    // Compares with pages the kernel may migrate between two reads: see `retried`.
    retried(3, || {
        let f = Fixture::start("pages");
        let (pid, child) = (f.pid(), f.facts["child_pid"].as_i64().unwrap() as i32);
        let (cow, anon) = (f.addr("cow"), f.addr("anon"));
        let cmds = [
            format!("shared {child}"),
            format!("shared {child} --region {cow:#x} --pages"),
        ];
        let cmds: Vec<&str> = cmds.iter().map(String::as_str).collect();
        let (before, out) = json_batch(pid, &cmds);
        assert!(out.status.success(), "{}", stderr(&out));
        let all = &before[0];
        assert_eq!(
            (all["pid"].as_i64(), all["pid2"].as_i64()),
            (Some(pid as i64), Some(child as i64))
        );
        let r = row_at(all, cow).expect("the cow region shares frames");
        assert_eq!(r["shared_pages"], 8);
        assert_eq!(r["shared_bytes"], 8 * PAGE);
        assert_eq!(r["diverged_pages"], 0);
        assert_eq!(
            hex(&r["pid2_start"]),
            cow,
            "same virtual address in the child"
        );
        assert_eq!(same_frames(pid, child, cow, 8), (8, 0));
        // The written anonymous pages: shared as counted here (the zero page is left out).
        let r = row_at(all, anon).expect("anon shares frames");
        assert_eq!(r["shared_pages"], same_frames(pid, child, anon, 16).0);
        assert_eq!(r["shared_pages"], 16);
        let total: u64 = all["regions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["shared_pages"].as_u64().unwrap())
            .sum();
        assert_eq!(all["total_shared_pages"], total);
        assert!(
            total > 24,
            "libraries and the executable are shared too: {total}"
        );

        let one = &before[1];
        assert_eq!(one["regions"].as_array().unwrap().len(), 1, "{one}");
        let pages = one["pages"].as_array().unwrap();
        assert_eq!(pages.len(), 8);
        assert!(
            pages
                .iter()
                .all(|p| p["same_frame"] == true && p["pfn"] == p["pid2_pfn"])
        );

        // SAFETY: kill sends SIGUSR1 to the fixture's child, which writes page 0 of cow.
        unsafe { libc::kill(child, libc::SIGUSR1) };
        let flag = f.scratch.0.join("child-wrote");
        assert!(wait_until(5, || flag.exists()), "the child never wrote");
        let (after, out) = json_batch(pid, &cmds);
        assert!(out.status.success(), "{}", stderr(&out));
        let r = row_at(&after[0], cow).unwrap();
        assert_eq!(
            (r["shared_pages"].as_u64(), r["diverged_pages"].as_u64()),
            (Some(7), Some(1))
        );
        assert_eq!(same_frames(pid, child, cow, 8), (7, 1));
        let pages = after[1]["pages"].as_array().unwrap();
        let diverged: Vec<&Value> = pages.iter().filter(|p| p["same_frame"] == false).collect();
        assert_eq!(diverged.len(), 1);
        assert_eq!(hex(&diverged[0]["vaddr"]), cow);
        assert_eq!(diverged[0]["vaddr"], diverged[0]["pid2_vaddr"]);
        assert_ne!(diverged[0]["pfn"], diverged[0]["pid2_pfn"]);

        let out = text_batch(pid, &[&format!("shared {child} --region {cow:#x} --pages")]);
        let text = stdout(&out);
        assert!(
            text.contains("total: 7 pages shared (28K); 1 page diverged"),
            "{text}"
        );
        assert!(
            text.contains("diverged") && text.contains("shared"),
            "{text}"
        );
    });
}

#[test]
fn an_unrelated_process_shares_only_the_page_cache() {
    if !frames_visible("an_unrelated_process_shares_only_the_page_cache") {
        return;
    }
    // Compares with pages the kernel may migrate between two reads: see `retried`.
    retried(3, || {
        let f = Fixture::start("pages");
        let g = Fixture::start("pages");
        let (docs, out) = json_batch(f.pid(), &[&format!("shared {}", g.pid())]);
        assert!(out.status.success(), "{}", stderr(&out));
        let doc = &docs[0];
        assert!(
            doc["total_shared_pages"].as_u64().unwrap() > 0,
            "libc's text at least"
        );
        for r in doc["regions"].as_array().unwrap() {
            assert!(
                matches!(r["kind"].as_str(), Some("image" | "file" | "system")),
                "only file-backed pages are shared: {r}"
            );
            assert_eq!(r["diverged_pages"], 0, "private pages never meet: {r}");
        }
    });
}

#[test]
fn bad_input_gives_clear_errors() {
    let f = Fixture::start("pages");
    let child = f.facts["child_pid"].as_i64().unwrap();
    for (cmd, want) in [
        (
            "shared 999999999".to_string(),
            "no process with pid 999999999",
        ),
        ("shared".into(), "shared needs the other process's pid"),
        ("shared 0".into(), "0 is not a pid"),
        ("shared 99999999999".into(), "99999999999 is not a pid"),
        (
            format!("shared {child} 0x1000 0"),
            "the length must be more than zero",
        ),
        (
            format!("shared {child} --region 0x1000"),
            "0x1000 is not mapped",
        ),
        (
            format!("shared {child} 0x1000 0x1000"),
            "nothing is mapped in",
        ),
    ] {
        assert_clear_error(f.pid(), &cmd, want);
    }
}

#[test]
fn a_target_that_exits_midway_is_reported() {
    if !frames_visible("a_target_that_exits_midway_is_reported") {
        return;
    }
    let mut f = Fixture::start("pages");
    let g = Fixture::start("pages");
    let pid = f.pid();
    let mut s = Conversation::start(&["-p", &pid.to_string()]);
    s.ask(&format!("shared {}", g.pid()));
    f.kill_to_zombie();
    s.send(&format!("shared {}", g.pid()));
    let (text, out) = s.finish();
    let err = stderr(&out);
    assert_eq!(
        err.matches(&format!("process {pid} exited")).count(),
        1,
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(text.contains("pages shared"), "{text}");
}
