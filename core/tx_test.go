package core

import (
	"context"
	"testing"
	"time"
)

// A1: a transaction reads the clock once, as Redis 7 freezes its clock
// during EXEC: a key does not expire between two of its commands.
func TestATransactionRunsAtOneTime_A1(t *testing.T) {
	s, clock := newStore(t)
	ctx, _ := WithPipeline(context.Background())
	get := func() bool {
		_, ok, err := s.Get(ctx, "a", "k")
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if _, err := s.Set(ctx, "a", "k", []byte("v"), SetOptions{Expiry: Expiry{Mode: ExpiryIn, Ms: 100}}); err != nil {
		t.Fatal(err)
	}
	var first, second bool
	if err := s.Atomically(ctx, func() {
		first = get()
		clock.Advance(time.Second) // the key's deadline passes mid-transaction
		second = get()
	}); err != nil {
		t.Fatal(err)
	}
	if !first || !second {
		t.Fatalf("inside one transaction the key was seen %v, then %v: it expired between two commands", first, second)
	}
	if get() {
		t.Fatal("after the transaction the key is still there: the clock never moved")
	}
}

// Atomically does not nest, and needs a Pipeline to collect the waits in.
func TestAtomicallyNeedsAPipelineAndDoesNotNest(t *testing.T) {
	s, _ := newStore(t)
	if err := s.Atomically(context.Background(), func() { t.Fatal("ran without a pipeline") }); err != ErrInTransaction {
		t.Fatalf("without a pipeline: %v", err)
	}
	ctx, _ := WithPipeline(context.Background())
	var inner error
	if err := s.Atomically(ctx, func() { inner = s.Atomically(ctx, func() { t.Fatal("nested ran") }) }); err != nil || inner != ErrInTransaction {
		t.Fatalf("nested: outer %v, inner %v", err, inner)
	}
}

// A transaction that starts after Close answers ErrClosed and runs
// nothing: its commands read records with the apply lock held, outside the
// reads Close waits for, so they would read a closed Pebble (found by
// review: a panic, "pebble: closed").
func TestATransactionAfterCloseAnswersErrClosed(t *testing.T) {
	s, _ := newStore(t)
	ctx, _ := WithPipeline(context.Background())
	if _, err := s.Set(ctx, "a", "k", []byte("v"), SetOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ran := false
	if err := s.Atomically(ctx, func() { ran = true; _, _, _ = s.Get(ctx, "a", "uncached") }); err != ErrClosed || ran {
		t.Fatalf("Atomically after Close = %v (ran: %v), want ErrClosed and nothing run", err, ran)
	}
}
