//! Memory usage of a region as the kernel accounts it in /proc/PID/smaps, in bytes, and its sums.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::ops::{AddAssign, Deref};

/// One region's smaps fields (bytes; `kernel_page_size` too), plus its VmFlags.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub rss: u64,
    pub pss: u64,
    pub pss_dirty: u64,
    pub shared_clean: u64,
    pub shared_dirty: u64,
    pub private_clean: u64,
    pub private_dirty: u64,
    pub referenced: u64,
    pub anonymous: u64,
    pub swap: u64,
    pub swap_pss: u64,
    pub locked: u64,
    /// AnonHugePages + ShmemPmdMapped + FilePmdMapped: memory mapped by transparent huge pages.
    pub thp: u64,
    pub kernel_page_size: u64,
    /// The two-letter VmFlags codes (`rd wr mr mw me ac sd`), space separated.
    pub vmflags: VmFlags,
}

impl Usage {
    /// All zeros, no flags: what a region without usage figures shows.
    pub const ZERO: Usage = Usage {
        rss: 0,
        pss: 0,
        pss_dirty: 0,
        shared_clean: 0,
        shared_dirty: 0,
        private_clean: 0,
        private_dirty: 0,
        referenced: 0,
        anonymous: 0,
        swap: 0,
        swap_pss: 0,
        locked: 0,
        thp: 0,
        kernel_page_size: 0,
        vmflags: VmFlags::EMPTY,
    };
}

/// The VmFlags line's text (`rd wr mr mw me ac sd`), kept inline when it is short, as it almost
/// always is: a 60,000-mapping table should not cost 60,000 allocations (and as many clones) for
/// it. Reads as a `&str`; serializes as a JSON string.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VmFlags(Repr);

/// Bytes kept inline: seven two-letter codes with their spaces (the usual anonymous or file
/// mapping has five to seven); longer lines go to the heap. 22 makes the whole 24 bytes, a
/// `String`'s size.
const INLINE: usize = 22;

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Box<str>),
}

impl VmFlags {
    pub const EMPTY: VmFlags = VmFlags(Repr::Inline {
        len: 0,
        buf: [0; INLINE],
    });

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Only ever filled from a whole `&str` (see `From<&str>`), so it is valid UTF-8.
            Repr::Inline { len, buf } => {
                std::str::from_utf8(&buf[..usize::from(*len)]).unwrap_or_default()
            }
            Repr::Heap(s) => s,
        }
    }
}

const _: () = assert!(std::mem::size_of::<VmFlags>() == std::mem::size_of::<String>());

impl Default for VmFlags {
    fn default() -> VmFlags {
        VmFlags::EMPTY
    }
}

impl From<&str> for VmFlags {
    fn from(s: &str) -> VmFlags {
        if s.len() <= INLINE {
            let mut buf = [0; INLINE];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            VmFlags(Repr::Inline {
                len: s.len() as u8,
                buf,
            })
        } else {
            VmFlags(Repr::Heap(s.into()))
        }
    }
}

impl From<String> for VmFlags {
    fn from(s: String) -> VmFlags {
        if s.len() <= INLINE {
            VmFlags::from(s.as_str())
        } else {
            VmFlags(Repr::Heap(s.into_boxed_str()))
        }
    }
}

impl Deref for VmFlags {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for VmFlags {
    fn eq(&self, o: &str) -> bool {
        self.as_str() == o
    }
}

impl PartialEq<&str> for VmFlags {
    fn eq(&self, o: &&str) -> bool {
        self.as_str() == *o
    }
}

impl fmt::Debug for VmFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for VmFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for VmFlags {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for VmFlags {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<VmFlags, D::Error> {
        String::deserialize(d).map(VmFlags::from)
    }
}

impl Usage {
    /// Dirty bytes, private and shared.
    pub fn dirty(&self) -> u64 {
        self.private_dirty + self.shared_dirty
    }

    /// Bytes only this process maps.
    pub fn private(&self) -> u64 {
        self.private_clean + self.private_dirty
    }

    /// Bytes other processes map too.
    pub fn shared(&self) -> u64 {
        self.shared_clean + self.shared_dirty
    }

    /// Whether VmFlags holds the two-letter flag `code`.
    pub fn has_flag(&self, code: &str) -> bool {
        self.vmflags.split_ascii_whitespace().any(|f| f == code)
    }
}

/// Sums of the numeric fields (flags and page size are not summed).
impl AddAssign<&Usage> for Usage {
    fn add_assign(&mut self, o: &Usage) {
        self.rss += o.rss;
        self.pss += o.pss;
        self.pss_dirty += o.pss_dirty;
        self.shared_clean += o.shared_clean;
        self.shared_dirty += o.shared_dirty;
        self.private_clean += o.private_clean;
        self.private_dirty += o.private_dirty;
        self.referenced += o.referenced;
        self.anonymous += o.anonymous;
        self.swap += o.swap;
        self.swap_pss += o.swap_pss;
        self.locked += o.locked;
        self.thp += o.thp;
    }
}

#[cfg(test)]
mod tests {
    use super::VmFlags;

    #[test]
    fn vmflags_read_back_inline_or_not() {
        let long = "rd wr ex sh mr mw me ms gd pf dw lo io sr rr dc de ac nr ht sf nl ar wf dd sd mm hg nh mg um uw ss sl";
        for s in [
            "",
            "rd",
            "rd wr mr mw me ac sd",
            "rd wr mr mw me ac sd g",
            long,
        ] {
            let f = VmFlags::from(s);
            assert_eq!(f, s);
            assert_eq!(VmFlags::from(s.to_owned()), f);
            assert_eq!(format!("{f}"), s);
            assert_eq!(format!("{f:?}"), format!("{s:?}"));
            assert_eq!(
                serde_json::to_string(&f).unwrap(),
                serde_json::to_string(s).unwrap()
            );
            let back: VmFlags = serde_json::from_str(&serde_json::to_string(s).unwrap()).unwrap();
            assert_eq!(back, f);
        }
        assert_eq!(VmFlags::default(), "");
        assert!(
            VmFlags::from("rd ex mr")
                .split_ascii_whitespace()
                .any(|c| c == "ex")
        );
    }
}
