//! Region kinds and sharing modes: the vocabulary of Sysinternals VMMap (Image, Private,
//! Shareable, Mapped File, Heap, Stack, System, Free) and macOS vmmap (SM=PRV/COW/SHM/NUL),
//! adapted to Linux.

use super::Region;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The executable and shared libraries (text, rodata, data, relro, bss).
    Image,
    /// `[heap]` and glibc's non-main arenas.
    Heap,
    /// The main stack and every thread's stack.
    Stack,
    /// Other file mappings.
    File,
    /// Shared anonymous memory, /dev/shm, memfd, System V segments.
    Shared,
    /// Private anonymous memory.
    Private,
    /// No-access regions: guard pages and reservations.
    Guard,
    /// vdso, vvar, vsyscall and other kernel-provided regions.
    System,
    /// Unmapped user address space.
    Free,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Image,
        Kind::Heap,
        Kind::Stack,
        Kind::File,
        Kind::Shared,
        Kind::Private,
        Kind::Guard,
        Kind::System,
        Kind::Free,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::Heap => "heap",
            Kind::Stack => "stack",
            Kind::File => "file",
            Kind::Shared => "shared",
            Kind::Private => "private",
            Kind::Guard => "guard",
            Kind::System => "system",
            Kind::Free => "free",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// How a region's pages are shared, in macOS vmmap's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Sharing {
    /// Private: only this process maps the pages.
    #[serde(rename = "PRV")]
    Private,
    /// Copy-on-write: a private mapping whose resident pages are shared (file pages from the page
    /// cache, or anonymous pages shared with a parent or child after fork).
    #[serde(rename = "COW")]
    CopyOnWrite,
    /// A shared mapping: writes are seen by every process mapping it.
    #[serde(rename = "SHM")]
    Shared,
    /// Nothing resident or swapped.
    #[serde(rename = "NUL")]
    Empty,
}

impl Sharing {
    pub fn code(self) -> &'static str {
        match self {
            Sharing::Private => "PRV",
            Sharing::CopyOnWrite => "COW",
            Sharing::Shared => "SHM",
            Sharing::Empty => "NUL",
        }
    }

    /// Derived from the mapping's flags and, when known, its usage.
    pub fn of(region: &Region) -> Sharing {
        if region.perms.shared {
            return Sharing::Shared;
        }
        match &region.usage {
            Some(u) if u.rss == 0 && u.swap == 0 => Sharing::Empty,
            Some(u) if u.shared() > 0 => Sharing::CopyOnWrite,
            Some(_) => Sharing::Private,
            None if region.backing.path().is_some() => Sharing::CopyOnWrite,
            None => Sharing::Private,
        }
    }
}

impl fmt::Display for Sharing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.code())
    }
}
