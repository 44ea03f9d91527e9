//! `faults` against fixtures/faulty.c, which touches K fresh pages of one mapping on a signal
//! and measures its own minor-fault count around it: the faults land in that region and almost
//! nowhere else, agree with the fixture's own count, and the faulting code is the fixture's
//! `touch`. Also: the fallback to /proc counters when perf_event_open is refused (a seccomp
//! filter, fixtures/noperf.c), bad input, and a target that exits midway.

mod common;
use common::*;
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// vmscope running `faults` in the background, JSON on stdout.
fn start_faults(pid: i32, command: &str, wrapper: Option<&std::path::Path>) -> Child {
    let pid = pid.to_string();
    let args = ["-p", &pid, "--batch", "--json", "-ex", command];
    let mut cmd = match wrapper {
        Some(w) => {
            let mut c = Command::new(w);
            c.arg(VMSCOPE).args(args);
            c
        }
        None => {
            let mut c = Command::new(VMSCOPE);
            c.args(args);
            c
        }
    };
    cmd.env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vmscope")
}

/// Waits until vmscope samples the faults of a one-thread fixture on every CPU: it has mapped a
/// ring buffer for each event kind (minor and major) on each online CPU, and enables them all
/// right after the last one (a moment's grace covers that). False after 20 s.
fn wait_sampling(vmscope: u32) -> bool {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let buffers = || {
        std::fs::read_to_string(format!("/proc/{vmscope}/maps"))
            .map(|m| m.lines().filter(|l| l.contains("[perf_event]")).count())
            .unwrap_or(0)
    };
    let ready = wait_until(20, || buffers() >= 2 * cpus);
    std::thread::sleep(Duration::from_millis(100));
    ready
}

