package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// crashSeed is the seed of a crash test's random choices (kill moments,
// operation mix): CONCURRENCYDB_CRASH_SEED replays a failure. The seed is
// logged when the test fails.
func crashSeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CONCURRENCYDB_CRASH_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CONCURRENCYDB_CRASH_SEED: %v", err)
		}
		seed = n
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("random seed %d: rerun with CONCURRENCYDB_CRASH_SEED=%d go test -run '^%s$' ./cmd/concurrencydb", seed, seed, t.Name())
		}
	})
	return seed
}

// killHard kills the server with SIGKILL and reaps it. The server must still
// be running: a server that died by itself is a failure of its own.
func killHard(t *testing.T, p *proc) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9: %v (did the server die by itself?)\nstderr:\n%s", err, p.stderr.String())
	}
	_ = p.cmd.Wait()
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("server exited with %v before the kill\nstderr:\n%s", p.cmd.ProcessState, p.stderr.String())
	}
}

const (
	killAcc      = "kt"
	killCounters = 16
	killSeqs     = 2
	killLocks    = 4
	killWorkers  = 8 // half RESP, half HTTP; each swaps protocol every round
	killRounds   = 5
)

// killLedger is what the clients were told, shared by the workers.
type killLedger struct {
	mu struct {
		sync.Mutex
		ctrAcked   map[string]int64 // acknowledged increments since the last read
		ctrUnknown map[string]int64 // increments cut off by a kill
		ctrBase    map[string]int64 // value read at the last restart
		seqSeen    map[string]map[uint64]string
		seqMax     map[string]uint64            // highest value returned so far
		tokens     map[string]map[uint64]string // lock → fencing token → acquisition
		handles    map[uint64]string            // mutex handle → holder
		acked      int
		unknown    int
	}
}

// Lock states of one owner on one lock, as that owner knows them.
const (
	lockFree      = iota // not held by this owner
	lockHeld             // acquisition acknowledged, no release sent since
	lockAcquiring        // acquisition cut off by the kill
	lockReleasing        // release cut off by the kill
)

type lockTrack struct {
	state int
	token uint64
}

// killWorker is one client across all rounds. It alone writes its kv key
// and acts as its lock owner, so it knows exactly what it was told.
type killWorker struct {
	id        int
	owner     string
	kvID      string
	kvVer     uint64 // last acknowledged version, 0 = absent
	kvVal     string
	kvPending string // value of a KV.SET cut off by the kill ("" = none)
	locks     [killLocks]lockTrack
	rng       *rand.Rand
}

// TestKill9KeepsEveryAcknowledgedWrite (D1, D3): the real binary, driven
// by concurrent RESP and HTTP clients, is killed with SIGKILL at random
// moments over several rounds and restarted on the same data directory.
// No sequence value and no mutex handle is ever handed out twice, nor a
// fencing token to two acquisitions. After every restart: each counter lies
// between the sum of its acknowledged increments and that plus the cut-off
// ones; each sequence reads at least its highest value returned; a key's
// version is at least the last acknowledged one and its value is the last
// acknowledged write or the cut-off one; a lock acknowledged to an owner
// (and not released by it since) is still held by that owner with the same
// fencing token and an expiry no later than before.
//
// NB: kill -9 loses only what never reached the kernel; a missing fsync
// shows only in the lost-fsync test (core/durability_test.go).
func TestKill9KeepsEveryAcknowledgedWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it repeatedly")
	}
	seed := crashSeed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	bin := buildBinary(t)
	data := filepath.Join(t.TempDir(), "data")

	l := &killLedger{}
	l.mu.ctrAcked = map[string]int64{}
	l.mu.ctrUnknown = map[string]int64{}
	l.mu.ctrBase = map[string]int64{}
	l.mu.seqSeen = map[string]map[uint64]string{}
	l.mu.seqMax = map[string]uint64{}
	l.mu.tokens = map[string]map[uint64]string{}
	l.mu.handles = map[uint64]string{}
	workers := make([]*killWorker, killWorkers)
	for i := range workers {
		workers[i] = &killWorker{id: i, owner: fmt.Sprintf("owner-%d", i), kvID: fmt.Sprintf("kv%d", i),
			rng: rand.New(rand.NewPCG(seed, uint64(i)+2))}
	}

	for round := 0; round <= killRounds; round++ {
		p := startWithRESP(t, bin, data)
		if round > 0 {
			c := newHTTPClient(p.base)
			verifyAfterKill(t, c, l, workers, round)
			c.close()
			if t.Failed() {
				return
			}
		}
		if round == killRounds {
			break
		}
		ctx := context.Background()
		var killed atomic.Bool // set before the kill: an error earlier is a failure
		var wg sync.WaitGroup
		for _, w := range workers {
			c := clientOf(p, w.id+round)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.close()
				w.run(ctx, t, c, l, round, &killed)
			}()
		}
		// The kill moment is random, never a measured duration the test
		// asserts on: every check below holds whenever the kill lands.
		delay := time.Duration(300+rng.IntN(700)) * time.Millisecond
		if rng.IntN(4) == 0 {
			delay = time.Duration(rng.IntN(20)) * time.Millisecond // just after start
		}
		time.Sleep(delay)
		killed.Store(true)
		killHard(t, p)
		wg.Wait()
		l.mu.Lock()
		t.Logf("round %d: %d acknowledged, %d cut off by the kill so far", round, l.mu.acked, l.mu.unknown)
		l.mu.Unlock()
		if t.Failed() {
			return
		}
	}
	if l.mu.acked == 0 {
		t.Fatal("no operation was acknowledged: the test checked nothing")
	}
}

