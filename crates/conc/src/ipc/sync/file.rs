//! `SharedFile`: the course's first way for processes to share data, a file whose whole contents are read and written under an exclusive advisory lock (`File::lock`, flock(2)).
//!
//! The course's ticket race keeps its count in a file: each process
//! opens it, locks it (`fcntl.flock`), reads the number, writes it back
//! less one, and unlocks. [`SharedFile`] is that: [`lock`](SharedFile::lock)
//! waits for std's exclusive `File::lock` (flock(2) on Linux) and returns a
//! guard that reads and writes the whole contents.
//!
//! **Advisory.** The lock binds only processes that take it: any process
//! may open the file and write to it without asking, and nothing stops
//! it. It is a convention among cooperating programs, not protection.
//!
//! **One open per lock.** flock belongs to an *open file description*,
//! not to a process or thread: two descriptors duplicated from one open
//! (a `try_clone`, a descriptor passed to a child) hold one lock between
//! them and never exclude each other. So each `lock` opens the path anew,
//! and a `SharedFile` travels to a child as its path, which the child
//! opens itself. The path is made absolute at [`open`](SharedFile::open),
//! so a child in another directory finds the same file.
//!
//! **A dead holder.** The kernel drops a flock when the last descriptor
//! of its open closes, as when its holder dies: a killed holder never
//! leaves the lock taken, and no one is told. A write it had begun may be
//! half done (a production store would write a new file and `rename` it
//! into place, which is atomic, and lock a separate lock file, since a
//! rename replaces the locked inode).

use std::ffi::OsString;
use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A file that processes read and write whole, in turn, under an
/// exclusive advisory lock.
///
/// # Examples
///
/// ```
/// use conc::ipc::SharedFile;
///
/// let path = std::env::temp_dir().join(format!("conc-doc-tickets-{}", std::process::id()));
/// let store = SharedFile::open(&path).unwrap();
/// store.lock().unwrap().write(b"100").unwrap();
/// // What each buyer does, in its own process:
/// let mut held = store.lock().unwrap();
/// let left: u32 = held.read_to_string().unwrap().trim().parse().unwrap();
/// held.write((left - 1).to_string().as_bytes()).unwrap();
/// drop(held);
/// assert_eq!(store.lock().unwrap().read_to_string().unwrap(), "99");
/// std::fs::remove_file(&path).unwrap();
/// ```
#[derive(Clone)]
pub struct SharedFile {
    path: PathBuf,
}

/// The exclusive lock on a [`SharedFile`], held: reads and writes its
/// whole contents; dropping it releases the lock.
///
/// # Examples
///
/// ```
/// # let path = std::env::temp_dir().join(format!("conc-doc-guard-{}", std::process::id()));
/// let store = conc::ipc::SharedFile::open(&path).unwrap();
/// let mut held = store.lock().unwrap();
/// held.write(b"state").unwrap();
/// assert_eq!(held.read().unwrap(), b"state");
/// # drop(held);
/// # std::fs::remove_file(&path).unwrap();
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct SharedFileGuard {
    file: File,
}

