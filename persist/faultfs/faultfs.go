// Package faultfs wraps a Pebble vfs.FS to inject disk faults in tests:
// syncs that are held back, slowed or failing, and writes that fail with
// ENOSPC as on a full disk. Every mode is switched at a moment the test
// chooses: Pebble also syncs and writes while opening, so tests switch only
// once the store is open. It is a test aid; production code never uses it.
package faultfs

import (
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrInjectedSync is what a failing sync returns.
var ErrInjectedSync = errors.New("injected fsync failure")

type syncMode int

const (
	syncPass syncMode = iota
	syncHold
	syncFail
)

// FS is a vfs.FS with switchable faults. The zero mode passes everything.
type FS struct {
	vfs.FS
	// Held receives (without blocking) each time a sync starts waiting in
	// hold mode, so a test knows a commit is parked on it.
	Held       chan struct{}
	full       atomic.Bool
	createFull atomic.Bool // FillNewFiles
	tablesFull atomic.Bool // FillNewTables
	tableSyncs atomic.Bool // OnlyTableSyncs
	tableReads atomic.Bool // FailTableReads
	creates    atomic.Int64

	mu struct {
		sync.Mutex
		mode    syncMode
		release chan struct{} // closed by ReleaseSyncs
		delay   time.Duration
	}
}

// New wraps fs.
func New(fs vfs.FS) *FS { return &FS{FS: fs, Held: make(chan struct{}, 1)} }

// HoldSyncs makes every sync from now on block until ReleaseSyncs.
func (fs *FS) HoldSyncs() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.mu.mode != syncHold {
		fs.mu.release = make(chan struct{})
	}
	fs.mu.mode = syncHold
}

// ReleaseSyncs lets held syncs complete and later ones pass.
func (fs *FS) ReleaseSyncs() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.mu.mode == syncHold {
		close(fs.mu.release)
	}
	fs.mu.mode = syncPass
}

// OnlyTableSyncs makes HoldSyncs and FailSyncs apply to the syncs of
// Pebble's tables (*.sst) only, from now on: Pebble's flushes cannot
// finish while the write-ahead log and the MANIFEST sync as usual.
func (fs *FS) OnlyTableSyncs() { fs.tableSyncs.Store(true) }

// FailTableReads makes every read of a Pebble table (*.sst) from now on
// fail with EIO (a bad sector), until Free.
func (fs *FS) FailTableReads() { fs.tableReads.Store(true) }

// FailSyncs makes every sync from now on return ErrInjectedSync (a dying
// disk, or fsync reporting EIO). Syncs held at that moment are let go at
// once, and fail.
func (fs *FS) FailSyncs() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.mu.mode == syncHold {
		close(fs.mu.release)
	}
	fs.mu.mode = syncFail
}

// SlowSyncs makes every sync take at least d, like a real disk: a store
// that acknowledged before syncing then leaves acknowledged writes unsynced
// long enough for a crash clone to show it.
func (fs *FS) SlowSyncs(d time.Duration) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.mu.delay = d
}

// Fill makes every file creation and write from now on fail with ENOSPC.
func (fs *FS) Fill() { fs.full.Store(true) }

// FillNewFiles makes every file creation from now on fail with ENOSPC,
// while writes to open files pass: a disk that filled up around a store
// whose write-ahead log is pre-allocated (it overwrites blocks it has),
// while Pebble needs new files for every flush and compaction.
func (fs *FS) FillNewFiles() { fs.createFull.Store(true) }

// FillNewTables makes the creation of Pebble's tables (*.sst) fail with
// ENOSPC from now on, while every other file is created: a disk with room
// for a small file (a MANIFEST, whose failure Pebble treats as fatal) but
// not for a table.
func (fs *FS) FillNewTables() { fs.tablesFull.Store(true) }

// Creates is how many files were created or tried to be.
func (fs *FS) Creates() int64 { return fs.creates.Load() }

// Free undoes Fill and FillNewFiles: space was freed.
func (fs *FS) Free() {
	fs.full.Store(false)
	fs.createFull.Store(false)
	fs.tablesFull.Store(false)
	fs.tableReads.Store(false)
}

func (fs *FS) sync(table bool) error {
	if !table && fs.tableSyncs.Load() {
		return nil
	}
	fs.mu.Lock()
	mode, release, delay := fs.mu.mode, fs.mu.release, fs.mu.delay
	fs.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	if mode == syncHold {
		select {
		case fs.Held <- struct{}{}:
		default:
		}
		<-release
		fs.mu.Lock()
		mode = fs.mu.mode
		fs.mu.Unlock()
	}
	if mode == syncFail {
		return ErrInjectedSync
	}
	return nil
}

func (fs *FS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &file{File: f, fs: fs, table: isTable(name)}, nil
}

func isTable(name string) bool { return strings.HasSuffix(name, ".sst") }

// Create implements vfs.FS.
func (fs *FS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	fs.creates.Add(1)
	if fs.full.Load() || fs.createFull.Load() || fs.tablesFull.Load() && isTable(name) {
		return nil, &os.PathError{Op: "create", Path: name, Err: syscall.ENOSPC}
	}
	f, err := fs.FS.Create(name, c)
	return fs.wrap(name, f, err)
}

// Open implements vfs.FS.
func (fs *FS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.Open(name, opts...)
	return fs.wrap(name, f, err)
}

// OpenReadWrite implements vfs.FS.
func (fs *FS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, c, opts...)
	return fs.wrap(name, f, err)
}

// OpenDir implements vfs.FS.
func (fs *FS) OpenDir(name string) (vfs.File, error) {
	f, err := fs.FS.OpenDir(name)
	return fs.wrap(name, f, err)
}

// ReuseForWrite implements vfs.FS.
func (fs *FS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, c)
	return fs.wrap(newname, f, err)
}

// Unwrap implements vfs.FS.
func (fs *FS) Unwrap() vfs.FS { return fs.FS }

type file struct {
	vfs.File
	fs    *FS
	table bool // a Pebble table (OnlyTableSyncs)
}

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	if f.table && f.fs.tableReads.Load() {
		return 0, syscall.EIO
	}
	return f.File.ReadAt(p, off)
}

func (f *file) Write(p []byte) (int, error) {
	if f.fs.full.Load() {
		return 0, syscall.ENOSPC
	}
	return f.File.Write(p)
}

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	if f.fs.full.Load() {
		return 0, syscall.ENOSPC
	}
	return f.File.WriteAt(p, off)
}

func (f *file) Sync() error {
	if err := f.fs.sync(f.table); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *file) SyncData() error {
	if err := f.fs.sync(f.table); err != nil {
		return err
	}
	return f.File.SyncData()
}

func (f *file) SyncTo(length int64) (bool, error) {
	if err := f.fs.sync(f.table); err != nil {
		return false, err
	}
	return f.File.SyncTo(length)
}
