//! One image as a file, independent of where a process maps it: its bytes (memory-mapped),
//! load layout, build-id, allocated sections, and symbol table, sorted for address lookup and
//! indexed by name on first need. Its DWARF is loaded on the first source lookup and kept.
//!
//! - ELF (Linux): program headers; .symtab, else that of its separate debug file, else .dynsym.
//! - Mach-O (macOS), thin or universal (the slice for the target's architecture): LC_SEGMENT_64
//!   commands, LC_UUID as the build-id, the symtab (stabs, undefined and assembler-local `l`/`L`
//!   symbols skipped; the C-level `_` prefix dropped, so `_main` is `main`), DWARF in the file
//!   (an unlinked object) or in its dSYM bundle.
//! - PE (Windows): `ImageBase` and sections; the COFF symbol table when the image has one
//!   (MinGW, `lld-link /debug:symtab`), else the export table. Everything else an MSVC-built
//!   image knows about its symbols is in its PDB file, which vmscope does not read.
//!
//! Mach-O and PE symbols carry no size: each gets the distance to the next symbol in its section.

use super::debugfile;
use super::demangle;
use super::dwarf::{Dwarf, SourceFrame};
use super::layout::Layout;
use crate::regions::elf::LoadLayout;
use object::{
    Architecture, BinaryFormat, FileKind, Object, ObjectSection, ObjectSymbol, SectionFlags,
    SectionKind, SymbolKind,
};
use serde::Serialize;
use std::collections::HashMap;
use std::ops::{Deref, Range};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The bytes of a file: memory-mapped, or read (the vdso, which is memory of the target).
pub enum Data {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Data {
    /// Maps `file` read-only.
    pub fn map(file: &std::fs::File) -> std::io::Result<Data> {
        if file.metadata()?.len() == 0 {
            return Ok(Data::Owned(Vec::new()));
        }
        // SAFETY: a private read-only mapping of a file opened for reading. The bytes are parsed
        // as untrusted input (object and gimli bounds-check everything), so other contents can
        // only give other answers. The files are images a process runs from (which the kernel
        // refuses to open for writing while they execute) and debug files, which package
        // managers replace by renaming a new file into place, leaving this mapping intact; only
        // truncating a mapped file in place could fault, the same exposure gdb and addr2line
        // accept.
        let map = unsafe { memmap2::Mmap::map(file)? };
        Ok(Data::Mapped(map))
    }
}

impl Deref for Data {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Data::Mapped(m) => m,
            Data::Owned(v) => v,
        }
    }
}

/// Where an image's symbols come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SymbolSource {
    /// The file's own .symtab.
    Symtab,
    /// The .symtab of its separate debug file.
    DebugFile,
    /// Only the dynamic symbols (.dynsym): the file is stripped and no debug file was found.
    Dynsym,
    /// Only a PE image's exports: it has no COFF symbol table (its symbols are in a PDB file).
    Exports,
    /// No symbols at all.
    None,
}

/// A symbol of the table: its link-time address and size, and where its name is.
#[derive(Clone, Copy, Debug)]
struct Sym {
    addr: u64,
    size: u64,
    name_at: usize,
    name_len: u32,
    /// Higher is better when several symbols share an address: typed, sized, global.
    score: u8,
    /// Leading underscores: of aliases (`malloc`, `__libc_malloc`), the plain name is shown.
    underscores: u8,
    global: bool,
}

/// An allocated section: name and link-time range.
#[derive(Clone, Debug)]
struct Section {
    name: String,
    addr: u64,
    size: u64,
    exec: bool,
}

/// A symbol found for an address or a name (link-time address).
#[derive(Clone, Debug)]
pub struct SymbolRef {
    pub name: String,
    pub addr: u64,
    pub size: u64,
    pub global: bool,
}

impl SymbolRef {
    pub fn demangled(&self) -> Option<String> {
        demangle::demangle(&self.name)
    }

