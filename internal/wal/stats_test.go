package wal

import "testing"

// Stats.RecordsByType feeds tokmesh_wal_records_total{type}: every written
// record counts once under its own type, and the counts add up to Records.
func TestStats_RecordsByTypeCountsEveryWrittenRecordOnce(t *testing.T) {
	w := openTest(t, Options{Dir: t.TempDir(), SyncMode: SyncAlways}, 1)
	defer w.Close()
	want := map[byte]uint64{TypeSessionPut: 5, TypeSessionTouch: 3, TypeSessionRevoke: 2, TypeSessionExpire: 1}
	var last uint64
	for typ, n := range want {
		for range n {
			last = w.Append(typ, []byte("payload"))
		}
	}
	if err := w.Wait(last, true); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	var sum uint64
	for typ := range st.RecordsByType {
		if got := st.RecordsByType[typ]; got != want[byte(typ)] {
			t.Errorf("%s: %d records, want %d", TypeName(byte(typ)), got, want[byte(typ)])
		}
		sum += st.RecordsByType[typ]
	}
	if sum != st.Records {
		t.Fatalf("by type %d, Records %d", sum, st.Records)
	}
}
