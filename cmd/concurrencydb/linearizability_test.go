package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/redis/go-redis/v9"
)

// The linearizability check: clients over RESP and HTTP record every
// operation with its invocation and response time, the server is killed
// with SIGKILL between rounds, and porcupine searches for a single order of
// all operations, consistent with real time, that a sequential server
// (linModel) could have produced. An operation cut off by the kill has no
// output: it may or may not have taken effect, and it cannot take effect
// after the server died, so its response time is the moment the killed
// process was reaped. Every key is its own partition (Model.Partition), so
// the search stays small.

type linOp int

const (
	opKVSet linOp = iota
	opKVGet
	opKVDel
	opIncr
	opCtrGet
	opSeqNext
	opSeqGet
	opLockAcquire
	opLockRelease
	opLockGet
	opSetNX // SET key owner NX PX ms: the Redis lock idiom, on the same locks
	opDelEx // DELEX key IFEQ owner: its release
)

func (o linOp) String() string {
	return [...]string{"KV.SET", "KV.GET", "KV.DEL", "INCR", "GET", "SEQ.NEXT", "SEQ.GET",
		"LOCK.ACQUIRE", "LOCK.RELEASE", "LOCK.GET", "SET NX PX", "DELEX IFEQ"}[o]
}

type linInput struct {
	op    linOp
	key   string // partition
	val   string // KV.SET value
	ver   uint64 // KV.SET VER (0 = only if absent); KV.DEL VER (0 = unconditional); SEQ.NEXT COUNT
	owner string // lock owner
	proto string
}

type linOutput struct {
	unknown  bool   // cut off by the kill: no answer
	found    bool   // reads: the key exists; KV.DEL: it was deleted
	fail     bool   // KV.SET version mismatch, lock held by another owner
	n        uint64 // version, counter, sequence value or fencing token
	val      string // KV value or lock owner
	released int    // LOCK.RELEASE: releasedYes, releasedFree or releasedOK
}

// linState is one key's state. Every field is comparable, so == is the
// model's Equal. A kv key uses exists/val/ver, counters and sequences n,
// locks owner/token/maxTok. A deleted kv key keeps ver: versions increase
// per key across delete and re-create (D3).
type linState struct {
	exists     bool
	val        string
	ver        uint64
	verUnknown bool // a cut-off write may have set the version: ver is then an exclusive lower bound
	n          uint64
	owner      string // "" = free
	token      uint64
	tokUnknown bool   // held through a cut-off acquisition: token not known, above maxTok
	maxTok     uint64 // every later new acquisition gets a higher token (D3)
}

// kvPrecondition reports whether KV.SET … VER v can succeed, and whether it
// can fail, in state s.
func kvPrecondition(s linState, v uint64) (canHold, canFail bool) {
	switch {
	case v == 0:
		return !s.exists, s.exists
	case !s.exists:
		return false, true
	case s.verUnknown:
		return v > s.ver, true
	default:
		return s.ver == v, s.ver != v
	}
}

func one(s linState) []any { return []any{s} }