    /// The demangled name if there is one, else the name.
    pub fn display_name(&self) -> String {
        self.demangled().unwrap_or_else(|| self.name.clone())
    }
}

/// Which file holds the DWARF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DwarfIn {
    Primary,
    Debug,
    Nowhere,
}

/// The file format of an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Elf,
    MachO,
    Pe,
}

/// A parsed image.
pub struct Image {
    /// The file as the target names it (for messages and debuglink lookup).
    pub path: PathBuf,
    data: Arc<Data>,
    pub format: Format,
    /// Where the object file is in `data`: all of it, or one slice of a universal Mach-O file.
    range: Range<usize>,
    /// The separate debug file (a Mach-O dSYM), when one was needed and found.
    pub debug_path: Option<PathBuf>,
    debug: Option<Arc<Data>>,
    /// Where the object file is in `debug`.
    debug_range: Range<usize>,
    pub layout: Layout,
    /// The GNU build-id (ELF) or LC_UUID (Mach-O), in hex.
    pub build_id: Option<String>,
    sections: Vec<Section>,
    syms: Vec<Sym>,
    /// Whether symbol names point into the debug file's bytes (else the file's).
    names_in_debug: bool,
    pub symbols_from: SymbolSource,
    dwarf_in: DwarfIn,
    dwarf: OnceLock<Result<Dwarf, String>>,
    by_name: OnceLock<HashMap<Box<str>, Vec<u32>>>,
    by_demangled: OnceLock<HashMap<String, Vec<u32>>>,
    names: OnceLock<Vec<String>>,
}

