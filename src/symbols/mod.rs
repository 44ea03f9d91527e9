//! Symbols of a process: its modules (every file-backed image with an executable mapping, and
//! the vdso), each placed at its load bias (from the ELF program headers, Mach-O segments or PE
//! image base, and the mapping offsets: see `layout`), and what they say about an address —
//! section, symbol, source line and inlined frames — or where a name is. Files are opened
//! through the target (so deleted or replaced files still work) and parsed on first use; DWARF
//! is loaded on the first source lookup in a module; both are cached for the life of the
//! target. Attaching costs nothing.

pub mod debugfile;
pub mod demangle;
pub mod dwarf;
#[cfg(test)]
mod foreign_tests;
pub mod image;
pub mod layout;

use crate::addr::VirtAddr;
use crate::error::{Error, Result};
use crate::regions::{Backing, Region};
use crate::target::Target;
use image::{Data, Format, Image, SymbolRef, SymbolSource};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Whether file mappings without an inode number are modules known by their path: the macOS and
/// Windows backends have no inode numbers (on Linux, such a mapping is a core file's record of
/// a file that is gone, left out as before).
const BY_PATH: bool = !cfg!(target_os = "linux");

/// The file of a module, for the cache: the same file mapped again is parsed once.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum ImageKey {
    File {
        dev: (u32, u32),
        inode: u64,
    },
    /// A file of a backend without inode numbers (macOS, Windows): known by its path.
    Path(PathBuf),
    Vdso {
        start: u64,
    },
}

/// A module: one image mapped into the process.
#[derive(Clone, Debug)]
pub struct Module {
    /// The file's base name (`libc.so.6`), or `linux-vdso.so.1`.
    pub name: String,
    pub path: PathBuf,
    /// The file was deleted or replaced since it was mapped.
    pub deleted: bool,
    /// The process's executable.
    pub main: bool,
    /// From the lowest to the highest of its mappings (bss after it not included).
    pub start: VirtAddr,
    pub end: VirtAddr,
    /// Its lowest mapping: the one the file is opened through and the bias computed from.
    first: Region,
    exec: bool,
    key: ImageKey,
}

/// What a module is, for whatis.
#[derive(Clone, Debug, Serialize)]
pub struct ModuleInfo {
    pub name: String,
    pub path: String,
    pub main: bool,
    pub deleted: bool,
    /// The load bias: runtime address minus link-time address (null when the file could not be
    /// read).
    pub bias: Option<VirtAddr>,
    pub build_id: Option<String>,
    /// Where its symbols come from: `symtab`, `debug_file`, `dynsym` (stripped), `exports` (a PE
    /// image without COFF symbols), `none`.
    pub symbols: Option<SymbolSource>,
    /// The separate debug file used, if any.
    pub debug_file: Option<String>,
}

/// The symbol covering an address.
#[derive(Clone, Debug, Serialize)]
pub struct SymbolInfo {
    /// As in the symbol table (mangled for Rust and C++).
    pub name: String,
    /// Demangled, when the name is mangled.
    pub demangled: Option<String>,
    /// From the symbol's start to the address, in bytes.
    pub offset: u64,
    pub size: u64,
    /// Where the symbol starts in the process.
    pub address: VirtAddr,
}

#[derive(Clone, Debug, Serialize)]
pub struct SourceLocation {
    pub file: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
}

/// One frame of the inlined chain, innermost first.
#[derive(Clone, Debug, Serialize)]
pub struct InlinedFrame {
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
}

/// Everything the symbols say about an address in a module.
#[derive(Clone, Debug, Serialize)]
pub struct AddrInfo {
    pub module: ModuleInfo,
    pub section: Option<String>,
    pub symbol: Option<SymbolInfo>,
    /// Where the address is in the source (the innermost frame).
    pub location: Option<SourceLocation>,
    /// When the address is in inlined code, every frame from the innermost inlined function out
    /// to the function it was inlined into; empty when nothing is inlined there; None without
    /// DWARF (or for data).
    pub inlined: Option<Vec<InlinedFrame>>,
    /// What a reader should know: stripped, no debug info, file gone.
    pub notes: Vec<String>,
}

impl AddrInfo {
    /// The short form: `main+17`, `libc.so.6!malloc+4`.
    pub fn short(&self) -> Option<String> {
        let s = self.symbol.as_ref()?;
        Some(short_name(&self.module.name, self.module.main, s))
    }
}

