//! pgworld's tables in PostgreSQL's shared memory: the per-pod delivery slots and the apps'
//! active-run counts. Each is a plain-data struct (all zeroes is empty) under its own LWLock,
//! and exists only when the library is in `shared_preload_libraries`.

use pgrx::pg_sys;
use std::ffi::CStr;
use std::sync::atomic::{AtomicPtr, Ordering};

/// One table and its lock, set once the postmaster has created shared memory.
pub struct Region<T> {
    name: &'static CStr,
    table: AtomicPtr<T>,
    lock: AtomicPtr<pg_sys::LWLock>,
}

impl<T> Region<T> {
    pub const fn new(name: &'static CStr) -> Self {
        Region { name, table: AtomicPtr::new(std::ptr::null_mut()), lock: AtomicPtr::new(std::ptr::null_mut()) }
    }

    /// Whether this server has the table (the library was preloaded).
    pub fn exists(&self) -> bool {
        !self.table.load(Ordering::Acquire).is_null()
    }

    /// Runs `f` on the table under its lock (exclusive); None when there is no table. `f` must
    /// not call into PostgreSQL: nothing else may wait on this lock for long.
    pub fn locked<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let table = self.table.load(Ordering::Acquire);
        let lock = self.lock.load(Ordering::Acquire);
        if table.is_null() || lock.is_null() {
            return None;
        }
        struct Release(*mut pg_sys::LWLock);
        impl Drop for Release {
            fn drop(&mut self) {
                // SAFETY: held since `locked` acquired it; `f` runs no PostgreSQL code, so only
                // a Rust panic can leave early, and it unwinds through this guard.
                unsafe { pg_sys::LWLockRelease(self.0) }
            }
        }
        // SAFETY: `lock` and `table` were set by `attach` and stay valid for the server's life.
        unsafe { pg_sys::LWLockAcquire(lock, pg_sys::LWLockMode::LW_EXCLUSIVE) };
        let _release = Release(lock);
        // SAFETY: the exclusive lock makes this the only reference to the table.
        Some(f(unsafe { &mut *table }))
    }
}

/// What the shmem hooks do for each table.
pub trait Shared: Sync {
    /// # Safety
    /// Only from the shmem-request hook.
    unsafe fn request(&self);
    /// # Safety
    /// Only from the shmem-startup hook, holding AddinShmemInitLock.
    unsafe fn attach(&self);
}

impl<T> Shared for Region<T> {
    unsafe fn request(&self) {
        // SAFETY: the caller is the postmaster's shmem-request phase.
        unsafe {
            pg_sys::RequestAddinShmemSpace(size_of::<T>());
            pg_sys::RequestNamedLWLockTranche(self.name.as_ptr(), 1);
        }
    }

    unsafe fn attach(&self) {
        // SAFETY: shared memory exists; the caller serializes initialization.
        unsafe {
            let mut found = false;
            let table = pg_sys::ShmemInitStruct(self.name.as_ptr(), size_of::<T>(), &mut found).cast::<T>();
            if !found {
                // All zeroes is an empty table (plain integers, no pointers).
                std::ptr::write_bytes(table.cast::<u8>(), 0, size_of::<T>());
            }
            self.table.store(table, Ordering::Release);
            self.lock.store(&raw mut (*pg_sys::GetNamedLWLockTranche(self.name.as_ptr())).lock, Ordering::Release);
        }
    }
}

static mut PREV_REQUEST: pg_sys::shmem_request_hook_type = None;
static mut PREV_STARTUP: pg_sys::shmem_startup_hook_type = None;
static mut TABLES: &[&dyn Shared] = &[];

/// From `_PG_init`: asks for `tables` when the library is being preloaded.
pub fn init(tables: &'static [&'static dyn Shared]) {
    // SAFETY: reads and chains the postmaster's hooks while it loads preloaded libraries
    // (single-threaded, before any backend exists).
    unsafe {
        if !pg_sys::process_shared_preload_libraries_in_progress {
            return;
        }
        TABLES = tables;
        PREV_REQUEST = pg_sys::shmem_request_hook;
        pg_sys::shmem_request_hook = Some(request);
        PREV_STARTUP = pg_sys::shmem_startup_hook;
        pg_sys::shmem_startup_hook = Some(startup);
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn request() {
    // SAFETY: called by the postmaster in its shmem-request phase, as hooks are.
    unsafe {
        if let Some(prev) = PREV_REQUEST {
            prev();
        }
        for t in TABLES {
            t.request();
        }
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn startup() {
    // SAFETY: the postmaster calls this once shared memory exists; AddinShmemInitLock (entry 21
    // of the main LWLock array) serializes it with other libraries' initializations.
    unsafe {
        if let Some(prev) = PREV_STARTUP {
            prev();
        }
        let init_lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock;
        pg_sys::LWLockAcquire(init_lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        for t in TABLES {
            t.attach();
        }
        pg_sys::LWLockRelease(init_lock);
    }
}

/// This backend's database.
pub fn database() -> u32 {
    // SAFETY: a backend-global set at connection start.
    unsafe { pg_sys::MyDatabaseId }.to_u32()
}