/// The fixture's own measurement of round `n`: (minor faults, nanoseconds).
fn round(f: &Fixture, n: u32) -> (u64, u64) {
    let path = f.scratch.0.join(format!("round-{n}"));
    assert!(
        wait_until(20, || path.exists()),
        "the fixture never finished round {n}"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let mut it = text.split_whitespace().map(|v| v.parse::<u64>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

fn finish(child: Child) -> (Vec<Value>, String, std::process::ExitStatus) {
    let out = child.wait_with_output().unwrap();
    let docs = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON ({e}): {l}")))
        .collect();
    (
        docs,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status,
    )
}

#[test]
fn faults_land_in_the_touched_region_and_agree_with_the_fixture() {
    let f = Fixture::start("faulty");
    let pid = f.pid();
    let k = f.facts["pages"].as_u64().unwrap();
    let region = f.addr("region");
    let page = f.facts["page_size"].as_u64().unwrap();
    let (touch, touch_end) = (f.addr("touch"), f.addr("touch_end"));
    let child = start_faults(pid, "faults 3s", None);
    let me = child.id();
    assert!(wait_sampling(me), "vmscope never opened its perf events");
    send_signal(pid, libc::SIGUSR1);
    let (own_minflt, _) = round(&f, 1);
    let (docs, err, status) = finish(child);
    assert!(status.success(), "{err}");
    let d = &docs[0];
    assert_eq!(d["pid"], pid);
    assert_eq!(d["lost"], 0, "{d}");
    assert_eq!(d["exited"], false);
    assert!(d["fallback"].is_null(), "{d}");
    let regions = d["by_region"].as_array().unwrap();
    let mine = regions
        .iter()
        .find(|r| r["start"].is_string() && hex(&r["start"]) == region)
        .unwrap_or_else(|| panic!("no row for the region {region:#x}: {d}"));
    let minor = mine["minor"].as_u64().unwrap();
    assert!(
        minor >= k,
        "{k} pages touched, {minor} faults attributed: {mine}"
    );
    assert_eq!(mine["pages"], k, "{mine}");
    assert_eq!(mine["bytes"], k * page, "{mine}");
    assert_eq!(mine["kind"], "private", "{mine}");
    // The fixture's own count (getrusage around the touching) holds the same K faults, and a
    // vdso page or so for its clock.
    assert!(
        own_minflt >= k && own_minflt <= k + 4,
        "the fixture counted {own_minflt} faults for {k} pages"
    );
    assert!(
        minor.abs_diff(k) <= 2,
        "{minor} in the region, {own_minflt} counted by the fixture"
    );
    let elsewhere: u64 = regions
        .iter()
        .filter(|r| !std::ptr::eq(*r, mine))
        .map(|r| r["minor"].as_u64().unwrap() + r["major"].as_u64().unwrap())
        .sum();
    assert!(
        elsewhere <= k / 20,
        "{elsewhere} faults outside the region: {d}"
    );
    // Every fault sampled is counted by the kernel, and nothing was lost.
    assert_eq!(
        d["samples"].as_u64().unwrap(),
        d["minor"].as_u64().unwrap() + d["major"].as_u64().unwrap(),
        "{d}"
    );
    for p in d["top_pages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["detail"] == mine["detail"])
    {
        let at = hex(&p["page"]);
        assert!(region <= at && at < region + k * page, "{p}");
    }
    // A page in the touched region is named by that region's kind and detail.
    for p in d["top_pages"].as_array().unwrap() {
        let at = hex(&p["page"]);
        if region <= at && at < region + k * page {
            assert_eq!(
                (&p["kind"], &p["detail"]),
                (&mine["kind"], &mine["detail"]),
                "{p}"
            );
        }
    }
    let code = &d["top_code"][0];
    let pc = hex(&code["pc"]);
    assert!(
        touch <= pc && pc < touch_end,
        "top code {code} is not in touch()"
    );
    assert_eq!(code["faults"], k, "{code}");
    assert!(
        code["symbol"].as_str().unwrap().starts_with("touch+"),
        "{code}"
    );
    assert!(
        code["location"].as_str().unwrap().contains("faulty.c:"),
        "{code}"
    );
}

#[test]
fn text_output_shows_the_tables() {
    let f = Fixture::start("faulty");
    let pid = f.pid();
    let child = Command::new(VMSCOPE)
        .args([
            "-p",
            &pid.to_string(),
            "--batch",
            "-ex",
            "faults 2s --top 3",
        ])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let me = child.id();
    assert!(wait_sampling(me), "vmscope never opened its perf events");
    send_signal(pid, libc::SIGUSR1);
    round(&f, 1);
    let out = child.wait_with_output().unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    let head = format!("process {pid}: ");
    for needle in [
        head.as_str(),
        "REGION",
        "MINOR",
        "TOP PAGES",
        "TOP CODE",
        "private",
        "2.0M",
    ] {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
    let page_rows = text
        .lines()
        .skip_while(|l| !l.starts_with("TOP PAGES"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .count();
    assert_eq!(page_rows, 3, "--top 3:\n{text}");
}

#[test]
fn without_perf_events_it_counts_from_proc_and_says_why() {
    let wrapper = fixture_bin("noperf");
    let f = Fixture::start("faulty");
    let pid = f.pid();
    let k = f.facts["pages"].as_u64().unwrap();
    let child = start_faults(pid, "faults 2s", Some(&wrapper));
    // No perf fds to wait for: give it time to start its count.
    std::thread::sleep(Duration::from_millis(700));
    send_signal(pid, libc::SIGUSR1);
    round(&f, 1);
    let (docs, err, status) = finish(child);
    assert!(status.success(), "{err}");
    let d = &docs[0];
    let why = d["fallback"]
        .as_str()
        .unwrap_or_else(|| panic!("no fallback: {d}"));
    assert!(
        why.contains("per-region attribution is unavailable"),
        "{why}"
    );
    assert!(why.contains("ENOSYS") && why.contains("seccomp"), "{why}");
    assert!(d["minor"].as_u64().unwrap() >= k, "{d}");
    assert_eq!(d["samples"], 0);
    assert!(d["by_region"].as_array().unwrap().is_empty());
}

#[test]
fn major_only_and_grouping_flags() {
    let f = Fixture::start("faulty");
    let (docs, out) = json_batch(
        f.pid(),
        &[
            "faults 300ms --major",
            "faults 300ms --by page --top 1",
            "faults 300ms --by symbol",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(docs.len(), 3);
    assert_eq!(
        docs[0]["minor"], 0,
        "--major counts major faults only: {}",
        docs[0]
    );
    for d in &docs {
        assert!(d["duration_ms"].as_u64().unwrap() >= 300, "{d}");
        assert!(d["top_pages"].as_array().unwrap().len() <= 10);
    }
    assert!(docs[1]["top_pages"].as_array().unwrap().len() <= 1);
}

#[test]
fn bad_input_gets_clear_errors() {
    let f = Fixture::start("faulty");
    let (docs, out) = json_batch(
        f.pid(),
        &[
            "faults soon",
            "faults 1s 2s",
            "faults 1s --by colour",
            "faults 1s --top x",
            "faults 1s --minor",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(!stderr(&out).contains("panicked"));
    let e = |i: usize| {
        docs[i]["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{}", docs[i]))
    };
    assert!(e(0).contains("not a duration"), "{}", e(0));
    assert!(e(1).contains("one duration"), "{}", e(1));
    assert!(e(2).contains("cannot group by `colour`"), "{}", e(2));
    assert!(e(3).contains("not a number"), "{}", e(3));
    assert!(e(4).contains("unknown flag `--minor`"), "{}", e(4));
}

#[test]
fn a_target_that_exits_midway_ends_the_run_with_what_was_seen() {
    let mut f = Fixture::start("faulty");
    let pid = f.pid();
    let started = Instant::now();
    let child = start_faults(pid, "faults 20s", None);
    let me = child.id();
    assert!(wait_sampling(me), "vmscope never opened its perf events");
    send_signal(pid, libc::SIGUSR1);
    round(&f, 1);
    f.kill();
    let (docs, err, status) = finish(child);
    assert!(status.success(), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "it waited for the full 20s"
    );
    let d = &docs[0];
    assert_eq!(d["exited"], true, "{d}");
    assert!(
        d["samples"].as_u64().unwrap() >= f.facts["pages"].as_u64().unwrap(),
        "{d}"
    );
    // And a run on a process that is already gone is a plain error.
    let (docs, out) = json_batch(pid, &["faults 1s"]);
    assert_eq!(out.status.code(), Some(1), "{docs:?}");
}
