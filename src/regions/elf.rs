//! The load layout of an ELF image from its program headers: which PT_LOAD segment a mapping
//! comes from (text, rodata, data, relro), and the bss that lies past the file's data. Only the
//! first bytes of the file are read: program headers sit near the start.

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use serde::Serialize;
use std::io::Read;

/// The named part of an image a mapping holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImagePart {
    Text,
    Rodata,
    Data,
    Relro,
    Bss,
}

impl ImagePart {
    pub fn name(self) -> &'static str {
        match self {
            ImagePart::Text => ".text",
            ImagePart::Rodata => ".rodata",
            ImagePart::Data => ".data",
            ImagePart::Relro => ".relro",
            ImagePart::Bss => ".bss",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Segment {
    vaddr: u64,
    memsz: u64,
    offset: u64,
    filesz: u64,
    write: bool,
}

/// PT_LOAD segments and the PT_GNU_RELRO range of one image (virtual addresses before bias).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadLayout {
    segments: Vec<Segment>,
    relro: Option<(u64, u64)>,
}

/// How much of the file to read for the program headers.
const PREFIX: u64 = 64 * 1024;

impl LoadLayout {
    /// Reads the program headers of a 64-bit little-endian ELF file; `None` for anything else
    /// (not ELF, 32-bit, truncated): the caller then names the mapping by its path only.
    pub fn read(file: impl Read) -> Option<LoadLayout> {
        let mut data = Vec::with_capacity(PREFIX as usize);
        file.take(PREFIX).read_to_end(&mut data).ok()?;
        Self::parse(&data)
    }

    pub fn parse(data: &[u8]) -> Option<LoadLayout> {
        let header = elf::FileHeader64::<object::LittleEndian>::parse(data).ok()?;
        let endian = header.endian().ok()?;
        let mut layout = LoadLayout::default();
        for ph in header.program_headers(endian, data).ok()? {
            match ph.p_type(endian) {
                elf::PT_LOAD => layout.segments.push(Segment {
                    vaddr: ph.p_vaddr(endian),
                    memsz: ph.p_memsz(endian),
                    offset: ph.p_offset(endian),
                    filesz: ph.p_filesz(endian),
                    write: ph.p_flags(endian).contains(elf::PF_W),
                }),
                elf::PT_GNU_RELRO => {
                    let start = ph.p_vaddr(endian);
                    layout.relro = Some((start, start + ph.p_memsz(endian)));
                }
                _ => {}
            }
        }
        (!layout.segments.is_empty()).then_some(layout)
    }

    /// The load bias of the image, from one of its mappings (start address and file offset).
    /// Neighbouring segments can share a file page, so use the image's lowest mapping: the
    /// first segment holding that offset is the right one.
    pub fn bias(&self, start: u64, offset: u64, page: u64) -> Option<u64> {
        let down = |v: u64| v & !(page - 1);
        self.segments
            .iter()
            .find(|s| down(s.offset) <= offset && offset < s.offset + s.filesz.max(1))
            .map(|s| start.wrapping_sub(down(s.vaddr) + (offset - down(s.offset))))
    }

    /// The addresses (before bias) the image occupies in memory: from its lowest segment's start
    /// to its highest segment's end, bss included.
    pub fn span(&self) -> Option<(u64, u64)> {
        let lo = self.segments.iter().map(|s| s.vaddr).min()?;
        let hi = self.segments.iter().map(|s| s.vaddr + s.memsz).max()?;
        Some((lo, hi))
    }

    /// The part a mapping at `vaddr` (before bias) with these permissions holds. Relro starts
    /// mid-page; the mapping made read-only after relocation starts at that page.
    pub fn part(&self, vaddr: u64, exec: bool, write: bool, page: u64) -> ImagePart {
        if exec {
            return ImagePart::Text;
        }
        if let Some((lo, hi)) = self.relro
            && !write
            && lo & !(page - 1) <= vaddr
            && vaddr < hi
        {
            return ImagePart::Relro;
        }
        if write {
            ImagePart::Data
        } else {
            ImagePart::Rodata
        }
    }

    /// Where the bss's own pages lie (before bias): from the first page boundary past the file
    /// data of the writable segment to the end of its memory image.
    pub fn bss(&self, page: u64) -> Option<(u64, u64)> {
        let up = |v: u64| (v + page - 1) & !(page - 1);
        self.segments
            .iter()
            .filter(|s| s.write && s.memsz > s.filesz)
            .map(|s| (up(s.vaddr + s.filesz), up(s.vaddr + s.memsz)))
            .find(|(lo, hi)| hi > lo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_test_binary() {
        let exe = std::env::current_exe().unwrap();
        let layout = LoadLayout::read(std::fs::File::open(exe).unwrap()).unwrap();
        assert!(layout.segments.iter().any(|s| s.write));
        assert!(layout.segments.iter().any(|s| !s.write));
        assert!(
            layout.relro.is_some(),
            "rust binaries are linked with relro"
        );
        // A PIE's first segment is at vaddr 0: mapped at B with offset 0, the bias is B.
        assert_eq!(
            layout.bias(0x5555_0000_0000, 0, 4096),
            Some(0x5555_0000_0000)
        );
    }

    #[test]
    fn parts_and_bss() {
        let layout = LoadLayout {
            segments: vec![
                Segment {
                    vaddr: 0,
                    memsz: 0x1000,
                    offset: 0,
                    filesz: 0x1000,
                    write: false,
                },
                Segment {
                    vaddr: 0x1000,
                    memsz: 0x2000,
                    offset: 0x1000,
                    filesz: 0x2000,
                    write: false,
                },
                Segment {
                    vaddr: 0x3db8,
                    memsz: 0x3000,
                    offset: 0x2db8,
                    filesz: 0x268,
                    write: true,
                },
            ],
            relro: Some((0x3db8, 0x4000)),
        };
        assert_eq!(layout.part(0x1000, true, false, 0x1000), ImagePart::Text);
        assert_eq!(layout.part(0x0, false, false, 0x1000), ImagePart::Rodata);
        assert_eq!(layout.part(0x3000, false, false, 0x1000), ImagePart::Relro);
        assert_eq!(layout.part(0x4000, false, true, 0x1000), ImagePart::Data);
        assert_eq!(layout.bss(0x1000), Some((0x5000, 0x7000)));
        // The bias comes from the image's first mapping (file offset 0).
        assert_eq!(layout.bias(0x10_0000, 0, 0x1000), Some(0x10_0000));
        assert_eq!(layout.bias(0x10_1000, 0x1000, 0x1000), Some(0x10_0000));
        assert!(LoadLayout::parse(b"not an elf file").is_none());
        assert!(LoadLayout::parse(&[]).is_none());
    }
}
