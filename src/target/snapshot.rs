//! Saved snapshots: the memory map of one moment (every region with its usage, kind and detail,
//! exactly as `regions` shows it), the process facts and the threads, as versioned JSON; and
//! [`SnapshotTarget`], the read-only target that opens one (`vmscope --snapshot FILE`). A
//! snapshot holds the map, not the memory: reading bytes, registers and control answer
//! [`Error::Unsupported`] naming the snapshot.

use super::{ProcessFacts, Syscall, Target, TargetInfo, TargetKind, Thread, UserSpace};
use crate::addr::{FileOffset, VirtAddr};
use crate::command::regions::Row;
use crate::error::{Error, Result};
use crate::regions::classify::{self, Explained};
use crate::regions::elf::ImagePart;
use crate::regions::kind::{Kind, Sharing};
use crate::regions::{Backing, Perms, Region, Usage, summary};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Serialize, Serializer};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The format written by this vmscope; files with a higher version are refused.
pub const VERSION: u32 = 1;
/// The `format` field every snapshot file starts with.
pub const FORMAT: &str = "vmscope snapshot";

/// One moment of a target's memory map, in memory: what `snapshot save` writes and what `diff`
/// compares. `regions` records one in the session too (without threads).
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub pid: i32,
    pub exe: Option<PathBuf>,
    pub arch: String,
    pub page_size: u64,
    /// The addresses the process could map (free gaps are counted inside).
    pub user_space: UserSpace,
    /// When it was taken, in milliseconds since the Unix epoch.
    pub taken_at_ms: u64,
    /// The process facts (`info`), when they were read.
    pub facts: Option<ProcessFacts>,
    pub threads: Vec<Thread>,
    /// Every region, classified, sorted by address.
    pub regions: Arc<Vec<Explained>>,
    /// Whether the regions carry their usage (RSS, dirty, swap...).
    pub usage: bool,
    /// Where it came from, for people: `the map `regions` showed`, `the snapshot taken`, `now`,
    /// `snapshot FILE`.
    pub origin: String,
}

impl Snapshot {
    /// Takes a snapshot of `target` now: regions with usage (without, where the target has no
    /// usage figures), classified, with the process facts and the threads.
    pub fn take(target: &mut dyn Target) -> Result<Snapshot> {
        let explained = classify::explain_with_usage(target)?;
        let threads = target.threads()?;
        let facts = target.facts()?;
        let mut snap = Snapshot::record(target, Arc::new(explained));
        snap.facts = Some(facts);
        snap.threads = threads;
        snap.origin = "the snapshot taken".into();
        Ok(snap)
    }

    /// A snapshot of regions already classified (by `regions`), stamped now, with the process
    /// facts when they can be read; no threads.
    pub fn record(target: &mut dyn Target, regions: Arc<Vec<Explained>>) -> Snapshot {
        let facts = target.facts().ok();
        let info = target.info();
        Snapshot {
            pid: info.pid,
            exe: info.exe.clone(),
            arch: info.arch.to_string(),
            page_size: info.page_size,
            user_space: info.user_space,
            taken_at_ms: now_ms(),
            facts,
            threads: Vec::new(),
            usage: regions.iter().any(|e| e.region.usage.is_some()),
            regions,
            origin: "the map `regions` showed".into(),
        }
    }

    /// The time it was taken, as RFC 3339 UTC (`2025-06-01T12:00:00.123Z`).
    pub fn taken_at(&self) -> String {
        rfc3339(self.taken_at_ms)
    }

    /// Writes it as JSON to `w`.
    pub fn write_json(&self, w: impl Write) -> std::result::Result<(), serde_json::Error> {
        let gaps = summary::gaps(&self.regions, self.user_space);
        let sum = summary::summarize(&self.regions, &gaps);
        let doc = SnapshotDoc {
            format: FORMAT,
            version: VERSION,
            pid: self.pid,
            exe: self.exe.as_ref().map(|p| p.to_string_lossy().into_owned()),
            arch: &self.arch,
            page_size: self.page_size,
            user_space: self.user_space,
            taken_at: self.taken_at(),
            usage: self.usage,
            facts: self.facts.as_ref(),
            threads: &self.threads,
            regions: RegionsSer(&self.regions),
            summary: &sum.rows,
            totals: &sum.totals,
            largest_free: sum.largest_free.as_ref(),
        };
        serde_json::to_writer(w, &doc)
    }

