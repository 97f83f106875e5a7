package core

import "context"

// Pipeline lets a front-end submit several commands and wait for their
// durability once: the Store calls made with the context from WithPipeline
// apply their effects and return at once, and the wait each of them would
// have done is collected instead. One group commit then covers a whole
// client pipeline (DESIGN.md, "RESP pipelines") instead of one per command.
//
// NB: D1 then binds the front-end: a command's reply may leave only after
// its Pending.Wait returned nil. A Pipeline belongs to one connection and is
// not safe for concurrent use.
//
// The writes of a pipeline do not wake the committer (the batch would be
// committed after the first command, the rest in a second fsync); the
// first Wait or Flush does, once every command has been submitted.
type Pipeline struct {
	s    *Store
	cur  *flight // newest flight the current command reflects
	held *Store  // inside that store's Atomically: its apply lock is held
	now  int64   // then: the transaction's time (unix ms)
}

type pipelineKey struct{}

// WithPipeline returns a context whose Store calls defer their durability
// wait to p.
func WithPipeline(ctx context.Context) (context.Context, *Pipeline) {
	p := &Pipeline{}
	return context.WithValue(ctx, pipelineKey{}, p), p
}

func pipelineFrom(ctx context.Context) *Pipeline {
	p, _ := ctx.Value(pipelineKey{}).(*Pipeline)
	return p
}

func (p *Pipeline) add(s *Store, f *flight) {
	p.s = s
	if f != nil && (p.cur == nil || f.gen > p.cur.gen) {
		p.cur = f
	}
}

// Take returns the wait of the Store calls made since the previous Take
// (one command's) and starts collecting the next command's.
func (p *Pipeline) Take() Pending {
	f := p.cur
	p.cur = nil
	return Pending{s: p.s, f: f}
}

// Flush starts the commit of what the pipeline wrote so far. A front-end
// calls it before a command that may block (MLOCK), so that earlier writes
// of the pipeline, and other clients' writes in the same batch, are not
// held back by the wait.
func (p *Pipeline) Flush() {
	if p.s != nil {
		p.s.kickCommitter()
	}
}

// Pending is the durability wait of one command's Store calls.
type Pending struct {
	s *Store
	f *flight
}

// Ready reports whether Wait would return at once: nothing to wait for, or
// the flight already synced or failed. An event loop checks it to write a
// reply without handing it to a goroutine that waits.
func (p Pending) Ready() bool {
	if p.f == nil {
		return true
	}
	select {
	case <-p.f.done:
		return true
	default:
		return false
	}
}

// Wait returns once everything the command wrote or read is synced (nil),
// or with the error that makes its reply invalid: the sync failed (D6) or
// ctx ended first.
func (p Pending) Wait(ctx context.Context) error {
	if p.f == nil {
		return nil
	}
	select {
	case <-p.f.done:
		return p.f.err // already durable: no kick, which could commit another pipeline half-way
	default:
	}
	p.s.kickCommitter()
	select {
	case <-p.f.done:
		return p.f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}
