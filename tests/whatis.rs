//! `whatis` and symbols against independent truths: the fixtures' own `&symbol` values, /proc
//! maps for load biases, `nm` for symbol addresses, binutils `addr2line` for source lines and
//! inlined frames. Also symbols in expressions (`x`, `print`, `translate`), batches, stripped and
//! debug-linked binaries, deleted and corrupt files, bad input and a target that exits midway.

mod common;
use common::*;
use object::Object;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One mapping of /proc/PID/maps: start, end, file offset, path.
struct Map {
    start: u64,
    end: u64,
    offset: u64,
    path: String,
}

fn maps(pid: i32) -> Vec<Map> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (s, e) = f[0].split_once('-').unwrap();
            Map {
                start: u64::from_str_radix(s, 16).unwrap(),
                end: u64::from_str_radix(e, 16).unwrap(),
                offset: u64::from_str_radix(f[2], 16).unwrap(),
                path: f.get(5..).map(|p| p.join(" ")).unwrap_or_default(),
            }
        })
        .collect()
}

/// The load bias of the (position-independent) file whose path ends with `name`: the start of
/// its mapping at offset 0, its first segment being linked at 0.
fn bias(pid: i32, name: &str) -> (u64, String) {
    let m = maps(pid)
        .into_iter()
        .find(|m| m.offset == 0 && m.path.ends_with(name))
        .unwrap_or_else(|| panic!("no mapping of {name}"));
    (m.start, m.path)
}

/// `addr2line -f -i -C -e BIN ADDR` (binutils): (function, file:line) per frame, innermost
/// first; discriminators dropped.
fn addr2line(bin: &Path, link: u64) -> Vec<(String, String)> {
    let out = Command::new("addr2line")
        .args(["-f", "-i", "-C", "-e"])
        .arg(bin)
        .arg(format!("{link:#x}"))
        .output()
        .expect("run addr2line (install binutils)");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    lines
        .chunks(2)
        .map(|c| {
            let loc = c[1].split(" (discriminator").next().unwrap();
            (c[0].to_string(), loc.to_string())
        })
        .collect()
}

/// `nm` (`-D` for dynamic symbols, `-C` to demangle): the address of the symbol named `name`.
fn nm(bin: &Path, flags: &[&str], name: &str) -> u64 {
    let out = Command::new("nm")
        .args(flags)
        .arg(bin)
        .output()
        .expect("run nm (install binutils)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ' ');
            let (addr, _kind, n) = (f.next()?, f.next()?, f.next()?);
            // Dynamic symbols carry their version: `malloc@@GLIBC_2.2.5`.
            let n = n.split('@').next().unwrap_or(n);
            (n == name).then(|| u64::from_str_radix(addr, 16).unwrap())
        })
        .unwrap_or_else(|| panic!("nm {flags:?} {} has no {name}", bin.display()))
}

/// Where link-time address `link` lies in the file, from the section headers.
fn file_offset_of(bin: &Path, link: u64) -> u64 {
    use object::ObjectSection;
    let data = std::fs::read(bin).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let s = file
        .sections()
        .find(|s| s.address() <= link && link < s.address() + s.size() && s.file_range().is_some())
        .expect("a section with file data");
    s.file_range().unwrap().0 + (link - s.address())
}

/// `file:line` of a whatis location.
fn location(doc: &Value) -> String {
    let l = &doc["location"];
    format!("{}:{}", l["file"].as_str().unwrap_or("??"), l["line"])
}

fn ok(out: &std::process::Output) {
    assert!(out.status.success(), "{}\n{}", stdout(out), stderr(out));
}

