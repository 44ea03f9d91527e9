//! Address newtypes: a virtual address in the target, a physical address, and an offset into a
//! file are different things, so they are different types. Converting between them needs a region
//! (or a page table), never a bare cast.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

macro_rules! address_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub u64);

        impl $name {
            pub const fn new(value: u64) -> Self {
                Self(value)
            }
            pub const fn get(self) -> u64 {
                self.0
            }
            /// `self + delta`, or `None` when it would leave the 64-bit space.
            pub fn checked_add(self, delta: u64) -> Option<Self> {
                self.0.checked_add(delta).map(Self)
            }
            /// The distance from `base` up to `self` (saturating at zero).
            pub fn offset_from(self, base: Self) -> u64 {
                self.0.saturating_sub(base.0)
            }
            /// Rounded down to a multiple of `page` (a power of two).
            pub fn page_down(self, page: u64) -> Self {
                Self(self.0 & !(page - 1))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:#x})", stringify!($name), self.0)
            }
        }

        impl fmt::LowerHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }

        /// Serialized as a hex string (`"0x7ffd5c3e1000"`): JSON numbers lose precision above 2^53.
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        /// Read back from the hex string it is written as (saved snapshots).
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
                s.strip_prefix("0x")
                    .and_then(|h| u64::from_str_radix(h, 16).ok())
                    .map(Self)
                    .ok_or_else(|| {
                        serde::de::Error::custom(format!("`{s}` is not a 0x hex address"))
                    })
            }
        }
    };
}

address_type!(
    /// An address in the target's virtual address space.
    VirtAddr
);
address_type!(
    /// A physical address (a page frame number times the page size, plus the offset).
    PhysAddr
);
address_type!(
    /// An offset into a mapped file.
    FileOffset
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_json_are_hex() {
        let a = VirtAddr::new(0x7ffd_5c3e_1000);
        assert_eq!(a.to_string(), "0x7ffd5c3e1000");
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"0x7ffd5c3e1000\"");
        assert_eq!(VirtAddr::new(0).to_string(), "0x0");
    }

    #[test]
    fn page_arithmetic() {
        let a = VirtAddr::new(0x1234_5678);
        assert_eq!(a.page_down(4096), VirtAddr::new(0x1234_5000));
        assert_eq!(a.offset_from(VirtAddr::new(0x1234_5000)), 0x678);
        assert_eq!(VirtAddr::new(u64::MAX).checked_add(1), None);
    }
}
