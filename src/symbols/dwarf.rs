//! DWARF line tables and inlined frames for one image, through the addr2line crate (gimli). A
//! [`Dwarf`] owns the file bytes its sections borrow from (a memory map, plus any sections that
//! had to be decompressed) together with the addr2line context built over them, so it can be
//! cached for as long as the session lives; units are parsed lazily by addr2line on first lookup.

use super::image::Data;
use gimli::{EndianSlice, RunTimeEndian};
use object::{Object, ObjectSection};
use serde::Serialize;
use std::borrow::Cow;
use std::sync::Arc;

/// The reader the context is built on: slices of the owned file bytes (see [`Dwarf`]).
type Reader = EndianSlice<'static, RunTimeEndian>;

/// One frame at an address: the innermost (inlined) function first, the function the code
/// belongs to last. `line`/`column` are where the address is (innermost frame) or the call site
/// of the next inner frame (outer frames).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceFrame {
    /// The function, demangled (None when DWARF has no function for the address).
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
}

/// DWARF of one file, ready for lookups.
pub struct Dwarf {
    // Declared first, so dropped first: it borrows from the data below.
    ctx: addr2line::Context<Reader>,
    /// Sections that were compressed in the file, decompressed; `ctx` borrows them. A boxed
    /// slice's bytes stay where they are when the box moves.
    _decompressed: Vec<Box<[u8]>>,
    /// The file (and the supplementary file, if any) the sections point into.
    _data: Vec<Arc<Data>>,
}

impl Dwarf {
    /// Builds the context over the DWARF sections of `data` (an ELF or Mach-O file), with the
    /// supplementary file `sup` (`.gnu_debugaltlink`) when there is one. Errors name nothing:
    /// the caller adds the file name.
    pub fn load(data: Arc<Data>, sup: Option<Arc<Data>>) -> Result<Dwarf, String> {
        let all = 0..data.len();
        Dwarf::load_range(data, all, sup)
    }

    /// As [`Dwarf::load`], for the object file at `range` of `data` (one slice of a universal
    /// Mach-O file; all of it otherwise). Mach-O's `__debug_*` sections are found by their ELF
    /// names: object's `section_by_name` maps `.debug_info` to `__debug_info`.
    pub fn load_range(
        data: Arc<Data>,
        range: std::ops::Range<usize>,
        sup: Option<Arc<Data>>,
    ) -> Result<Dwarf, String> {
        let mut decompressed: Vec<Box<[u8]>> = Vec::new();
        let bytes = data
            .get(range)
            .ok_or("the object file lies past the end of the file")?;
        let file = object::File::parse(bytes).map_err(|e| e.to_string())?;
        let endian = if file.is_little_endian() {
            RunTimeEndian::Little
        } else {
            RunTimeEndian::Big
        };
        let mut sections = Sections::read(&file, &mut decompressed);
        let mut dwarf = gimli::Dwarf::load(|id| Ok::<_, gimli::Error>(sections.get(id, endian)))
            .map_err(|e| e.to_string())?;
        if let Some(sup) = &sup {
            let sup_file = object::File::parse(&***sup).map_err(|e| e.to_string())?;
            let mut sup_sections = Sections::read(&sup_file, &mut decompressed);
            dwarf
                .load_sup(|id| Ok::<_, gimli::Error>(sup_sections.get(id, endian)))
                .map_err(|e| e.to_string())?;
        }
        drop(file);
        dwarf.populate_abbreviations_cache(gimli::AbbreviationsCacheStrategy::Duplicates);
        let ctx = addr2line::Context::from_dwarf(dwarf).map_err(|e| e.to_string())?;
        let mut owners = vec![data];
        owners.extend(sup);
        Ok(Dwarf {
            ctx,
            _decompressed: decompressed,
            _data: owners,
        })
    }

