package fdbudget

import "testing"

func TestSplitKeepsTheStoragesShareAndTheProcesss(t *testing.T) {
	for _, tc := range []struct {
		limit         uint64
		tables, conns int
	}{
		{300, 75, 97},
		{1024, 256, 640},
		{20000, 1000, 18872},
		{100, 64, 1}, // too small for anything: one connection still
		{1 << 62, 1000, 1<<31 - 1128},
	} {
		if tables, conns := Split(tc.limit); tables != tc.tables || conns != tc.conns {
			t.Errorf("Split(%d) = %d, %d; want %d, %d", tc.limit, tables, conns, tc.tables, tc.conns)
		}
	}
}

func TestTakeStopsAtMaxAndReleaseGivesBack(t *testing.T) {
	b := New(2)
	if !b.Take() || !b.Take() || b.Take() {
		t.Fatal("want two admitted, the third refused")
	}
	b.Release()
	if b.Open() != 1 || !b.Take() || b.Take() {
		t.Fatalf("after a release: open %d", b.Open())
	}
	var none *Budget
	if !none.Take() {
		t.Fatal("a nil budget refused")
	}
	none.Release()
}
