//! Tests of Mach-O and PE images on Linux, with real files made at test time: a tiny `no_std`
//! crate compiled by rustc for x86_64-apple-darwin, aarch64-apple-darwin and
//! x86_64-pc-windows-msvc (unlinked objects, with DWARF), linked by the rust-lld that ships with
//! rustc (`-flavor darwin` for a Mach-O executable, `-flavor link` for PE DLLs). The linkers'
//! map files are the independent truth for the symbol addresses. A machine without those rustc
//! targets or rust-lld skips these tests and says so loudly.

use super::image::{Data, Format, Image, SymbolSource};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The crate compiled for each target; its line numbers are asserted below.
const SOURCE: &str = "#![no_std]
#[unsafe(no_mangle)]
pub extern \"C\" fn vms_add(a: u64, b: u64) -> u64 {
    a.wrapping_mul(3).wrapping_add(b)
}
#[unsafe(no_mangle)]
pub extern \"C\" fn vms_twice(a: u64) -> u64 {
    vms_add(a, a)
}
#[unsafe(no_mangle)]
pub static mut VMS_DATA: u64 = 7;
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
";

/// The directory the files are made in (once per test run), or why they could not be.
fn workdir() -> Result<&'static Path, &'static str> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| {
        // One directory per test process; those of earlier runs (processes gone) are removed.
        let top = std::env::temp_dir().join("vmscope-foreign-tests");
        for old in std::fs::read_dir(&top).into_iter().flatten().flatten() {
            let pid = old.file_name().to_string_lossy().into_owned();
            if !Path::new("/proc").join(&pid).exists() {
                let _ = std::fs::remove_dir_all(old.path());
            }
        }
        let dir = top.join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("t.rs"), SOURCE).map_err(|e| e.to_string())?;
        Ok(dir)
    })
    .as_ref()
    .map(PathBuf::as_path)
    .map_err(String::as_str)
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `t-TARGET.o`, compiled with DWARF.
fn object(target: &str) -> Result<PathBuf, String> {
    let dir = workdir()?;
    let out = dir.join(format!("t-{target}.o"));
    if !out.exists() {
        run(Command::new("rustc")
            .args(["--target", target, "--crate-type", "lib", "--emit", "obj"])
            .args([
                "-C",
                "debuginfo=2",
                "-C",
                "opt-level=0",
                "-C",
                "panic=abort",
            ])
            .arg(dir.join("t.rs"))
            .arg("-o")
            .arg(&out))?;
    }
    Ok(out)
}

/// The rust-lld of the rustc in PATH.
fn lld() -> Result<PathBuf, String> {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("rustc: {e}"))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let lib = sysroot.join("lib/rustlib");
    std::fs::read_dir(&lib)
        .map_err(|e| format!("{}: {e}", lib.display()))?
        .filter_map(|e| Some(e.ok()?.path().join("bin/rust-lld")))
        .find(|p| p.exists())
        .ok_or_else(|| format!("no rust-lld under {}", lib.display()))
}

/// Says loudly that a test was skipped, and why.
fn skip(test: &str, why: &str) {
    eprintln!("SKIPPED {test}: {why}");
}

fn parse(path: &Path, arch: &str) -> Image {
    let bytes = std::fs::read(path).unwrap();
    Image::parse_for(path, Data::Owned(bytes), arch, true).unwrap()
}

/// The address the linker map gives `name`: lld-link's map (`0001:00000010  vms_add
/// 0000000180001010  t.o`) or ld64.lld's (`0x100000340  0x00000030  [  1] _vms_add`).
fn map_address(map: &Path, name: &str) -> u64 {
    let text = std::fs::read_to_string(map).unwrap();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() >= 3 && cols[1] == name {
            return u64::from_str_radix(cols[2], 16).unwrap();
        }
        if cols.last() == Some(&name) && cols[0].starts_with("0x") {
            return u64::from_str_radix(&cols[0][2..], 16).unwrap();
        }
    }
    panic!("{name} is not in {}", map.display());
}