// linStep is the sequential specification: the states s can move to when
// the operation in answers out; none when it cannot.
func linStep(state, input, output any) []any {
	s, in, out := state.(linState), input.(linInput), output.(linOutput)
	switch in.op {
	case opKVGet:
		switch {
		case out.unknown:
			return one(s)
		case !out.found:
			if s.exists {
				return nil
			}
			return one(s)
		case !s.exists || s.val != out.val:
			return nil
		case s.verUnknown:
			if out.n <= s.ver {
				return nil
			}
			s.ver, s.verUnknown = out.n, false
			return one(s)
		case s.ver != out.n:
			return nil
		}
		return one(s)

	case opKVSet:
		canHold, canFail := kvPrecondition(s, in.ver)
		switch {
		case out.unknown:
			res := one(s)
			if canHold {
				res = append(res, linState{exists: true, val: in.val, ver: max(s.ver, in.ver), verUnknown: true})
			}
			return res
		case out.fail:
			if !canFail {
				return nil
			}
			return one(s)
		case !canHold || out.n <= s.ver || out.n <= in.ver:
			return nil // versions only increase per key
		}
		return one(linState{exists: true, val: in.val, ver: out.n})

	case opKVDel:
		deleted := linState{ver: s.ver}
		canHold, canFail := s.exists, !s.exists
		if in.ver != 0 {
			canHold, canFail = kvPrecondition(s, in.ver)
		}
		switch {
		case out.unknown:
			if canHold {
				return []any{s, deleted}
			}
			return one(s)
		case out.found && canHold:
			return one(deleted)
		case !out.found && in.ver == 0 && !s.exists:
			return one(s)
		case out.fail && in.ver != 0 && canFail:
			return one(s)
		}
		return nil

	case opIncr, opSeqNext:
		step := uint64(1)
		if in.op == opSeqNext {
			step = in.ver // COUNT: the answer is the highest value reserved
		}
		switch {
		case out.unknown:
			next := s
			next.n += step
			return []any{s, next}
		case out.n != s.n+step:
			return nil
		}
		s.n += step
		return one(s)

	case opCtrGet, opSeqGet:
		switch {
		case out.unknown:
			return one(s)
		case !out.found && s.n == 0, out.found && out.n == s.n:
			return one(s)
		}
		return nil

	case opLockAcquire:
		switch {
		case out.unknown:
			if s.owner == "" {
				return []any{s, linState{owner: in.owner, tokUnknown: true, maxTok: s.maxTok}}
			}
			return one(s)
		case out.fail:
			if s.owner != "" && s.owner != in.owner {
				return one(s)
			}
			return nil
		case s.owner == "":
			if out.n <= s.maxTok {
				return nil // a new holder always gets a higher token
			}
			return one(linState{owner: in.owner, token: out.n, maxTok: out.n})
		case s.owner != in.owner:
			return nil
		case s.tokUnknown:
			if out.n <= s.maxTok {
				return nil
			}
			return one(linState{owner: in.owner, token: out.n, maxTok: out.n})
		case out.n != s.token:
			return nil // an extension keeps the token
		}
		return one(s)

	case opLockRelease:
		free := linState{maxTok: max(s.maxTok, s.token)}
		switch {
		case out.unknown:
			if s.owner == in.owner {
				return []any{s, free}
			}
			return one(s)
		case out.fail:
			if s.owner != "" && s.owner != in.owner {
				return one(s)
			}
			return nil
		case s.owner == "" && out.released != releasedYes:
			return one(s)
		case s.owner == in.owner && out.released != releasedFree:
			return one(free)
		}
		return nil

	case opSetNX:
		// Takes a free lock; says nothing of the fencing token, which is
		// above every earlier one (D3). Never extends, not even the owner's.
		taken := linState{owner: in.owner, tokUnknown: true, maxTok: s.maxTok}
		switch {
		case out.unknown:
			if s.owner == "" {
				return []any{s, taken}
			}
			return one(s)
		case out.fail:
			if s.owner != "" {
				return one(s)
			}
			return nil
		case s.owner == "":
			return one(taken)
		}
		return nil

	case opDelEx:
		free := linState{maxTok: max(s.maxTok, s.token)}
		switch {
		case out.unknown:
			if s.owner == in.owner {
				return []any{s, free}
			}
			return one(s)
		case out.found && s.owner == in.owner:
			return one(free)
		case !out.found && s.owner != in.owner:
			return one(s)
		}
		return nil

	case opLockGet:
		switch {
		case out.unknown:
			return one(s)
		case !out.found:
			if s.owner == "" {
				return one(s)
			}
			return nil
		case s.owner != out.val:
			return nil
		case s.tokUnknown:
			if out.n <= s.maxTok {
				return nil
			}
			s.token, s.tokUnknown, s.maxTok = out.n, false, out.n
			return one(s)
		case s.token != out.n:
			return nil
		}
		return one(s)
	}
	panic(fmt.Sprintf("linStep: unknown op %d", in.op))
}

