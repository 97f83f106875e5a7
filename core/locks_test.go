package core

import (
	"errors"
	"testing"
	"time"
)

// TestLockAcquire checks LockAcquire on a key in each state it can be in.
func TestLockAcquire(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(t *testing.T, s *testStore)
		owner     string
		dur       time.Duration
		wantErr   error
		wantOwner string // of the *LockedError
		wantRem   int64  // RemainingMs of the *LockedError
	}{
		{name: "free lock", owner: "me", dur: time.Second},
		{
			name:  "held by another owner",
			setup: func(t *testing.T, s *testStore) { mustLock(t, s, "l", "you", 10*time.Second) },
			owner: "me", dur: time.Second, wantErr: ErrLocked, wantOwner: "you", wantRem: 10000,
		},
		{
			name:  "a kv value is a held lock without expiry",
			setup: func(t *testing.T, s *testStore) { mustSet(t, s, "l", "job-7") },
			owner: "me", dur: time.Second, wantErr: ErrLocked, wantOwner: "job-7", wantRem: -1,
		},
		{
			// Not "held by 3": an acquire by "3" was refused as held by
			// "3" (found by review).
			name:  "a sequence is not a lock",
			setup: func(t *testing.T, s *testStore) { mustSeq(t, s, "l", 3) },
			owner: "3", dur: time.Second, wantErr: ErrWrongType,
		},
		{
			name: "an expired lock is free",
			setup: func(t *testing.T, s *testStore) {
				mustLock(t, s, "l", "you", time.Second)
				s.cfg.Clock.(*fakeClock).Advance(time.Second)
			},
			owner: "me", dur: time.Second,
		},
		{name: "empty owner", owner: "", dur: time.Second, wantErr: ErrInvalid},
		{name: "zero duration", owner: "me", dur: 0, wantErr: ErrInvalid},
		{name: "negative duration", owner: "me", dur: -time.Second, wantErr: ErrInvalid},
		{name: "duration above max", owner: "me", dur: 24*time.Hour + time.Millisecond, wantErr: ErrInvalid},
		{name: "duration of exactly max", owner: "me", dur: 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxT(t)
			s, _ := newStore(t)
			if tt.setup != nil {
				tt.setup(t, s)
			}
			before, beforeErr := s.KVGet(ctx, "a", "l")
			li, err := s.LockAcquire(ctx, "a", "l", tt.owner, tt.dur)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("LockAcquire = (%+v, %v), want %v", li, err, tt.wantErr)
			}
			if tt.wantErr == nil {
				if li.Owner != tt.owner || li.RemainingMs != tt.dur.Milliseconds() || li.Token == 0 {
					t.Fatalf("LockAcquire = %+v, want owner %s, %d ms", li, tt.owner, tt.dur.Milliseconds())
				}
				got, err := s.LockGet(ctx, "a", "l")
				if err != nil || got != li {
					t.Fatalf("LockGet = (%+v, %v), want %+v", got, err, li)
				}
				return
			}
			var le *LockedError
			if errors.Is(tt.wantErr, ErrLocked) {
				if !errors.As(err, &le) || le.Owner != tt.wantOwner || le.RemainingMs != tt.wantRem {
					t.Fatalf("LockAcquire error = %#v, want owner %q, %d ms", err, tt.wantOwner, tt.wantRem)
				}
			}
			after, afterErr := s.KVGet(ctx, "a", "l")
			if after.Version != before.Version || (beforeErr == nil) != (afterErr == nil) {
				t.Fatalf("refused LockAcquire changed the key: %+v → %+v", before, after)
			}
		})
	}
}

// TestLockExtensionKeepsToken_D3: the holder extending its lock keeps the
// fencing token and gets a new deadline.
func TestLockExtensionKeepsToken_D3(t *testing.T) {
	ctx := ctxT(t)
	s, clock := newStore(t)
	li := mustLock(t, s, "l", "me", 10*time.Second)
	clock.Advance(8 * time.Second)
	li2, err := s.LockAcquire(ctx, "a", "l", "me", 10*time.Second)
	if err != nil || li2.Token != li.Token || li2.RemainingMs != 10000 {
		t.Fatalf("extension = (%+v, %v), want token %d, 10000 ms", li2, err, li.Token)
	}
	clock.Advance(9 * time.Second) // past the first deadline, within the second
	if got, err := s.LockGet(ctx, "a", "l"); err != nil || got.Owner != "me" || got.RemainingMs != 1000 {
		t.Fatalf("LockGet after the first deadline = (%+v, %v), want me, 1000 ms", got, err)
	}
}

// TestLockTokensRiseAcrossReleaseAndExpiry_D3: every new acquisition gets
// a higher fencing token than any before, whether the lock was released,
// force-released or expired, and across a restart.
func TestLockTokensRiseAcrossReleaseAndExpiry_D3(t *testing.T) {
	ctx := ctxT(t)
	clock := newFakeClock()
	s := openStore(t, nil, t.TempDir(), Config{Clock: clock})
	last := mustLock(t, s, "l", "a", time.Second).Token
	next := func(how string, owner string) {
		t.Helper()
		li := mustLock(t, s, "l", owner, time.Second)
		if li.Token <= last {
			t.Fatalf("token after %s = %d, not above %d", how, li.Token, last)
		}
		last = li.Token
	}
	if ok, err := s.LockRelease(ctx, "a", "l", "a"); !ok || err != nil {
		t.Fatalf("release = (%v, %v)", ok, err)
	}
	next("release, same owner", "a")
	if ok, err := s.LockForceRelease(ctx, "a", "l"); !ok || err != nil {
		t.Fatalf("force release = (%v, %v)", ok, err)
	}
	next("force release", "b")
	clock.Advance(time.Second)
	next("expiry", "c")
	clock.Advance(time.Second)
	next("expiry, no other write in between", "c")
	s = s.reopen()
	clock.Advance(time.Second)
	next("restart and expiry", "d")
}