fn short_name(module: &str, main: bool, s: &SymbolInfo) -> String {
    let name = s.demangled.as_deref().unwrap_or(&s.name);
    let prefix = if main {
        String::new()
    } else {
        format!("{module}!")
    };
    if s.offset == 0 {
        format!("{prefix}{name}")
    } else {
        format!("{prefix}{name}+{}", s.offset)
    }
}

/// How much to look up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// Section and symbol only (annotations).
    Symbol,
    /// Also source lines and inlined frames (whatis).
    Source,
}

/// A symbol matching a name, for resolution.
struct Candidate {
    module: usize,
    sym: SymbolRef,
    addr: u64,
}

/// The symbols of one target: modules found from its regions, images loaded on demand.
#[derive(Default)]
pub struct Symbols {
    modules: Vec<Module>,
    /// (start, end, inode) of the regions the modules were found in.
    seen: Vec<(u64, u64, u64)>,
    images: HashMap<ImageKey, std::result::Result<Arc<Image>, String>>,
}

fn basename(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| path.to_string_lossy(), |n| n.to_string_lossy())
        .into_owned()
}

impl Symbols {
    pub fn new() -> Symbols {
        Symbols::default()
    }

    /// Finds the modules in `regions` (sorted by address); loaded images are kept.
    pub fn refresh(&mut self, target: &mut dyn Target, regions: &[Region]) {
        let sig = regions.len() == self.seen.len()
            && regions
                .iter()
                .zip(&self.seen)
                .all(|(r, s)| (r.start.get(), r.end.get(), r.inode) == *s);
        if sig {
            return;
        }
        self.seen = regions
            .iter()
            .map(|r| (r.start.get(), r.end.get(), r.inode))
            .collect();
        let exe = target.info().exe.clone().map(|p| {
            let s = p.to_string_lossy();
            PathBuf::from(s.strip_suffix(" (deleted)").unwrap_or(&s))
        });
        let mut modules: Vec<Module> = Vec::new();
        let mut by_key: HashMap<ImageKey, usize> = HashMap::new();
        for r in regions {
            let (key, path, deleted, name) = match &r.backing {
                Backing::File { path, deleted } if r.inode != 0 => (
                    ImageKey::File {
                        dev: r.dev,
                        inode: r.inode,
                    },
                    path.clone(),
                    *deleted,
                    basename(path),
                ),
                Backing::File { path, deleted } if BY_PATH => (
                    ImageKey::Path(path.clone()),
                    path.clone(),
                    *deleted,
                    basename(path),
                ),
                Backing::Vdso => (
                    ImageKey::Vdso {
                        start: r.start.get(),
                    },
                    PathBuf::from("[vdso]"),
                    false,
                    "linux-vdso.so.1".to_string(),
                ),
                _ => continue,
            };
            match by_key.get(&key) {
                Some(&i) => {
                    let m = &mut modules[i];
                    m.end = m.end.max(r.end);
                    m.exec |= r.perms.exec;
                }
                None => {
                    by_key.insert(key.clone(), modules.len());
                    modules.push(Module {
                        main: exe.as_deref() == Some(path.as_path()),
                        name,
                        path,
                        deleted,
                        start: r.start,
                        end: r.end,
                        first: r.clone(),
                        exec: r.perms.exec,
                        key,
                    });
                }
            }
        }
        modules.retain(|m| m.exec);
        if !modules.iter().any(|m| m.main)
            && let Some(m) = modules
                .iter_mut()
                .find(|m| m.first.backing.path().is_some())
        {
            m.main = true;
        }
        self.modules = modules;
    }

    pub fn modules(&self) -> &[Module] {
        &self.modules
    }

    /// The parsed image of module `m`, opening and parsing it on first use.
    fn image(
        &mut self,
        target: &mut dyn Target,
        m: usize,
    ) -> std::result::Result<Arc<Image>, String> {
        let module = &self.modules[m];
        if let Some(done) = self.images.get(&module.key) {
            return done.clone();
        }
        let loaded = load_image(target, module);
        self.images.insert(module.key.clone(), loaded.clone());
        loaded
    }

    fn bias(&self, target: &dyn Target, m: usize, image: &Image) -> Option<u64> {
        let first = &self.modules[m].first;
        image.layout.bias(
            first.start.get(),
            first.offset.get(),
            target.info().page_size,
        )
    }