#[test]
fn explains_the_facts_fixture() {
    let f = Fixture::start("facts");
    f.wait_paused();
    let bin = fixture_bin("facts");
    let (bias, _) = bias(f.pid(), "fixture-facts");
    let tids: Vec<i64> = f.facts["tids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect();
    let worker = |i: usize| hex(&f.facts["worker_stacks"][i]);
    let cmds = [
        format!("whatis {:#x}", f.addr("global_values")),
        format!("whatis {:#x}", f.addr("answer") + 4),
        format!("whatis {:#x}", f.addr("bss_buf") + 100),
        format!("whatis {:#x}", f.addr("literal")),
        format!("whatis {:#x}", f.addr("heap")),
        format!("whatis {:#x}", f.addr("stack_local")),
        format!("whatis {:#x}", worker(0)),
        format!("whatis {:#x}", worker(1)),
        format!("whatis {:#x}", f.addr("global_fn_ptr")),
    ];
    let cmds: Vec<&str> = cmds.iter().map(String::as_str).collect();
    let (docs, out) = json_batch(f.pid(), &cmds);
    ok(&out);

    // &global_values: the symbol, its section, an image's data.
    let d = &docs[0];
    assert_eq!(d["symbol"]["name"], "global_values", "{d}");
    assert_eq!(d["symbol"]["offset"], 0);
    assert_eq!(d["symbol"]["size"], 32);
    assert_eq!(d["section"], ".data");
    assert_eq!(d["region"]["kind"], "image");
    assert_eq!(d["value"], "0x1122334455667788");
    assert_eq!(hex(&d["module"]["bias"]), bias);
    let link = nm(&bin, &[], "global_values");
    assert_eq!(f.addr("global_values") - bias, link);
    assert_eq!(hex(&d["file_offset"]), file_offset_of(&bin, link), "{d}");

    // A function: symbol with offset and size, .text, and the line binutils gives.
    let d = &docs[1];
    assert_eq!(d["symbol"]["name"], "answer", "{d}");
    assert_eq!(d["symbol"]["offset"], 4);
    assert!(d["symbol"]["size"].as_u64().unwrap() > 4);
    assert_eq!(hex(&d["symbol"]["address"]), f.addr("answer"));
    assert_eq!(d["section"], ".text");
    let frames = addr2line(&bin, f.addr("answer") + 4 - bias);
    assert_eq!(location(d), frames[0].1, "{d}");
    assert!(location(d).contains("facts.c:"), "{d}");
    assert_eq!(d["inlined"], serde_json::json!([]));

    // A static in .bss, past the file's data.
    let d = &docs[2];
    assert_eq!(d["symbol"]["name"], "bss_buf", "{d}");
    assert_eq!(d["symbol"]["offset"], 100);
    assert_eq!(d["symbol"]["size"], 256 * 1024);
    assert_eq!(d["section"], ".bss");
    assert!(d["location"].is_null(), "no source line for data: {d}");

    // A string literal: .rodata, no symbol, its text.
    let d = &docs[3];
    assert_eq!(d["section"], ".rodata", "{d}");
    assert_eq!(d["string"], "a string literal in .rodata");

    // The heap: the offset into [heap].
    let d = &docs[4];
    let heap = maps(f.pid())
        .into_iter()
        .find(|m| m.path == "[heap]")
        .unwrap();
    assert_eq!(d["region"]["kind"], "heap", "{d}");
    assert_eq!(hex(&d["region"]["start"]), heap.start);
    assert_eq!(d["offset_in_region"], f.addr("heap") - heap.start);
    assert_eq!(d["value"], "0x101010101010101");
    assert!(d["symbol"].is_null() && d["section"].is_null());

    // Each thread's stack: the owning thread and its distance from the stack pointer.
    for (doc, tid) in [
        (&docs[5], tids[0]),
        (&docs[6], tids[1]),
        (&docs[7], tids[2]),
    ] {
        assert_eq!(doc["region"]["kind"], "stack", "{doc}");
        assert_eq!(doc["thread"]["tid"], tid, "{doc}");
        let sp = hex(&doc["thread"]["sp"]);
        let distance = doc["thread"]["sp_distance"].as_i64().unwrap();
        assert_eq!(hex(&doc["address"]).wrapping_sub(sp) as i64, distance);
        assert!(
            distance > 0,
            "a live local lies above the stack pointer: {doc}"
        );
    }
    assert_eq!(docs[5]["value"], "0x5354414b5354414b");

    // A function pointer: the chain ends at the symbol it points to.
    let d = &docs[8];
    assert_eq!(d["symbol"]["name"], "global_fn_ptr", "{d}");
    assert_eq!(hex(&d["value"]), f.addr("answer"));
    assert_eq!(d["chain"][0], d["value"]);
    assert_eq!(d["chain_what"][0], "answer");
}

#[test]
fn free_space_names_the_gap_and_its_neighbours() {
    let f = Fixture::start("facts");
    let m = maps(f.pid());
    let (below, above) = m
        .windows(2)
        .map(|w| (&w[0], &w[1]))
        .find(|(a, b)| b.start > a.end && a.start >= 0x10000)
        .expect("a gap between two mappings");
    let addr = below.end + (above.start - below.end) / 2;
    let (docs, out) = json_batch(f.pid(), &[&format!("whatis {addr:#x}")]);
    ok(&out);
    let d = &docs[0];
    assert!(d["region"].is_null(), "{d}");
    assert_eq!(hex(&d["gap"]["start"]), below.end);
    assert_eq!(hex(&d["gap"]["end"]), above.start);
    assert_eq!(d["gap"]["size"], above.start - below.end);
    assert_eq!(hex(&d["gap"]["below"]["start"]), below.start);
    assert_eq!(hex(&d["gap"]["above"]["start"]), above.start);
    assert!(d["value"].is_null());
    let text = stdout(&text_batch(f.pid(), &[&format!("whatis {addr:#x}")]));
    assert!(
        text.contains("in free space") && text.contains("gap"),
        "{text}"
    );
}

#[test]
fn libc_malloc_from_nm_resolves_to_malloc() {
    let f = Fixture::start("facts");
    let (bias, path) = bias(f.pid(), "libc.so.6");
    let malloc = nm(Path::new(&path), &["-D"], "malloc") + bias;
    let (docs, out) = json_batch(
        f.pid(),
        &[
            &format!("whatis {malloc:#x}"),
            "print libc.so.6!malloc",
            "print libc!malloc",
            "print malloc",
            "whatis libc!malloc+4",
        ],
    );
    ok(&out);
    let d = &docs[0];
    assert_eq!(d["symbol"]["name"], "malloc", "{d}");
    assert_eq!(d["symbol"]["offset"], 0);
    assert_eq!(d["section"], ".text");
    assert_eq!(d["module"]["name"], "libc.so.6");
    assert_eq!(hex(&d["module"]["bias"]), bias);
    match d["module"]["symbols"].as_str().unwrap() {
        // No debug file installed (libc6-dbg): .dynsym, and a note saying so.
        "dynsym" => assert!(
            d["notes"].to_string().contains("stripped"),
            "{}",
            d["notes"]
        ),
        "debug_file" => assert!(d["module"]["debug_file"].is_string()),
        other => panic!("libc symbols from {other}"),
    }
    for doc in &docs[1..4] {
        assert_eq!(doc["value"].as_u64().unwrap(), malloc, "{doc}");
    }
    assert_eq!(docs[4]["symbol"]["offset"], 4);
}

#[test]
fn symbols_work_in_x_print_and_translate() {
    let f = Fixture::start("facts");
    let answer = f.addr("answer");
    let (docs, out) = json_batch(
        f.pid(),
        &[
            "x/gx global_values",
            "x/a global_fn_ptr",
            "print answer+0x10",
            "print 'answer' - answer",
            "print *global_fn_ptr",
            "translate global_values",
            "whatis 'fixture-facts'!answer",
        ],
    );
    ok(&out);
    assert_eq!(
        docs[0]["items"][0]["value"].as_u64().unwrap(),
        0x1122334455667788
    );
    assert_eq!(docs[1]["items"][0]["value"].as_u64().unwrap(), answer);
    assert_eq!(docs[1]["items"][0]["points_to"], "answer");
    assert_eq!(docs[2]["value"].as_u64().unwrap(), answer + 16);
    assert_eq!(docs[3]["value"].as_u64().unwrap(), 0);
    assert_eq!(docs[4]["value"].as_u64().unwrap(), answer);
    assert_eq!(
        hex(&docs[5]["address"]),
        f.addr("global_values"),
        "{}",
        docs[5]
    );
    assert_eq!(docs[6]["symbol"]["name"], "answer");
    // x/8gx annotates pointers to symbols in text too.
    let text = stdout(&text_batch(f.pid(), &["x/a global_fn_ptr"]));
    assert!(text.contains("<answer>"), "{text}");
}

#[test]
fn cpp_symbols_are_demangled() {
    let f = Fixture::start("cpp_facts");
    let bin = fixture_bin("cpp_facts");
    let (bias, _) = bias(f.pid(), "fixture-cpp_facts");
    let area = nm(&bin, &["-C"], "shapes::Circle::area() const") + bias;
    let biggest = nm(
        &bin,
        &["-C"],
        "int shapes::biggest<int>(std::vector<int, std::allocator<int> > const&)",
    ) + bias;
    let (docs, out) = json_batch(
        f.pid(),
        &[
            &format!("whatis {:#x}", area + 3),
            "print 'shapes::Circle::area'",
            "print 'shapes::Circle::area() const'",
            "print '_ZNK6shapes6Circle4areaEv'",
            "print 'shapes::scale(double)'",
            "print 'shapes::biggest<int>'",
            &format!("whatis {:#x}", f.addr("count")),
        ],
    );
    ok(&out);
    let d = &docs[0];
    assert_eq!(d["symbol"]["name"], "_ZNK6shapes6Circle4areaEv", "{d}");
    assert_eq!(d["symbol"]["demangled"], "shapes::Circle::area() const");
    assert_eq!(d["symbol"]["offset"], 3);
    assert!(location(d).contains("cpp_facts.cpp:"), "{d}");
    assert_eq!(location(d), addr2line(&bin, area + 3 - bias)[0].1);
    for doc in &docs[1..4] {
        assert_eq!(doc["value"].as_u64().unwrap(), area, "{doc}");
    }
    assert_eq!(docs[4]["value"].as_u64().unwrap(), f.addr("scale_double"));
    assert_eq!(docs[5]["value"].as_u64().unwrap(), biggest);
    assert_eq!(
        docs[6]["symbol"]["demangled"], "shapes::count",
        "{}",
        docs[6]
    );

    // Overloads: the name alone is ambiguous, and the error lists both.
    let (docs, out) = json_batch(f.pid(), &["print 'shapes::scale'"]);
    assert_eq!(out.status.code(), Some(1));
    let e = docs[0]["error"].as_str().unwrap();
    assert!(e.contains("ambiguous"), "{e}");
    assert!(
        e.contains("shapes::scale(int)") && e.contains("shapes::scale(double)"),
        "{e}"
    );
}

#[test]
fn inlined_frames_match_binutils() {
    let f = Fixture::start("cpp_facts");
    let bin = fixture_bin("cpp_facts");
    let (bias, _) = bias(f.pid(), "fixture-cpp_facts");
    let start = f.addr("use_twice");
    // Every address of use_twice, in one batch: some are in the always_inline `twice`.
    let cmd = (0..48u64)
        .map(|i| format!("{:#x}", start + i))
        .collect::<Vec<_>>()
        .join(" ");
    let (docs, out) = json_batch(f.pid(), &[&format!("whatis {cmd}")]);
    ok(&out);
    let results = docs[0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 48);
    let mut inlined = 0;
    for d in results {
        let addr = hex(&d["address"]);
        if !d["symbol"]["demangled"]
            .as_str()
            .is_some_and(|s| s.starts_with("shapes::use_twice"))
        {
            continue;
        }
        let truth = addr2line(&bin, addr - bias);
        assert_eq!(location(d), truth[0].1, "{addr:#x}: {d}");
        let ours = d["inlined"].as_array().unwrap();
        if truth.len() > 1 {
            inlined += 1;
            let ours: Vec<(String, String)> = ours
                .iter()
                .map(|fr| {
                    (
                        fr["function"].as_str().unwrap().to_string(),
                        format!("{}:{}", fr["file"].as_str().unwrap(), fr["line"]),
                    )
                })
                .collect();
            // binutils agrees on every frame's line and on the outer functions' names; for the
            // innermost it prints the enclosing symbol where gimli and llvm-symbolizer say
            // `twice`, the always_inline function of the source.
            let lines = |v: &[(String, String)]| v.iter().map(|f| f.1.clone()).collect::<Vec<_>>();
            assert_eq!(lines(&ours), lines(&truth), "{addr:#x}");
            assert_eq!(ours[1..], truth[1..], "{addr:#x}");
            assert_eq!(ours[0].0, "twice", "{addr:#x}");
        } else {
            assert!(ours.is_empty(), "{addr:#x}: {d}");
        }
    }
    assert!(
        inlined > 0,
        "no address of use_twice is in the inlined `twice`"
    );
    // The text form shows the chain.
    let text = stdout(&text_batch(f.pid(), &[&format!("whatis {cmd}")]));
    assert!(text.contains("shapes::use_twice(int)+"), "{text}");
}

#[test]
fn batches_of_addresses_and_address_files() {
    let f = Fixture::start("facts");
    let g = f.addr("global_values");
    let file = f.scratch.0.join("addrs.txt");
    std::fs::write(
        &file,
        format!(
            "# addresses\n{g:#x}\n\n  answer+1  \n{:#x}\n",
            f.addr("heap")
        ),
    )
    .unwrap();
    let (docs, out) = json_batch(
        f.pid(),
        &[
            &format!("whatis {g:#x} answer"),
            &format!("whatis -f {} --depth 1", file.display()),
        ],
    );
    ok(&out);
    let r = docs[0]["results"].as_array().unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r[1]["symbol"]["name"], "answer");
    let r = docs[1]["results"].as_array().unwrap();
    assert_eq!(r.len(), 3);
    assert_eq!(hex(&r[0]["address"]), g);
    assert_eq!(hex(&r[1]["address"]), f.addr("answer") + 1);
    assert_eq!(r[2]["region"]["kind"], "heap");
    assert!(r.iter().all(|d| d["chain"].as_array().unwrap().len() <= 1));
    // Text: one line per address.
    let out = text_batch(f.pid(), &[&format!("whatis -f {}", file.display())]);
    ok(&out);
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.lines().nth(1).unwrap().contains("answer+1"), "{text}");

    // A bad line names the file and line.
    std::fs::write(&file, "answer\n0x10 +\n").unwrap();
    let out = text_batch(f.pid(), &[&format!("whatis -f {}", file.display())]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("addrs.txt:2:"), "{err}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let f = Fixture::start("facts");
    let cases: &[(&str, &str)] = &[
        ("whatis", "whatis needs an address"),
        ("whatis no_such_symbol", "no symbol `no_such_symbol`"),
        ("whatis nomodule!main", "no module `nomodule`"),
        ("whatis 'unterminated", "expected `'`"),
        ("whatis main --depth 99", "--depth goes up to 16"),
        ("whatis main --depth x", "is not a number"),
        ("whatis main --wide", "unknown flag `--wide`"),
        ("whatis -f /nonexistent/addrs", "/nonexistent/addrs"),
        ("xinfo 1 +", "expected an expression"),
    ];
    for &(cmd, want) in cases {
        assert_clear_error(f.pid(), cmd, want);
    }
}

