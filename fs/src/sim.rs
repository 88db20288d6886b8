//! `SimFs`: an in-memory filesystem that loses exactly what a real disk may lose.
//!
//! Model. Every file is an inode with a *durable* content (what survives a power cut
//! for certain) and a *current* content (what reads see), plus the set of 4 KiB pages
//! changed since the last `sync_data`. The namespace has a durable and a current
//! version too, plus the ordered list of entry changes (create, mkdir, rename,
//! remove) not yet made durable by a `sync_dir` of their parent.
//!
//! A power cut keeps, independently with probability 1/2 each, every unsynced entry
//! change (applied in order) and every unsynced page; the file length becomes the
//! durable or the current one (a coin flip) stretched to cover every kept page; bytes
//! of a lost page read back as what was durable there, else zeros. Entries whose
//! parent directory did not survive are gone; so are open handles (they answer
//! "stale handle" afterwards).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::{DirEntry, FileBytes, Fs, FsFile, Metadata};

/// The page size of the durability model.
pub const PAGE_SIZE: usize = 4096;

/// An operation kind that [`SimFs`] counts and can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FsOp {
    /// `FsFile::write_all` and `FsFile::write_at`. A failed write first writes the first
    /// half of its buffer (appended, or at its offset).
    Write,
    /// `FsFile::sync_data`.
    FileSync,
    /// `Fs::sync_dir`.
    DirSync,
    /// `Fs::rename`.
    Rename,
    /// `Fs::remove_file`.
    Remove,
    /// `Fs::create_new` and `Fs::create`.
    Create,
    /// `FsFile::set_len`.
    SetLen,
}

/// The error an injected fault returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A generic I/O error (`ErrorKind::Other`).
    Io,
    /// "No space left on device" (`ErrorKind::StorageFull`).
    NoSpace,
}

impl Fault {
    fn error(self, op: FsOp, path: &Path) -> io::Error {
        let what = format!("injected fault: {op:?} on {}", path.display());
        match self {
            Fault::Io => io::Error::other(what),
            Fault::NoSpace => io::Error::new(io::ErrorKind::StorageFull, format!("{what}: no space left on device")),
        }
    }
}