func linPartition(history []porcupine.Operation) [][]porcupine.Operation {
	byKey := map[string][]porcupine.Operation{}
	var keys []string
	for _, op := range history {
		k := op.Input.(linInput).key
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], op)
	}
	sort.Strings(keys)
	var out [][]porcupine.Operation
	for _, k := range keys {
		out = append(out, byKey[k])
	}
	return out
}

func describeLinOp(input, output any) string {
	in, out := input.(linInput), output.(linOutput)
	args := in.key
	switch in.op {
	case opKVSet:
		args += fmt.Sprintf(" %q VER %d", in.val, in.ver)
	case opSeqNext:
		if in.ver != 1 {
			args += fmt.Sprintf(" COUNT %d", in.ver)
		}
	case opKVDel:
		if in.ver != 0 {
			args += fmt.Sprintf(" VER %d", in.ver)
		}
	case opLockAcquire, opLockRelease, opSetNX, opDelEx:
		args += " " + in.owner
	}
	var res string
	switch {
	case out.unknown:
		res = "? (cut off by kill -9)"
	case out.fail:
		res = "refused"
	case in.op == opKVDel || in.op == opDelEx:
		res = map[bool]string{true: "1", false: "0"}[out.found]
	case in.op == opSetNX:
		res = "OK"
	case in.op == opKVGet && out.found:
		res = fmt.Sprintf("%q v%d", out.val, out.n)
	case in.op == opLockGet && out.found:
		res = fmt.Sprintf("%s token %d", out.val, out.n)
	case in.op == opLockRelease:
		res = map[int]string{releasedYes: "1", releasedFree: "0", releasedOK: "ok"}[out.released]
	case (in.op == opKVGet || in.op == opCtrGet || in.op == opSeqGet || in.op == opLockGet) && !out.found:
		res = "nil"
	default:
		res = fmt.Sprint(out.n)
	}
	return fmt.Sprintf("%s %s %s → %s", in.proto, in.op, args, res)
}

func describeLinState(state any) string {
	s := state.(linState)
	var d string
	if s.exists {
		d = fmt.Sprintf("%q v%d", s.val, s.ver)
		if s.verUnknown {
			d = fmt.Sprintf("%q v>%d", s.val, s.ver)
		}
	}
	if s.n != 0 {
		d += fmt.Sprintf("n=%d", s.n)
	}
	if s.owner != "" {
		d += fmt.Sprintf("held by %s token %d", s.owner, s.token)
		if s.tokUnknown {
			d = fmt.Sprintf("held by %s token >%d", s.owner, s.maxTok)
		}
	}
	if d == "" {
		d = "empty"
	}
	return d
}

// linModel is the model porcupine checks: linStep per key.
func linModel() porcupine.Model {
	return (&porcupine.NondeterministicModel{
		Partition:         linPartition,
		Init:              func() []any { return []any{linState{}} },
		Step:              linStep,
		DescribeOperation: describeLinOp,
		DescribeState:     describeLinState,
	}).ToModel()
}

// checkLinearizable fails t when history is not linearizable, and saves a
// visualisation of it to a file it names in the failure.
func checkLinearizable(t *testing.T, history []porcupine.Operation) {
	t.Helper()
	res, info := porcupine.CheckOperationsVerbose(linModel(), history, 30*time.Second)
	switch res {
	case porcupine.Ok:
		return
	case porcupine.Unknown:
		// The search ran out of time. Histories here are sized to check in
		// well under a second, so 30 s means the history is pathological:
		// a run that proves nothing must not pass.
		t.Fatalf("linearizability check of %d operations inconclusive (search timed out after 30s)", len(history))
	}
	f, err := os.CreateTemp("", "concurrencydb-linearizability-*.html")
	if err != nil {
		t.Fatalf("history of %d operations is NOT linearizable (and saving the visualisation failed: %v)", len(history), err)
	}
	f.Close()
	if err := porcupine.VisualizePath(linModel(), info, f.Name()); err != nil {
		t.Fatalf("history of %d operations is NOT linearizable (and saving the visualisation failed: %v)", len(history), err)
	}
	t.Errorf("history of %d operations is NOT linearizable; visualisation: %s", len(history), f.Name())
}