impl SharedFile {
    /// The shared file at `path`, created empty if it does not exist.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("conc-doc-open-{}", std::process::id()));
    /// let store = conc::ipc::SharedFile::open(&path).unwrap();
    /// assert!(store.path().is_absolute());
    /// assert_eq!(store.lock().unwrap().read().unwrap(), b"");
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        Self::open_file(path.as_ref())?;
        Ok(Self {
            path: std::fs::canonicalize(path)?,
        })
    }

    fn open_file(path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
    }

    /// Its absolute path.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("conc-doc-path-{}", std::process::id()));
    /// let store = conc::ipc::SharedFile::open(&path).unwrap();
    /// assert_eq!(store.path(), std::fs::canonicalize(&path).unwrap());
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the file and takes its exclusive lock, waiting while another
    /// open (in this process or another) holds it.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("conc-doc-lock-{}", std::process::id()));
    /// let store = conc::ipc::SharedFile::open(&path).unwrap();
    /// let held = store.lock().unwrap();
    /// assert!(store.try_lock().unwrap().is_none(), "held, even within one process");
    /// drop(held);
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn lock(&self) -> io::Result<SharedFileGuard> {
        let file = Self::open_file(&self.path)?;
        file.lock()?;
        Ok(SharedFileGuard { file })
    }

    /// Takes the lock if no one holds it now; `Ok(None)` if someone does.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("conc-doc-try-{}", std::process::id()));
    /// let store = conc::ipc::SharedFile::open(&path).unwrap();
    /// let held = store.try_lock().unwrap();
    /// assert!(held.is_some());
    /// assert!(store.try_lock().unwrap().is_none());
    /// # drop(held);
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn try_lock(&self) -> io::Result<Option<SharedFileGuard>> {
        let file = Self::open_file(&self.path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(SharedFileGuard { file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }
}

impl SharedFileGuard {
    /// The whole contents.
    ///
    /// # Examples
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("conc-doc-read-{}", std::process::id()));
    /// let store = conc::ipc::SharedFile::open(&path).unwrap();
    /// let mut held = store.lock().unwrap();
    /// held.write(&[1, 2, 3]).unwrap();
    /// assert_eq!(held.read().unwrap(), [1, 2, 3]);
    /// # drop(held);
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn read(&mut self) -> io::Result<Vec<u8>> {
        let mut contents = Vec::new();
        self.file.seek(SeekFrom::Start(0))?;
        self.file.read_to_end(&mut contents)?;
        Ok(contents)
    }

    /// The whole contents, as UTF-8 text.
    ///
    /// # Examples
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("conc-doc-text-{}", std::process::id()));
    /// let store = conc::ipc::SharedFile::open(&path).unwrap();
    /// let mut held = store.lock().unwrap();
    /// held.write(b"42").unwrap();
    /// assert_eq!(held.read_to_string().unwrap(), "42");
    /// # drop(held);
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn read_to_string(&mut self) -> io::Result<String> {
        String::from_utf8(self.read()?).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Replaces the whole contents with `contents`. Not atomic: a holder
    /// killed in the middle leaves part of it written (see the module).
    ///
    /// # Examples
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("conc-doc-write-{}", std::process::id()));
    /// let store = conc::ipc::SharedFile::open(&path).unwrap();
    /// let mut held = store.lock().unwrap();
    /// held.write(b"a longer text").unwrap();
    /// held.write(b"short").unwrap();
    /// assert_eq!(held.read().unwrap(), b"short", "nothing of the old tail is left");
    /// # drop(held);
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn write(&mut self, contents: &[u8]) -> io::Result<()> {
        // Other processes read the same page cache: no fsync is needed for
        // them to see it, only for a crash of the machine.
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(contents)?;
        self.file.set_len(contents.len() as u64)
    }

    /// Releases the lock; the same as dropping the guard.
    ///
    /// # Examples
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("conc-doc-release-{}", std::process::id()));
    /// let store = conc::ipc::SharedFile::open(&path).unwrap();
    /// store.lock().unwrap().release();
    /// assert!(store.try_lock().unwrap().is_some());
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn release(self) {
        // Closing the only descriptor of this open drops its flock.
        drop(self);
    }
}

/// A shared file travels as its path (as bytes: a path need not be UTF-8),
/// never as a descriptor: see the module on one open per lock.
impl Serialize for SharedFile {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.path.as_os_str().as_bytes().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SharedFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = Vec::<u8>::deserialize(deserializer)?;
        Ok(Self {
            path: PathBuf::from(OsString::from_vec(bytes)),
        })
    }
}

impl fmt::Debug for SharedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedFile")
            .field("path", &self.path)
            .finish()
    }
}

impl fmt::Debug for SharedFileGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedFileGuard")
    }
}