func TestLockRelease(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(t *testing.T, s *testStore)
		owner     string
		want      bool
		wantErr   error
		stillHeld bool
	}{
		{name: "free lock", owner: "me", want: false},
		{name: "held by owner", setup: lockedBy("me"), owner: "me", want: true},
		{name: "held by another", setup: lockedBy("you"), owner: "me", wantErr: ErrLocked, stillHeld: true},
		{name: "force release", setup: lockedBy("you"), owner: "", want: true},
		{name: "force release of a free lock", owner: "", want: false},
		{
			name: "expired lock is free",
			setup: func(t *testing.T, s *testStore) {
				lockedBy("you")(t, s)
				s.cfg.Clock.(*fakeClock).Advance(time.Minute)
			},
			owner: "me", want: false,
		},
		{name: "a kv value held by another", setup: func(t *testing.T, s *testStore) { mustSet(t, s, "l", "v") }, owner: "me", wantErr: ErrLocked, stillHeld: true},
		{name: "a kv value released by its value", setup: func(t *testing.T, s *testStore) { mustSet(t, s, "l", "v") }, owner: "v", want: true},
		{
			name: "force release never resets a sequence (D3)",
			setup: func(t *testing.T, s *testStore) {
				if _, err := s.SeqNext(ctxT(t), "a", "l", 5); err != nil {
					t.Fatal(err)
				}
			},
			owner: "", wantErr: ErrWrongType, stillHeld: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxT(t)
			s, _ := newStore(t)
			if tt.setup != nil {
				tt.setup(t, s)
			}
			// owner "" in this table means the operator's force-release.
			release := func() (bool, error) { return s.LockRelease(ctx, "a", "l", tt.owner) }
			if tt.owner == "" {
				release = func() (bool, error) { return s.LockForceRelease(ctx, "a", "l") }
			}
			got, err := release()
			if got != tt.want || !errors.Is(err, tt.wantErr) {
				t.Fatalf("LockRelease = (%v, %v), want (%v, %v)", got, err, tt.want, tt.wantErr)
			}
			_, gerr := s.LockGet(ctx, "a", "l")
			// A sequence, never a lock, is still there as WRONGTYPE.
			if held := gerr == nil || errors.Is(gerr, ErrWrongType); held != tt.stillHeld {
				t.Fatalf("after release: LockGet err %v, want held=%v", gerr, tt.stillHeld)
			}
		})
	}
}

func TestLockGet(t *testing.T) {
	ctx := ctxT(t)
	s, clock := newStore(t)
	if _, err := s.LockGet(ctx, "a", "l"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LockGet of a free lock = %v, want ErrNotFound", err)
	}
	li := mustLock(t, s, "l", "me", 5*time.Second)
	clock.Advance(1200 * time.Millisecond)
	got, err := s.LockGet(ctx, "a", "l")
	if err != nil || got.Owner != "me" || got.Token != li.Token || got.RemainingMs != 3800 {
		t.Fatalf("LockGet = (%+v, %v), want me, token %d, 3800 ms", got, err, li.Token)
	}
	clock.Advance(3800 * time.Millisecond)
	if _, err := s.LockGet(ctx, "a", "l"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LockGet at the deadline = %v, want ErrNotFound", err)
	}
}

func lockedBy(owner string) func(t *testing.T, s *testStore) {
	return func(t *testing.T, s *testStore) { mustLock(t, s, "l", owner, 10*time.Second) }
}

func mustLock(t *testing.T, s *testStore, id, owner string, dur time.Duration) LockInfo {
	t.Helper()
	li, err := s.LockAcquire(ctxT(t), "a", id, owner, dur)
	if err != nil {
		t.Fatalf("LockAcquire(%s, %s): %v", id, owner, err)
	}
	return li
}

// TestReleaseWithoutOwnerOrHandleIsNeverAForceRelease: an empty owner or
// handle 0 (an unset variable in a script) is refused; only the explicit
// force calls release whoever holds the lock or mutex.
func TestReleaseWithoutOwnerOrHandleIsNeverAForceRelease(t *testing.T) {
	ctx := ctxT(t)
	s, _ := newStore(t)
	lockedBy("you")(t, s)
	if _, err := s.LockRelease(ctx, "a", "l", ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("LockRelease with no owner: %v, want ErrInvalid", err)
	}
	if _, err := s.LockGet(ctx, "a", "l"); err != nil {
		t.Fatalf("lock no longer held: %v", err)
	}
	h, err := s.MutexLock(ctx, "a", "m", time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.MutexUnlock("a", "m", 0); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("MutexUnlock with handle 0: %v, want ErrNotHeld", err)
	}
	if err := s.MutexUnlock("a", "m", h); err != nil {
		t.Fatalf("the holder could not unlock after the refused handle 0: %v", err)
	}
}
