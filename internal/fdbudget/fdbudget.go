// Package fdbudget bounds the connections the two protocols hold open
// together, so that clients cannot take the file descriptors the storage
// needs.
//
// Each protocol bounds its own connections (resp.max_conns,
// http.max_conns), but nothing bounded their sum against the process's
// open-file limit: 20,000 connections by default, and this machine's
// limit is 20,000. Once clients held every descriptor, Pebble could not
// create a table, which it reports as a storage failure (persist P6), so
// the store refused writes until a restart, long after the connections
// closed (found by review: `ulimit -n 200`, 400 idle connections, then
// writes: MISCONF). A Budget is the descriptors left for connections once
// the storage's share is set aside; a connection that finds it spent is
// closed at once, without the answer its protocol gives beyond max_conns
// (that answer would hold its descriptor while it is written).
//
// Invariant: every Take that returned true is matched by exactly one
// Release, when the connection's descriptor is closed.
package fdbudget

import (
	"sync/atomic"
	"syscall"
)

// Budget counts connections against a maximum. A nil *Budget admits
// every connection.
type Budget struct {
	max  int64
	open atomic.Int64
}

// New returns a budget of max connections.
func New(max int) *Budget { return &Budget{max: int64(max)} }

// Take admits one more connection, or reports false when max are open.
func (b *Budget) Take() bool {
	if b == nil {
		return true
	}
	if b.open.Add(1) > b.max {
		b.open.Add(-1)
		return false
	}
	return true
}

// Release ends a connection that Take admitted.
func (b *Budget) Release() {
	if b != nil {
		b.open.Add(-1)
	}
}

// Max is the budget's size; Open how much of it is taken.
func (b *Budget) Max() int  { return int(b.max) }
func (b *Budget) Open() int { return int(b.open.Load()) }

// Limit is the process's open-file limit. NB: Go raises the soft limit
// to the hard one at start-up on Linux.
func Limit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	return rl.Cur, nil
}

// processFiles is what the process keeps beside the storage's table files
// and the connections: listeners, the log and Pebble's other files, epoll
// and event descriptors, the descriptor each accepted connection briefly
// has twice (gnet duplicates it), standard streams.
const processFiles = 128

// Split divides an open-file limit: a quarter, from 64 to 1,000 (Pebble's
// default), for the table files the storage keeps open; processFiles for
// the rest of the process; what is left (at least 1) for connections.
func Split(limit uint64) (tables, conns int) {
	limit = min(limit, 1<<31) // RLIM_INFINITY: no bound worth keeping
	tables = int(min(max(limit/4, 64), 1000))
	return tables, max(int(limit)-tables-processFiles, 1)
}
