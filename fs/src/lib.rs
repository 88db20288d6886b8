//! stockd-fs: the one filesystem seam of stockd's storage crates.
//!
//! **What it owns.** The [`Fs`] trait, the only way `stockd-wal` and
//! `stockd-snapshots` touch files and directories, and two implementations:
//!
//! * [`RealFs`]: `std::fs`, with real `fdatasync` for files and `fsync` of an opened
//!   directory for directory entries. Whole-file reads are memory-mapped.
//! * [`SimFs`]: an in-memory filesystem for tests that models what a real disk keeps
//!   across a power cut. File contents have a durable part and unsynced writes tracked
//!   per 4 KiB page ([`PAGE_SIZE`]); directory entry changes (create, rename, remove,
//!   mkdir) stay volatile until their parent directory is synced.
//!   [`SimFs::power_cut`] keeps the durable state plus a *random subset* of unsynced
//!   pages and unsynced directory entry changes, so a later page of a batch can survive
//!   while an earlier one is lost; positional writes ([`FsFile::write_at`]) are tracked
//!   exactly like appends. Its fault injection fails the N-th write, file sync,
//!   directory sync, rename, remove, create or set_len with an I/O error or "no space"
//!   and counts every operation, so a test can prove a fault really fired.
//!
//! **What it promises.**
//! * `Fs` is object safe, `Send + Sync`, and used as `Arc<dyn Fs>`.
//! * [`FsFile::sync_data`] returning `Ok` means the file's bytes and length survive a
//!   power cut; a directory entry survives once [`Fs::sync_dir`] of its parent
//!   returned `Ok` after the change. Nothing else is promised, and `SimFs` enforces
//!   exactly that: anything not covered by a completed sync may or may not survive.
//! * Files are written by appending ([`FsFile::write_all`] writes at the end), by
//!   positional writes ([`FsFile::write_at`], which may also extend the file; a gap
//!   before `offset` reads as zeros), and shortened with [`FsFile::set_len`]. A
//!   positional write is durable on exactly the same terms as an append: after a
//!   completed `sync_data`, else any of its 4 KiB pages may or may not survive.
//! * Errors are `std::io::Error`s; injected ones say "injected fault" and "no space"
//!   faults have kind [`std::io::ErrorKind::StorageFull`].

mod real;
mod sim;

use std::fmt;
use std::io;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use real::RealFs;
pub use sim::{Fault, FsOp, SimFs, Volatile, PAGE_SIZE};

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name (not a path). Names that are not UTF-8 are skipped by listings.
    pub name: String,
    /// `dir.join(name)`.
    pub path: PathBuf,
    /// A regular file (not a directory or anything else).
    pub is_file: bool,
}

/// What [`Fs::metadata`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    pub len: u64,
    pub is_file: bool,
    pub is_dir: bool,
}

/// A whole file's bytes: memory-mapped (`RealFs`) or owned (`SimFs`, empty files).
pub enum FileBytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m,
            FileBytes::Owned(v) => v,
        }
    }
}

impl fmt::Debug for FileBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileBytes({} bytes)", self.len())
    }
}

/// An open file. Handles opened for reading refuse writes; handles opened for writing
/// append at the end with [`FsFile::write_all`] and write anywhere with
/// [`FsFile::write_at`].
#[allow(clippy::len_without_is_empty)] // `len` is a fallible I/O call, not a collection's
pub trait FsFile: Send + Sync + fmt::Debug {
    /// Appends all of `buf` at the end of the file.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Writes all of `buf` at byte `offset` (`pwrite`), overwriting what is there and
    /// extending the file if it ends before `offset + buf.len()` (a gap between the old
    /// end and `offset` reads as zeros). Durable after `sync_data`, like any write.
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()>;
    /// `fdatasync`: the file's bytes and length are durable when this returns `Ok`.
    fn sync_data(&mut self) -> io::Result<()>;
    /// Truncates or extends (with zeros) to `len` bytes. Durable after `sync_data`.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at or
    /// past the end).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
}