    /// Saves it to `path`: written beside it under a temporary name, then renamed, so a reader
    /// never sees half a file and a failed save leaves no file behind.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let what = |verb: &str| format!("{verb} snapshot {}", path.display());
        let result = (|| {
            let file = std::fs::File::create(&tmp).map_err(|e| Error::io(what("writing"), e))?;
            let mut w = std::io::BufWriter::new(file);
            self.write_json(&mut w)
                .map_err(|e| Error::io(what("writing"), e.into()))?;
            w.write_all(b"\n")
                .and_then(|()| w.flush())
                .map_err(|e| Error::io(what("writing"), e))?;
            std::fs::rename(&tmp, path).map_err(|e| Error::io(what("writing"), e))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Loads a snapshot file, checking its format and version.
    pub fn load(path: &Path) -> Result<Snapshot> {
        let shown = path.display().to_string();
        let bad = |message: String| Error::BadFile {
            path: shown.clone(),
            message,
        };
        let cannot_read = |e: std::io::Error| bad(format!("cannot read the snapshot: {e}"));
        let file = std::fs::File::open(path).map_err(cannot_read)?;
        // Streamed: a 60,000-region snapshot is 26 MB of JSON, not worth holding twice.
        let doc: LoadedDoc =
            match serde_json::from_reader(std::io::BufReader::with_capacity(1 << 16, file)) {
                Ok(doc) => doc,
                Err(e) if e.is_io() => return Err(bad(format!("cannot read the snapshot: {e}"))),
                Err(e) => {
                    let text = std::fs::read(path).map_err(cannot_read)?;
                    return Err(bad(explain_load_error(&text, &e)));
                }
            };
        if doc.format != FORMAT {
            return Err(bad(format!(
                "not a vmscope snapshot (format {:?})",
                doc.format
            )));
        }
        if doc.version > VERSION {
            return Err(bad(format!(
                "snapshot format version {} is newer than this vmscope reads ({VERSION})",
                doc.version
            )));
        }
        let taken_at_ms = parse_rfc3339(&doc.taken_at)
            .ok_or_else(|| bad(format!("`taken_at` is not a time: {:?}", doc.taken_at)))?;
        let mut regions = Vec::with_capacity(doc.regions.len());
        let mut last_end = VirtAddr(0);
        for (i, saved) in doc.regions.into_iter().enumerate() {
            let e = saved
                .into_explained(doc.usage)
                .map_err(|m| bad(format!("region {i}: {m}")))?;
            if e.region.start < last_end {
                return Err(bad(format!(
                    "region {i} at {} overlaps or precedes the one before it",
                    e.region.start
                )));
            }
            last_end = e.region.end;
            regions.push(e);
        }
        let user_space = doc
            .user_space
            .unwrap_or_else(|| UserSpace::linux(&doc.arch));
        Ok(Snapshot {
            pid: doc.pid,
            exe: doc.exe.map(PathBuf::from),
            arch: doc.arch,
            page_size: doc.page_size,
            user_space,
            taken_at_ms,
            facts: doc.facts,
            threads: doc
                .threads
                .into_iter()
                .map(SavedThread::into_thread)
                .collect(),
            regions: Arc::new(regions),
            usage: doc.usage,
            origin: format!("snapshot {shown}"),
        })
    }
}

/// Why a file did not load: not JSON, not a snapshot, a newer version, or a bad field.
fn explain_load_error(text: &[u8], e: &serde_json::Error) -> String {
    #[derive(Deserialize)]
    struct Probe {
        format: Option<String>,
        version: Option<u64>,
    }
    match serde_json::from_slice::<Probe>(text) {
        Err(_) if e.is_eof() && text.starts_with(b"{\"format\":\"vmscope snapshot\"") => {
            format!("truncated snapshot: the JSON ends early ({e})")
        }
        Err(_) if e.is_syntax() || e.is_eof() => format!("not a vmscope snapshot: not JSON ({e})"),
        Err(_) => "not a vmscope snapshot (not a JSON object)".into(),
        Ok(Probe { format, .. }) if format.as_deref() != Some(FORMAT) => {
            "not a vmscope snapshot (no \"format\": \"vmscope snapshot\")".into()
        }
        Ok(Probe {
            version: Some(v), ..
        }) if v > u64::from(VERSION) => {
            format!("snapshot format version {v} is newer than this vmscope reads ({VERSION})")
        }
        _ => format!("corrupt snapshot: {e}"),
    }
}

/// The file as written.
#[derive(Serialize)]
struct SnapshotDoc<'a> {
    format: &'static str,
    version: u32,
    pid: i32,
    exe: Option<String>,
    arch: &'a str,
    page_size: u64,
    user_space: UserSpace,
    taken_at: String,
    usage: bool,
    facts: Option<&'a ProcessFacts>,
    threads: &'a [Thread],
    regions: RegionsSer<'a>,
    summary: &'a [summary::KindSummary],
    totals: &'a crate::regions::Usage,
    largest_free: Option<&'a summary::Gap>,
}

/// The file as read (the summary is recomputed, not trusted).
#[derive(Deserialize)]
struct LoadedDoc {
    #[serde(default)]
    format: String,
    version: u32,
    pid: i32,
    exe: Option<String>,
    arch: String,
    page_size: u64,
    /// Absent from files of vmscope before it was recorded: Linux's for the arch then.
    #[serde(default)]
    user_space: Option<UserSpace>,
    taken_at: String,
    usage: bool,
    facts: Option<ProcessFacts>,
    threads: Vec<SavedThread>,
    regions: Vec<SavedRegion>,
}

/// Regions written one at a time, as `regions --json` rows plus what backs each.
struct RegionsSer<'a>(&'a [Explained]);