/// One unsynced change a power cut may keep or lose, as shown to the chooser of
/// [`SimFs::power_cut_choosing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Volatile<'a> {
    /// A directory entry change naming this path (for a rename: the new name).
    Entry(&'a Path),
    /// Page `index` (bytes `index * PAGE_SIZE ..`) of the file at `file`.
    Page { file: &'a Path, index: usize },
    /// Whether the file at `file` keeps its current length (else its durable one,
    /// stretched to cover every kept page).
    Length { file: &'a Path },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Dir,
    File(u64),
}

#[derive(Debug, Clone)]
enum Change {
    Set(PathBuf, Node),
    Remove(PathBuf),
    Rename(PathBuf, PathBuf),
}

impl Change {
    /// The directories whose sync makes this change durable.
    fn parents(&self) -> Vec<PathBuf> {
        match self {
            Change::Set(p, _) | Change::Remove(p) => vec![parent(p)],
            Change::Rename(a, b) => vec![parent(a), parent(b)],
        }
    }

    fn apply(&self, ns: &mut BTreeMap<PathBuf, Node>) {
        match self {
            Change::Set(p, n) => {
                ns.insert(p.clone(), *n);
            }
            Change::Remove(p) => {
                ns.remove(p);
            }
            Change::Rename(a, b) => {
                if let Some(n) = ns.remove(a) {
                    ns.insert(b.clone(), n);
                }
            }
        }
    }
}

#[derive(Debug, Default)]
struct Inode {
    current: Vec<u8>,
    durable: Vec<u8>,
    /// Pages changed since the last `sync_data`.
    dirty: BTreeSet<usize>,
}

impl Inode {
    fn touch(&mut self, from: usize, to: usize) {
        if to > from {
            self.dirty.extend(from / PAGE_SIZE..=(to - 1) / PAGE_SIZE);
        }
    }

    fn sync(&mut self) {
        self.durable = self.current.clone();
        self.dirty.clear();
    }
}

#[derive(Debug)]
struct Armed {
    op: FsOp,
    /// Operations of this kind still to pass before the one that fails.
    remaining: u64,
    fault: Fault,
}

#[derive(Debug, Default)]
struct Inner {
    epoch: u64,
    next_ino: u64,
    inodes: BTreeMap<u64, Inode>,
    current: BTreeMap<PathBuf, Node>,
    durable: BTreeMap<PathBuf, Node>,
    unsynced: Vec<Change>,
    armed: Vec<Armed>,
    counts: BTreeMap<FsOp, u64>,
    fired: u64,
    /// Paths locked with `try_lock` (volatile: a power cut or a dropped guard frees).
    locks: std::collections::BTreeSet<PathBuf>,
}

/// In-memory filesystem with a power-cut model and fault injection. Cloning shares the
/// same filesystem. See the module docs for the model.
#[derive(Debug, Clone, Default)]
pub struct SimFs {
    inner: Arc<Mutex<Inner>>,
}

fn norm(path: &Path) -> PathBuf {
    path.components().filter(|c| !matches!(c, Component::CurDir)).collect()
}

fn parent(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn is_root(path: &Path) -> bool {
    path.as_os_str().is_empty() || path.parent().is_none()
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file or directory", path.display()))
}

/// splitmix64: a small seeded generator, so the crate needs no dependency.
struct Rng(u64);

impl Rng {
    fn coin(&mut self) -> bool {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) & 1 == 1
    }
}

impl Inner {
    /// Counts `op` and fires an armed fault for it, if one is due.
    fn check(&mut self, op: FsOp, path: &Path) -> io::Result<()> {
        *self.counts.entry(op).or_default() += 1;
        let mut due = None;
        for (i, a) in self.armed.iter_mut().enumerate().filter(|(_, a)| a.op == op) {
            if a.remaining == 0 {
                due = Some(i);
                break;
            }
            a.remaining -= 1;
        }
        if let Some(i) = due {
            let armed = self.armed.remove(i);
            self.fired += 1;
            return Err(armed.fault.error(op, path));
        }
        Ok(())
    }

    fn is_dir(&self, path: &Path) -> bool {
        is_root(path) || self.current.get(path) == Some(&Node::Dir)
    }

    fn need_parent(&self, path: &Path) -> io::Result<()> {
        if self.is_dir(&parent(path)) {
            Ok(())
        } else {
            Err(not_found(&parent(path)))
        }
    }

    fn change(&mut self, change: Change) {
        change.apply(&mut self.current);
        self.unsynced.push(change);
    }

    fn file(&self, path: &Path) -> io::Result<u64> {
        match self.current.get(path) {
            Some(Node::File(ino)) => Ok(*ino),
            Some(Node::Dir) => {
                Err(io::Error::new(io::ErrorKind::IsADirectory, format!("{} is a directory", path.display())))
            }
            None => Err(not_found(path)),
        }
    }

    fn new_file(&mut self, path: &Path) -> u64 {
        self.next_ino += 1;
        let ino = self.next_ino;
        self.inodes.insert(ino, Inode::default());
        self.change(Change::Set(path.to_path_buf(), Node::File(ino)));
        ino
    }

    fn power_cut(&mut self, keep: &mut dyn FnMut(Volatile<'_>) -> bool) {
        // Directory entries: a subset of the unsynced changes, in order.
        let mut ns = std::mem::take(&mut self.durable);
        for change in std::mem::take(&mut self.unsynced) {
            let named = match &change {
                Change::Set(p, _) | Change::Remove(p) | Change::Rename(_, p) => p.clone(),
            };
            if keep(Volatile::Entry(&named)) {
                change.apply(&mut ns);
            }
        }
        // An entry whose parent directory is gone is gone (parents sort first).
        let mut kept: BTreeMap<PathBuf, Node> = BTreeMap::new();
        for (path, node) in ns {
            let p = parent(&path);
            if is_root(&p) || kept.get(&p) == Some(&Node::Dir) {
                kept.insert(path, node);
            }
        }
        // File contents: durable bytes plus a random subset of unsynced pages.
        let live: BTreeMap<u64, PathBuf> =
            kept.iter().filter_map(|(p, n)| if let Node::File(i) = n { Some((*i, p.clone())) } else { None }).collect();
        self.inodes.retain(|ino, _| live.contains_key(ino));
        for (ino, inode) in self.inodes.iter_mut() {
            let file = &live[ino];
            let kept_pages: Vec<usize> =
                inode.dirty.iter().copied().filter(|&index| keep(Volatile::Page { file, index })).collect();
            let (dlen, clen) = (inode.durable.len(), inode.current.len());
            let mut len = if dlen == clen || keep(Volatile::Length { file }) { clen } else { dlen };
            for &p in &kept_pages {
                if p * PAGE_SIZE < clen {
                    len = len.max(clen.min((p + 1) * PAGE_SIZE));
                }
            }
            let mut bytes = vec![0u8; len];
            let d = dlen.min(len);
            bytes[..d].copy_from_slice(&inode.durable[..d]);
            for &p in &kept_pages {
                let from = p * PAGE_SIZE;
                let to = ((p + 1) * PAGE_SIZE).min(len);
                for (i, b) in bytes.iter_mut().enumerate().take(to).skip(from) {
                    *b = inode.current.get(i).copied().unwrap_or(0);
                }
            }
            inode.current = bytes;
            inode.sync();
        }
        self.current = kept.clone();
        self.durable = kept;
        self.epoch += 1;
    }
}

impl SimFs {
    /// An empty filesystem (only the root directory exists).
    pub fn new() -> SimFs {
        SimFs::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the `n`-th next operation of kind `op` fail with `fault` (`n = 1`: the
    /// very next one). One shot; several may be armed at once.
    pub fn fail_nth(&self, op: FsOp, n: u64, fault: Fault) {
        assert!(n >= 1, "fail_nth counts from 1");
        self.lock().armed.push(Armed { op, remaining: n - 1, fault });
    }

    /// Disarms every fault not yet fired.
    pub fn disarm(&self) {
        self.lock().armed.clear();
    }

    /// How many operations of kind `op` were attempted so far (failed ones included).
    pub fn count(&self, op: FsOp) -> u64 {
        self.lock().counts.get(&op).copied().unwrap_or(0)
    }

    /// How many injected faults fired so far.
    pub fn faults_fired(&self) -> u64 {
        self.lock().fired
    }

    /// A power cut: keeps everything durable plus a random subset (seeded by `seed`)
    /// of the unsynced pages and unsynced directory entry changes. Every open handle
    /// goes stale.
    pub fn power_cut(&self, seed: u64) {
        let mut rng = Rng(seed);
        self.lock().power_cut(&mut |_| rng.coin());
    }

    /// A power cut that loses everything not synced.
    pub fn power_cut_lose_unsynced(&self) {
        self.lock().power_cut(&mut |_| false);
    }

    /// A power cut that keeps everything written (like a process crash).
    pub fn power_cut_keep_all(&self) {
        self.lock().power_cut(&mut |_| true);
    }

    /// A power cut where `keep` decides, for each unsynced change, whether it
    /// survives. Entries are asked first (in the order they were made), then each
    /// surviving file's pages and length.
    pub fn power_cut_choosing(&self, mut keep: impl FnMut(Volatile<'_>) -> bool) {
        self.lock().power_cut(&mut keep);
    }

    /// The indices of the pages of `path` changed since its last `sync_data`.
    pub fn unsynced_pages(&self, path: &Path) -> Vec<usize> {
        let inner = self.lock();
        match inner.file(&norm(path)) {
            Ok(ino) => inner.inodes[&ino].dirty.iter().copied().collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Replaces the current bytes of `path` in place and marks them durable (to model
    /// bit rot in synced data). Panics if `path` is not a file; for tests only.
    pub fn corrupt(&self, path: &Path, offset: usize, f: impl FnOnce(&mut u8)) {
        let mut inner = self.lock();
        let ino = inner.file(&norm(path)).expect("corrupt: no such file");
        let inode = inner.inodes.get_mut(&ino).expect("inode");
        f(&mut inode.current[offset]);
        if offset < inode.durable.len() {
            inode.durable[offset] = inode.current[offset];
        }
    }

    /// Whether `path` exists right now.
    pub fn exists(&self, path: &Path) -> bool {
        let p = norm(path);
        let inner = self.lock();
        is_root(&p) || inner.current.contains_key(&p)
    }

    fn handle(&self, inner: &Inner, ino: u64, path: &Path, writable: bool) -> Box<dyn FsFile> {
        Box::new(SimFile { fs: self.clone(), ino, epoch: inner.epoch, path: path.to_path_buf(), writable })
    }
}

/// The guard of a `SimFs` lock: dropping it frees the path.
struct SimLock {
    fs: SimFs,
    path: PathBuf,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        self.fs.lock().locks.remove(&self.path);
    }
}

impl Fs for SimFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let path = norm(path);
        let mut inner = self.lock();
        let mut cur = PathBuf::new();
        for c in path.components() {
            cur.push(c);
            if is_root(&cur) {
                continue;
            }
            match inner.current.get(&cur) {
                Some(Node::Dir) => {}
                Some(Node::File(_)) => {
                    return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} is a file", cur.display())))
                }
                None => inner.change(Change::Set(cur.clone(), Node::Dir)),
            }
        }
        Ok(())
    }

    fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        let path = norm(path);
        let inner = self.lock();
        if inner.is_dir(&path) {
            return Ok(Metadata { len: 0, is_file: false, is_dir: true });
        }
        let ino = inner.file(&path)?;
        Ok(Metadata { len: inner.inodes[&ino].current.len() as u64, is_file: true, is_dir: false })
    }

    fn read_dir(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        let d = norm(dir);
        let inner = self.lock();
        if !inner.is_dir(&d) {
            return Err(not_found(dir));
        }
        Ok(inner
            .current
            .iter()
            .filter(|(p, _)| parent(p) == d)
            .filter_map(|(p, n)| {
                let name = p.file_name()?.to_str()?.to_string();
                Some(DirEntry { path: dir.join(&name), name, is_file: matches!(n, Node::File(_)) })
            })
            .collect())
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let p = norm(path);
        let mut inner = self.lock();
        inner.check(FsOp::Create, path)?;
        inner.need_parent(&p)?;
        if inner.current.contains_key(&p) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} exists", path.display())));
        }
        let ino = inner.new_file(&p);
        Ok(self.handle(&inner, ino, path, true))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let p = norm(path);
        let mut inner = self.lock();
        inner.check(FsOp::Create, path)?;
        inner.need_parent(&p)?;
        let ino = match inner.current.get(&p) {
            Some(Node::File(ino)) => {
                let ino = *ino;
                let inode = inner.inodes.get_mut(&ino).expect("inode");
                let old = inode.current.len();
                inode.current.clear();
                inode.touch(0, old);
                ino
            }
            Some(Node::Dir) => {
                return Err(io::Error::new(io::ErrorKind::IsADirectory, format!("{} is a directory", path.display())))
            }
            None => inner.new_file(&p),
        };
        Ok(self.handle(&inner, ino, path, true))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let inner = self.lock();
        let ino = inner.file(&norm(path))?;
        Ok(self.handle(&inner, ino, path, true))
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let inner = self.lock();
        let ino = inner.file(&norm(path))?;
        Ok(self.handle(&inner, ino, path, false))
    }

    fn read(&self, path: &Path) -> io::Result<FileBytes> {
        let inner = self.lock();
        let ino = inner.file(&norm(path))?;
        Ok(FileBytes::Owned(inner.inodes[&ino].current.clone()))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (a, b) = (norm(from), norm(to));
        let mut inner = self.lock();
        inner.check(FsOp::Rename, from)?;
        inner.file(&a)?;
        inner.need_parent(&b)?;
        if inner.current.get(&b) == Some(&Node::Dir) {
            return Err(io::Error::new(io::ErrorKind::IsADirectory, format!("{} is a directory", to.display())));
        }
        inner.change(Change::Rename(a, b));
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let p = norm(path);
        let mut inner = self.lock();
        inner.check(FsOp::Remove, path)?;
        inner.file(&p)?;
        inner.change(Change::Remove(p));
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let d = norm(dir);
        let mut inner = self.lock();
        inner.check(FsOp::DirSync, dir)?;
        if !inner.is_dir(&d) {
            return Err(not_found(dir));
        }
        let inner = &mut *inner;
        let mut rest = Vec::new();
        for change in std::mem::take(&mut inner.unsynced) {
            if change.parents().contains(&d) {
                change.apply(&mut inner.durable);
            } else {
                rest.push(change);
            }
        }
        inner.unsynced = rest;
        Ok(())
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<crate::FsLock>> {
        let path = norm(path);
        if !self.lock().locks.insert(path.clone()) {
            return Ok(None);
        }
        Ok(Some(Box::new(SimLock { fs: self.clone(), path })))
    }
}

/// An open `SimFs` file; stale after a power cut.
#[derive(Debug)]
struct SimFile {
    fs: SimFs,
    ino: u64,
    epoch: u64,
    path: PathBuf,
    writable: bool,
}

impl SimFile {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> io::Result<T>) -> io::Result<T> {
        let mut inner = self.fs.lock();
        if inner.epoch != self.epoch {
            return Err(io::Error::other(format!("{}: stale handle (opened before a power cut)", self.path.display())));
        }
        f(&mut inner)
    }

    fn writable(&self) -> io::Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::PermissionDenied, format!("{} is open read-only", self.path.display())))
        }
    }
}

