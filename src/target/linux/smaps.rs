//! The /proc/PID/smaps parser: turns that file, as it streams in, into [`Region`]s with their
//! [`Usage`] filled. It owns only the format; opening the file is the caller's business.
//!
//! The format, as fs/proc/task_mmu.c writes it (checked against Linux 6.18): per mapping, the
//! header line of /proc/PID/maps (parsed by [`maps::parse_line`], so names with spaces,
//! ` (deleted)`, `\012`... are exact), then one line per field:
//!
//! ```text
//! 7f71740bd000-7f7174213000 r-xp 00026000 fe:00 326279                     /usr/lib/x86_64-linux-gnu/libc.so.6
//! Size:               1368 kB
//! Rss:                 844 kB
//! Pss:                 129 kB
//! THPeligible:           0
//! VmFlags: rd ex mr mw me
//! ```
//!
//! Sizes are `Key:`, spaces, a decimal number of kB (the kernel's byte count shifted right by 10)
//! and ` kB`; `THPeligible` and `ProtectionKey` have no unit, and `VmFlags` lists two-letter codes,
//! each followed by a space. Kernels add fields over time (and vendor kernels add their own, such as
//! Android's `Name:`), so unknown keys are skipped. A field line starts with `[A-Za-z0-9_]+:`; a
//! header starts with a hex address and a `-`, so the two never mix up.
//!
//! The text of a 60,000-mapping process is ~45 MB, re-read on every refresh, and the kernel
//! produces it slowly: seq_file hands out one page per read() whatever the buffer size, and walks
//! the page tables of each mapping as it goes. So the parser streams, with bounded memory: the
//! text is read into a few reusable 256 KiB buffers cut at line ends (the partial last line is
//! carried to the next), and no allocation is made per line except the region's name (by the maps
//! parser) and its VmFlags string. The common field lines, laid out by the kernel in fixed columns,
//! are recognised with one table probe and decoded eight digits at a time. When the text does not
//! fit one buffer, parsing runs on a second thread while this one keeps reading, so the parse cost
//! hides behind the kernel's.