#[test]
fn mach_o_object_symbols_sections_and_dwarf() {
    let o = match object("x86_64-apple-darwin") {
        Ok(o) => o,
        Err(e) => return skip("mach_o_object_symbols_sections_and_dwarf", &e),
    };
    let image = parse(&o, "x86_64");
    assert_eq!(image.format, Format::MachO);
    assert_eq!(image.symbols_from, SymbolSource::Symtab);
    // `_vms_add` in the symtab is C's `vms_add`.
    let add = image.symbols_named("vms_add");
    assert_eq!(add.len(), 1, "{add:?}");
    let add = &add[0];
    assert!(image.symbols_named("_vms_add").is_empty());
    let twice = image.symbols_named("vms_twice")[0].clone();
    assert!(
        add.size > 0 && add.addr + add.size <= twice.addr,
        "{add:?} {twice:?}"
    );
    let at = image.symbol_at(add.addr + 3).unwrap();
    assert_eq!((at.name.as_str(), at.addr), ("vms_add", add.addr));
    assert_eq!(image.section_at(add.addr), Some("__TEXT,__text"));
    assert!(image.is_code(add.addr));
    let data = image.symbols_named("VMS_DATA")[0].clone();
    assert_eq!(image.section_at(data.addr), Some("__DATA,__data"));
    assert!(!image.is_code(data.addr));
    // DWARF through object's `.debug_*` -> `__debug_*` names: the same function, its line.
    assert!(image.has_dwarf());
    let frames = image.frames(add.addr).unwrap().unwrap();
    let outer = frames.last().unwrap();
    assert_eq!(outer.function.as_deref(), Some("vms_add"), "{frames:?}");
    assert_eq!(outer.line, Some(3), "{frames:?}");
    assert!(
        outer.file.as_deref().unwrap().ends_with("t.rs"),
        "{frames:?}"
    );
    let body = image.frames(twice.addr).unwrap().unwrap();
    assert_eq!(body.last().unwrap().line, Some(7), "{body:?}");
}

#[test]
fn mach_o_universal_file_gives_the_targets_slice() {
    let (x86, arm) = match (
        object("x86_64-apple-darwin"),
        object("aarch64-apple-darwin"),
    ) {
        (Ok(x), Ok(a)) => (x, a),
        (Err(e), _) | (_, Err(e)) => {
            return skip("mach_o_universal_file_gives_the_targets_slice", &e);
        }
    };
    let (x86_bytes, arm_bytes) = (std::fs::read(&x86).unwrap(), std::fs::read(&arm).unwrap());
    // A universal file as lipo makes it: big-endian fat_header and fat_arch records (cputype,
    // cpusubtype, offset, size, align as a power of two), slices 4 KiB aligned.
    let mut fat = Vec::new();
    fat.extend(0xcafe_babe_u32.to_be_bytes());
    fat.extend(2u32.to_be_bytes());
    let x86_at = 0x1000u32;
    let arm_at = (x86_at + x86_bytes.len() as u32).next_multiple_of(0x1000);
    for (cputype, subtype, at, len) in [
        (0x0100_0007u32, 3u32, x86_at, x86_bytes.len()),
        (0x0100_000c, 0, arm_at, arm_bytes.len()),
    ] {
        for word in [cputype, subtype, at, len as u32, 12] {
            fat.extend(word.to_be_bytes());
        }
    }
    fat.resize(x86_at as usize, 0);
    fat.extend(&x86_bytes);
    fat.resize(arm_at as usize, 0);
    fat.extend(&arm_bytes);
    let path = workdir().unwrap().join("t-universal.o");
    std::fs::write(&path, &fat).unwrap();

    for (arch, thin) in [("x86_64", &x86), ("aarch64", &arm)] {
        let from_fat = parse(&path, arch);
        let thin = parse(thin, arch);
        let (a, b) = (
            from_fat.symbols_named("vms_add")[0].clone(),
            thin.symbols_named("vms_add")[0].clone(),
        );
        assert_eq!((a.addr, a.size), (b.addr, b.size), "{arch}");
        // DWARF read from the slice, not from offset 0 of the file.
        let frames = from_fat.frames(a.addr).unwrap().unwrap();
        assert_eq!(frames.last().unwrap().line, Some(3), "{arch}: {frames:?}");
    }
    // The two architectures' code differs: the slices really are different ones.
    let sizes: Vec<u64> = ["x86_64", "aarch64"]
        .iter()
        .map(|a| parse(&path, a).symbols_named("vms_twice")[0].size)
        .collect();
    assert_ne!(sizes[0], sizes[1]);
    let bytes = Data::Owned(fat);
    let err = Image::parse_for(&path, bytes, "powerpc64", true)
        .err()
        .unwrap();
    assert!(err.contains("without a powerpc64 slice"), "{err}");
}