const (
	linAcc        = "lin"
	linClients    = 8 // half RESP, half HTTP; each swaps protocol every round
	linKillRounds = 20
	linMaxOps     = 250 // per client per round: bounds the history
)

// The keys, few so that clients collide: kv0 kv1 (kv), c0 (counter), s0
// (sequence), l0 l1 (locks).
const (
	linKVKeys   = 2
	linLockKeys = 2
)

// linRecorder is one client's history and what it knows of the kv versions.
type linRecorder struct {
	id      int
	owner   string
	rng     *rand.Rand
	t0      time.Time
	ops     []porcupine.Operation
	lastVer map[string]uint64
	nval    int
}

func (r *linRecorder) now() int64 { return int64(time.Since(r.t0)) }

// once does one random operation and records it. It returns the operation's
// error: a transport error cuts the client's round off (the kill).
func (r *linRecorder) once(ctx context.Context, c crashClient) error {
	pick := func(prefix string, n int) string { return fmt.Sprintf("%s%d", prefix, r.rng.IntN(n)) }
	kvKey := func() string { return pick("kv", linKVKeys) }
	lockKey := func() string { return pick("l", linLockKeys) }
	if rc, ok := c.(*respClient); ok && r.rng.IntN(10) == 0 {
		return r.pipeline(ctx, rc, "c0", "s0", kvKey())
	}
	in := linInput{proto: c.proto(), owner: r.owner}
	var out linOutput
	var err error
	call := r.now()
	switch x := r.rng.IntN(100); {
	case x < 22:
		in.op, in.key = opKVSet, kvKey()
		r.nval++
		in.val = fmt.Sprintf("c%d-%d", r.id, r.nval)
		switch y := r.rng.IntN(10); {
		case y == 0:
			in.ver = 0
		case y == 1 && r.lastVer[in.key] > 0:
			in.ver = r.lastVer[in.key] - 1
		default:
			in.ver = r.lastVer[in.key]
		}
		out.n, out.fail, err = c.kvSet(ctx, linAcc, in.key, in.val, in.ver)
		if err == nil && !out.fail {
			r.lastVer[in.key] = out.n
		}
	case x < 30:
		in.op, in.key = opKVDel, kvKey()
		if r.rng.IntN(2) == 0 {
			in.ver = r.lastVer[in.key]
		}
		out.found, out.fail, err = c.kvDel(ctx, linAcc, in.key, in.ver)
	case x < 45:
		in.op, in.key = opKVGet, kvKey()
		out.val, out.n, out.found, err = c.kvGet(ctx, linAcc, in.key)
		if err == nil && out.found {
			r.lastVer[in.key] = out.n
		}
	case x < 60:
		in.op, in.key = opIncr, "c0"
		var n int64
		n, err = c.incr(ctx, linAcc, in.key)
		out.n = uint64(n)
	case x < 65:
		in.op, in.key = opCtrGet, "c0"
		var n int64
		n, out.found, err = c.ctrGet(ctx, linAcc, in.key)
		out.n = uint64(n)
	case x < 75:
		in.op, in.key, in.ver = opSeqNext, "s0", 1
		if r.rng.IntN(4) == 0 {
			in.ver += r.rng.Uint64N(4)
		}
		out.n, err = c.seqNext(ctx, linAcc, in.key, in.ver)
	case x < 80:
		in.op, in.key = opSeqGet, "s0"
		out.n, out.found, err = c.seqGet(ctx, linAcc, in.key)
	case x < 88:
		in.op, in.key = opLockAcquire, lockKey()
		rc, isRESP := c.(*respClient)
		if isRESP && r.rng.IntN(3) == 0 {
			in.op = opSetNX
			out.fail, err = rc.setNX(ctx, linAcc, in.key, r.owner)
			break
		}
		out.n, out.fail, err = c.lockAcquire(ctx, linAcc, in.key, r.owner)
	case x < 95:
		in.op, in.key = opLockRelease, lockKey()
		rc, isRESP := c.(*respClient)
		if isRESP && r.rng.IntN(3) == 0 {
			in.op = opDelEx
			out.found, err = rc.delIfEq(ctx, linAcc, in.key, r.owner)
			break
		}
		out.released, out.fail, err = c.lockRelease(ctx, linAcc, in.key, r.owner)
	default:
		in.op, in.key = opLockGet, lockKey()
		var lv lockView
		lv, err = c.lockGet(ctx, linAcc, in.key)
		out.val, out.n, out.found = lv.owner, lv.token, lv.found
	}
	ret := r.now()
	if err != nil {
		out = linOutput{unknown: true}
		ret = 0 // set to the moment the killed server was reaped
	}
	r.ops = append(r.ops, porcupine.Operation{ClientId: r.id, Input: in, Call: call, Output: out, Return: ret})
	return err
}