impl Serialize for RegionsSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for e in self.0 {
            seq.serialize_element(&SavedRegionRef {
                row: Row::region(e),
                backing: &e.region.backing,
            })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct SavedRegionRef<'a> {
    #[serde(flatten)]
    row: Row<'a>,
    backing: &'a Backing,
}

/// A region in the file: the `regions --json` row and its backing (which the row's path and
/// detail do not always tell: `[stack]`, a deleted file, a memfd). Read field by field rather
/// than as a flattened [`Row`]: serde buffers every field of a flattened struct, which made
/// loading 60,000 regions several times slower. `size` and `path` follow from the rest.
#[derive(Deserialize)]
struct SavedRegion {
    start: VirtAddr,
    end: VirtAddr,
    perms: String,
    offset: FileOffset,
    dev: String,
    inode: u64,
    kind: Kind,
    detail: String,
    sharing: Option<Sharing>,
    tid: Option<i32>,
    // Usage's fields, as the row holds them.
    #[serde(default)]
    rss: u64,
    #[serde(default)]
    pss: u64,
    #[serde(default)]
    pss_dirty: u64,
    #[serde(default)]
    shared_clean: u64,
    #[serde(default)]
    shared_dirty: u64,
    #[serde(default)]
    private_clean: u64,
    #[serde(default)]
    private_dirty: u64,
    #[serde(default)]
    referenced: u64,
    #[serde(default)]
    anonymous: u64,
    #[serde(default)]
    swap: u64,
    #[serde(default)]
    swap_pss: u64,
    #[serde(default)]
    locked: u64,
    #[serde(default)]
    thp: u64,
    #[serde(default)]
    kernel_page_size: u64,
    #[serde(default)]
    vmflags: String,
    backing: Backing,
}

