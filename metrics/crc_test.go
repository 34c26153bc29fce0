package metrics

import (
	"bytes"
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// TestCRCCombine holds the combination to hash/crc32 over the joined bytes,
// for lengths around the powers of two the shift is built from.
func TestCRCCombine(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	for _, c := range []struct{ a, b int }{
		{0, 0}, {0, 5}, {5, 0}, {1, 1}, {3, 7}, {64, 63}, {100, 1 << 10}, {1 << 16, 1<<16 + 1}, {7, 1<<20 - 1},
	} {
		a, b := random(c.a), random(c.b)
		want := crc32.ChecksumIEEE(bytes.Join([][]byte{a, b}, nil))
		got := crcCombine(crc32.ChecksumIEEE(a), crc32.ChecksumIEEE(b), crcShift(len(b)))
		if got != want {
			t.Errorf("len %d+%d: combined %08x, want %08x", c.a, c.b, got, want)
		}
	}
}
