//! The memory map of a real process, through the Target trait: every hard case of
//! /proc/PID/maps that the facts fixture creates, checked against what it says it mapped.

mod common;
use common::*;
use vmscope::addr::VirtAddr;
use vmscope::regions::{self, Backing};

#[test]
fn hard_cases_of_a_real_map() {
    let f = Fixture::start("facts");
    let mut target = vmscope::target::attach(f.pid()).unwrap();
    let list = target.regions().unwrap();
    let at = |key: &str| {
        regions::find(&list, VirtAddr(f.addr(key)))
            .unwrap_or_else(|| panic!("no region holds {key}"))
            .clone()
    };
    let path = |key: &str| std::path::PathBuf::from(f.facts[key].as_str().unwrap());

    // A file whose name holds spaces and a newline (the kernel writes it as \012).
    let spaced = at("spaced_map");
    assert_eq!(
        spaced.backing,
        Backing::File {
            path: path("spaced_path"),
            deleted: false
        }
    );
    assert!(
        path("spaced_path")
            .to_str()
            .unwrap()
            .contains("map me\nplease x.txt")
    );
    // A file whose name holds an ANSI escape: kept exact here, escaped only when printed.
    assert_eq!(
        at("evil_map").backing,
        Backing::File {
            path: path("evil_path"),
            deleted: false
        }
    );
    // An unlinked file.
    assert_eq!(
        at("deleted_map").backing,
        Backing::File {
            path: path("deleted_path"),
            deleted: true
        }
    );
    assert_eq!(
        at("memfd_map").backing,
        Backing::Memfd {
            name: "fixture memfd".into()
        }
    );
    let sysv = at("sysv_map");
    assert_eq!(sysv.backing, Backing::SysV { key: 0 });
    assert!(sysv.perms.shared && sysv.perms.write);
    let none = at("prot_none");
    assert!(none.perms.is_none());
    assert_eq!(none.backing, Backing::Anonymous);
    assert_eq!(at("heap").backing, Backing::Heap);
    assert_eq!(at("stack_local").backing, Backing::Stack);
    let exe = at("global_values");
    assert!(exe.perms.write && !exe.perms.exec);
    assert_eq!(
        exe.backing.path().unwrap().file_name().unwrap(),
        "fixture-facts"
    );
    let code = at("answer");
    assert!(code.perms.exec && !code.perms.write);
    for special in [Backing::Vdso, Backing::Vvar, Backing::Vsyscall] {
        assert!(list.iter().any(|r| r.backing == special), "no {special:?}");
    }

    // Same count, ranges and order as the kernel's own text.
    let text = std::fs::read_to_string(format!("/proc/{}/maps", f.pid())).unwrap();
    assert_eq!(list.len(), text.lines().count());
    for (r, line) in list.iter().zip(text.lines()) {
        assert!(
            line.starts_with(&format!(
                "{:x}-{:x} {}",
                r.start.get(),
                r.end.get(),
                r.perms
            )),
            "{line}"
        );
    }
}

#[test]
fn a_target_that_exited_says_so() {
    let mut f = Fixture::start("facts");
    let pid = f.pid();
    let mut target = vmscope::target::attach(pid).unwrap();
    f.kill();
    let err = target.regions().unwrap_err();
    assert_eq!(err.to_string(), format!("process {pid} exited"));
    let mut buf = [0u8; 8];
    assert!(
        target
            .read(VirtAddr(f.addr("heap")), &mut buf)
            .unwrap_err()
            .is_exit()
    );
    assert!(target.threads().unwrap_err().is_exit());
    assert!(target.facts().unwrap_err().is_exit());
}