// pipeline sends INCR, SEQ.NEXT and KV.GET in one RESP pipeline: the server
// applies them in order and answers them after one durability wait, so each
// is one operation spanning the whole round trip.
//
// NB: go-redis marks every command of a pipeline failed when the connection
// breaks, also those whose reply arrived: they are recorded as cut off,
// which the model allows either way.
func (r *linRecorder) pipeline(ctx context.Context, c *respClient, ctr, seq, kv string) error {
	call := r.now()
	var incr *redis.IntCmd
	var next, get *redis.Cmd
	// The pipeline's own error is the first command's, redis.Nil included:
	// each command's error is looked at below instead.
	_, _ = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		incr = p.Incr(ctx, respKey(linAcc, ctr))
		next = p.Do(ctx, "SEQ.NEXT", respKey(linAcc, seq))
		get = p.Do(ctx, "KV.GET", respKey(linAcc, kv))
		return nil
	})
	ret := r.now()
	ops := []struct {
		in  linInput
		out linOutput
		err error
	}{
		{in: linInput{op: opIncr, key: ctr}, err: respErr("INCR", incr.Err())},
		{in: linInput{op: opSeqNext, key: seq, ver: 1}, err: respErr("SEQ.NEXT", next.Err())},
		{in: linInput{op: opKVGet, key: kv}},
	}
	if n, err := incr.Result(); err == nil {
		ops[0].out.n = uint64(n)
	}
	if n, err := next.Uint64(); err == nil {
		ops[1].out.n = n
	} else if ops[1].err == nil {
		ops[1].err = unexpected("SEQ.NEXT (pipelined): %v", err)
	}
	switch v, err := get.Slice(); {
	case err == redis.Nil:
	case err != nil:
		ops[2].err = respErr("KV.GET", err)
	case len(v) != 2:
		ops[2].err = unexpected("KV.GET (pipelined): %v", v)
	default:
		val, ok1 := v[0].(string)
		ver, ok2 := v[1].(int64)
		if !ok1 || !ok2 {
			ops[2].err = unexpected("KV.GET (pipelined): %#v", v)
		}
		ops[2].out = linOutput{found: true, val: val, n: uint64(ver)}
	}
	var cut error
	for _, o := range ops {
		o.in.proto, o.in.owner = "resp-pipeline", r.owner
		rt := ret
		if o.err != nil {
			if isReplyError(o.err) {
				return o.err
			}
			o.out, rt, cut = linOutput{unknown: true}, 0, o.err
		}
		r.ops = append(r.ops, porcupine.Operation{ClientId: r.id, Input: o.in, Call: call, Output: o.out, Return: rt})
	}
	return cut
}