#[test]
fn mach_o_executable_symbols_and_bias() {
    let made = object("x86_64-apple-darwin").and_then(|o| {
        let dir = workdir()?;
        let (exe, map) = (dir.join("t-macho.exe"), dir.join("t-macho.map"));
        run(Command::new(lld()?)
            .args(["-flavor", "darwin", "-arch", "x86_64"])
            .args(["-platform_version", "macos", "11.0", "11.0"])
            .args(["-execute", "-e", "_vms_add", "-map"])
            .arg(&map)
            .arg("-o")
            .arg(&exe)
            .arg(&o))?;
        Ok((exe, map))
    });
    let (exe, map) = match made {
        Ok(m) => m,
        Err(e) => return skip("mach_o_executable_symbols_and_bias", &e),
    };
    let image = parse(&exe, "x86_64");
    assert_eq!(image.format, Format::MachO);
    assert!(image.build_id.as_ref().is_some_and(|u| u.len() == 32));
    for name in ["vms_add", "vms_twice", "VMS_DATA"] {
        let found = image.symbols_named(name);
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        assert_eq!(
            found[0].addr,
            map_address(&map, &format!("_{name}")),
            "{name}"
        );
    }
    // The map's size of vms_add (the distance to vms_twice) is what the symtab lacks.
    let add = &image.symbols_named("vms_add")[0];
    let twice = &image.symbols_named("vms_twice")[0];
    assert_eq!(add.size, twice.addr - add.addr);
    // An executable's __TEXT is linked at 4 GiB (past __PAGEZERO). Mapped with a slide, as
    // the macOS backend reports it: __TEXT at 0x1_0000_0000 + slide with file offset 0, and
    // __DATA at its own offset; both give the slide as the bias.
    let slide = 0x2b_4000u64;
    let (lo, _) = image.layout.span().unwrap();
    assert_eq!(lo, 0x1_0000_0000);
    assert_eq!(image.layout.bias(lo + slide, 0, 0x1000), Some(slide));
    let data = map_address(&map, "_VMS_DATA");
    let super::layout::Layout::MachO(segments) = &image.layout else {
        panic!("{:?}", image.layout);
    };
    let seg = segments.iter().find(|s| s.name == "__DATA").unwrap();
    assert!(seg.vmaddr <= data && data < seg.vmaddr + seg.vmsize);
    assert_eq!(
        image.layout.bias(seg.vmaddr + slide, seg.fileoff, 0x1000),
        Some(slide)
    );
    // Runtime address -> symbol through the bias.
    let at = image.symbol_at(add.addr + slide + 5 - slide).unwrap();
    assert_eq!(
        (at.name.as_str(), at.addr + slide),
        ("vms_add", add.addr + slide)
    );
    assert_eq!(image.section_at(add.addr), Some("__TEXT,__text"));
}