use crate::regions::{HoldsRegion, Region, Usage};
use crate::target::linux::maps;
use std::io::{ErrorKind, Read};
use std::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum SmapsError {
    #[error("line {line}: {message}")]
    Format { line: usize, message: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The size of each read buffer (the whole of a small process's smaps fits one).
const BUFFER: usize = 256 * 1024;

/// The longest line accepted. Real header lines are at most a few KiB (PATH_MAX, with `\012`
/// escapes); this bounds the memory a garbage input can make us use.
const MAX_LINE: usize = 1 << 20;

/// Buffers in flight between the reading and the parsing thread (besides the two being filled and
/// parsed).
const QUEUE: usize = 2;

/// Parses /proc/PID/smaps as it streams in.
///
/// Every region gets `usage: Some(..)`, all zeros when the kernel printed no fields for it. Sizes
/// are in bytes (the kernel's kB × 1024); `thp` is AnonHugePages + ShmemPmdMapped +
/// FilePmdMapped. The final newline is optional. A malformed line is a
/// [`SmapsError::Format`] with its 1-based number; text cut at a line boundary cannot be told from
/// a complete one (the missing fields read as zero).
pub fn parse_smaps<R: Read>(reader: R) -> Result<Vec<Region>, SmapsError> {
    parse_with_buffer(reader, BUFFER)
}

/// [`parse_smaps`] making each region into a `T` as soon as it is read, on the parsing thread.
pub fn parse_smaps_into<R: Read, T: HoldsRegion>(reader: R) -> Result<Vec<T>, SmapsError> {
    parse_with_buffer(reader, BUFFER)
}

/// [`parse_smaps`] with a chosen buffer size (tests use tiny ones to exercise the carry, growth and
/// pipelining paths).
fn parse_with_buffer<R: Read, T: HoldsRegion>(
    reader: R,
    size: usize,
) -> Result<Vec<T>, SmapsError> {
    let mut chunks = Chunks {
        reader,
        size: size.clamp(1, MAX_LINE),
        carry: Vec::new(),
        eof: false,
    };
    let mut parser = Parser::new();
    let Some(first) = chunks.next(Vec::new()).map_err(|e| e.at(&parser))? else {
        return Ok(Vec::new());
    };
    if chunks.eof && chunks.carry.is_empty() {
        // All of it in one buffer: no thread needed.
        parser.lines(first.text())?;
        return Ok(parser.finish());
    }
    std::thread::scope(|scope| {
        let (to_parser, from_reader) = mpsc::sync_channel::<Chunk>(QUEUE);
        let (to_reader, from_parser) = mpsc::channel::<Chunk>();
        let spawned = std::thread::Builder::new()
            .name("smaps-parse".into())
            .spawn_scoped(scope, move || -> Result<Parser<T>, SmapsError> {
                for chunk in from_reader {
                    parser.lines(chunk.text())?;
                    let _ = to_reader.send(chunk); // for reuse; the reader may be gone
                }
                Ok(parser)
            });
        let worker = match spawned {
            Ok(worker) => worker,
            Err(_) => {
                // No thread to be had: parse here, between reads.
                let mut parser = Parser::new();
                let mut chunk = Some(first);
                while let Some(c) = chunk {
                    parser.lines(c.text())?;
                    chunk = chunks.next(c.buf).map_err(|e| e.at(&parser))?;
                }
                return Ok(parser.finish());
            }
        };
        // Read on this thread (the reader need not be Send) and hand over whole lines. A send fails
        // when the parser stopped on an error; that error is reported below.
        let mut read_error = None;
        let mut chunk = Some(first);
        while let Some(c) = chunk.take() {
            if to_parser.send(c).is_err() {
                break;
            }
            let spare = from_parser.try_recv().map(|c| c.buf).unwrap_or_default();
            match chunks.next(spare) {
                Ok(next) => chunk = next,
                Err(e) => read_error = Some(e),
            }
        }
        drop(to_parser);
        let parser = match worker.join() {
            Ok(result) => result?, // an error in the text comes before anything read after it
            Err(panic) => std::panic::resume_unwind(panic),
        };
        match read_error {
            Some(e) => Err(e.at(&parser)),
            None => Ok(parser.finish()),
        }
    })
}

/// A buffer holding whole lines in `buf[..len]`.
struct Chunk {
    buf: Vec<u8>,
    len: usize,
}

impl Chunk {
    fn text(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Cuts what a reader gives into [`Chunk`]s of whole lines.
struct Chunks<R> {
    reader: R,
    size: usize,
    /// The partial line at the end of the last chunk, which starts the next.
    carry: Vec<u8>,
    eof: bool,
}

/// Why reading stopped; turned into a [`SmapsError`] once the parser says which line it was on.
enum ReadError {
    Io(std::io::Error),
    LineTooLong,
}

impl ReadError {
    fn at<T>(self, parser: &Parser<T>) -> SmapsError {
        match self {
            ReadError::Io(e) => SmapsError::Io(e),
            ReadError::LineTooLong => SmapsError::Format {
                line: parser.line + 1,
                message: format!("line longer than {MAX_LINE} bytes"),
            },
        }
    }
}

impl<R: Read> Chunks<R> {
    /// The next chunk, read into `buf` (reused when it has the room): as many whole lines as fill
    /// the buffer, the text's last line given its missing newline. None at the end.
    fn next(&mut self, mut buf: Vec<u8>) -> Result<Option<Chunk>, ReadError> {
        let want = self.size.max(self.carry.len() + 1);
        if buf.is_empty() {
            buf = vec![0; want]; // calloc: untouched pages cost nothing
        } else if buf.len() < want {
            buf.resize(want, 0);
        }
        let mut len = self.carry.len();
        buf[..len].copy_from_slice(&self.carry);
        self.carry.clear();
        // The end of the last whole line so far (the carried part has no newline).
        let mut whole = 0;
        while !self.eof {
            if len == buf.len() {
                if whole > 0 {
                    break;
                }
                // One unfinished line fills the buffer.
                if buf.len() >= MAX_LINE {
                    return Err(ReadError::LineTooLong);
                }
                buf.resize((buf.len() * 2).min(MAX_LINE), 0);
            }
            match self.reader.read(&mut buf[len..]) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    if let Some(i) = buf[len..len + n].iter().rposition(|&b| b == b'\n') {
                        whole = len + i + 1;
                    }
                    len += n;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
        if self.eof {
            if len == 0 {
                return Ok(None);
            }
            if buf[len - 1] != b'\n' {
                // A last line without its newline.
                if len == buf.len() {
                    buf.push(b'\n');
                } else {
                    buf[len] = b'\n';
                }
                len += 1;
            }
            return Ok(Some(Chunk { buf, len }));
        }
        self.carry.extend_from_slice(&buf[whole..len]);
        Ok(Some(Chunk { buf, len: whole }))
    }
}

/// Where the value of a known size field goes.
#[derive(Clone, Copy)]
enum Slot {
    Rss,
    Pss,
    PssDirty,
    SharedClean,
    SharedDirty,
    PrivateClean,
    PrivateDirty,
    Referenced,
    Anonymous,
    Swap,
    SwapPss,
    Locked,
    /// AnonHugePages, ShmemPmdMapped and FilePmdMapped all add to `thp`.
    Thp,
    KernelPageSize,
}

enum Field {
    Size(Slot),
    VmFlags,
    /// A field we do not keep (Size, MMUPageSize, KSM, THPeligible...) or do not know.
    Other,
}

fn field(key: &[u8]) -> Field {
    Field::Size(match key {
        b"Rss" => Slot::Rss,
        b"Pss" => Slot::Pss,
        b"Pss_Dirty" => Slot::PssDirty,
        b"Shared_Clean" => Slot::SharedClean,
        b"Shared_Dirty" => Slot::SharedDirty,
        b"Private_Clean" => Slot::PrivateClean,
        b"Private_Dirty" => Slot::PrivateDirty,
        b"Referenced" => Slot::Referenced,
        b"Anonymous" => Slot::Anonymous,
        b"Swap" => Slot::Swap,
        b"SwapPss" => Slot::SwapPss,
        b"Locked" => Slot::Locked,
        b"AnonHugePages" | b"ShmemPmdMapped" | b"FilePmdMapped" => Slot::Thp,
        b"KernelPageSize" => Slot::KernelPageSize,
        b"VmFlags" => return Field::VmFlags,
        _ => return Field::Other,
    })
}

/// What the fast path does with a line whose first 16 bytes it knows.
#[derive(Clone, Copy)]
enum FastAction {
    /// A size in kB: store it in the slot, or check and skip it (None).
    Size(Option<Slot>),
    /// A number without unit (THPeligible, ProtectionKey): skip it.
    Plain,
}

/// The first 16 bytes of every fixed-layout line Linux 6.18 prints in smaps (and smaps_rollup),
/// as `SEQ_PUT_DEC` and `seq_printf` in fs/proc/task_mmu.c pad them.
const FAST_KEYS: [(&[u8; 16], FastAction); 27] = {
    use FastAction::{Plain, Size};
    [
        (b"Size:           ", Size(None)),
        (b"KernelPageSize: ", Size(Some(Slot::KernelPageSize))),
        (b"MMUPageSize:    ", Size(None)),
        (b"Rss:            ", Size(Some(Slot::Rss))),
        (b"Pss:            ", Size(Some(Slot::Pss))),
        (b"Pss_Dirty:      ", Size(Some(Slot::PssDirty))),
        (b"Pss_Anon:       ", Size(None)),
        (b"Pss_File:       ", Size(None)),
        (b"Pss_Shmem:      ", Size(None)),
        (b"Shared_Clean:   ", Size(Some(Slot::SharedClean))),
        (b"Shared_Dirty:   ", Size(Some(Slot::SharedDirty))),
        (b"Private_Clean:  ", Size(Some(Slot::PrivateClean))),
        (b"Private_Dirty:  ", Size(Some(Slot::PrivateDirty))),
        (b"Referenced:     ", Size(Some(Slot::Referenced))),
        (b"Anonymous:      ", Size(Some(Slot::Anonymous))),
        (b"KSM:            ", Size(None)),
        (b"LazyFree:       ", Size(None)),
        (b"AnonHugePages:  ", Size(Some(Slot::Thp))),
        (b"ShmemPmdMapped: ", Size(Some(Slot::Thp))),
        (b"FilePmdMapped:  ", Size(Some(Slot::Thp))),
        (b"Shared_Hugetlb: ", Size(None)),
        (b"Private_Hugetlb:", Size(None)),
        (b"Swap:           ", Size(Some(Slot::Swap))),
        (b"SwapPss:        ", Size(Some(Slot::SwapPss))),
        (b"Locked:         ", Size(Some(Slot::Locked))),
        (b"THPeligible:    ", Plain),
        (b"ProtectionKey:  ", Plain),
    ]
};

const FAST_BITS: u32 = 6;

/// A perfect hash table of [`FAST_KEYS`]: one probe, keys compared in full. A key that collided
/// would simply take the general path (a test checks that none does).
struct FastTable([Option<([u64; 2], FastAction)>; 1 << FAST_BITS]);

impl FastTable {
    fn new() -> FastTable {
        let mut table = [None; 1 << FAST_BITS];
        for (text, action) in FAST_KEYS {
            let key = [
                u64::from_le_bytes(text[..8].try_into().expect("8 bytes")),
                u64::from_le_bytes(text[8..].try_into().expect("8 bytes")),
            ];
            let slot = &mut table[Self::hash(key)];
            if slot.is_none() {
                *slot = Some((key, action));
            }
        }
        FastTable(table)
    }

    fn hash([lo, hi]: [u64; 2]) -> usize {
        // The multiplier was searched (from the golden ratio up) to give every key its own slot.
        let mixed = lo
            .wrapping_add(hi.rotate_left(4))
            .wrapping_mul(0x9e37_79b9_7f4a_7d1f);
        (mixed >> (64 - FAST_BITS)) as usize
    }

    #[inline]
    fn get(&self, key: [u64; 2]) -> Option<FastAction> {
        match self.0[Self::hash(key)] {
            Some((k, action)) if k == key => Some(action),
            _ => None,
        }
    }
}

/// Eight bytes (little-endian load, first character lowest) holding spaces then 1 to 8 digits:
/// their value. None for anything else.
fn eight_digits(chunk: u64) -> Option<u64> {
    const SPACES: u64 = 0x2020_2020_2020_2020;
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    let spaces = (chunk ^ SPACES).trailing_zeros() / 8;
    if spaces == 8 {
        return None;
    }
    // Leading spaces read as leading zeros.
    let mask = if spaces == 0 {
        0
    } else {
        u64::MAX >> (64 - 8 * spaces)
    };
    let digits = (chunk & !mask) | (ZEROS & mask);
    // Every byte 0x30..=0x39 (simdjson's is_made_of_eight_digits_fast).
    const HIGH: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    if (digits & HIGH) | ((digits.wrapping_add(0x0606_0606_0606_0606) & HIGH) >> 4)
        != 0x3333_3333_3333_3333
    {
        return None;
    }
    // Combine pairs, then quads, then halves: the first character is the most significant.
    let v = ((digits & 0x0f00_0f00_0f00_0f00) >> 8) + (digits & 0x000f_000f_000f_000f) * 10;
    let v = ((v & 0x00ff_0000_00ff_0000) >> 16) + (v & 0x0000_00ff_0000_00ff) * 100;
    Some(((v & 0x0000_ffff_0000_0000) >> 32) + (v & 0x0000_0000_0000_ffff) * 10000)
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

struct Parser<T> {
    /// The regions so far; the last one is the mapping whose fields are being read (its usage
    /// is set when the next header comes: moving a Usage is cheaper than moving a Region).
    regions: Vec<T>,
    /// Whether a header was seen: fields before it are an error.
    open: bool,
    /// The last region's usage so far.
    usage: Usage,
    /// Lines parsed so far (the number of the line being parsed, once counted).
    line: usize,
    fast: FastTable,
}

impl<T: HoldsRegion> Parser<T> {
    fn new() -> Parser<T> {
        Parser {
            regions: Vec::new(),
            open: false,
            usage: Usage::default(),
            line: 0,
            fast: FastTable::new(),
        }
    }

    /// Parses whole lines: `text` is empty or ends with a newline.
    fn lines(&mut self, text: &[u8]) -> Result<(), SmapsError> {
        let mut pos = 0;
        while pos < text.len() {
            self.line += 1;
            pos += self.line_at(&text[pos..])?;
        }
        Ok(())
    }

    /// Parses the line at the start of `rest` (which holds a newline); returns its length
    /// including the newline.
    fn line_at(&mut self, rest: &[u8]) -> Result<usize, SmapsError> {
        if let Some(len) = self.fast_line(rest)? {
            return Ok(len);
        }
        // The general case. The newline stops this scan, so `rest[k]` exists.
        let k = rest.iter().take_while(|&&b| is_key_byte(b)).count();
        if k == 0 || rest[k] != b':' {
            return self.header(rest);
        }
        let key = &rest[..k];
        match field(key) {
            Field::Size(slot) => {
                let (value, len) = size_value(rest, k + 1).ok_or_else(|| self.bad_value(rest))?;
                self.store(slot, value, rest)?;
                Ok(len)
            }
            Field::VmFlags => {
                let len = line_len(rest);
                let flags = rest[k + 1..len - 1].trim_ascii();
                self.fields(rest)?.vmflags = match std::str::from_utf8(flags) {
                    Ok(text) => text.into(),
                    Err(_) => String::from_utf8_lossy(flags).into_owned().into(),
                };
                Ok(len)
            }
            Field::Other => {
                self.fields(rest)?;
                Ok(line_len(rest))
            }
        }
    }

    /// A field line exactly as the kernel lays it out: the key, its colon and spaces filling 16
    /// columns, the value right-aligned in the next 8 (`Private_Hugetlb:` is 16 long and its
    /// value 7 wide after a space, which reads the same), then ` kB` or nothing. Recognised from
    /// its first 16 bytes with one table probe, its value decoded eight digits at once. None sends
    /// the line to the general path, which handles (or rejects) everything else.
    #[inline]
    fn fast_line(&mut self, rest: &[u8]) -> Result<Option<usize>, SmapsError> {
        let Some(head) = rest.first_chunk::<25>() else {
            return Ok(None);
        };
        let word = |i: usize| u64::from_le_bytes(head[i..i + 8].try_into().expect("8 bytes"));
        let key = [word(0), word(8)];
        let Some(action) = self.fast.get(key) else {
            return Ok(None);
        };
        if !self.open {
            return Ok(None); // the general path reports it
        }
        match action {
            FastAction::Plain if head[24] == b'\n' => Ok(Some(25)),
            FastAction::Size(slot) if rest.get(24..28) == Some(b" kB\n") => {
                let Some(kb) = eight_digits(word(16)) else {
                    return Ok(None);
                };
                if let Some(slot) = slot {
                    // At most 99,999,999 kB: the product fits.
                    self.store(slot, kb * 1024, rest)?;
                }
                Ok(Some(28))
            }
            _ => Ok(None),
        }
    }

    fn header(&mut self, rest: &[u8]) -> Result<usize, SmapsError> {
        let len = line_len(rest);
        let region = maps::parse_line(&rest[..len - 1]).map_err(|e| SmapsError::Format {
            line: self.line,
            message: e.message,
        })?;
        self.flush();
        self.regions.push(T::wrap(region));
        self.open = true;
        Ok(len)
    }

    /// The usage being filled, or an error when no header came first.
    fn fields(&mut self, rest: &[u8]) -> Result<&mut Usage, SmapsError> {
        if !self.open {
            return Err(self.error(rest, "field before any mapping header"));
        }
        Ok(&mut self.usage)
    }

    #[inline]
    fn store(&mut self, slot: Slot, value: u64, rest: &[u8]) -> Result<(), SmapsError> {
        let u = self.fields(rest)?;
        let field = match slot {
            Slot::Rss => &mut u.rss,
            Slot::Pss => &mut u.pss,
            Slot::PssDirty => &mut u.pss_dirty,
            Slot::SharedClean => &mut u.shared_clean,
            Slot::SharedDirty => &mut u.shared_dirty,
            Slot::PrivateClean => &mut u.private_clean,
            Slot::PrivateDirty => &mut u.private_dirty,
            Slot::Referenced => &mut u.referenced,
            Slot::Anonymous => &mut u.anonymous,
            Slot::Swap => &mut u.swap,
            Slot::SwapPss => &mut u.swap_pss,
            Slot::Locked => &mut u.locked,
            Slot::KernelPageSize => &mut u.kernel_page_size,
            Slot::Thp => match u.thp.checked_add(value) {
                Some(sum) => {
                    u.thp = sum;
                    return Ok(());
                }
                None => return Err(self.error(rest, "THP sizes overflow")),
            },
        };
        *field = value;
        Ok(())
    }

    /// Gives the last region its usage.
    fn flush(&mut self) {
        if let Some(last) = self.regions.last_mut().filter(|_| self.open) {
            last.set_usage(std::mem::take(&mut self.usage));
        }
    }

    fn finish(mut self) -> Vec<T> {
        self.flush();
        self.regions
    }

    fn bad_value(&self, rest: &[u8]) -> SmapsError {
        self.error(
            rest,
            "bad size (want a number of kB that fits in 64 bits of bytes)",
        )
    }

    /// A format error for the line at the start of `rest`, quoting (the start of) it.
    fn error(&self, rest: &[u8], what: &str) -> SmapsError {
        const SHOWN: usize = 64;
        let line = &rest[..line_len(rest) - 1];
        let shown = &line[..line.len().min(SHOWN)];
        let more = if shown.len() < line.len() { "..." } else { "" };
        SmapsError::Format {
            line: self.line,
            message: format!("{what}: \"{}\"{more}", shown.escape_ascii()),
        }
    }
}

/// The length of the line at the start of `rest`, newline included (`rest` holds one). Eight
/// bytes at a time: header lines are ~100 bytes long.
fn line_len(rest: &[u8]) -> usize {
    const NEWLINES: u64 = 0x0a0a_0a0a_0a0a_0a0a;
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut chunks = rest.chunks_exact(8);
    let mut done = 0;
    for chunk in &mut chunks {
        let x = u64::from_le_bytes(chunk.try_into().expect("8 bytes")) ^ NEWLINES;
        // The lowest set high bit marks the first zero byte, i.e. the first newline (bits above
        // it may be false positives; they are ignored).
        let zero = x.wrapping_sub(ONES) & !x & HIGHS;
        if zero != 0 {
            return done + (zero.trailing_zeros() / 8) as usize + 1;
        }
        done += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'\n')
        .map_or(rest.len(), |i| done + i + 1)
}

/// Decodes ` <spaces><decimal> kB\n` starting at `rest[at]`: the value in bytes and the length
/// of the whole line. None when the text is anything else or the value overflows.
fn size_value(rest: &[u8], at: usize) -> Option<(u64, usize)> {
    // Every loop below stops at the newline at the latest, so indexing stays in bounds.
    let mut i = at;
    while rest[i] == b' ' {
        i += 1;
    }
    let digits = i;
    let mut kb: u64 = 0;
    while rest[i].is_ascii_digit() {
        kb = kb.checked_mul(10)?.checked_add(u64::from(rest[i] - b'0'))?;
        i += 1;
    }
    if i == digits || !rest[i..].starts_with(b" kB\n") {
        return None;
    }
    Some((kb.checked_mul(1024)?, i + 4))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::{FileOffset, VirtAddr};
    use crate::regions::{Backing, Perms};
    use std::io::Cursor;
    use std::path::PathBuf;

    /// Regions made into the classifier's `Explained` as they are read (on the parsing thread,
    /// across buffer boundaries) are the regions `parse_smaps` gives, with their own kinds.
    #[test]
    fn regions_wrapped_as_read_are_the_same_regions() {
        use crate::regions::classify::Explained;
        let text = std::fs::read("/proc/self/smaps").unwrap();
        let plain: Vec<Region> = parse_with_buffer(Cursor::new(&text), 4096).unwrap();
        let wrapped: Vec<Explained> = parse_with_buffer(Cursor::new(&text), 4096).unwrap();
        assert!(plain.len() > 5);
        assert_eq!(plain.len(), wrapped.len());
        for (r, e) in plain.iter().zip(&wrapped) {
            assert_eq!(r, &e.region);
            let alone = Explained::wrap(r.clone());
            assert_eq!((alone.kind, &alone.detail), (e.kind, &e.detail));
            assert_eq!(alone.sharing, e.sharing);
        }
    }

    #[test]
    fn every_fast_key_has_its_own_slot() {
        let table = FastTable::new();
        for (text, _) in FAST_KEYS {
            let key = [
                u64::from_le_bytes(text[..8].try_into().unwrap()),
                u64::from_le_bytes(text[8..].try_into().unwrap()),
            ];
            assert!(table.get(key).is_some(), "{} collides", text.escape_ascii());
        }
    }

    #[test]
    fn line_len_finds_the_first_newline() {
        for len in 0..40 {
            for nl in 0..=len {
                let mut text = vec![b'x'; len];
                if nl < len {
                    text[nl] = b'\n';
                    // Later newlines and bytes just above and below '\n' must not confuse it.
                    for j in nl + 1..len {
                        text[j] = [b'\n', 0x0b, 0x09, 0x8a][j % 4];
                    }
                }
                let want = if nl < len { nl + 1 } else { len };
                assert_eq!(line_len(&text), want, "{:?}", text.escape_ascii());
            }
        }
    }

    #[test]
    fn eight_digits_matches_the_slow_way() {
        let load = |s: &[u8]| u64::from_le_bytes(s.try_into().unwrap());
        for v in (0..100_000u64).chain([99_999_999, 12_345_678, 10_000_000, 1_000_001]) {
            let text = format!("{v:>8}");
            assert_eq!(eight_digits(load(text.as_bytes())), Some(v), "{text:?}");
        }
        let mut seed = 0x1234_5678_9abc_def1u64;
        for _ in 0..100_000 {
            // Mostly spaces and digits, sometimes a byte that is neither.
            let r = xorshift(&mut seed);
            let bytes: [u8; 8] =
                std::array::from_fn(|i| b"  0123456789 \xb0:-"[(r >> (5 * i)) as usize % 16]);
            let raw = load(&bytes);
            let text = std::str::from_utf8(&bytes).ok();
            let slow = text.and_then(|t| {
                let digits = t.trim_start_matches(' ');
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                digits.parse().ok()
            });
            assert_eq!(eight_digits(raw), slow, "{:?}", bytes.escape_ascii());
        }
        for bad in [
            b"        ",
            b" 12 3456",
            b"1234567 ",
            b"   -1234",
            b"  12a456",
            b"  12/456",
        ] {
            assert_eq!(eight_digits(load(bad)), None, "{:?}", bad.escape_ascii());
        }
    }

    /// Eight regions of `cat /proc/self/smaps` on this machine (Linux 6.18, x86_64): the first two
    /// regions as `head -60` shows them, then the heap, an anonymous mapping (its header ends with
    /// the inode's space), libc's text (shared: Pss below Rss), the vDSO, the stack and the
    /// vsyscall page. VmFlags lines end with a space, as the kernel writes them.
    const SAMPLE: &str = "\
55ee7971d000-55ee7971f000 r--p 00000000 fe:00 247030                     /usr/bin/cat
Size:                  8 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   8 kB
Pss:                   8 kB
Pss_Dirty:             0 kB
Shared_Clean:          0 kB
Shared_Dirty:          0 kB
Private_Clean:         8 kB
Private_Dirty:         0 kB
Referenced:            8 kB
Anonymous:             0 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
ProtectionKey:         0
VmFlags: rd mr mw me 
55ee7971f000-55ee79724000 r-xp 00002000 fe:00 247030                     /usr/bin/cat
Size:                 20 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                  20 kB
Pss:                  20 kB
Pss_Dirty:             0 kB
Shared_Clean:          0 kB
Shared_Dirty:          0 kB
Private_Clean:        20 kB
Private_Dirty:         0 kB
Referenced:           20 kB
Anonymous:             0 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
ProtectionKey:         0
VmFlags: rd ex mr mw me 
55ee964a9000-55ee964ca000 rw-p 00000000 00:00 0                          [heap]
Size:                132 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                  16 kB
Pss:                  16 kB
Pss_Dirty:            16 kB
Shared_Clean:          0 kB
Shared_Dirty:          0 kB
Private_Clean:         0 kB
Private_Dirty:        16 kB
Referenced:           16 kB
Anonymous:            16 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
ProtectionKey:         0
VmFlags: rd wr mr mw me ac 
7f7174012000-7f7174034000 rw-p 00000000 00:00 0 
Size:                136 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   8 kB
Pss:                   8 kB
Pss_Dirty:             8 kB
Shared_Clean:          0 kB
Shared_Dirty:          0 kB
Private_Clean:         0 kB
Private_Dirty:         8 kB
Referenced:            8 kB
Anonymous:             8 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
ProtectionKey:         0
VmFlags: rd wr mr mw me ac 
7f71740bd000-7f7174213000 r-xp 00026000 fe:00 326279                     /usr/lib/x86_64-linux-gnu/libc.so.6
Size:               1368 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                 844 kB
Pss:                 129 kB
Pss_Dirty:             0 kB
Shared_Clean:        836 kB
Shared_Dirty:          0 kB
Private_Clean:         8 kB
Private_Dirty:         0 kB
Referenced:          844 kB
Anonymous:             0 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
ProtectionKey:         0
VmFlags: rd ex mr mw me 
7f717428a000-7f717428c000 r-xp 00000000 00:00 0                          [vdso]
Size:                  8 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   4 kB
Pss:                   0 kB
Pss_Dirty:             0 kB
Shared_Clean:          4 kB
Shared_Dirty:          0 kB
Private_Clean:         0 kB
Private_Dirty:         0 kB
Referenced:            4 kB
Anonymous:             0 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
ProtectionKey:         0
VmFlags: rd ex mr mw me de 
7ffeacebf000-7ffeacee0000 rw-p 00000000 00:00 0                          [stack]
Size:                132 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                  12 kB
Pss:                  12 kB
Pss_Dirty:            12 kB
Shared_Clean:          0 kB
Shared_Dirty:          0 kB
Private_Clean:         0 kB
Private_Dirty:        12 kB
Referenced:           12 kB
Anonymous:            12 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
ProtectionKey:         0
VmFlags: rd wr mr mw me gd ac 
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
Size:                  4 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                   0 kB
Pss:                   0 kB
Pss_Dirty:             0 kB
Shared_Clean:          0 kB
Shared_Dirty:          0 kB
Private_Clean:         0 kB
Private_Dirty:         0 kB
Referenced:            0 kB
Anonymous:             0 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
THPeligible:           0
ProtectionKey:         0
VmFlags: ex 
";

    const KB: u64 = 1024;

    fn parse(text: &[u8]) -> Result<Vec<Region>, SmapsError> {
        parse_smaps(Cursor::new(text))
    }

    fn ok(text: &[u8]) -> Vec<Region> {
        parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(text: &[u8]) -> (usize, String) {
        match parse(text) {
            Err(SmapsError::Format { line, message }) => (line, message),
            other => panic!("expected a format error, got {other:?}"),
        }
    }

    /// Usage with the fields that are not zero in the sample (kB) and the page size of 4 kB.
    #[allow(clippy::too_many_arguments)]
    fn usage(
        rss: u64,
        pss: u64,
        pss_dirty: u64,
        shared_clean: u64,
        private_clean: u64,
        private_dirty: u64,
        referenced: u64,
        anonymous: u64,
        vmflags: &str,
    ) -> Usage {
        Usage {
            rss: rss * KB,
            pss: pss * KB,
            pss_dirty: pss_dirty * KB,
            shared_clean: shared_clean * KB,
            private_clean: private_clean * KB,
            private_dirty: private_dirty * KB,
            referenced: referenced * KB,
            anonymous: anonymous * KB,
            kernel_page_size: 4 * KB,
            vmflags: vmflags.into(),
            ..Usage::default()
        }
    }

    fn region(
        range: (u64, u64),
        perms: &str,
        offset: u64,
        dev: (u32, u32),
        inode: u64,
        backing: Backing,
        usage: Usage,
    ) -> Region {
        Region {
            start: VirtAddr(range.0),
            end: VirtAddr(range.1),
            perms: Perms::parse(perms.as_bytes()).unwrap(),
            offset: FileOffset(offset),
            dev,
            inode,
            backing,
            usage: Some(usage),
        }
    }

    fn file(path: &str) -> Backing {
        Backing::File {
            path: PathBuf::from(path),
            deleted: false,
        }
    }

    fn expected_sample() -> Vec<Region> {
        let cat = || file("/usr/bin/cat");
        let libc = file("/usr/lib/x86_64-linux-gnu/libc.so.6");
        let none = Backing::Anonymous;
        vec![
            region(
                (0x55ee7971d000, 0x55ee7971f000),
                "r--p",
                0,
                (0xfe, 0),
                247030,
                cat(),
                usage(8, 8, 0, 0, 8, 0, 8, 0, "rd mr mw me"),
            ),
            region(
                (0x55ee7971f000, 0x55ee79724000),
                "r-xp",
                0x2000,
                (0xfe, 0),
                247030,
                cat(),
                usage(20, 20, 0, 0, 20, 0, 20, 0, "rd ex mr mw me"),
            ),
            region(
                (0x55ee964a9000, 0x55ee964ca000),
                "rw-p",
                0,
                (0, 0),
                0,
                Backing::Heap,
                usage(16, 16, 16, 0, 0, 16, 16, 16, "rd wr mr mw me ac"),
            ),
            region(
                (0x7f7174012000, 0x7f7174034000),
                "rw-p",
                0,
                (0, 0),
                0,
                none,
                usage(8, 8, 8, 0, 0, 8, 8, 8, "rd wr mr mw me ac"),
            ),
            region(
                (0x7f71740bd000, 0x7f7174213000),
                "r-xp",
                0x26000,
                (0xfe, 0),
                326279,
                libc,
                usage(844, 129, 0, 836, 8, 0, 844, 0, "rd ex mr mw me"),
            ),
            region(
                (0x7f717428a000, 0x7f717428c000),
                "r-xp",
                0,
                (0, 0),
                0,
                Backing::Vdso,
                usage(4, 0, 0, 4, 0, 0, 4, 0, "rd ex mr mw me de"),
            ),
            region(
                (0x7ffeacebf000, 0x7ffeacee0000),
                "rw-p",
                0,
                (0, 0),
                0,
                Backing::Stack,
                usage(12, 12, 12, 0, 0, 12, 12, 12, "rd wr mr mw me gd ac"),
            ),
            region(
                (0xffffffffff600000, 0xffffffffff601000),
                "--xp",
                0,
                (0, 0),
                0,
                Backing::Vsyscall,
                usage(0, 0, 0, 0, 0, 0, 0, 0, "ex"),
            ),
        ]
    }

    #[test]
    fn real_smaps_exact_values() {
        let list = ok(SAMPLE.as_bytes());
        let want = expected_sample();
        assert_eq!(list.len(), want.len());
        for (got, want) in list.iter().zip(&want) {
            assert_eq!(got, want);
        }
        let libc = list[4].usage.as_ref().unwrap();
        assert_eq!(libc.shared(), 836 * KB);
        assert_eq!(libc.private(), 8 * KB);
        assert!(libc.has_flag("ex") && !libc.has_flag("wr"));
    }

    #[test]
    fn final_newline_is_optional_and_empty_text_has_no_regions() {
        let trimmed = SAMPLE.trim_end_matches('\n');
        assert_eq!(ok(trimmed.as_bytes()), expected_sample());
        assert!(ok(b"").is_empty());
    }

    /// The fast path (fixed columns) and the general one give the same answers: the sample with
    /// its field lines respaced parses the same, and so do values too wide for the columns.
    #[test]
    fn layout_does_not_change_values() {
        let respaced: String = SAMPLE
            .lines()
            .map(|l| match l.split_once(':') {
                Some((key, value)) if !key.contains(' ') => format!("{key}: {}\n", value.trim()),
                _ => format!("{l}\n"),
            })
            .collect();
        assert_ne!(respaced, SAMPLE);
        assert_eq!(ok(respaced.as_bytes()), expected_sample());
        let text = format!(
            "{HEADER_LIBC}\nSize:           134217728 kB\nRss:            123456789 kB\n\
             Swap:            99999999 kB\nTHPeligible:    123456789\n"
        );
        let u = ok(text.as_bytes())[0].usage.clone().unwrap();
        assert_eq!((u.rss, u.swap), (123456789 * KB, 99999999 * KB));
    }

    /// `head -60` of the same file: two whole regions and the first lines of a third.
    #[test]
    fn head_60_keeps_the_fields_it_has() {
        let head: String = SAMPLE.lines().take(60).map(|l| format!("{l}\n")).collect();
        let list = ok(head.as_bytes());
        assert_eq!(list.len(), 3);
        assert_eq!(list[..2], expected_sample()[..2]);
        let third = list[2].usage.as_ref().unwrap();
        assert_eq!(third.rss, 16 * KB);
        assert_eq!(third.pss, 16 * KB);
        assert_eq!(third.pss_dirty, 16 * KB);
        assert_eq!(third.private_dirty, 0, "Private_Dirty is line 63");
        assert_eq!(third.vmflags, "");
    }

    const HEADER_LIBC: &str = "7f71740bd000-7f7174213000 r-xp 00026000 fe:00 326279                     /usr/lib/x86_64-linux-gnu/libc.so.6";

    #[test]
    fn hard_names_in_headers() {
        let text = "\
7f66924c3000-7f66924c4000 r--s 00000000 fe:00 10010848                   /path/with spaces/file name
Rss:                   4 kB
VmFlags: rd sh mr ms 
7f66924c4000-7f66924c5000 r--s 00000000 fe:00 10010849                   /tmp/a b  (deleted)
Rss:                   4 kB
7f66924c5000-7f66924c6000 r--p 00000000 fe:00 10010850                   /tmp/new\\012line: Rss:  4 kB
Pss:                   4 kB
7f66924c6000-7f66924c7000 rw-s 00000000 00:01 2051                       /memfd:fixture memfd (deleted)
Shared_Dirty:          4 kB
7f66924c7000-7f66924c8000 rw-s 00000000 00:01 0                          /SYSV00000000 (deleted)
7f1c4a200000-7f1c4a400000 rw-p 00000000 00:00 0                          [anon:jit code cache]
Private_Dirty:         8 kB
";
        let list = ok(text.as_bytes());
        let backings: Vec<_> = list.iter().map(|r| r.backing.clone()).collect();
        assert_eq!(
            backings,
            [
                file("/path/with spaces/file name"),
                Backing::File {
                    path: PathBuf::from("/tmp/a b "),
                    deleted: true
                },
                file("/tmp/new\nline: Rss:  4 kB"),
                Backing::Memfd {
                    name: "fixture memfd".into()
                },
                Backing::SysV { key: 0 },
                Backing::AnonNamed {
                    name: "jit code cache".into()
                },
            ]
        );
        let u = |i: usize| list[i].usage.clone().unwrap();
        assert_eq!(u(0).rss, 4 * KB);
        assert_eq!(u(0).vmflags, "rd sh mr ms");
        assert_eq!(u(1).rss, 4 * KB);
        assert_eq!((u(2).rss, u(2).pss), (0, 4 * KB));
        assert_eq!(u(3).shared_dirty, 4 * KB);
        // No fields at all: usage is there, all zeros.
        assert_eq!(u(4), Usage::default());
        assert_eq!(u(5).private_dirty, 8 * KB);
    }

    #[test]
    fn thp_sums_three_fields_and_unknown_keys_are_skipped() {
        let text = format!(
            "{HEADER_LIBC}
Size:               2048 kB
KernelPageSize:     2048 kB
Name:           [anon:huge]
Rss:                6144 kB
AnonHugePages:      2048 kB
ShmemPmdMapped:     2048 kB
FilePmdMapped:      2048 kB
AnonCont64K:           0 kB
Gen:                   3
Some_Future_Field: whatever text: with colons
THPeligible:           1
ProtectionKey:         0
VmFlags: rd ex mr mw me hg sl 
"
        );
        let list = ok(text.as_bytes());
        let u = list[0].usage.as_ref().unwrap();
        assert_eq!(u.thp, 6144 * KB);
        assert_eq!(u.rss, 6144 * KB);
        assert_eq!(u.kernel_page_size, 2048 * KB);
        assert_eq!(u.vmflags, "rd ex mr mw me hg sl");
        assert!(u.has_flag("sl"));
    }

    #[test]
    fn errors_name_the_line() {
        // A field before any header.
        let (line, msg) = err(b"Rss:                   4 kB\n");
        assert_eq!(line, 1);
        assert!(msg.contains("before any mapping header"), "{msg}");
        // Bad values of known size fields.
        for bad in [
            "Rss:                   x kB",
            "Rss:                   4",
            "Rss:                   4 MB",
            "Rss:                    kB",
            "Rss:                   4 kB trailing",
            "Rss:                   -4 kB",
            "Rss: 99999999999999999999 kB",
            // Fits in u64 as kB, not as bytes.
            "Rss: 18446744073709551 kB",
        ] {
            let text = format!("{HEADER_LIBC}\nSize: 4 kB\n{bad}\n");
            let (line, msg) = err(text.as_bytes());
            assert_eq!(line, 3, "{bad}");
            assert!(msg.contains("bad size"), "{bad}: {msg}");
        }
        // The largest value that fits.
        let text = format!("{HEADER_LIBC}\nRss: 18014398509481983 kB\n");
        assert_eq!(
            ok(text.as_bytes())[0].usage.as_ref().unwrap().rss,
            18014398509481983 * KB
        );
        // THP parts whose sum overflows.
        let text = format!(
            "{HEADER_LIBC}\nAnonHugePages: 18014398509481983 kB\nFilePmdMapped: 18014398509481983 kB\n"
        );
        assert_eq!(err(text.as_bytes()).0, 3);
        // A bad header after good regions: the maps parser's message, our line number.
        let text = format!("{SAMPLE}7f00-7e00 r--p 00000000 00:00 0\n");
        let (line, msg) = err(text.as_bytes());
        assert_eq!(line, 209);
        assert!(msg.contains("address range"), "{msg}");
        // An empty line.
        let text = format!("{HEADER_LIBC}\n\nRss: 4 kB\n");
        assert_eq!(err(text.as_bytes()), (2, "empty line".to_owned()));
        // A line that is neither.
        let (line, msg) = err(b"hello world\n");
        assert_eq!(line, 1);
        assert!(msg.contains("start address"), "{msg}");
    }

    /// A Read that hands out the text a few bytes at a time (1, 2, ... 7, 1, 2...).
    struct Dribble<'a> {
        text: &'a [u8],
        step: usize,
    }

    impl Read for Dribble<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.step = self.step % 7 + 1;
            let n = self.step.min(buf.len()).min(self.text.len());
            buf[..n].copy_from_slice(&self.text[..n]);
            self.text = &self.text[n..];
            Ok(n)
        }
    }

    /// A header with a path longer than the small buffers below.
    fn long_text() -> String {
        let long = format!("/tmp/{}", "long name ".repeat(300));
        format!(
            "{SAMPLE}7f0000000000-7f0000001000 r--p 00000000 fe:00 1                          {long}\nRss: 4 kB\nVmFlags: rd \n{SAMPLE}"
        )
    }

    #[test]
    fn chunk_boundaries_do_not_matter() {
        for text in [SAMPLE.to_owned(), long_text()] {
            let text = text.as_bytes();
            let whole = ok(text);
            let dribbled = parse_smaps(Dribble { text, step: 0 }).unwrap();
            assert_eq!(dribbled, whole);
            // Tiny buffers: the partial line is carried and the buffer grows for the long line.
            for capacity in [1, 3, 64, 100, 4096] {
                let got =
                    parse_with_buffer::<_, Region>(Dribble { text, step: 0 }, capacity).unwrap();
                assert_eq!(got, whole, "capacity {capacity}");
                let got = parse_with_buffer::<_, Region>(Cursor::new(text), capacity).unwrap();
                assert_eq!(got, whole, "capacity {capacity}");
            }
        }
    }

    /// A Read that fails with EINTR now and then, then with a real error.
    struct Flaky<'a> {
        text: &'a [u8],
        calls: usize,
    }

    impl Read for Flaky<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.calls += 1;
            if self.calls.is_multiple_of(3) {
                return Err(ErrorKind::Interrupted.into());
            }
            if self.text.is_empty() {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            let n = 10.min(buf.len()).min(self.text.len());
            buf[..n].copy_from_slice(&self.text[..n]);
            self.text = &self.text[n..];
            Ok(n)
        }
    }

    #[test]
    fn interrupted_reads_retry_and_errors_pass_through() {
        let r = parse_smaps(Flaky {
            text: SAMPLE.as_bytes(),
            calls: 0,
        });
        match r {
            Err(SmapsError::Io(e)) => assert_eq!(e.raw_os_error(), Some(libc::ESRCH)),
            other => panic!("expected the read error, got {other:?}"),
        }
    }

    #[test]
    fn truncated_text() {
        let full = expected_sample();
        let text = SAMPLE.as_bytes();
        for cut in 0..text.len() {
            let prefix = &text[..cut];
            let at_line_end = cut == 0 || text[cut - 1] == b'\n';
            let headers = SAMPLE[..cut]
                .lines()
                .filter(|l| matches!(l.as_bytes().first(), Some(b'0'..=b'9' | b'a'..=b'f')))
                .count();
            match parse(prefix) {
                Ok(list) => {
                    // Whole regions are exact; the last one has the fields seen so far.
                    assert!(list.len() <= full.len());
                    if let Some((last, whole)) = list.split_last() {
                        assert_eq!(whole, &full[..whole.len()], "cut at {cut}");
                        assert_eq!(last.start, full[list.len() - 1].start);
                    }
                    if at_line_end {
                        assert_eq!(list.len(), headers, "cut at {cut}");
                    }
                }
                Err(SmapsError::Format { line, .. }) => {
                    assert!(!at_line_end, "cut at {cut}: a line boundary must parse");
                    // The cut line is the last one.
                    assert_eq!(line, SAMPLE[..cut].lines().count(), "cut at {cut}");
                }
                Err(e) => panic!("cut at {cut}: {e}"),
            }
        }
    }

    /// A tiny deterministic generator (xorshift) for garbage.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x9e3779b97f4a7c15;
        // Random bytes, biased towards the characters that matter to the parser.
        const ALPHABET: &[u8] = b"0123456789abcdef-: \nkBRssPs_VmFlags[]()/\\\xff\x00";
        for len in [0, 1, 2, 5, 30, 200, 5000] {
            for _ in 0..200 {
                let text: Vec<u8> = (0..len)
                    .map(|_| ALPHABET[(xorshift(&mut seed) % ALPHABET.len() as u64) as usize])
                    .collect();
                let _ = parse(&text);
                let _ = parse_with_buffer::<_, Region>(Cursor::new(&text), 7);
            }
        }
        // The real text with a few bytes changed.
        for _ in 0..2000 {
            let mut text = SAMPLE.as_bytes().to_vec();
            for _ in 0..1 + xorshift(&mut seed) % 4 {
                let i = (xorshift(&mut seed) % text.len() as u64) as usize;
                text[i] = xorshift(&mut seed) as u8;
            }
            let _ = parse(&text);
        }
    }

    /// A line longer than the limit is an error, not an unbounded buffer.
    #[test]
    fn endless_line_is_refused() {
        let text = vec![b'7'; MAX_LINE + 10];
        let (line, msg) = err(&text);
        assert_eq!(line, 1);
        assert!(msg.contains("longer than"), "{msg}");
        // One just under the limit still parses (as a bad header here).
        let mut text = SAMPLE.as_bytes().to_vec();
        text.extend(vec![b'7'; MAX_LINE - 1]);
        text.push(b'\n');
        let (line, msg) = err(&text);
        assert_eq!(line, 209);
        assert!(msg.contains("start address"), "{msg}");
    }

    /// Synthetic smaps of `n` regions, shaped like the kernel's (field widths, every field of
    /// 6.18, alternating file-backed and anonymous mappings).
    fn synthetic(n: usize) -> String {
        use std::fmt::Write;
        let mut s = String::with_capacity(n * 900);
        let mut addr = 0x7f00_0000_0000u64;
        for i in 0..n {
            let (start, end) = (addr, addr + 0x1000 * (1 + i as u64 % 3));
            addr = end + 0x1000;
            if i % 2 == 0 {
                let _ = writeln!(
                    s,
                    "{start:x}-{end:x} r--p {:08x} fe:00 {:<26}/usr/lib/x86_64-linux-gnu/libexample-{}.so.6",
                    i * 4096,
                    326279 + i,
                    i % 50
                );
            } else {
                let _ = writeln!(s, "{start:x}-{end:x} rw-p 00000000 00:00 0 ");
            }
            let kb = |k: usize| (i * 7 + k * 13) % 5000;
            for (k, key) in [
                "Size:           ",
                "KernelPageSize: ",
                "MMUPageSize:    ",
                "Rss:            ",
                "Pss:            ",
                "Pss_Dirty:      ",
                "Shared_Clean:   ",
                "Shared_Dirty:   ",
                "Private_Clean:  ",
                "Private_Dirty:  ",
                "Referenced:     ",
                "Anonymous:      ",
                "KSM:            ",
                "LazyFree:       ",
                "AnonHugePages:  ",
                "ShmemPmdMapped: ",
                "FilePmdMapped:  ",
                "Shared_Hugetlb: ",
                "Private_Hugetlb: ",
                "Swap:           ",
                "SwapPss:        ",
                "Locked:         ",
            ]
            .iter()
            .enumerate()
            {
                let width = if key.len() > 16 { 7 } else { 8 };
                let _ = writeln!(s, "{key}{:>width$} kB", kb(k));
            }
            s.push_str("THPeligible:           0\nProtectionKey:         0\n");
            s.push_str(if i % 2 == 0 {
                "VmFlags: rd mr mw me sd \n"
            } else {
                "VmFlags: rd wr mr mw me ac sd \n"
            });
        }
        s
    }

    #[test]
    fn synthetic_text_parses() {
        let list = ok(synthetic(100).as_bytes());
        assert_eq!(list.len(), 100);
        let u = list[3].usage.as_ref().unwrap();
        // Region 3's Rss, the 4th key: (i * 7 + k * 13) % 5000 kB.
        assert_eq!(u.rss, (3 * 7 + 3 * 13) * KB);
        assert_eq!(u.vmflags, "rd wr mr mw me ac sd");
        assert_eq!(list[3].backing, Backing::Anonymous);
    }

    /// `cargo test --release --lib smaps -- --ignored --nocapture`: parse cost of a 60,000-region
    /// smaps held in memory (the kernel's own cost of producing it is not included).
    #[test]
    #[ignore]
    fn parse_cost_60k_regions() {
        /// CPU time of this process (both threads): on a shared machine the wall clock also
        /// counts the time other processes hold the CPU.
        fn cpu_time() -> std::time::Duration {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: clock_gettime writes one timespec through a valid pointer.
            let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
            assert_eq!(rc, 0);
            std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
        }
        const N: usize = 60_000;
        let text = synthetic(N);
        let (mut wall, mut cpu) = (std::time::Duration::MAX, std::time::Duration::MAX);
        for _ in 0..25 {
            let (w, c) = (std::time::Instant::now(), cpu_time());
            let list = parse_smaps(Cursor::new(text.as_bytes())).unwrap();
            cpu = cpu.min(cpu_time() - c);
            wall = wall.min(w.elapsed());
            assert_eq!(list.len(), N);
        }
        println!(
            "parse_smaps: {N} regions, {:.1} MB from memory: best wall {:.1} ms, best CPU {:.1} \
             ms = {:.0} ns/region, {:.2} GB/s",
            text.len() as f64 / 1e6,
            wall.as_secs_f64() * 1e3,
            cpu.as_secs_f64() * 1e3,
            cpu.as_nanos() as f64 / N as f64,
            text.len() as f64 / cpu.as_secs_f64() / 1e9
        );
    }
}
