//! Memory usage of a region as the kernel accounts it in /proc/PID/smaps, in bytes, and its sums.

use serde::Serialize;
use std::ops::AddAssign;

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
    pub vmflags: String,
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