impl SavedRegion {
    fn into_explained(self, usage: bool) -> std::result::Result<Explained, String> {
        let row = self;
        if row.end < row.start {
            return Err(format!(
                "it ends ({}) before it starts ({})",
                row.end, row.start
            ));
        }
        let perms = Perms::parse(row.perms.as_bytes())
            .ok_or_else(|| format!("bad permissions {:?}", row.perms))?;
        let dev = row
            .dev
            .split_once(':')
            .and_then(|(a, b)| {
                Some((
                    u32::from_str_radix(a, 16).ok()?,
                    u32::from_str_radix(b, 16).ok()?,
                ))
            })
            .ok_or_else(|| format!("bad device {:?}", row.dev))?;
        let part = (row.kind == Kind::Image)
            .then(|| {
                [
                    ImagePart::Text,
                    ImagePart::Rodata,
                    ImagePart::Data,
                    ImagePart::Relro,
                    ImagePart::Bss,
                ]
                .into_iter()
                .find(|p| row.detail.ends_with(p.name()))
            })
            .flatten();
        let region = Region {
            start: row.start,
            end: row.end,
            perms,
            offset: row.offset,
            dev,
            inode: row.inode,
            backing: row.backing,
            usage: usage.then_some(Usage {
                rss: row.rss,
                pss: row.pss,
                pss_dirty: row.pss_dirty,
                shared_clean: row.shared_clean,
                shared_dirty: row.shared_dirty,
                private_clean: row.private_clean,
                private_dirty: row.private_dirty,
                referenced: row.referenced,
                anonymous: row.anonymous,
                swap: row.swap,
                swap_pss: row.swap_pss,
                locked: row.locked,
                thp: row.thp,
                kernel_page_size: row.kernel_page_size,
                vmflags: row.vmflags.into(),
            }),
        };
        Ok(Explained {
            sharing: row.sharing.unwrap_or_else(|| Sharing::of(&region)),
            region,
            kind: row.kind,
            detail: row.detail,
            tid: row.tid,
            part,
        })
    }
}

/// A thread as written (`Thread`'s JSON); the syscall name is looked up again by number.
#[derive(Deserialize)]
struct SavedThread {
    tid: i32,
    name: String,
    state: char,
    syscall: Option<SavedSyscall>,
    sp: Option<VirtAddr>,
    pc: Option<VirtAddr>,
}

#[derive(Deserialize)]
struct SavedSyscall {
    number: i64,
}

impl SavedThread {
    fn into_thread(self) -> Thread {
        Thread {
            tid: self.tid,
            name: self.name,
            state: self.state,
            syscall: self.syscall.map(|s| Syscall {
                number: s.number,
                name: syscall_name(s.number),
            }),
            sp: self.sp,
            pc: self.pc,
        }
    }
}

fn syscall_name(number: i64) -> Option<&'static str> {
    #[cfg(target_os = "linux")]
    {
        super::linux::procfs::syscall_name(number)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = number;
        None
    }
}

/// A saved snapshot opened as a target: the map, the facts and the threads of a past moment.
pub struct SnapshotTarget {
    info: TargetInfo,
    /// How errors name it: `snapshot before.json (process 4242 at 2025-06-01T12:00:00.000Z)`.
    name: String,
    snapshot: Snapshot,
}

/// The architecture names vmscope knows, as the `&'static str` [`TargetInfo`] holds.
fn static_arch(arch: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "x86_64",
        "aarch64",
        "x86",
        "arm",
        "riscv64",
        "powerpc64",
        "s390x",
        "loongarch64",
        "mips64",
    ];
    KNOWN.into_iter().find(|k| *k == arch).unwrap_or("unknown")
}

impl SnapshotTarget {
    pub fn open(path: &Path) -> Result<SnapshotTarget> {
        Ok(Self::new(path, Snapshot::load(path)?))
    }

    pub fn new(path: &Path, snapshot: Snapshot) -> SnapshotTarget {
        SnapshotTarget {
            info: TargetInfo {
                pid: snapshot.pid,
                exe: snapshot.exe.clone(),
                arch: static_arch(&snapshot.arch),
                kind: TargetKind::Snapshot,
                page_size: snapshot.page_size,
                user_space: snapshot.user_space,
            },
            name: format!(
                "snapshot {} (process {} at {})",
                path.display(),
                snapshot.pid,
                snapshot.taken_at()
            ),
            snapshot,
        }
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }
}

impl Target for SnapshotTarget {
    fn info(&self) -> &TargetInfo {
        &self.info
    }

    fn regions(&mut self) -> Result<Vec<Region>> {
        Ok(self
            .snapshot
            .regions
            .iter()
            .map(|e| Region {
                usage: None,
                ..e.region.clone()
            })
            .collect())
    }