    /// The module `addr` belongs to: one of its mappings, or the bss past its file data.
    pub fn module_at(&mut self, target: &mut dyn Target, addr: VirtAddr) -> Option<usize> {
        let i = self.modules.partition_point(|m| m.start <= addr);
        if i == 0 {
            return None;
        }
        let m = i - 1;
        if addr < self.modules[m].end {
            return Some(m);
        }
        // Past its mappings: inside its memory image (the bss) only if the program headers say.
        let image = self.image(target, m).ok()?;
        let bias = self.bias(target, m, &image)?;
        let (_, hi) = image.layout.span()?;
        let page = target.info().page_size;
        let end = bias.wrapping_add(hi).checked_add(page - 1)? & !(page - 1);
        (addr.get() < end).then_some(m)
    }

    /// What the symbols say about `addr`; None when it is in no module.
    pub fn lookup(
        &mut self,
        target: &mut dyn Target,
        addr: VirtAddr,
        detail: Detail,
    ) -> Option<AddrInfo> {
        let m = self.module_at(target, addr)?;
        let module = self.modules[m].clone();
        let mut info = AddrInfo {
            module: ModuleInfo {
                name: module.name.clone(),
                path: module.path.to_string_lossy().into_owned(),
                main: module.main,
                deleted: module.deleted,
                bias: None,
                build_id: None,
                symbols: None,
                debug_file: None,
            },
            section: None,
            symbol: None,
            location: None,
            inlined: None,
            notes: Vec::new(),
        };
        let image = match self.image(target, m) {
            Ok(image) => image,
            Err(e) => {
                info.notes.push(e);
                return Some(info);
            }
        };
        let Some(bias) = self.bias(target, m, &image) else {
            let what = match image.format {
                Format::Elf => "program header",
                Format::MachO => "segment",
                Format::Pe => "section",
            };
            info.notes.push(format!(
                "{}: no {what} maps file offset {:#x}",
                module.path.display(),
                module.first.offset.get()
            ));
            return Some(info);
        };
        info.module.bias = Some(VirtAddr(bias));
        info.module.build_id = image.build_id.clone();
        info.module.symbols = Some(image.symbols_from);
        info.module.debug_file = image
            .debug_path
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned());
        if module.deleted {
            info.notes.push(format!(
                "{} was deleted or replaced after it was mapped: read through /proc/PID/map_files",
                module.name
            ));
        }
        let vdso = matches!(module.key, ImageKey::Vdso { .. });
        match image.symbols_from {
            // The vdso has only dynamic symbols, by design: nothing to fix there.
            _ if vdso => {}
            SymbolSource::Dynsym => info.notes.push(format!(
                "{} is stripped and no debug file was found: symbols from .dynsym only",
                module.name
            )),
            SymbolSource::Exports => info.notes.push(format!(
                "{} has no COFF symbol table: symbols from its exports only (the rest are in its \
                 PDB file, which vmscope does not read)",
                module.name
            )),
            SymbolSource::None if image.format == Format::Pe => info.notes.push(format!(
                "{} has no COFF symbols and no exports: its symbols are in its PDB file, which \
                 vmscope does not read",
                module.name
            )),
            SymbolSource::None => info
                .notes
                .push(format!("{} has no symbols at all", module.name)),
            _ => {}
        }
        let v = addr.get().wrapping_sub(bias);
        info.section = image.section_at(v).map(str::to_string);
        info.symbol = image.symbol_at(v).map(|s| SymbolInfo {
            demangled: s.demangled(),
            offset: v - s.addr,
            size: s.size,
            address: VirtAddr(s.addr.wrapping_add(bias)),
            name: s.name,
        });
        if detail == Detail::Source && image.is_code(v) {
            match image.frames(v) {
                Ok(Some(frames)) => {
                    info.location = frames.first().map(|f| SourceLocation {
                        file: f.file.clone(),
                        line: f.line,
                        column: f.column,
                    });
                    info.inlined = Some(if frames.len() > 1 {
                        frames
                            .iter()
                            .map(|f| InlinedFrame {
                                function: f.function.clone(),
                                file: f.file.clone(),
                                line: f.line,
                            })
                            .collect()
                    } else {
                        Vec::new()
                    });
                }
                Ok(None) if vdso => {}
                Ok(None) => info.notes.push(match image.format {
                    Format::Elf => format!(
                        "no DWARF for {}: build it with -g, or install its debug file",
                        module.name
                    ),
                    Format::MachO => format!(
                        "no DWARF for {}: build it with -g and run dsymutil to put {0}.dSYM \
                         next to it",
                        module.name
                    ),
                    Format::Pe => format!(
                        "no DWARF for {}: source lines of a PE image are in its PDB file, \
                         which vmscope does not read",
                        module.name
                    ),
                }),
                Err(e) => info.notes.push(e),
            }
        }
        Some(info)
    }

    /// The short name of `addr` (`main+17`, `libc.so.6!malloc+4`) when a symbol covers it.
    pub fn short(&mut self, target: &mut dyn Target, addr: VirtAddr) -> Option<String> {
        self.lookup(target, addr, Detail::Symbol)?.short()
    }

    /// Module indices in the order names are searched: the executable first, then by address.
    fn search_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.modules.len()).collect();
        order.sort_by_key(|&i| !self.modules[i].main);
        order
    }

    /// The modules a `MODULE!` prefix names: by base name, path, or base name up to a `.` or `-`
    /// (`libc` names `libc.so.6`).
    fn modules_named(&self, wanted: &str) -> Vec<usize> {
        let exact: Vec<usize> = self
            .search_order()
            .into_iter()
            .filter(|&i| {
                let m = &self.modules[i];
                m.name == wanted || m.path.as_os_str() == wanted
            })
            .collect();
        if !exact.is_empty() {
            return exact;
        }
        self.search_order()
            .into_iter()
            .filter(|&i| {
                let n = &self.modules[i].name;
                n.strip_prefix(wanted)
                    .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('-'))
            })
            .collect()
    }

    /// The runtime address of a symbol name: `main`, `libc.so.6!malloc`, a mangled name, a
    /// demangled Rust or C++ name (with or without its parameter list).
    pub fn resolve(&mut self, target: &mut dyn Target, name: &str) -> Result<u64> {
        let regions = target.regions()?;
        self.refresh(target, &regions);
        if self.modules.is_empty() {
            return Err(Error::usage(format!(
                "no symbol `{name}`: the target has no executable file mappings"
            )));
        }
        let (modules, item) = match name.split_once('!') {
            Some((module, item)) => {
                let found = self.modules_named(module);
                if found.is_empty() {
                    let names: Vec<&str> = self.modules.iter().map(|m| m.name.as_str()).collect();
                    return Err(Error::usage(format!(
                        "no module `{module}` (modules: {})",
                        names.join(" ")
                    )));
                }
                (found, item)
            }
            None => (self.search_order(), name),
        };
        let mut found = self.candidates(target, &modules, item, false);
        if found.is_empty() {
            found = self.candidates(target, &modules, item, true);
        }
        let mut seen = std::collections::HashSet::new();
        found.retain(|c| seen.insert(c.addr));
        match found.len() {
            0 => {
                let mut msg = format!("no symbol `{item}`");
                if let Some(e) = modules.iter().find_map(|&m| self.image(target, m).err()) {
                    msg.push_str(&format!(" (a module could not be read: {e})"));
                }
                Err(Error::usage(msg))
            }
            1 => Ok(found[0].addr),
            _ => {
                // As the dynamic linker binds: a global definition in the first module (in
                // search order) that has one wins, if that module has only one.
                if let Some(first) = found.iter().find(|c| c.sym.global).map(|c| c.module) {
                    let globals: Vec<&Candidate> = found
                        .iter()
                        .filter(|c| c.sym.global && c.module == first)
                        .collect();
                    if globals.len() == 1 {
                        return Ok(globals[0].addr);
                    }
                }
                Err(Error::usage(self.ambiguous(item, &found)))
            }
        }
    }

    fn candidates(
        &mut self,
        target: &mut dyn Target,
        modules: &[usize],
        name: &str,
        demangled: bool,
    ) -> Vec<Candidate> {
        let mut out = Vec::new();
        for &m in modules {
            let Ok(image) = self.image(target, m) else {
                continue;
            };
            let Some(bias) = self.bias(target, m, &image) else {
                continue;
            };
            let syms = if demangled {
                image.symbols_demangled(name)
            } else {
                image.symbols_named(name)
            };
            out.extend(syms.into_iter().map(|sym| Candidate {
                module: m,
                addr: sym.addr.wrapping_add(bias),
                sym,
            }));
        }
        out
    }

    fn ambiguous(&self, name: &str, found: &[Candidate]) -> String {
        let mut msg = format!(
            "`{name}` is ambiguous: {} symbols have that name:",
            found.len()
        );
        for c in found.iter().take(20) {
            let m = &self.modules[c.module];
            msg.push_str(&format!(
                "\n  {}!{} at {:#x} ({}, size {})",
                m.name,
                c.sym.display_name(),
                c.addr,
                if c.sym.global { "global" } else { "local" },
                c.sym.size
            ));
        }
        if found.len() > 20 {
            msg.push_str(&format!("\n  ... and {} more", found.len() - 20));
        }
        msg.push_str(
            "\nname one by its module (MODULE!NAME), its full C++ signature, or its address",
        );
        msg
    }

    /// Symbol names starting with `prefix` (`mal`, `libc!mal`), sorted, at most `limit`.
    pub fn complete(&mut self, target: &mut dyn Target, prefix: &str, limit: usize) -> Vec<String> {
        let Ok(regions) = target.regions() else {
            return Vec::new();
        };
        self.refresh(target, &regions);
        let (modules, item, qualify) = match prefix.split_once('!') {
            Some((module, item)) => (self.modules_named(module), item, Some(module.to_string())),
            None => (self.search_order(), prefix, None),
        };
        let mut out = std::collections::BTreeSet::new();
        for m in modules {
            let Ok(image) = self.image(target, m) else {
                continue;
            };
            for n in image.names_starting(item) {
                out.insert(match &qualify {
                    Some(q) => format!("{q}!{n}"),
                    None => n.clone(),
                });
            }
        }
        out.into_iter().take(limit).collect()
    }
}