// TestLinearizableAcrossProtocolsAndKill9 (D1, D3): concurrent clients over
// RESP (single commands and pipelines) and HTTP on the same keys —
// KV.SET … VER, KV.GET, KV.DEL, INCR and GET, SEQ.NEXT [COUNT] and SEQ.GET,
// LOCK.ACQUIRE/RELEASE/GET and the Redis idiom SET NX PX / DELEX IFEQ on
// the same locks — with kill -9 after a random number of answers in every
// round but the last. The whole history, cut-off operations included, must
// be linearizable; versions are also unique across keys.
func TestLinearizableAcrossProtocolsAndKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it repeatedly")
	}
	seed := crashSeed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	bin := buildBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	t0 := time.Now()
	recs := make([]*linRecorder, linClients)
	for i := range recs {
		recs[i] = &linRecorder{id: i, owner: fmt.Sprintf("client-%d", i), t0: t0,
			rng: rand.New(rand.NewPCG(seed, uint64(i)+2)), lastVer: map[string]uint64{}}
	}

	for round := 0; round <= linKillRounds; round++ {
		kill := round < linKillRounds
		p := startWithRESP(t, bin, data)
		// Kill after a random number of answered operations, so that
		// operations are in flight when it lands.
		killAfter := int64(50 + rng.IntN(linClients*linMaxOps/2))
		var answered atomic.Int64
		var killed atomic.Bool // set before the kill: an error earlier is a failure
		trigger := make(chan struct{})
		var once sync.Once
		var wg sync.WaitGroup
		for _, r := range recs {
			c := clientOf(p, r.id+round)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.close()
				n := linMaxOps
				if !kill {
					n /= 4 // after the last restart: enough to read back every key
				}
				for range n {
					if err := r.once(context.Background(), c); err != nil {
						if isReplyError(err) {
							t.Errorf("client %d (%s): %v", r.id, c.proto(), err)
						} else if !killed.Load() {
							t.Errorf("client %d (%s): transport error before the kill: %v", r.id, c.proto(), err)
						}
						return
					}
					if answered.Add(1) == killAfter {
						once.Do(func() { close(trigger) })
					}
				}
			}()
		}
		if kill {
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-trigger:
			case <-done:
			}
			killed.Store(true)
			killHard(t, p)
		}
		wg.Wait()
		reaped := int64(time.Since(t0))
		for _, r := range recs {
			for i := range r.ops {
				if op := &r.ops[i]; op.Return == 0 {
					// Cut off: the server is gone, so the operation took
					// effect before now or never.
					op.Return = max(reaped, op.Call)
				}
			}
		}
		if t.Failed() {
			return
		}
	}

	var history []porcupine.Operation
	versions := map[uint64]string{}
	cut := 0
	defer func() {
		if len(history) == cut {
			t.Errorf("no operation was answered: the test checked nothing")
		}
	}()
	for _, r := range recs {
		for _, op := range r.ops {
			in, out := op.Input.(linInput), op.Output.(linOutput)
			if out.unknown {
				cut++
			}
			// Versions are revisions: unique across all keys.
			if in.op == opKVSet && !out.unknown && !out.fail {
				if prev, dup := versions[out.n]; dup {
					t.Errorf("version %d answered twice: %s and %s", out.n, prev, describeLinOp(in, out))
				}
				versions[out.n] = describeLinOp(in, out)
			}
		}
		history = append(history, r.ops...)
	}
	start := time.Now()
	checkLinearizable(t, history)
	t.Logf("checked %d operations (%d cut off by kill -9) in %v", len(history), cut, time.Since(start).Round(time.Millisecond))
}