impl FsFile for SimFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writable()?;
        let (ino, path) = (self.ino, self.path.clone());
        self.with(|inner| {
            let res = inner.check(FsOp::Write, &path);
            let n = if res.is_ok() { buf.len() } else { buf.len() / 2 };
            let inode = inner.inodes.get_mut(&ino).expect("inode of an open file");
            let start = inode.current.len();
            inode.current.extend_from_slice(&buf[..n]);
            inode.touch(start, start + n);
            res
        })
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.writable()?;
        let (ino, path) = (self.ino, self.path.clone());
        let start = usize::try_from(offset)
            .ok()
            .filter(|s| s.checked_add(buf.len()).is_some())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
        self.with(|inner| {
            let res = inner.check(FsOp::Write, &path);
            let n = if res.is_ok() { buf.len() } else { buf.len() / 2 };
            let inode = inner.inodes.get_mut(&ino).expect("inode of an open file");
            let old = inode.current.len();
            let end = start + n;
            if inode.current.len() < end {
                inode.current.resize(end, 0);
            }
            inode.current[start..end].copy_from_slice(&buf[..n]);
            // The written pages, and any gap it opened past the old end (its length
            // changed: a power cut may keep the old or the new length).
            inode.touch(start.min(old), end);
            res
        })
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let (ino, path) = (self.ino, self.path.clone());
        self.with(|inner| {
            inner.check(FsOp::FileSync, &path)?;
            inner.inodes.get_mut(&ino).expect("inode of an open file").sync();
            Ok(())
        })
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.writable()?;
        let (ino, path) = (self.ino, self.path.clone());
        let len = usize::try_from(len).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length too large"))?;
        self.with(|inner| {
            inner.check(FsOp::SetLen, &path)?;
            let inode = inner.inodes.get_mut(&ino).expect("inode of an open file");
            let old = inode.current.len();
            inode.current.resize(len, 0);
            inode.touch(old.min(len), old.max(len));
            Ok(())
        })
    }

    fn len(&self) -> io::Result<u64> {
        self.with(|inner| Ok(inner.inodes[&self.ino].current.len() as u64))
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.with(|inner| {
            let data = &inner.inodes[&self.ino].current;
            let start = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
            let n = buf.len().min(data.len() - start);
            buf[..n].copy_from_slice(&data[start..start + n]);
            Ok(n)
        })
    }
}
