package core

import (
	"time"

	"github.com/concurrencydb/concurrencydb/persist"
)

// MaxNameLen bounds account names in bytes.
const MaxNameLen = persist.MaxNameLen

// Config holds the store's settings. Zero fields take the defaults below.
type Config struct {
	// MaxValueBytes bounds a stored value (default 1 MiB).
	MaxValueBytes int
	// MaxKeyBytes bounds a key id (default 512). Account names are 1–255 bytes.
	MaxKeyBytes int
	// MaxDuration bounds lock, mutex and TTL durations (default 24h).
	MaxDuration time.Duration
	// MaxWait bounds a mutex wait (default 1h).
	MaxWait time.Duration
	// NoSync turns fsync off: a pure-cache deployment. D1 no longer holds.
	NoSync bool
	// CacheBytes bounds the in-memory cache of committed records, counted
	// as key + value + entryOverhead bytes each (default 16 MiB). A byte
	// budget, not a count: it holds many small records (counters, locks,
	// sequences) and few large values, and a cache of 1 MiB values cannot
	// grow to gigabytes.
	CacheBytes int
	// RingBytes is the record ring's memory (default 16 MiB; negative: no
	// ring): committed records evicted from the cache spill into it in a
	// compact encoding outside Go's heap (see ring), so that a working set
	// larger than the cache is still served without Pebble reads.
	RingBytes int
	// ReapInterval is how often expired keys are reclaimed (default 1s).
	// They are invisible from their deadline on regardless (D4).
	ReapInterval time.Duration
	// Clock defaults to SystemClock.
	Clock Clock
	// CommitObserver, when set, is called after every synced batch with
	// its number of writes and the time the commit (write and fsync) took,
	// before the batch's writers are told (so metrics never lag an
	// acknowledgement). It runs in the committing goroutine (the committer,
	// or an event loop's Store.Sync) between commits, so it must be quick
	// and must not call the Store. Metrics use it; core stays free of any
	// metrics library.
	CommitObserver func(writes int, d time.Duration)
}

func (c Config) withDefaults() Config {
	if c.MaxValueBytes == 0 {
		c.MaxValueBytes = 1 << 20
	}
	if c.MaxKeyBytes == 0 {
		c.MaxKeyBytes = 512
	}
	if c.MaxDuration == 0 {
		c.MaxDuration = 24 * time.Hour
	}
	if c.MaxWait == 0 {
		c.MaxWait = time.Hour
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = 16 << 20
	}
	if c.RingBytes == 0 {
		c.RingBytes = 16 << 20
	}
	if c.ReapInterval == 0 {
		c.ReapInterval = time.Second
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	return c
}
