//! `layout` against the truth: the bands cover the whole 64-bit space top to bottom without gaps
//! or overlaps, account for every mapping of /proc/PID/maps, and put the facts fixture's own
//! addresses in the right part of the textbook picture; the text draws it with real addresses,
//! escapes names from the target, and folds a crowded mmap area; bad input and a target that
//! exits give clear errors.

mod common;
use common::*;
use serde_json::Value;

fn layout_json(pid: i32, args: &str) -> Value {
    let (docs, out) = json_batch(pid, &[&format!("layout {args}")]);
    assert!(out.status.success(), "{}", stderr(&out));
    docs.into_iter().next().unwrap()
}

fn bands(doc: &Value) -> &Vec<Value> {
    doc["bands"].as_array().unwrap()
}

/// The band holding `addr`.
fn band_at(doc: &Value, addr: u64) -> &Value {
    bands(doc)
        .iter()
        .find(|b| hex(&b["start"]) <= addr && addr <= hex(&b["last"]))
        .unwrap_or_else(|| panic!("no band holds {addr:#x}"))
}

/// Every mapping of /proc/PID/maps as (start, end).
fn maps(pid: i32) -> Vec<(u64, u64)> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap()
        .lines()
        .map(|l| {
            let (s, e) = l
                .split_whitespace()
                .next()
                .unwrap()
                .split_once('-')
                .unwrap();
            (
                u64::from_str_radix(s, 16).unwrap(),
                u64::from_str_radix(e, 16).unwrap(),
            )
        })
        .collect()
}

/// The bands run from 0xffffffffffffffff down to 0, each starting where the one above ends.
fn assert_covers_everything(doc: &Value) {
    let b = bands(doc);
    assert_eq!(hex(&b[0]["last"]), u64::MAX);
    assert_eq!(hex(&b[b.len() - 1]["start"]), 0);
    for pair in b.windows(2) {
        assert_eq!(
            hex(&pair[1]["last"]).wrapping_add(1),
            hex(&pair[0]["start"]),
            "{} / {}",
            pair[0],
            pair[1]
        );
    }
    for band in b {
        let size = hex(&band["last"])
            .wrapping_sub(hex(&band["start"]))
            .wrapping_add(1);
        assert_eq!(band["size"].as_u64(), Some(size), "{band}");
        assert!((1..=6).contains(&band["lines"].as_u64().unwrap()));
    }
}

#[test]
fn bands_cover_the_address_space_and_hold_the_facts() {
    let f = Fixture::start("facts");
    f.wait_paused();
    let doc = layout_json(f.pid(), "");
    assert_covers_everything(&doc);

    // Every mapping is in exactly one band, and the bands add up to what maps says.
    let m = maps(f.pid());
    let mapped: u64 = bands(&doc)
        .iter()
        .map(|b| b["mapped"].as_u64().unwrap())
        .sum();
    assert_eq!(mapped, m.iter().map(|(s, e)| e - s).sum::<u64>());
    let regions: u64 = bands(&doc)
        .iter()
        .map(|b| b["regions"].as_u64().unwrap())
        .sum();
    assert_eq!(regions as usize, m.len());
    for (s, e) in &m {
        let b = band_at(&doc, *s);
        assert!(hex(&b["last"]) >= e - 1, "{s:#x}-{e:#x} straddles {b}");
        assert_ne!(b["section"], "free");
    }

    let check = |key: &str, addr: u64, section: &str, label: &str| {
        let b = band_at(&doc, addr);
        assert_eq!(b["section"], section, "{key}: {b}");
        assert!(b["label"].as_str().unwrap().contains(label), "{key}: {b}");
    };
    check("heap", f.addr("heap"), "heap", "heap");
    check("stack_local", f.addr("stack_local"), "stack", "main thread");
    check("answer", f.addr("answer"), "image", ".text");
    check("literal", f.addr("literal"), "image", ".rodata");
    check("global_values", f.addr("global_values"), "image", ".data");
    check("bss_buf", f.addr("bss_buf") + 200 * 1024, "image", ".bss");
    check(
        "memfd_map",
        f.addr("memfd_map"),
        "mmap",
        "memfd:fixture memfd",
    );
    check("prot_none", f.addr("prot_none"), "mmap", "guard");
    let tids = f.facts["tids"].as_array().unwrap();
    for (i, stack) in f.facts["worker_stacks"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let b = band_at(&doc, hex(stack));
        assert_eq!(b["label"], format!("thread {} stack", tids[i + 1]), "{b}");
        assert_eq!(b["grows"], "down");
        assert_eq!(b["kind"], "stack");
    }
    assert_eq!(band_at(&doc, 0)["section"], "null");
    assert_eq!(band_at(&doc, 0x8000_0000_0000)["section"], "hole");
    assert_eq!(band_at(&doc, 0xffff_8000_0000_0000)["section"], "kernel");
    assert_eq!(band_at(&doc, 0xffff_ffff_ff60_0000)["label"], "[vsyscall]");
    assert_eq!(hex(&doc["user_top"]), 0x8000_0000_0000);
    assert!(doc["exe"].as_str().unwrap().ends_with("fixture-facts"));
    let titled: Vec<&str> = bands(&doc)
        .iter()
        .filter_map(|b| b["title"].as_str())
        .collect();
    assert!(titled.contains(&"program fixture-facts"), "{titled:?}");
    assert!(titled.contains(&"mmap area (grows down)"), "{titled:?}");
    // The heap grows up, the main stack down; the stack sits above the heap.
    let heap = band_at(&doc, f.addr("heap"));
    let stack = band_at(&doc, f.addr("stack_local"));
    assert_eq!(heap["grows"], "up");
    assert_eq!(stack["grows"], "down");
    assert!(hex(&stack["start"]) > hex(&heap["last"]));

    // Marks land in the band of their address.
    let doc = layout_json(
        f.pid(),
        &format!("{:#x} [heap] {:#x}+8", f.addr("answer"), f.addr("heap")),
    );
    let marks = |addr: u64| band_at(&doc, addr)["marks"].as_array().unwrap().clone();
    assert_eq!(
        marks(f.addr("answer"))[0]["address"],
        format!("{:#x}", f.addr("answer"))
    );
    let heap_marks = marks(f.addr("heap"));
    assert_eq!(heap_marks.len(), 2, "{heap_marks:?}");
    assert_eq!(heap_marks[0]["expression"], "[heap]");
}