fn has_dwarf(file: &object::File<'_>) -> bool {
    file.section_by_name(".debug_info").is_some() || file.section_by_name(".debug_line").is_some()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// object's name for a Rust `target_arch` (`std::env::consts::ARCH`, `TargetInfo::arch`).
fn architecture(arch: &str) -> Option<Architecture> {
    Some(match arch {
        "x86_64" => Architecture::X86_64,
        "aarch64" => Architecture::Aarch64,
        "x86" => Architecture::I386,
        "arm" => Architecture::Arm,
        "powerpc" => Architecture::PowerPc,
        "powerpc64" => Architecture::PowerPc64,
        _ => return None,
    })
}

/// Where the object file for `arch` is in `data`: all of it, or for a universal (fat) Mach-O
/// file the slice of that architecture. With `strict`, a universal file without that slice is
/// an error; otherwise its first slice is taken.
fn slice_for(data: &[u8], arch: &str, strict: bool) -> Result<Range<usize>, String> {
    use object::read::macho::{FatArch, MachOFatFile32, MachOFatFile64};
    fn ranges<A: FatArch>(arches: &[A]) -> Vec<(Architecture, u64, u64)> {
        arches
            .iter()
            .map(|a| {
                let (off, size) = a.file_range();
                (a.architecture(), off, size)
            })
            .collect()
    }
    let bad = |e: object::read::Error| format!("not a valid universal Mach-O file: {e}");
    let slices = match FileKind::parse(data) {
        Ok(FileKind::MachOFat32) => ranges(MachOFatFile32::parse(data).map_err(bad)?.arches()),
        Ok(FileKind::MachOFat64) => ranges(MachOFatFile64::parse(data).map_err(bad)?.arches()),
        _ => return Ok(0..data.len()),
    };
    let want = architecture(arch);
    let pick = slices
        .iter()
        .find(|s| Some(s.0) == want)
        .or_else(|| (!strict).then(|| slices.first()).flatten())
        .ok_or_else(|| {
            let have: Vec<String> = slices.iter().map(|s| format!("{:?}", s.0)).collect();
            format!(
                "universal Mach-O file without a {arch} slice (it has: {})",
                have.join(", ")
            )
        })?;
    let (start, size) = (usize::try_from(pick.1), usize::try_from(pick.2));
    match (start, size) {
        (Ok(start), Ok(size)) if start.checked_add(size).is_some_and(|e| e <= data.len()) => {
            Ok(start..start + size)
        }
        _ => Err(format!(
            "universal Mach-O file: its {:?} slice lies past the end of the file",
            pick.0
        )),
    }
}

impl Image {
    /// Parses the image in `data`, found at `path`, for the host's architecture (the slice of
    /// a universal Mach-O file; the first slice when it has none for the host).
    pub fn parse(path: &Path, data: Data) -> Result<Image, String> {
        Image::parse_for(path, data, std::env::consts::ARCH, false)
    }

    /// Parses the image in `data`, found at `path`, as a process of architecture `arch` maps
    /// it: ELF, Mach-O (thin, or the `arch` slice of a universal file; with `strict`, a
    /// universal file without one is an error) or PE. A file of another format, or a corrupt
    /// one, is an error message.
    pub fn parse_for(path: &Path, data: Data, arch: &str, strict: bool) -> Result<Image, String> {
        match FileKind::parse(&*data) {
            Ok(
                FileKind::MachO32
                | FileKind::MachO64
                | FileKind::MachOFat32
                | FileKind::MachOFat64
                | FileKind::Pe32
                | FileKind::Pe64,
            ) => Image::parse_foreign(path, Arc::new(data), arch, strict),
            _ => Image::parse_elf(path, data),
        }
    }

    /// Parses an ELF image; looks for a separate debug file when the image lacks a symbol
    /// table or DWARF. A file that is not a 64-bit little-endian ELF image (or is corrupt) is
    /// an error message.
    fn parse_elf(path: &Path, data: Data) -> Result<Image, String> {
        let data = Arc::new(data);
        let file =
            object::File::parse(&**data).map_err(|e| format!("not a valid ELF file: {e}"))?;
        let layout = LoadLayout::parse(&data)
            .ok_or("not a 64-bit little-endian ELF image with loadable segments")?;
        let build_id = file.build_id().ok().flatten().map(<[u8]>::to_vec);
        let mut sections = read_sections(&file);
        let own_symtab = read_symbols(&file, &data, false);
        let own_dwarf = has_dwarf(&file);

        let mut debug = None;
        if own_symtab.is_empty() || !own_dwarf {
            let link = file.gnu_debuglink().ok().flatten();
            debug = debugfile::find(path, build_id.as_deref(), link);
        }
        let mut names_in_debug = false;
        let mut dwarf_in = if own_dwarf {
            DwarfIn::Primary
        } else {
            DwarfIn::Nowhere
        };
        let (syms, symbols_from) = if !own_symtab.is_empty() {
            (own_symtab, SymbolSource::Symtab)
        } else {
            let from_debug = debug.as_ref().and_then(|d| {
                let dfile = object::File::parse(&**d.data).ok()?;
                let syms = read_symbols(&dfile, &d.data, false);
                (!syms.is_empty()).then_some(syms)
            });
            match from_debug {
                Some(syms) => {
                    names_in_debug = true;
                    (syms, SymbolSource::DebugFile)
                }
                None => {
                    let dynsym = read_symbols(&file, &data, true);
                    let source = if dynsym.is_empty() {
                        SymbolSource::None
                    } else {
                        SymbolSource::Dynsym
                    };
                    (dynsym, source)
                }
            }
        };
        if let Some(d) = &debug
            && let Ok(dfile) = object::File::parse(&**d.data)
        {
            if dwarf_in == DwarfIn::Nowhere && has_dwarf(&dfile) {
                dwarf_in = DwarfIn::Debug;
            }
            if sections.is_empty() {
                sections = read_sections(&dfile);
            }
        }
        let (debug_path, debug) = match debug {
            Some(d) => (Some(d.path), Some(d.data)),
            None => (None, None),
        };
        drop(file);
        let range = 0..data.len();
        let debug_range = 0..debug.as_ref().map_or(0, |d| d.len());
        Ok(Image {
            path: path.to_path_buf(),
            data,
            format: Format::Elf,
            range,
            debug_path,
            debug,
            debug_range,
            layout: Layout::Elf(layout),
            build_id: build_id.map(|id| id.iter().map(|b| format!("{b:02x}")).collect()),
            sections,
            syms,
            names_in_debug,
            symbols_from,
            dwarf_in,
            dwarf: OnceLock::new(),
            by_name: OnceLock::new(),
            by_demangled: OnceLock::new(),
            names: OnceLock::new(),
        })
    }

    /// Parses a Mach-O or PE image (see the module doc).
    fn parse_foreign(
        path: &Path,
        data: Arc<Data>,
        arch: &str,
        strict: bool,
    ) -> Result<Image, String> {
        let range = slice_for(&data, arch, strict)?;
        let file = object::File::parse(&data[range.clone()])
            .map_err(|e| format!("not a valid Mach-O or PE file: {e}"))?;
        let (format, layout) = match file.format() {
            BinaryFormat::MachO => (Format::MachO, Layout::mach_o(&file)),
            BinaryFormat::Pe => (Format::Pe, Layout::pe(&file)),
            other => return Err(format!("a {other:?} file is not an image vmscope reads")),
        };
        let uuid = file.mach_uuid().ok().flatten();
        let sections = read_sections(&file);
        let mut dwarf_in = if has_dwarf(&file) {
            DwarfIn::Primary
        } else {
            DwarfIn::Nowhere
        };
        let (mut syms, mut symbols_from) = match format {
            Format::MachO => (read_mach_symbols(&file, &data), SymbolSource::Symtab),
            _ => (read_symbols(&file, &data, false), SymbolSource::Symtab),
        };
        if syms.is_empty() && format == Format::Pe {
            syms = read_exports(&file, &data);
            symbols_from = SymbolSource::Exports;
        }
        drop(file);
        // A Mach-O image's DWARF (and, when it is stripped, its symbols) are in its dSYM.
        let mut debug = None;
        let mut debug_range = 0..0;
        let mut names_in_debug = false;
        if format == Format::MachO && (syms.is_empty() || dwarf_in == DwarfIn::Nowhere) {
            let dsym = debugfile::find_dsym(path).and_then(|d| {
                let r = slice_for(&d.data, arch, false).ok()?;
                let dfile = object::File::parse(&d.data[r.clone()]).ok()?;
                let theirs = dfile.mach_uuid().ok().flatten();
                (uuid.is_some() && theirs == uuid).then_some(())?;
                let dsyms = read_mach_symbols(&dfile, &d.data);
                let dwarf = has_dwarf(&dfile);
                drop(dfile);
                Some((d, r, dsyms, dwarf))
            });
            if let Some((d, r, dsyms, dwarf)) = dsym {
                if syms.is_empty() && !dsyms.is_empty() {
                    syms = dsyms;
                    names_in_debug = true;
                    symbols_from = SymbolSource::DebugFile;
                }
                if dwarf_in == DwarfIn::Nowhere && dwarf {
                    dwarf_in = DwarfIn::Debug;
                }
                debug = Some(d);
                debug_range = r;
            }
        }
        if syms.is_empty() {
            symbols_from = SymbolSource::None;
        }
        fill_sizes(&mut syms, &sections);
        sort_symbols(&mut syms);
        let (debug_path, debug) = match debug {
            Some(d) => (Some(d.path), Some(d.data)),
            None => (None, None),
        };
        Ok(Image {
            path: path.to_path_buf(),
            data,
            format,
            range,
            debug_path,
            debug,
            debug_range,
            layout,
            build_id: uuid.map(|u| hex(&u)),
            sections,
            syms,
            names_in_debug,
            symbols_from,
            dwarf_in,
            dwarf: OnceLock::new(),
            by_name: OnceLock::new(),
            by_demangled: OnceLock::new(),
            names: OnceLock::new(),
        })
    }

    /// Whether DWARF was found (in the file or its debug file).
    pub fn has_dwarf(&self) -> bool {
        self.dwarf_in != DwarfIn::Nowhere
    }

    /// The file the DWARF comes from.
    pub fn dwarf_path(&self) -> Option<&Path> {
        match self.dwarf_in {
            DwarfIn::Primary => Some(&self.path),
            DwarfIn::Debug => self.debug_path.as_deref(),
            DwarfIn::Nowhere => None,
        }
    }

    fn name_bytes(&self, s: &Sym) -> &[u8] {
        let data: &[u8] = if self.names_in_debug {
            self.debug.as_deref().map_or(&[], |d| d)
        } else {
            &self.data
        };
        data.get(s.name_at..s.name_at + s.name_len as usize)
            .unwrap_or_default()
    }

    fn name(&self, s: &Sym) -> String {
        String::from_utf8_lossy(self.name_bytes(s)).into_owned()
    }

    fn symbol_ref(&self, s: &Sym) -> SymbolRef {
        SymbolRef {
            name: self.name(s),
            addr: s.addr,
            size: s.size,
            global: s.global,
        }
    }

    /// The allocated section holding link-time address `v`.
    pub fn section_at(&self, v: u64) -> Option<&str> {
        self.sections
            .iter()
            .find(|s| s.addr <= v && v - s.addr < s.size)
            .map(|s| s.name.as_str())
    }

    /// Whether `v` is in code (an executable section; true when the file has no section
    /// headers to tell): only code has source lines.
    pub fn is_code(&self, v: u64) -> bool {
        if self.sections.is_empty() {
            return true;
        }
        self.sections
            .iter()
            .any(|s| s.exec && s.addr <= v && v - s.addr < s.size)
    }

    /// The symbol covering link-time address `v`: one whose size covers it, or a symbol without
    /// size in the same section with nothing between.
    pub fn symbol_at(&self, v: u64) -> Option<SymbolRef> {
        let i = self.syms.partition_point(|s| s.addr <= v);
        if i == 0 {
            return None;
        }
        // The best symbol at the nearest address at or below `v` sorts first among its equals.
        let addr = self.syms[i - 1].addr;
        let first = self.syms[..i].partition_point(|s| s.addr < addr);
        let best = &self.syms[first];
        if best.size > 0 && v - best.addr < best.size {
            return Some(self.symbol_ref(best));
        }
        if best.size == 0 && self.section_at(best.addr).is_some() {
            return (self.section_at(best.addr) == self.section_at(v))
                .then(|| self.symbol_ref(best));
        }
        // A larger symbol further down may enclose this one (and `v`).
        self.syms[..first]
            .iter()
            .rev()
            .take(64)
            .find(|s| s.size > 0 && v - s.addr < s.size)
            .map(|s| self.symbol_ref(s))
    }

    /// The symbols named exactly `name` (the name in the table: mangled for Rust and C++).
    pub fn symbols_named(&self, name: &str) -> Vec<SymbolRef> {
        let index = self.by_name.get_or_init(|| {
            let mut map: HashMap<Box<str>, Vec<u32>> = HashMap::with_capacity(self.syms.len());
            for (i, s) in self.syms.iter().enumerate() {
                if let Ok(n) = std::str::from_utf8(self.name_bytes(s)) {
                    map.entry(n.into()).or_default().push(i as u32);
                }
            }
            map
        });
        self.refs(index.get(name))
    }

    /// The symbols whose demangled name is `name`, with or without the parameter list and a
    /// template's return type (`shapes::Circle::area`, `shapes::Circle::area() const`,
    /// `shapes::biggest<int>`, `vmscope::demo::bump`).
    pub fn symbols_demangled(&self, name: &str) -> Vec<SymbolRef> {
        let index = self.by_demangled.get_or_init(|| {
            let mut map: HashMap<String, Vec<u32>> = HashMap::new();
            for (i, s) in self.syms.iter().enumerate() {
                let Ok(raw) = std::str::from_utf8(self.name_bytes(s)) else {
                    continue;
                };
                let Some(d) = demangle::demangle(raw) else {
                    continue;
                };
                for short in demangle::short_forms(&d) {
                    map.entry(short.to_string()).or_default().push(i as u32);
                }
                map.entry(d).or_default().push(i as u32);
            }
            map
        });
        self.refs(index.get(name))
    }

    fn refs(&self, idx: Option<&Vec<u32>>) -> Vec<SymbolRef> {
        idx.map(|v| {
            v.iter()
                .map(|&i| self.symbol_ref(&self.syms[i as usize]))
                .collect()
        })
        .unwrap_or_default()
    }

    /// The symbol names (demangled where they demangle) that start with `prefix`, for
    /// completion; every name is demangled and sorted once, on first use.
    pub fn names_starting(&self, prefix: &str) -> &[String] {
        let names = self.names.get_or_init(|| {
            let mut v: Vec<String> = self
                .syms
                .iter()
                .map(|s| {
                    let raw = self.name(s);
                    demangle::demangle(&raw).unwrap_or(raw)
                })
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        });
        let lo = names.partition_point(|n| n.as_str() < prefix);
        let hi = lo + names[lo..].partition_point(|n| n.starts_with(prefix));
        &names[lo..hi]
    }

    /// The DWARF frames at link-time address `v`, loading the DWARF on first use. `Ok(None)`
    /// when the image has no DWARF; an error names the file and the problem.
    pub fn frames(&self, v: u64) -> Result<Option<Vec<SourceFrame>>, String> {
        let (data, range) = match self.dwarf_in {
            DwarfIn::Nowhere => return Ok(None),
            DwarfIn::Primary => (&self.data, self.range.clone()),
            DwarfIn::Debug => (
                self.debug.as_ref().expect("debug data when DWARF is there"),
                self.debug_range.clone(),
            ),
        };
        let path = self
            .dwarf_path()
            .unwrap_or(&self.path)
            .display()
            .to_string();
        let dwarf = self.dwarf.get_or_init(|| {
            let sup = data
                .get(range.clone())
                .and_then(|bytes| object::File::parse(bytes).ok())
                .and_then(|f| f.gnu_debugaltlink().ok().flatten())
                .and_then(|link| debugfile::find_sup(Path::new(&path), link))
                .map(|f| f.data);
            Dwarf::load_range(Arc::clone(data), range, sup)
        });
        match dwarf {
            Ok(d) => d
                .frames(v)
                .map(Some)
                .map_err(|e| format!("{path}: bad DWARF: {e}")),
            Err(e) => Err(format!("{path}: bad DWARF: {e}")),
        }
    }
}

/// The allocated sections with an address range (thread-local .tbss, which overlaps what
/// follows it, is left out). Mach-O sections are named `SEGMENT,section` (`__TEXT,__text`),
/// as lldb names them; debug sections and a PE's discardable ones are left out.
fn read_sections(file: &object::File<'_>) -> Vec<Section> {
    file.sections()
        .filter_map(|s| {
            let sh_flags = match s.flags() {
                SectionFlags::Elf { sh_flags, .. } => sh_flags,
                SectionFlags::MachO { flags, .. } => {
                    use object::macho;
                    let segment = s.segment_name().ok().flatten().unwrap_or_default();
                    let debug = flags.contains(macho::S_ATTR_DEBUG) || segment == "__DWARF";
                    if debug || s.kind() == SectionKind::Debug || s.size() == 0 {
                        return None;
                    }
                    let code = macho::S_ATTR_PURE_INSTRUCTIONS | macho::S_ATTR_SOME_INSTRUCTIONS;
                    return Some(Section {
                        name: format!("{segment},{}", s.name().ok()?),
                        addr: s.address(),
                        size: s.size(),
                        exec: flags.intersects(code),
                    });
                }
                SectionFlags::Coff {
                    characteristics, ..
                } => {
                    use object::pe;
                    if characteristics.contains(pe::IMAGE_SCN_MEM_DISCARDABLE) || s.size() == 0 {
                        return None;
                    }
                    let code = pe::IMAGE_SCN_MEM_EXECUTE | pe::IMAGE_SCN_CNT_CODE;
                    return Some(Section {
                        name: s.name().ok()?.to_string(),
                        addr: s.address(),
                        size: s.size(),
                        exec: characteristics.intersects(code),
                    });
                }
                _ => return None,
            };
            let alloc = sh_flags.contains(object::elf::SHF_ALLOC);
            let tls = sh_flags.contains(object::elf::SHF_TLS);
            let nobits = s.kind() == SectionKind::UninitializedTls;
            if !alloc || (tls && nobits) || s.size() == 0 {
                return None;
            }
            Some(Section {
                name: s.name().ok()?.to_string(),
                addr: s.address(),
                size: s.size(),
                exec: sh_flags.contains(object::elf::SHF_EXECINSTR),
            })
        })
        .collect()
}

/// The defined code and data symbols of the .symtab (or .dynsym), sorted by address with the
/// best of equals first (typed, sized, global; then the plainest name of aliases).
fn read_symbols(file: &object::File<'_>, data: &[u8], dynamic: bool) -> Vec<Sym> {
    let base = data.as_ptr() as usize;
    let iter = if dynamic {
        file.dynamic_symbols()
    } else {
        file.symbols()
    };
    let mut syms: Vec<Sym> = iter
        .filter_map(|s| {
            let typed = match s.kind() {
                SymbolKind::Text | SymbolKind::Data => true,
                SymbolKind::Unknown | SymbolKind::Label => false,
                _ => return None,
            };
            // Definitions, and untyped labels with an address (`_start` in some hand-written
            // assembly has no type).
            let label = s.kind() == SymbolKind::Unknown && s.address() != 0;
            if !(s.is_definition() || label) {
                return None;
            }
            if !matches!(s.section(), object::SymbolSection::Section(_)) {
                return None;
            }
            let name = s.name_bytes().ok()?;
            if name.is_empty() || name.starts_with(b"$") {
                return None;
            }
            // The name lies inside `data` (object returns slices of it): keep where.
            let at = (name.as_ptr() as usize).checked_sub(base)?;
            if at + name.len() > data.len() {
                return None;
            }
            let global = s.is_global() || s.is_weak();
            let score = u8::from(typed) * 4 + u8::from(s.size() > 0) * 2 + u8::from(global);
            let underscores = name.iter().take_while(|&&b| b == b'_').count().min(255) as u8;
            Some(Sym {
                underscores,
                addr: s.address(),
                size: s.size(),
                name_at: at,
                name_len: u32::try_from(name.len()).ok()?,
                score,
                global,
            })
        })
        .collect();
    sort_symbols(&mut syms);
    syms
}

/// By address, the best of equals first (typed, sized, global; then the plainest name).
fn sort_symbols(syms: &mut [Sym]) {
    syms.sort_by(|a, b| {
        (a.addr, b.score, a.underscores, a.name_len).cmp(&(
            b.addr,
            a.score,
            b.underscores,
            b.name_len,
        ))
    });
}

/// The symbols of a Mach-O symtab (object skips stabs), as C names them: assembler-local and
/// linker-private names (`ltmp0`, `l_anon.…`, `L…`; a C symbol always starts with `_`) left
/// out, and the `_` the compiler prefixes every C-level name with dropped (`_main` is `main`,
/// `__ZN…` is `_ZN…`, which demangles).
fn read_mach_symbols(file: &object::File<'_>, data: &[u8]) -> Vec<Sym> {
    let mut syms = read_symbols(file, data, false);
    syms.retain_mut(|s| {
        let name = data
            .get(s.name_at..s.name_at + s.name_len as usize)
            .unwrap_or_default();
        match name.first() {
            Some(b'l' | b'L') | None => false,
            Some(b'_') if name.len() > 1 => {
                s.name_at += 1;
                s.name_len -= 1;
                s.underscores = s.underscores.saturating_sub(1);
                true
            }
            _ => true,
        }
    });
    sort_symbols(&mut syms);
    syms
}

/// The named exports of a PE image (forwarders to other DLLs and ordinal-only exports left
/// out), for images without a COFF symbol table.
fn read_exports(file: &object::File<'_>, data: &[u8]) -> Vec<Sym> {
    let base = data.as_ptr() as usize;
    let Ok(exports) = file.exports() else {
        return Vec::new();
    };
    let mut syms: Vec<Sym> = exports
        .filter_map(|e| {
            let e = e.ok()?;
            let object::NameOrOrdinal::Name(name) = e.name() else {
                return None;
            };
            let object::ExportTarget::Address { address } = e.target() else {
                return None;
            };
            let at = (name.as_ptr() as usize).checked_sub(base)?;
            if name.is_empty() || at + name.len() > data.len() {
                return None;
            }
            Some(Sym {
                addr: address,
                size: 0,
                name_at: at,
                name_len: u32::try_from(name.len()).ok()?,
                score: 5,
                underscores: name.iter().take_while(|&&b| b == b'_').count().min(255) as u8,
                global: true,
            })
        })
        .collect();
    sort_symbols(&mut syms);
    syms
}

/// Gives sizeless symbols (all of Mach-O's and PE's) the distance to the next symbol at a higher
/// address, or to the end of their section: as lldb and `nm -S` on Mach-O do.
fn fill_sizes(syms: &mut [Sym], sections: &[Section]) {
    let mut next_addr = u64::MAX;
    for i in (0..syms.len()).rev() {
        let addr = syms[i].addr;
        if syms[i].size == 0
            && let Some(sec) = sections
                .iter()
                .find(|s| s.addr <= addr && addr - s.addr < s.size)
        {
            let end = sec.addr + sec.size;
            syms[i].size = next_addr.min(end) - addr;
            syms[i].score |= 2;
        }
        if i == 0 || syms[i - 1].addr != addr {
            next_addr = addr;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn this_test_binary() -> Image {
        let exe = std::env::current_exe().unwrap();
        let file = std::fs::File::open(&exe).unwrap();
        Image::parse(&exe, Data::map(&file).unwrap()).unwrap()
    }

    #[test]
    fn finds_its_own_functions() {
        let image = this_test_binary();
        assert_eq!(image.symbols_from, SymbolSource::Symtab);
        let here = finds_its_own_functions as fn() as usize as u64;
        // The test binary is a PIE: link-time address = runtime address - bias. Find the bias
        // from the symbol table by name, then check the address lookup agrees.
        let named =
            image.symbols_demangled("vmscope::symbols::image::tests::finds_its_own_functions");
        assert_eq!(named.len(), 1, "{named:?}");
        let sym = &named[0];
        let bias = here - sym.addr;
        let at = image.symbol_at(here - bias + 1).unwrap();
        assert_eq!(at.addr, sym.addr);
        assert_eq!(
            at.display_name(),
            "vmscope::symbols::image::tests::finds_its_own_functions"
        );
        assert_eq!(image.section_at(sym.addr), Some(".text"));
        // Debug builds of the tests carry DWARF: the function's own source file.
        if image.has_dwarf() {
            let frames = image.frames(sym.addr).unwrap().unwrap();
            let outer = frames.last().unwrap();
            assert!(
                outer
                    .file
                    .as_deref()
                    .unwrap()
                    .ends_with("src/symbols/image.rs"),
                "{frames:?}"
            );
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let p = Path::new("/nowhere/garbage");
        assert!(Image::parse(p, Data::Owned(b"\x7fELF garbage".to_vec())).is_err());
        assert!(Image::parse(p, Data::Owned(Vec::new())).is_err());
        // A real header with everything after it cut off.
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        for len in [64, 200, 4096] {
            let _ = Image::parse(p, Data::Owned(exe[..len].to_vec()));
        }
    }
}
