//! Where an image's link-time addresses land in a process, for every format `whatis` reads: ELF
//! program headers (`regions::elf::LoadLayout`, unchanged), Mach-O `LC_SEGMENT(_64)` commands
//! (vmaddr, vmsize, fileoff, filesize), and a PE's `ImageBase` with its sections. From one mapping
//! of the image — its start address and the offset its backend reports for it — it gives the load
//! bias (runtime address minus link-time address) and the span of link-time addresses the image
//! occupies.
//!
//! The offset means what each backend makes it mean: Linux and the macOS backend report the file
//! offset the mapping starts at (for Mach-O, within the slice of a universal file, as dyld's
//! segments say); the Windows backend reports a `MEM_IMAGE` region's offset from the module's
//! allocation base, i.e. its RVA, which is what a PE section is linked at relative to `ImageBase`.

use crate::regions::elf::LoadLayout;
use object::{Object, ObjectSection, ObjectSegment};

/// One `LC_SEGMENT(_64)` of a Mach-O image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachSegment {
    pub name: String,
    pub vmaddr: u64,
    pub vmsize: u64,
    pub fileoff: u64,
    pub filesize: u64,
}

/// The load layout of an image, by format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    Elf(LoadLayout),
    MachO(Vec<MachSegment>),
    /// `ImageBase` and the end of the highest section (link-time, `ImageBase` included).
    Pe {
        image_base: u64,
        end: u64,
    },
}

impl Layout {
    /// The segments of a Mach-O file.
    pub fn mach_o(file: &object::File<'_>) -> Layout {
        let segments = file
            .segments()
            .map(|s| {
                let (fileoff, filesize) = s.file_range();
                MachSegment {
                    name: s.name().ok().flatten().unwrap_or_default().to_string(),
                    vmaddr: s.address(),
                    vmsize: s.size(),
                    fileoff,
                    filesize,
                }
            })
            .collect();
        Layout::MachO(segments)
    }

    /// The image base and extent of a PE file.
    pub fn pe(file: &object::File<'_>) -> Layout {
        let image_base = file.relative_address_base();
        let end = file
            .sections()
            .map(|s| s.address().saturating_add(s.size()))
            .max()
            .unwrap_or(image_base)
            .max(image_base);
        Layout::Pe { image_base, end }
    }

    /// The load bias from one mapping of the image: it starts at `start` and holds the image
    /// from `offset` on (a file offset for ELF and Mach-O, an RVA for PE; see the module doc).
    /// ELF: the image's lowest mapping must be used (see `LoadLayout::bias`). Mach-O: the
    /// segment with file data at `offset` (`__PAGEZERO` and zero-fill segments have none). PE:
    /// `start - (ImageBase + RVA)`. None when no part of the image is at that offset.
    pub fn bias(&self, start: u64, offset: u64, page: u64) -> Option<u64> {
        match self {
            Layout::Elf(l) => l.bias(start, offset, page),
            Layout::MachO(segments) => segments
                .iter()
                .find(|s| s.filesize > 0 && s.fileoff <= offset && offset - s.fileoff < s.filesize)
                .map(|s| start.wrapping_sub(s.vmaddr.wrapping_add(offset - s.fileoff))),
            Layout::Pe { image_base, end } => (offset < end.wrapping_sub(*image_base).max(1))
                .then(|| start.wrapping_sub(image_base.wrapping_add(offset))),
        }
    }

    /// The link-time addresses the image occupies in memory, zero-fill included (Mach-O's
    /// `__PAGEZERO`, which only reserves the low 4 GiB, left out).
    pub fn span(&self) -> Option<(u64, u64)> {
        match self {
            Layout::Elf(l) => l.span(),
            Layout::MachO(segments) => {
                let mapped = || {
                    segments
                        .iter()
                        .filter(|s| s.vmsize > 0 && s.name != "__PAGEZERO")
                };
                let lo = mapped().map(|s| s.vmaddr).min()?;
                let hi = mapped().map(|s| s.vmaddr.saturating_add(s.vmsize)).max()?;
                Some((lo, hi))
            }
            Layout::Pe { image_base, end } => Some((*image_base, *end)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(name: &str, vmaddr: u64, vmsize: u64, fileoff: u64, filesize: u64) -> MachSegment {
        MachSegment {
            name: name.to_string(),
            vmaddr,
            vmsize,
            fileoff,
            filesize,
        }
    }

    #[test]
    fn mach_o_bias_from_any_segment_with_file_data() {
        // The segments of a typical x86_64 executable (`otool -l`): __PAGEZERO reserves the low
        // 4 GiB and has no file data, so file offset 0 is __TEXT's.
        let layout = Layout::MachO(vec![
            seg("__PAGEZERO", 0, 0x1_0000_0000, 0, 0),
            seg("__TEXT", 0x1_0000_0000, 0x4000, 0, 0x4000),
            seg("__DATA", 0x1_0000_4000, 0x8000, 0x4000, 0x4000),
            seg("__LINKEDIT", 0x1_0000_c000, 0x4000, 0x8000, 0x1234),
        ]);
        let slide = 0x0a5e_0000;
        let text = 0x1_0000_0000 + slide;
        assert_eq!(layout.bias(text, 0, 0x1000), Some(slide));
        assert_eq!(layout.bias(text + 0x4000, 0x4000, 0x1000), Some(slide));
        // A region that starts inside __DATA (split by protection).
        assert_eq!(layout.bias(text + 0x5000, 0x5000, 0x1000), Some(slide));
        assert_eq!(layout.bias(text, 0x10_0000, 0x1000), None);
        assert_eq!(layout.span(), Some((0x1_0000_0000, 0x1_0001_0000)));
    }

    #[test]
    fn pe_bias_is_base_minus_image_base() {
        let layout = Layout::Pe {
            image_base: 0x1_8000_0000,
            end: 0x1_8000_5000,
        };
        let base = 0x7ffa_1234_0000;
        // The headers at the allocation base (RVA 0) and .text at RVA 0x1000 agree.
        assert_eq!(layout.bias(base, 0, 0x1000), Some(base - 0x1_8000_0000));
        assert_eq!(
            layout.bias(base + 0x1000, 0x1000, 0x1000),
            Some(base - 0x1_8000_0000)
        );
        assert_eq!(layout.bias(base, 0x5000, 0x1000), None);
        assert_eq!(layout.span(), Some((0x1_8000_0000, 0x1_8000_5000)));
    }
}