#[test]
fn the_text_draws_the_picture_with_real_addresses() {
    let f = Fixture::start("facts");
    f.wait_paused();
    let out = text_batch(f.pid(), &[&format!("layout {:#x}", f.addr("heap"))]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for want in [
        "kernel space",
        "non-canonical hole",
        "stack (main thread) ↓",
        "heap ↑",
        ".text",
        ".rodata",
        ".data",
        ".bss",
        "NULL page, never mapped",
        "mmap area (grows down)",
        "program fixture-facts",
        "libc.so.6",
        &format!("◄ {:#x} = {:#x}", f.addr("heap"), f.addr("heap")),
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    assert!(text.contains("evil\\e[31mred.txt"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "a name from the target repainted the terminal"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[2].starts_with("0xffffffffffffffff ┌"), "{}", lines[2]);
    let bottom = lines.iter().rposition(|l| l.contains('└')).unwrap();
    assert!(lines[bottom].starts_with("0x0000000000000000 └"));
    // Boundary addresses fall from top to bottom.
    let addrs: Vec<u64> = lines
        .iter()
        .filter(|l| l.starts_with("0x"))
        .map(|l| u64::from_str_radix(&l[2..18], 16).unwrap())
        .collect();
    assert!(addrs.windows(2).all(|w| w[0] > w[1]), "{addrs:x?}");
    // Each boundary of a mapping of /proc/PID/maps is drawn (libraries are grouped, so only
    // check the ones vmscope draws alone: the heap's).
    let heap = maps(f.pid())
        .into_iter()
        .find(|(s, e)| *s <= f.addr("heap") && f.addr("heap") < *e)
        .unwrap();
    assert!(addrs.contains(&heap.0) && addrs.contains(&heap.1));
}

#[test]
fn a_crowded_mmap_area_is_folded_and_all_unfolds_it() {
    // 400 one-page mappings that the kernel cannot merge.
    let bin = fixture_bin("many_maps");
    let mut child = std::process::Command::new(bin)
        .arg("400")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let pid = child.id() as i32;
    let folded = layout_json(pid, "");
    let all = layout_json(pid, "--all");
    let text = text_batch(pid, &["layout"]);
    let _ = child.kill();
    let _ = child.wait();
    assert_covers_everything(&folded);
    assert_covers_everything(&all);
    let mmap = |doc: &Value| bands(doc).iter().filter(|b| b["section"] == "mmap").count();
    assert!(mmap(&folded) <= 2 * 20, "{}", mmap(&folded));
    assert!(mmap(&all) >= 400, "{}", mmap(&all));
    let sum = |doc: &Value, key: &str| -> u64 {
        bands(doc).iter().map(|b| b[key].as_u64().unwrap()).sum()
    };
    assert_eq!(sum(&folded, "mapped"), sum(&all, "mapped"));
    assert_eq!(sum(&folded, "regions"), sum(&all, "regions"));
    assert!(
        bands(&folded)
            .iter()
            .any(|b| b["label"].as_str().unwrap().ends_with("more mappings"))
    );
    assert!(stdout(&text).contains("`layout --all` draws every mapping"));
}

#[test]
fn bad_arguments_are_clear_errors() {
    let f = Fixture::start("facts");
    let pid = f.pid().to_string();
    for (args, want) in [
        ("layout --frob", "unknown flag `--frob`"),
        ("layout 1 +", "expected"),
        ("layout $nope", "`$nope`"),
        ("layout [nowhere]", "no region named [nowhere]"),
    ] {
        let out = vmscope(&["-p", &pid, "--batch", "-ex", args]);
        assert_eq!(out.status.code(), Some(1), "{args}");
        assert!(stderr(&out).contains(want), "{args}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"));
    }
    let out = vmscope(&["--batch", "-ex", "layout"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no target"), "{}", stderr(&out));
}

#[test]
fn a_target_that_exits_gives_process_exited() {
    let mut f = Fixture::start("facts");
    let pid = f.pid();
    let mut s = Piped::start(&["-p", &pid.to_string()]);
    // Attached (it answered) before the fixture goes.
    let mut lines =
        std::io::BufRead::lines(std::io::BufReader::new(s.child.stdout.take().unwrap()));
    s.send("print 1");
    assert!(lines.next().unwrap().unwrap().starts_with("1 = 0x1"));
    f.kill();
    s.send("layout");
    s.send("layout --all");
    let out = s.finish();
    assert_eq!(
        stderr(&out)
            .matches(&format!("process {pid} exited"))
            .count(),
        2,
        "{}",
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(1));
}
