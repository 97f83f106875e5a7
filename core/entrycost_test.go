package core

import (
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/concurrencydb/concurrencydb/persist"
)

// TestEntryCostCoversTheHeapItTakes_C1: the record cache's budget
// (cache_bytes, C1) counts each entry as entryCost; the Go heap an entry
// takes (the entry, its key and value, the map's slot), built the way put
// builds it, must stay within 10% of that, or the budget would not bound
// the memory it is meant to (the memory target is set with it). Measured
// for small values (kept inside the entry) and 100-byte ones (kept
// apart), at several sizes: the map's load factor moves the slot's share
// (by up to ~8 bytes an entry between 14,500 and 29,000 keys), hence the
// margin.
// NB: measured in a process of its own (this test binary run again for
// this test alone): other tests' goroutines would allocate meanwhile.
func TestEntryCostCoversTheHeapItTakes_C1(t *testing.T) {
	if os.Getenv(entryCostChild) == "" {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestEntryCostCoversTheHeapItTakes_C1$", "-test.v", "-test.count=1", "-test.timeout=2m")
		cmd.Env = append(os.Environ(), entryCostChild+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "counted") {
			t.Fatalf("the measuring process: %v\n%s", err, out)
		}
		t.Logf("%s", out)
		return
	}
	for _, size := range []int{5, 100} {
		for _, n := range []int{14500, 20000, 29000} {
			t.Run(strconv.Itoa(size)+"B/"+strconv.Itoa(n), func(t *testing.T) {
				s := &Store{}
				s.mu.mem = make(map[string]*entry)
				s.cfg.CacheBytes = 1 << 30
				val := bytes.Repeat([]byte("v"), size)
				keys := make([][]byte, n)
				for i := range keys {
					keys[i] = persist.DataKey("a", "key:"+strconv.Itoa(100000+i))
				}
				before := heapInUse()
				for i, k := range keys {
					rec := persist.Record{Type: persist.TypeString, Value: storedValue(val), Mod: uint64(i + 1), Create: uint64(i + 1)}
					s.storeLocked(k, newEntry(rec, true, 1))
				}
				after := heapInUse()
				counted := 0
				for k, e := range s.mu.mem {
					counted += entryCost(k, e)
				}
				if counted != s.mu.memBytes {
					t.Fatalf("memBytes %d, entries add up to %d", s.mu.memBytes, counted)
				}
				taken := int(after - before)
				t.Logf("%d entries of %d-byte values: heap %d B each, counted %d B each", n, size, taken/n, counted/n)
				if taken > counted+counted/10 {
					t.Fatalf("%d entries take %d bytes of heap, but the budget counts %d: entryOverhead (%d) misses a part of the entry", n, taken, counted, entryOverhead)
				}
				runtime.KeepAlive(keys)
			})
		}
	}
}

// entryCostChild marks the process TestEntryCostCoversTheHeapItTakes_C1
// measures in.
const entryCostChild = "CDB_ENTRY_COST_CHILD"

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