    /// The frames at `probe` (a link-time address): innermost first. Empty when DWARF says
    /// nothing about the address.
    pub fn frames(&self, probe: u64) -> Result<Vec<SourceFrame>, String> {
        let mut iter = self
            .ctx
            .find_frames(probe)
            .skip_all_loads()
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        while let Some(frame) = iter.next().map_err(|e| e.to_string())? {
            let function = frame
                .function
                .as_ref()
                .and_then(|f| f.demangle().ok())
                .map(Cow::into_owned);
            let (file, line, column) = match &frame.location {
                Some(l) => (l.file.map(str::to_string), l.line, l.column),
                None => (None, None, None),
            };
            out.push(SourceFrame {
                function,
                file,
                line,
                column,
            });
            if out.len() > 256 {
                break; // a corrupt DWARF loop; nobody inlines this deep
            }
        }
        Ok(out)
    }
}

/// The sections addr2line reads: lines, units, strings, ranges. Location lists, type units and
/// macros are never decompressed.
const NEEDED: [gimli::SectionId; 10] = [
    gimli::SectionId::DebugAbbrev,
    gimli::SectionId::DebugAddr,
    gimli::SectionId::DebugAranges,
    gimli::SectionId::DebugInfo,
    gimli::SectionId::DebugLine,
    gimli::SectionId::DebugLineStr,
    gimli::SectionId::DebugRanges,
    gimli::SectionId::DebugRngLists,
    gimli::SectionId::DebugStr,
    gimli::SectionId::DebugStrOffsets,
];

/// The needed sections of one file, by id: slices of the file, or of the decompressed copies.
struct Sections {
    found: Vec<(gimli::SectionId, &'static [u8])>,
}

impl Sections {
    /// Finds the needed sections of `file`, decompressing compressed ones in parallel (a
    /// distribution's debug file is zlib-compressed; inflating its .debug_info is most of the
    /// cost of its first lookup) into `decompressed`. A section that is missing, or does not
    /// decompress, reads as empty: lookups then find nothing there.
    fn read(file: &object::File<'_>, decompressed: &mut Vec<Box<[u8]>>) -> Sections {
        let mut plain: Vec<(gimli::SectionId, &[u8])> = Vec::new();
        let mut packed: Vec<(gimli::SectionId, object::CompressedData<'_>)> = Vec::new();
        for id in NEEDED {
            let Some(section) = file.section_by_name(id.name()) else {
                continue;
            };
            match section.compressed_data() {
                Ok(c) if c.format == object::CompressionFormat::None => plain.push((id, c.data)),
                Ok(c) => packed.push((id, c)),
                Err(_) => {}
            }
        }
        let inflated: Vec<(gimli::SectionId, Vec<u8>)> = std::thread::scope(|scope| {
            let jobs: Vec<_> = packed
                .into_iter()
                .map(|(id, c)| (id, scope.spawn(move || c.decompress().map(Cow::into_owned))))
                .collect();
            jobs.into_iter()
                .filter_map(|(id, job)| Some((id, job.join().ok()?.ok()?)))
                .collect()
        });
        let mut found = Vec::new();
        for (id, bytes) in plain {
            // SAFETY: bytes of the file, whose `Arc<Data>` the `Dwarf` being built keeps.
            found.push((id, unsafe { extend(bytes) }));
        }
        for (id, bytes) in inflated {
            decompressed.push(bytes.into_boxed_slice());
            let kept = decompressed.last().expect("just pushed");
            // SAFETY: a boxed slice kept in `decompressed`, which the `Dwarf` being built owns.
            found.push((id, unsafe { extend(kept) }));
        }
        Sections { found }
    }

    fn get(&mut self, id: gimli::SectionId, endian: RunTimeEndian) -> Reader {
        let bytes = self
            .found
            .iter()
            .find(|(i, _)| *i == id)
            .map_or(&[][..], |&(_, b)| b);
        EndianSlice::new(bytes, endian)
    }
}

/// Gives section bytes the lifetime of the [`Dwarf`] that owns them.
///
/// # Safety
/// `bytes` must lie in the file's data (an `Arc<Data>` that the `Dwarf` keeps in `_data`) or in
/// a boxed slice that it keeps in `_decompressed`. Neither moves nor is freed before the context
/// that borrows them is dropped (it is the first field of `Dwarf`), and no reference with the
/// `'static` lifetime escapes `Dwarf`: `frames` returns owned strings.
unsafe fn extend(bytes: &[u8]) -> &'static [u8] {
    // SAFETY: the caller upholds the contract above.
    unsafe { std::mem::transmute::<&[u8], &'static [u8]>(bytes) }
}
