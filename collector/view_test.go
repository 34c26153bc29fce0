package collector

import "testing"

// Views is what /status pays per rendering: two slices, whatever the
// number of targets, and every stored result is in them.
func TestViewsCostTwoSlices(t *testing.T) {
	c := cachedCollector(t, 1000)
	if allocs := testing.AllocsPerRun(10, func() { c.Views() }); allocs > 2 {
		t.Errorf("Views allocates %v times, want at most 2", allocs)
	}
	endpoints, files := c.Views()
	if len(endpoints) != 1000 || len(files) != 0 {
		t.Fatalf("%d endpoint views, %d file views; want 1000 and 0", len(endpoints), len(files))
	}
	for _, v := range endpoints {
		if v.Last == nil || !v.Last.Verified || v.Posture != nil {
			t.Fatalf("%s: view of the stored result %+v, posture %+v", v.Endpoint.Name, v.Last, v.Posture)
		}
	}
}