// TestLinearizabilityModelRejectsBrokenHistories: the checker is not
// vacuous. Hand-made histories that break each promise are Illegal, the
// legal variants Ok, and a failing check writes a visualisation.
func TestLinearizabilityModelRejectsBrokenHistories(t *testing.T) {
	op := func(client int, call, ret int64, in linInput, out linOutput) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
	}
	set := func(key, val string, ver uint64) linInput {
		return linInput{op: opKVSet, key: key, val: val, ver: ver, proto: "resp"}
	}
	get := linInput{op: opKVGet, key: "k", proto: "http"}
	incr := linInput{op: opIncr, key: "c", proto: "resp"}
	ctrGet := linInput{op: opCtrGet, key: "c", proto: "http"}
	seq := linInput{op: opSeqNext, key: "s", ver: 1, proto: "http"}
	acq := func(owner string) linInput { return linInput{op: opLockAcquire, key: "l", owner: owner, proto: "resp"} }
	rel := func(owner string) linInput { return linInput{op: opLockRelease, key: "l", owner: owner, proto: "http"} }
	unknown := linOutput{unknown: true}

	cases := []struct {
		name    string
		history []porcupine.Operation
		want    porcupine.CheckResult
	}{
		{"stale read after acknowledged write", []porcupine.Operation{
			op(0, 0, 10, set("k", "a", 0), linOutput{n: 5}),
			op(1, 20, 30, get, linOutput{}),
		}, porcupine.Illegal},
		{"read of acknowledged write", []porcupine.Operation{
			op(0, 0, 10, set("k", "a", 0), linOutput{n: 5}),
			op(1, 20, 30, get, linOutput{found: true, val: "a", n: 5}),
		}, porcupine.Ok},
		{"compare-and-set succeeds twice on one version", []porcupine.Operation{
			op(0, 0, 10, set("k", "a", 0), linOutput{n: 5}),
			op(0, 20, 30, set("k", "b", 5), linOutput{n: 6}),
			op(1, 20, 30, set("k", "c", 5), linOutput{n: 7}),
		}, porcupine.Illegal},
		{"version goes backwards", []porcupine.Operation{
			op(0, 0, 10, set("k", "a", 0), linOutput{n: 5}),
			op(0, 20, 30, set("k", "b", 5), linOutput{n: 4}),
		}, porcupine.Illegal},
		{"cut-off write seen after the kill", []porcupine.Operation{
			op(0, 0, 10, set("k", "a", 0), linOutput{n: 5}),
			op(0, 20, 100, set("k", "b", 5), unknown),
			op(1, 200, 210, get, linOutput{found: true, val: "b", n: 9}),
			op(1, 220, 230, set("k", "c", 9), linOutput{n: 10}),
		}, porcupine.Ok},
		{"cut-off write lost by the kill", []porcupine.Operation{
			op(0, 0, 10, set("k", "a", 0), linOutput{n: 5}),
			op(0, 20, 100, set("k", "b", 5), unknown),
			op(1, 200, 210, get, linOutput{found: true, val: "a", n: 5}),
		}, porcupine.Ok},
		{"read value lost by the kill", []porcupine.Operation{
			op(0, 0, 10, set("k", "a", 0), linOutput{n: 5}),
			op(0, 20, 100, set("k", "b", 5), unknown),
			op(1, 30, 40, get, linOutput{found: true, val: "b", n: 6}),
			op(1, 200, 210, get, linOutput{found: true, val: "a", n: 5}),
		}, porcupine.Illegal},
		{"version reused after delete and re-create", []porcupine.Operation{
			op(0, 0, 10, set("k", "a", 0), linOutput{n: 5}),
			op(0, 20, 30, linInput{op: opKVDel, key: "k"}, linOutput{found: true}),
			op(1, 40, 50, set("k", "b", 0), linOutput{n: 5}),
		}, porcupine.Illegal},
		{"delete and re-create", []porcupine.Operation{
			op(0, 0, 10, set("k", "a", 0), linOutput{n: 5}),
			op(0, 20, 30, linInput{op: opKVDel, key: "k", ver: 5}, linOutput{found: true}),
			op(1, 40, 50, linInput{op: opKVDel, key: "k", ver: 5}, linOutput{fail: true}),
			op(1, 60, 70, set("k", "b", 0), linOutput{n: 7}),
		}, porcupine.Ok},
		{"acknowledged delete undone by the kill", []porcupine.Operation{
			op(0, 0, 10, set("k", "a", 0), linOutput{n: 5}),
			op(0, 20, 30, linInput{op: opKVDel, key: "k"}, linOutput{found: true}),
			op(1, 200, 210, get, linOutput{found: true, val: "a", n: 5}),
		}, porcupine.Illegal},
		{"counter loses an acknowledged increment", []porcupine.Operation{
			op(0, 0, 10, incr, linOutput{n: 1}),
			op(1, 5, 15, incr, linOutput{n: 2}),
			op(0, 20, 100, incr, unknown),
			op(1, 200, 210, ctrGet, linOutput{found: true, n: 1}),
		}, porcupine.Illegal},
		{"counter keeps or drops a cut-off increment", []porcupine.Operation{
			op(0, 0, 10, incr, linOutput{n: 1}),
			op(0, 20, 100, incr, unknown),
			op(1, 200, 210, ctrGet, linOutput{found: true, n: 2}),
			op(1, 220, 230, incr, linOutput{n: 3}),
		}, porcupine.Ok},
		{"sequence value returned twice", []porcupine.Operation{
			op(0, 0, 10, seq, linOutput{n: 1}),
			op(1, 5, 15, seq, linOutput{n: 1}),
		}, porcupine.Illegal},
		{"sequence block overlaps a later value", []porcupine.Operation{
			op(0, 0, 10, linInput{op: opSeqNext, key: "s", ver: 3, proto: "resp"}, linOutput{n: 3}),
			op(1, 20, 30, seq, linOutput{n: 2}),
		}, porcupine.Illegal},
		{"lock granted to two owners", []porcupine.Operation{
			op(0, 0, 10, acq("A"), linOutput{n: 3}),
			op(1, 20, 30, acq("B"), linOutput{n: 4}),
		}, porcupine.Illegal},
		{"fencing token reused after release", []porcupine.Operation{
			op(0, 0, 10, acq("A"), linOutput{n: 3}),
			op(0, 20, 30, rel("A"), linOutput{released: releasedOK}),
			op(1, 40, 50, acq("B"), linOutput{n: 3}),
		}, porcupine.Illegal},
		{"lock handed over after release", []porcupine.Operation{
			op(0, 0, 10, acq("A"), linOutput{n: 3}),
			op(0, 20, 30, rel("A"), linOutput{released: releasedOK}),
			op(1, 40, 50, acq("B"), linOutput{n: 8}),
			op(0, 60, 70, acq("A"), linOutput{fail: true}),
		}, porcupine.Ok},
		{"SET NX takes a lock LOCK.ACQUIRE holds", []porcupine.Operation{
			op(0, 0, 10, acq("A"), linOutput{n: 3}),
			op(1, 20, 30, linInput{op: opSetNX, key: "l", owner: "B"}, linOutput{}),
		}, porcupine.Illegal},
		{"SET NX lock, then LOCK.GET and DELEX", []porcupine.Operation{
			op(0, 0, 10, acq("A"), linOutput{n: 3}),
			op(0, 20, 30, rel("A"), linOutput{released: releasedYes}),
			op(1, 40, 50, linInput{op: opSetNX, key: "l", owner: "B"}, linOutput{}),
			op(0, 60, 70, linInput{op: opLockGet, key: "l"}, linOutput{found: true, val: "B", n: 9}),
			op(0, 80, 90, linInput{op: opDelEx, key: "l", owner: "A"}, linOutput{found: false}),
			op(1, 100, 110, linInput{op: opDelEx, key: "l", owner: "B"}, linOutput{found: true}),
			op(0, 120, 130, acq("A"), linOutput{n: 10}),
		}, porcupine.Ok},
		{"SET NX lock with a stale fencing token", []porcupine.Operation{
			op(0, 0, 10, acq("A"), linOutput{n: 3}),
			op(0, 20, 30, rel("A"), linOutput{released: releasedYes}),
			op(1, 40, 50, linInput{op: opSetNX, key: "l", owner: "B"}, linOutput{}),
			op(0, 60, 70, linInput{op: opLockGet, key: "l"}, linOutput{found: true, val: "B", n: 3}),
		}, porcupine.Illegal},
		{"lock lost by the kill", []porcupine.Operation{
			op(0, 0, 10, acq("A"), linOutput{n: 3}),
			op(1, 200, 210, acq("B"), linOutput{n: 4}),
		}, porcupine.Illegal},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, info := porcupine.CheckOperationsVerbose(linModel(), tc.history, 0)
			if res != tc.want {
				t.Fatalf("check = %v, want %v", res, tc.want)
			}
			if res == porcupine.Illegal {
				path := filepath.Join(t.TempDir(), "history.html")
				if err := porcupine.VisualizePath(linModel(), info, path); err != nil {
					t.Fatal(err)
				}
				if st, err := os.Stat(path); err != nil || st.Size() == 0 {
					t.Fatalf("no visualisation written: %v", err)
				}
			}
		})
	}
}
