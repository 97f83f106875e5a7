package core

import (
	"log/slog"
	"time"
)

// reapBatch bounds the keys reclaimed per apply-lock hold.
const reapBatch = 256

// reapLoop reclaims expired keys in the background. Expired keys are
// already invisible (D4); reclaiming is a logged delete through the apply
// loop, so it takes a revision and is durable like any write.
func (s *Store) reapLoop() {
	tick := time.NewTicker(s.cfg.ReapInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.stopc:
			return
		case <-tick.C:
			// A full pass may have left more; wait until its deletes are
			// durable before scanning again, or the scan (of committed
			// data) would find the same entries and delete them again.
			for n, f := s.reapOnce(); n == reapBatch && f != nil; n, f = s.reapOnce() {
				select {
				case <-f.done:
				case <-s.stopc:
					return
				}
			}
		}
	}
}

// reapOnce deletes up to reapBatch expired keys. It returns how many index
// entries it looked at and the flight of its deletes (nil if none).
func (s *Store) reapOnce() (int, *flight) {
	// The scan reads Pebble alone: it must hold the last pass's deletes.
	if s.Applied() != nil {
		return 0, nil // fail-stopped (D6): nothing is reaped
	}
	now := s.clock.Now().UnixMilli()
	type item struct {
		at  int64
		key []byte
	}
	var items []item
	if err := s.db.ScanExpired(now, reapBatch, func(at int64, k []byte) {
		items = append(items, item{at, k})
	}); err != nil {
		slog.Error("reaper: scan", "err", err)
		return 0, nil
	}
	if len(items) == 0 {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writableLocked() != nil {
		return 0, nil
	}
	t := txn{s: s, now: now}
	for _, it := range items {
		e, err := t.get(it.key)
		if err != nil {
			return 0, nil
		}
		switch {
		case e.exists && e.rec.ExpireAt == it.at && !e.live(now):
			t.del(it.key, e)
		case !(e.exists && e.rec.ExpireAt == it.at):
			// Stale index entry: the key was deleted or re-timed already.
			s.mu.batch.DeleteExpiry(it.at, it.key)
			t.wrote()
		}
	}
	return len(items), t.dep
}
