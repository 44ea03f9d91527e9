//! `x` against the values a fixture wrote at known addresses.

mod common;
use common::*;

#[test]
fn x_4gx_returns_the_fixture_globals() {
    let f = Fixture::start("facts");
    let addr = format!("{:#x}", f.addr("global_values"));
    let (docs, out) = json_batch(f.pid(), &[&format!("x/4gx {addr}")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let items = docs[0]["items"].as_array().unwrap();
    let values: Vec<u64> = items.iter().map(|i| i["value"].as_u64().unwrap()).collect();
    assert_eq!(values, [0x1122334455667788, 0xfffffffffffffffd, 42, 0]);
    assert_eq!(items[0]["text"], "0x1122334455667788");
    assert_eq!(hex(&items[1]["address"]), f.addr("global_values") + 8);
    assert_eq!(docs[0]["size"], 8);
    assert_eq!(docs[0]["format"], "x");
}

#[test]
fn formats_and_sizes_agree_with_the_fixture() {
    let f = Fixture::start("facts");
    let g = f.addr("global_values");
    let cases: Vec<(String, Vec<&str>)> = vec![
        (format!("x/2gd {:#x}", g + 8), vec!["-3", "42"]),
        (format!("x/1gu {:#x}", g + 8), vec!["18446744073709551613"]),
        (format!("x/2wx {g:#x}"), vec!["0x55667788", "0x11223344"]),
        (format!("x/2hx {g:#x}"), vec!["0x7788", "0x5566"]),
        (format!("x/1bx {g:#x}"), vec!["0x88"]),
        (format!("x/1bt {g:#x}"), vec!["10001000"]),
        (format!("x/1go {:#x}", g + 16), vec!["052"]),
        (
            format!("x/2c {:#x}", f.addr("global_string")),
            vec!["104 'h'", "101 'e'"],
        ),
        (
            format!("x/s {:#x}", f.addr("global_string")),
            vec!["\"hello, vmscope\""],
        ),
        (
            format!("x/gx {:#x}", f.addr("stack_local")),
            vec!["0x5354414b5354414b"],
        ),
        (
            format!("x/s {:#x}", f.addr("memfd_map")),
            vec!["\"memfd bytes\""],
        ),
        (
            format!("x/s {:#x}", f.addr("sysv_map")),
            vec!["\"sysv bytes\""],
        ),
        (
            format!("x/s {:#x}", f.addr("deleted_map")),
            vec!["\"deleted file\""],
        ),
    ];
    let commands: Vec<&str> = cases.iter().map(|(c, _)| c.as_str()).collect();
    let (docs, out) = json_batch(f.pid(), &commands);
    assert!(out.status.success(), "{}", stderr(&out));
    for ((cmd, want), doc) in cases.iter().zip(&docs) {
        let got: Vec<&str> = doc["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{cmd}: {doc}"))
            .iter()
            .map(|i| i["text"].as_str().unwrap())
            .collect();
        assert_eq!(&got, want, "{cmd}");
    }
}

#[test]
fn x_a_names_the_mapping_a_pointer_points_into() {
    let f = Fixture::start("facts");
    let (docs, out) = json_batch(f.pid(), &[&format!("x/a {:#x}", f.addr("global_fn_ptr"))]);
    assert!(out.status.success(), "{}", stderr(&out));
    let item = &docs[0]["items"][0];
    assert_eq!(item["value"].as_u64().unwrap(), f.addr("answer"));
    // A pointer to a symbol is named by the symbol (whatis's short form).
    assert_eq!(item["points_to"], "answer", "{item}");
}

#[test]
fn expressions_deref_and_variables() {
    let f = Fixture::start("facts");
    let heap = f.addr("heap");
    // *(ptr) reads the pointer stored at global_fn_ptr; $v = ... and reuse.
    let (docs, out) = json_batch(
        f.pid(),
        &[
            &format!("print *{:#x}", f.addr("global_fn_ptr")),
            &format!("set $h = {heap:#x}"),
            "x/2gx $h + 8 * 2",
            "x/1gx",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(docs[0]["value"].as_u64().unwrap(), f.addr("answer"));
    let values: Vec<u64> = docs[2]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_u64().unwrap())
        .collect();
    assert_eq!(values, [0x0303030303030303, 0x0404040404040404]);
    // `x` alone continues after the last unit with the same format.
    assert_eq!(hex(&docs[3]["address"]), heap + 32);
    assert_eq!(
        docs[3]["items"][0]["value"].as_u64().unwrap(),
        0x0505050505050505
    );
}

#[test]
fn prot_none_pages_are_read_through_proc_mem() {
    let f = Fixture::start("facts");
    let (docs, out) = json_batch(f.pid(), &[&format!("x/gx {:#x}", f.addr("prot_none"))]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        docs[0]["items"][0]["value"].as_u64().unwrap(),
        0xdeadbeefcafef00d
    );
}

#[test]
fn a_read_that_runs_off_the_mapping_reports_how_much_was_read() {
    let f = Fixture::start("facts");
    // The vsyscall page is the last mapping; read across the end of the stack instead: find the
    // end of the memfd page (4096 bytes, followed by the deleted file's page or a gap).
    let memfd = f.addr("memfd_map");
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", f.pid())).unwrap();
    let end = maps
        .lines()
        .find(|l| l.starts_with(&format!("{memfd:x}-")))
        .map(|l| {
            u64::from_str_radix(&l[l.find('-').unwrap() + 1..l.find(' ').unwrap()], 16).unwrap()
        })
        .unwrap();
    let next_mapped = maps.lines().any(|l| l.starts_with(&format!("{end:x}-")));
    if next_mapped {
        eprintln!("skipped: the page after the memfd mapping is mapped too");
        return;
    }
    let (docs, out) = json_batch(f.pid(), &[&format!("x/4gx {:#x}", end - 16)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(docs[0]["items"].as_array().unwrap().len(), 2);
    assert_eq!(docs[0]["partial"]["read"], 16);
    assert_eq!(docs[0]["partial"]["requested"], 32);
}

#[test]
fn unreadable_address_is_an_error_with_status_1() {
    let f = Fixture::start("facts");
    let (docs, out) = json_batch(f.pid(), &["x/4gx 0x10"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(docs[0]["command"], "x");
    assert!(
        docs[0]["error"]
            .as_str()
            .unwrap()
            .contains("cannot read 32 bytes at 0x10"),
        "{}",
        docs[0]
    );
}

#[test]
fn file_names_with_escapes_are_printed_escaped() {
    let f = Fixture::start("facts");
    // heap[7] points into the mapping whose file name holds ESC [31m.
    let out = text_batch(f.pid(), &[&format!("x/a {:#x}", f.addr("heap") + 56)]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("evil\\e[31mred.txt+0x0"), "{text}");
    assert!(!text.contains('\x1b'), "raw escape in output: {text:?}");
}