/// The filesystem operations stockd's storage crates use. See the crate docs.
pub trait Fs: Send + Sync + fmt::Debug {
    /// Creates `path` and any missing parents. Not durable until each new entry's
    /// parent directory is synced.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Size and kind of `path` (following symlinks on `RealFs`).
    fn metadata(&self, path: &Path) -> io::Result<Metadata>;
    /// Entries of directory `dir`, in no particular order.
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<DirEntry>>;
    /// Creates a new, empty file for writing; fails if `path` exists.
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;
    /// Creates `path` (or truncates an existing file to 0 bytes) for writing.
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;
    /// Opens an existing file for writing: [`FsFile::write_all`] appends at its end,
    /// [`FsFile::write_at`] writes anywhere (the file is not opened with `O_APPEND`,
    /// which would make Linux ignore `pwrite` offsets).
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;
    /// Opens an existing file read-only.
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;
    /// The whole file (memory-mapped on `RealFs`: do not shorten a file while a map of
    /// it is in use).
    fn read(&self, path: &Path) -> io::Result<FileBytes>;
    /// Atomically renames `from` to `to`, replacing `to`. Durable after the parent
    /// directory is synced.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file. Durable after the parent directory is synced.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the entries of directory `dir` (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive lock named by the file `path` (created if missing), held
    /// until the returned guard is dropped (or, on `RealFs`, the process dies: an
    /// advisory OS file lock). `Ok(None)`: someone else holds it.
    fn try_lock(&self, path: &Path) -> io::Result<Option<FsLock>>;
}

/// A lock taken with [`Fs::try_lock`]; dropping it releases the lock.
pub type FsLock = Box<dyn std::any::Any + Send + Sync>;

/// Writes `bytes` to `path` atomically and durably: a temp file beside it
/// (`<name>.tmp`), fdatasync, rename over `path`, sync the directory. After a power
/// cut `path` holds the old bytes or the new ones, never a mix.
pub fn write_atomic(fs: &dyn Fs, path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_parts(fs, path, &[bytes])
}

/// [`write_atomic`] of the concatenation of `parts`, written one after the other
/// (no copy into one buffer: a snapshot's payload can be large).
pub fn write_atomic_parts(fs: &dyn Fs, path: &Path, parts: &[&[u8]]) -> io::Result<()> {
    let tmp = atomic_temp_path(path);
    {
        let mut f = fs.create(&tmp)?;
        for part in parts {
            f.write_all(part)?;
        }
        f.sync_data()?;
    }
    fs.rename(&tmp, path)?;
    fs.sync_dir(parent_dir(path))
}

/// The temp file [`write_atomic`] writes before renaming it to `path`: `<name>.tmp`
/// beside it.
pub fn atomic_temp_path(path: &Path) -> PathBuf {
    let mut tmp_name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    tmp_name.push(".tmp");
    path.with_file_name(tmp_name)
}

/// The default filesystem: a shared [`RealFs`].
pub fn real() -> Arc<dyn Fs> {
    Arc::new(RealFs)
}

/// The parent directory whose entry names `path` (`"."` for a bare relative name), for
/// syncing after creating, renaming or removing `path`.
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        Some(_) => Path::new("."),
        None => path,
    }
}

/// Creates `dir` and any missing parents, then syncs the parent of each directory it
/// created (top down), so the new entries survive a power cut.
pub fn create_dir_all_durable(fs: &dyn Fs, dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur.filter(|d| !d.as_os_str().is_empty()) {
        if fs.metadata(d).is_ok_and(|m| m.is_dir) {
            break;
        }
        missing.push(d);
        cur = d.parent();
    }
    fs.create_dir_all(dir)?;
    for d in missing.iter().rev() {
        fs.sync_dir(parent_dir(d))?;
    }
    Ok(())
}