    fn regions_with_usage(&mut self) -> Result<Vec<Region>> {
        if !self.snapshot.usage {
            return Err(self.unsupported("memory usage per region (it was saved without)"));
        }
        Ok(self
            .snapshot
            .regions
            .iter()
            .map(|e| e.region.clone())
            .collect())
    }

    fn classified(
        &mut self,
        regions: Vec<Region>,
    ) -> std::result::Result<Vec<Explained>, Vec<Region>> {
        let saved = &self.snapshot.regions;
        let find = |r: &Region| {
            let i = saved.partition_point(|e| e.region.start < r.start);
            saved.get(i).filter(|e| e.region.end == r.end)
        };
        if !regions.iter().all(|r| find(r).is_some()) {
            return Err(regions);
        }
        Ok(regions
            .into_iter()
            .map(|region| {
                let e = find(&region).expect("checked above");
                Explained {
                    kind: e.kind,
                    detail: e.detail.clone(),
                    sharing: e.sharing,
                    tid: e.tid,
                    part: e.part,
                    region,
                }
            })
            .collect())
    }

    fn mapped_file(&mut self, _region: &Region) -> Result<std::fs::File> {
        Err(self.unsupported("opening mapped files"))
    }

    fn read(&mut self, _addr: VirtAddr, _buf: &mut [u8]) -> Result<usize> {
        Err(self.unsupported("reading memory"))
    }

    fn threads(&mut self) -> Result<Vec<Thread>> {
        Ok(self.snapshot.threads.clone())
    }

    fn facts(&mut self) -> Result<ProcessFacts> {
        self.snapshot
            .facts
            .clone()
            .ok_or_else(|| self.unsupported("process facts (it was saved without)"))
    }

    fn unsupported(&self, what: &str) -> Error {
        Error::Unsupported {
            what: what.to_string(),
            target: format!("{}: it holds the memory map, not the memory", self.name),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A civil date to days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Milliseconds since the epoch as RFC 3339 UTC with milliseconds.
pub fn rfc3339(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ms % 1000
    )
}

/// Parses what [`rfc3339`] writes (fraction optional, `Z` only).
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut date = date.splitn(3, '-');
    let y: i64 = date.next()?.parse().ok()?;
    let mo: u32 = date.next()?.parse().ok()?;
    let d: u32 = date.next()?.parse().ok()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut hms = hms.splitn(3, ':');
    let h: i64 = hms.next()?.parse().ok()?;
    let mi: i64 = hms.next()?.parse().ok()?;
    let sec: i64 = hms.next()?.parse().ok()?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let frac3: String = frac.chars().chain("000".chars()).take(3).collect();
    let ms: i64 = frac3.parse().ok()?;
    let total = (days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec) * 1000 + ms;
    u64::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        for ms in [
            0,
            1_000,
            951_782_400_123,
            1_717_243_200_999,
            4_102_444_800_000,
        ] {
            let s = rfc3339(ms);
            assert_eq!(parse_rfc3339(&s), Some(ms), "{s}");
        }
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2000-13-01T00:00:00Z"), None);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_snapshot_of_this_process_round_trips() {
        let mut me = super::super::attach(std::process::id() as i32).unwrap();
        let snap = Snapshot::take(me.as_mut()).unwrap();
        let mut bytes = Vec::new();
        snap.write_json(&mut bytes).unwrap();
        let dir = std::env::temp_dir().join(format!("vmscope-snap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("me.json");
        snap.save(&path).unwrap();
        let back = Snapshot::load(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(back.regions.len(), snap.regions.len());
        for (a, b) in back.regions.iter().zip(snap.regions.iter()) {
            assert_eq!(a.region, b.region);
            assert_eq!(
                (a.kind, &a.detail, a.tid, a.part),
                (b.kind, &b.detail, b.tid, b.part)
            );
            assert_eq!(a.sharing, b.sharing);
        }
        assert_eq!(back.taken_at_ms, snap.taken_at_ms);
        assert_eq!(back.threads.len(), snap.threads.len());
        let mut again = Vec::new();
        back.write_json(&mut again).unwrap();
        assert_eq!(
            again, bytes,
            "saving a loaded snapshot writes the same file"
        );
    }
}