// run does random operations until the kill cuts one off.
func (w *killWorker) run(ctx context.Context, t *testing.T, c crashClient, l *killLedger, round int, killed *atomic.Bool) {
	for {
		err := w.step(ctx, c, l, round)
		if err == nil {
			l.mu.Lock()
			l.mu.acked++
			l.mu.Unlock()
			continue
		}
		if isReplyError(err) {
			t.Errorf("worker %d (%s): %v", w.id, c.proto(), err)
		} else if !killed.Load() {
			t.Errorf("worker %d (%s): transport error before the kill: %v", w.id, c.proto(), err)
		}
		l.mu.Lock()
		l.mu.unknown++
		l.mu.Unlock()
		return
	}
}

// step does one operation and records what it was told. A transport error
// means the outcome is unknown: step records the operation as cut off.
func (w *killWorker) step(ctx context.Context, c crashClient, l *killLedger, round int) error {
	who := fmt.Sprintf("round %d worker %d %s", round, w.id, c.proto())
	switch r := w.rng.IntN(100); {
	case r < 10 && c.proto() == "resp":
		// A pipeline of increments shares one durability wait and one
		// flush of replies (DESIGN "RESP pipelines"): each reply that
		// arrived is an acknowledgement of its own.
		ids := make([]string, 2+w.rng.IntN(4))
		for i := range ids {
			ids[i] = fmt.Sprintf("c%d", w.rng.IntN(killCounters))
		}
		cmds, err := c.(*respClient).incrPipeline(ctx, killAcc, ids)
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, cmd := range cmds {
			if cmd.Err() != nil {
				l.mu.ctrUnknown[ids[i]]++
			} else {
				l.mu.ctrAcked[ids[i]]++
			}
		}
		return err

	case r < 40:
		id := fmt.Sprintf("c%d", w.rng.IntN(killCounters))
		_, err := c.incr(ctx, killAcc, id)
		l.mu.Lock()
		defer l.mu.Unlock()
		if err != nil {
			l.mu.ctrUnknown[id]++
			return err
		}
		l.mu.ctrAcked[id]++
		return nil

	case r < 60:
		// A reservation of count values answers the highest: all of
		// n-count+1 … n are this client's alone, forever (D3).
		id := fmt.Sprintf("s%d", w.rng.IntN(killSeqs))
		count := uint64(1)
		if w.rng.IntN(4) == 0 {
			count += w.rng.Uint64N(9)
		}
		n, err := c.seqNext(ctx, killAcc, id, count)
		if err != nil {
			return err
		}
		if n < count {
			return unexpected("%s: SEQ.NEXT %s COUNT %d answered %d", who, id, count, n)
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		seen := l.mu.seqSeen[id]
		if seen == nil {
			seen = map[uint64]string{}
			l.mu.seqSeen[id] = seen
		}
		for v := n - count + 1; v <= n; v++ {
			if prev, dup := seen[v]; dup {
				return unexpected("sequence %s handed out %d twice: to %s and to %s (COUNT %d → %d)", id, v, prev, who, count, n)
			}
			seen[v] = who
		}
		l.mu.seqMax[id] = max(l.mu.seqMax[id], n)
		return nil

	case r < 65:
		// Mutexes live in memory, but their handles never repeat, also
		// across restarts (D3: a durable epoch fills the high bits).
		id := fmt.Sprintf("m%d", w.rng.IntN(killLocks))
		h, timedOut, err := c.mlock(ctx, killAcc, id)
		if err != nil || timedOut {
			return err
		}
		l.mu.Lock()
		prev, dup := l.mu.handles[h]
		l.mu.handles[h] = who
		l.mu.Unlock()
		if dup {
			return unexpected("mutex handle %d handed out twice: to %s and to %s", h, prev, who)
		}
		return c.munlock(ctx, killAcc, id, h)

	case r < 85:
		val := fmt.Sprintf("r%d-w%d-%d", round, w.id, w.rng.Uint64())
		ver, mismatch, err := c.kvSet(ctx, killAcc, w.kvID, val, w.kvVer)
		switch {
		case err != nil:
			w.kvPending = val
			return err
		case mismatch:
			return unexpected("%s: KV.SET %s VER %d: version mismatch, but only this worker writes the key", who, w.kvID, w.kvVer)
		case ver <= w.kvVer:
			return unexpected("%s: KV.SET %s VER %d answered version %d: versions must increase", who, w.kvID, w.kvVer, ver)
		}
		w.kvVer, w.kvVal = ver, val
		return nil

	default:
		i := w.rng.IntN(killLocks)
		id := fmt.Sprintf("l%d", i)
		lt := &w.locks[i]
		if lt.state == lockHeld && w.rng.IntN(2) == 0 {
			released, locked, err := c.lockRelease(ctx, killAcc, id, w.owner)
			switch {
			case err != nil:
				lt.state = lockReleasing
				return err
			case locked || released == releasedFree:
				return unexpected("%s: release of %s, acknowledged as held by %s, found it free or held by another", who, id, w.owner)
			}
			lt.state = lockFree
			return nil
		}
		token, locked, err := c.lockAcquire(ctx, killAcc, id, w.owner)
		switch {
		case err != nil:
			if lt.state != lockHeld {
				lt.state = lockAcquiring
			}
			return err
		case locked && lt.state == lockHeld:
			return unexpected("%s: %s extending %s (token %d) was told another owner holds it", who, w.owner, id, lt.token)
		case locked:
			return nil
		case lt.state == lockHeld && token != lt.token:
			return unexpected("%s: extending %s changed its fencing token %d → %d", who, id, lt.token, token)
		case lt.state == lockHeld:
			return nil
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if err := l.newTokenLocked(id, token, who); err != nil {
			return err
		}
		*lt = lockTrack{state: lockHeld, token: token}
		return nil
	}
}

// newTokenLocked records the fencing token of a new acquisition of lock id;
// a token handed out twice is an error (D3).
func (l *killLedger) newTokenLocked(id string, token uint64, who string) error {
	seen := l.mu.tokens[id]
	if seen == nil {
		seen = map[uint64]string{}
		l.mu.tokens[id] = seen
	}
	if prev, dup := seen[token]; dup {
		return unexpected("lock %s: fencing token %d handed out twice: to %s and to %s", id, token, prev, who)
	}
	seen[token] = who
	return nil
}

// verifyAfterKill checks, after a restart, everything the clients were told
// before the kill, and resolves the cut-off operations to what the server
// kept, as the base for the next round.
func verifyAfterKill(t *testing.T, c crashClient, l *killLedger, workers []*killWorker, round int) {
	t.Helper()
	ctx := context.Background()
	fatal := func(err error) {
		t.Helper()
		t.Fatalf("after restart %d: reading: %v", round, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range killCounters {
		id := fmt.Sprintf("c%d", i)
		n, _, err := c.ctrGet(ctx, killAcc, id)
		if err != nil {
			fatal(err)
		}
		lo := l.mu.ctrBase[id] + l.mu.ctrAcked[id]
		if hi := lo + l.mu.ctrUnknown[id]; n < lo || n > hi {
			t.Errorf("after restart %d: counter %s = %d, want between %d (acknowledged) and %d (+ %d cut off)",
				round, id, n, lo, hi, l.mu.ctrUnknown[id])
		}
		l.mu.ctrBase[id], l.mu.ctrAcked[id], l.mu.ctrUnknown[id] = n, 0, 0
	}
	for i := range killSeqs {
		id := fmt.Sprintf("s%d", i)
		n, _, err := c.seqGet(ctx, killAcc, id)
		if err != nil {
			fatal(err)
		}
		if n < l.mu.seqMax[id] {
			t.Errorf("after restart %d: sequence %s = %d, below %d returned before the kill (D3)", round, id, n, l.mu.seqMax[id])
		}
	}
	for _, w := range workers {
		val, ver, found, err := c.kvGet(ctx, killAcc, w.kvID)
		if err != nil {
			fatal(err)
		}
		switch {
		case !found && w.kvVer != 0:
			t.Errorf("after restart %d: %s is gone; version %d (%q) was acknowledged", round, w.kvID, w.kvVer, w.kvVal)
		case !found:
		case ver < w.kvVer:
			t.Errorf("after restart %d: %s has version %d < acknowledged %d", round, w.kvID, ver, w.kvVer)
		case ver == w.kvVer && val != w.kvVal:
			t.Errorf("after restart %d: %s version %d holds %q, acknowledged %q", round, w.kvID, ver, val, w.kvVal)
		case ver > w.kvVer && (w.kvPending == "" || val != w.kvPending):
			t.Errorf("after restart %d: %s = %q version %d: neither the acknowledged write (%q, %d) nor the cut-off one (%q)",
				round, w.kvID, val, ver, w.kvVal, w.kvVer, w.kvPending)
		}
		if found {
			w.kvVer, w.kvVal = ver, val
		}
		w.kvPending = ""

		for i := range w.locks {
			id := fmt.Sprintf("l%d", i)
			lt := &w.locks[i]
			lv, err := c.lockGet(ctx, killAcc, id)
			if err != nil {
				fatal(err)
			}
			owner, token, found := lv.owner, lv.token, lv.found
			mine := found && owner == w.owner
			// The expiry is an absolute deadline kept on disk: after a
			// restart a lock still expires, and no later than it would have.
			if found && (lv.remainingMs <= 0 || lv.remainingMs > lockSeconds*1000) {
				t.Errorf("after restart %d: lock %s (held by %s) has remaining_ms %d, want 1..%d", round, id, owner, lv.remainingMs, lockSeconds*1000)
			}
			switch lt.state {
			case lockHeld:
				if !mine || token != lt.token {
					t.Errorf("after restart %d: lock %s acknowledged to %s (token %d) is now held by %q (token %d, found %v)",
						round, id, w.owner, lt.token, owner, token, found)
				}
			case lockFree:
				if mine {
					t.Errorf("after restart %d: lock %s is held by %s, which never acquired it since its last release", round, id, w.owner)
				}
			case lockAcquiring:
				if mine {
					if err := l.newTokenLocked(id, token, fmt.Sprintf("round %d worker %d (cut-off acquire)", round-1, w.id)); err != nil {
						t.Error(err)
					}
				}
			case lockReleasing:
				if mine && token != lt.token {
					t.Errorf("after restart %d: lock %s still held by %s but with token %d, acknowledged %d", round, id, w.owner, token, lt.token)
				}
			}
			lt.state, lt.token = lockFree, 0
			if mine {
				lt.state, lt.token = lockHeld, token
			}
		}
	}
}