#[test]
fn a_target_that_exits_midway_is_reported() {
    let mut f = Fixture::start("facts");
    let pid = f.pid();
    let mut s = Conversation::start(&["-p", &pid.to_string()]);
    // The target dies once the first answer is out.
    s.ask("whatis answer");
    f.kill();
    s.send("whatis answer");
    s.send("whatis 0x1000 answer");
    s.send("echo still here");
    let (text, out) = s.finish();
    let err = stderr(&out);
    assert!(text.contains("answer (size"), "{text}\n{err}");
    assert!(text.contains("still here"), "{text}\n{err}");
    assert!(err.contains(&format!("process {pid} exited")), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Builds fixtures/whatis.c with `cc ARGS` into `dir/name`.
fn build_whatis(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/whatis.c");
    let status = Command::new("cc")
        .args(args)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status()
        .expect("run cc");
    assert!(status.success());
    out
}

fn run(cmd: &str, args: &[&std::ffi::OsStr]) {
    let status = Command::new(cmd).args(args).status().expect(cmd);
    assert!(status.success(), "{cmd} {args:?}");
}

/// Copies an executable with `cp`: a copy written by this process could be executed while a
/// child forked by a parallel test still holds the write descriptor (ETXTBSY).
fn copy(from: &Path, to: &Path) {
    run("cp", &[from.as_os_str(), to.as_os_str()]);
}

fn build_id(bin: &Path) -> Vec<u8> {
    let data = std::fs::read(bin).unwrap();
    object::File::parse(&*data)
        .unwrap()
        .build_id()
        .unwrap()
        .expect("the compiler adds a build-id")
        .to_vec()
}

#[test]
fn stripped_binaries_fall_back_to_dynsym() {
    let dir = Scratch::new("whatis-stripped");
    let bin = build_whatis(&dir.0, "stripped", &["-g", "-O0", "-rdynamic"]);
    run("strip", &[bin.as_os_str()]);
    let f = Fixture::start_bin(&bin, "whatis-stripped");
    let (docs, out) = json_batch(f.pid(), &[&format!("whatis {:#x}", f.addr("probe_target"))]);
    ok(&out);
    let d = &docs[0];
    assert_eq!(d["symbol"]["name"], "probe_target", "{d}");
    assert_eq!(d["module"]["symbols"], "dynsym");
    assert!(d["notes"].to_string().contains("stripped"), "{d}");
    assert!(d["location"].is_null(), "{d}");
}

#[test]
fn separate_debug_files_by_debuglink_and_build_id() {
    let dir = Scratch::new("whatis-debug");
    let full = build_whatis(&dir.0, "full", &["-g", "-O0"]);
    let (link_dir, id_dir) = (dir.0.join("linked"), dir.0.join("by-id"));
    std::fs::create_dir_all(&link_dir).unwrap();
    std::fs::create_dir_all(&id_dir).unwrap();

    // By .gnu_debuglink: the debug file next to the stripped binary.
    let linked = link_dir.join("linked");
    copy(&full, &linked);
    let debug = link_dir.join("linked.debug");
    run(
        "objcopy",
        &[
            "--only-keep-debug".as_ref(),
            linked.as_os_str(),
            debug.as_os_str(),
        ],
    );
    run(
        "strip",
        &[
            "--strip-debug".as_ref(),
            "--strip-unneeded".as_ref(),
            linked.as_os_str(),
        ],
    );
    let link_arg = format!("--add-gnu-debuglink={}", debug.display());
    run("objcopy", &[link_arg.as_ref(), linked.as_os_str()]);

    // By build-id: a stripped binary without a link, its debug file under a debug directory.
    let by_id = id_dir.join("by-id");
    copy(&full, &by_id);
    let id = build_id(&by_id);
    let hexid: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let id_path = id_dir.join(format!(
        "debug/.build-id/{}/{}.debug",
        &hexid[..2],
        &hexid[2..]
    ));
    std::fs::create_dir_all(id_path.parent().unwrap()).unwrap();
    run(
        "objcopy",
        &[
            "--only-keep-debug".as_ref(),
            by_id.as_os_str(),
            id_path.as_os_str(),
        ],
    );
    run(
        "strip",
        &[
            "--strip-debug".as_ref(),
            "--strip-unneeded".as_ref(),
            by_id.as_os_str(),
        ],
    );

    for (bin, debug_dir, want) in [
        (&linked, None, debug.clone()),
        (&by_id, Some(id_dir.join("debug")), id_path.clone()),
    ] {
        let f = Fixture::start_bin(bin, "whatis-debug");
        let (bias, _) = bias(f.pid(), bin.file_name().unwrap().to_str().unwrap());
        let probe = f.addr("probe_target") + 4;
        let mut cmd = Command::new(VMSCOPE);
        cmd.args(["-p", &f.pid().to_string(), "--batch", "--json", "-ex"])
            .arg(format!("whatis {probe:#x}"))
            .env("NO_COLOR", "1");
        if let Some(d) = &debug_dir {
            cmd.env("VMSCOPE_DEBUG_FILE_DIRECTORY", d);
        }
        let out = cmd.output().unwrap();
        ok(&out);
        let d: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(d["symbol"]["name"], "probe_target", "{d}");
        assert_eq!(d["module"]["symbols"], "debug_file", "{d}");
        assert_eq!(d["module"]["debug_file"], want.to_str().unwrap(), "{d}");
        // The line the unstripped binary gives.
        assert_eq!(location(&d), addr2line(&full, probe - bias)[0].1, "{d}");
    }
}

#[test]
fn deleted_executables_are_read_through_map_files() {
    let dir = Scratch::new("whatis-deleted");
    let bin = dir.0.join("doomed");
    copy(&fixture_bin("facts"), &bin);
    let f = Fixture::start_bin(&bin, "whatis-deleted");
    std::fs::remove_file(&bin).unwrap();
    let (docs, out) = json_batch(f.pid(), &["whatis answer", "print answer"]);
    ok(&out);
    let d = &docs[0];
    assert_eq!(d["symbol"]["name"], "answer", "{d}");
    assert_eq!(d["module"]["deleted"], true);
    assert!(d["notes"].to_string().contains("deleted"), "{d}");
    assert!(location(d).contains("facts.c:"), "{d}");
    assert_eq!(docs[1]["value"].as_u64().unwrap(), f.addr("answer"));
}

#[test]
fn corrupt_files_give_errors_that_name_them() {
    // Two executable mappings of files that are not valid images.
    let f = Fixture::start("whatis");
    let (docs, out) = json_batch(
        f.pid(),
        &[
            &format!("whatis {:#x}", f.addr("garbage") + 16),
            &format!("whatis {:#x}", f.addr("corrupt")),
            "print probe_target",
        ],
    );
    ok(&out);
    for (doc, path) in [(&docs[0], "garbage_path"), (&docs[1], "corrupt_path")] {
        let path = f.facts[path].as_str().unwrap();
        assert!(doc["symbol"].is_null(), "{doc}");
        let notes = doc["notes"].to_string();
        assert!(notes.contains(path) && notes.contains("ELF"), "{doc}");
    }
    assert_eq!(docs[2]["value"].as_u64().unwrap(), f.addr("probe_target"));

    // A binary whose .debug_info is garbage: the symbol still, and an error naming the file.
    let dir = Scratch::new("whatis-bad-dwarf");
    let bin = build_whatis(&dir.0, "bad-dwarf", &["-g", "-O0"]);
    let junk = dir.0.join("junk");
    std::fs::write(&junk, [0xffu8; 4096]).unwrap();
    let update = format!(".debug_info={}", junk.display());
    run(
        "objcopy",
        &[
            "--update-section".as_ref(),
            update.as_ref(),
            bin.as_os_str(),
        ],
    );
    let f = Fixture::start_bin(&bin, "whatis-bad-dwarf");
    let (docs, out) = json_batch(f.pid(), &[&format!("whatis {:#x}", f.addr("probe_target"))]);
    ok(&out);
    let d = &docs[0];
    assert_eq!(d["symbol"]["name"], "probe_target", "{d}");
    let notes = d["notes"].to_string();
    assert!(
        notes.contains("bad DWARF") && notes.contains(bin.to_str().unwrap()),
        "{d}"
    );
}

#[test]
fn text_output_escapes_what_comes_from_the_target() {
    let f = Fixture::start("facts");
    // heap[7] points into the mapping whose file name holds ESC [31m.
    let out = text_batch(
        f.pid(),
        &[
            &format!("whatis {:#x}", f.addr("heap") + 56),
            &format!("whatis {:#x}", f.addr("evil_map")),
        ],
    );
    ok(&out);
    let text = stdout(&out);
    assert!(text.contains("evil\\e[31mred.txt"), "{text}");
    assert!(!text.contains('\x1b'), "raw escape in output: {text:?}");
}