/// Links the Windows object into a DLL exporting both functions; `symtab` adds a COFF symbol
/// table (`/debug:symtab`). Returns the DLL and lld-link's map.
fn dll(name: &str, symtab: bool) -> Result<(PathBuf, PathBuf), String> {
    let o = object("x86_64-pc-windows-msvc")?;
    let dir = workdir()?;
    let (out, map) = (
        dir.join(format!("{name}.dll")),
        dir.join(format!("{name}.map")),
    );
    let mut cmd = Command::new(lld()?);
    cmd.args(["-flavor", "link", "/dll", "/noentry", "/nodefaultlib"])
        .args(["/export:vms_add", "/export:VMS_DATA,DATA"]);
    if symtab {
        cmd.arg("/debug:symtab");
    }
    cmd.arg(format!("/map:{}", map.display()))
        .arg(format!("/out:{}", out.display()))
        .arg(&o);
    run(&mut cmd)?;
    Ok((out, map))
}

#[test]
fn pe_without_symbols_falls_back_to_exports() {
    let (path, map) = match dll("t-exports", false) {
        Ok(m) => m,
        Err(e) => return skip("pe_without_symbols_falls_back_to_exports", &e),
    };
    let image = parse(&path, "x86_64");
    assert_eq!(image.format, Format::Pe);
    assert_eq!(image.symbols_from, SymbolSource::Exports);
    assert!(!image.has_dwarf());
    let add = image.symbols_named("vms_add");
    assert_eq!(add.len(), 1, "{add:?}");
    assert_eq!(add[0].addr, map_address(&map, "vms_add"));
    // Not exported: not known without the COFF symbols (it would be in the PDB).
    assert!(image.symbols_named("vms_twice").is_empty());
    assert_eq!(image.section_at(add[0].addr), Some(".text"));
    assert!(image.is_code(add[0].addr));
    let data = image.symbols_named("VMS_DATA")[0].clone();
    assert_eq!(data.addr, map_address(&map, "VMS_DATA"));
    assert_eq!(image.section_at(data.addr), Some(".data"));
    // A 64-bit DLL is linked at ImageBase 0x1_8000_0000; Windows maps it at its allocation
    // base, and the backend reports each region's RVA as its offset.
    let base = 0x7ffa_5e30_0000u64;
    let bias = base - 0x1_8000_0000;
    assert_eq!(image.layout.bias(base, 0, 0x1000), Some(bias));
    assert_eq!(image.layout.bias(base + 0x1000, 0x1000, 0x1000), Some(bias));
    let runtime = add[0].addr + bias;
    let at = image.symbol_at(runtime + 2 - bias).unwrap();
    assert_eq!((at.name.as_str(), at.addr + bias), ("vms_add", runtime));
}

#[test]
fn pe_coff_symbol_table_has_every_function() {
    let (path, map) = match dll("t-symtab", true) {
        Ok(m) => m,
        Err(e) => return skip("pe_coff_symbol_table_has_every_function", &e),
    };
    let image = parse(&path, "x86_64");
    assert_eq!(image.symbols_from, SymbolSource::Symtab);
    for name in ["vms_add", "vms_twice", "VMS_DATA"] {
        let found = image.symbols_named(name);
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        assert_eq!(found[0].addr, map_address(&map, name), "{name}");
    }
    let twice = image.symbols_named("vms_twice")[0].clone();
    assert!(twice.size > 0);
    let at = image.symbol_at(twice.addr + twice.size - 1).unwrap();
    assert_eq!(at.name, "vms_twice");
}

#[test]
fn corrupt_foreign_files_are_errors() {
    let p = Path::new("/nowhere/garbage");
    // A Mach-O magic, a PE's MZ stub and a universal header, each with nothing after it.
    for bytes in [
        &b"\xcf\xfa\xed\xfe\x07\x00\x00\x01"[..],
        b"MZ\x90\x00",
        b"\xca\xfe\xba\xbe\x00\x00\x00\x01",
    ] {
        let _ = Image::parse_for(p, Data::Owned(bytes.to_vec()), "x86_64", true);
    }
    if let Ok(path) = dll("t-cut", false) {
        let bytes = std::fs::read(path.0).unwrap();
        for len in [64, 200, 600, 1024] {
            let _ = Image::parse(p, Data::Owned(bytes[..len.min(bytes.len())].to_vec()));
        }
    }
}