/// Opens and parses the image of `module` through the target.
fn load_image(target: &mut dyn Target, module: &Module) -> std::result::Result<Arc<Image>, String> {
    let data = match module.key {
        ImageKey::Vdso { .. } => {
            let r = &module.first;
            let mut buf = vec![0u8; r.size() as usize];
            let n = target
                .read(r.start, &mut buf)
                .map_err(|e| format!("cannot read the vdso: {e}"))?;
            buf.truncate(n);
            Data::Owned(buf)
        }
        ImageKey::File { .. } | ImageKey::Path(_) => {
            let file = target.mapped_file(&module.first).map_err(|e| {
                if module.deleted {
                    format!(
                        "{} is gone (deleted after it was mapped) and cannot be opened through \
                         /proc/PID/map_files: {e}",
                        module.path.display()
                    )
                } else {
                    format!("cannot open {}: {e}", module.path.display())
                }
            })?;
            Data::map(&file).map_err(|e| format!("cannot map {}: {e}", module.path.display()))?
        }
    };
    Image::parse_for(&module.path, data, target.info().arch, true)
        .map(Arc::new)
        .map_err(|e| format!("{}: {e}", module.path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn marker(x: u64) -> u64 {
        std::hint::black_box(x * 3)
    }

    /// This test process as a target: its own symbols are the truth.
    fn me() -> Box<dyn Target> {
        crate::target::attach(std::process::id() as i32).unwrap()
    }

    #[test]
    fn resolves_looks_up_and_completes_its_own_symbols() {
        let mut target = me();
        let mut symbols = Symbols::new();
        let here = marker as fn(u64) -> u64 as usize as u64;
        let name = "vmscope::symbols::tests::marker";
        assert_eq!(symbols.resolve(&mut *target, name).unwrap(), here);

        let info = symbols
            .lookup(&mut *target, VirtAddr(here + 1), Detail::Source)
            .unwrap();
        assert!(info.module.main, "{info:?}");
        assert_eq!(info.section.as_deref(), Some(".text"));
        let sym = info.symbol.as_ref().unwrap();
        assert_eq!(sym.demangled.as_deref(), Some(name));
        assert_eq!((sym.offset, sym.address), (1, VirtAddr(here)));
        assert_eq!(info.short().unwrap(), format!("{name}+1"));
        if let Some(loc) = &info.location {
            assert!(loc.file.as_deref().unwrap().ends_with("src/symbols/mod.rs"));
        }

        let found = symbols.complete(&mut *target, "vmscope::symbols::tests::mar", 10);
        assert_eq!(found, [name]);
        let libc = symbols.complete(&mut *target, "libc.so.6!mallo", 50);
        assert!(libc.iter().any(|n| n == "libc.so.6!malloc"), "{libc:?}");
    }

    #[test]
    fn unknown_names_and_modules_are_errors() {
        let mut target = me();
        let mut symbols = Symbols::new();
        let e = symbols
            .resolve(&mut *target, "no_such_symbol_anywhere")
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("no symbol `no_such_symbol_anywhere`"),
            "{e}"
        );
        let e = symbols.resolve(&mut *target, "nomodule!main").unwrap_err();
        assert!(e.to_string().contains("no module `nomodule`"), "{e}");
        // Outside every module: no answer, no error.
        assert!(
            symbols
                .lookup(&mut *target, VirtAddr(0x1000), Detail::Source)
                .is_none()
        );
    }
}
