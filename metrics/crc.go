package metrics

// The gzip trailer holds the CRC-32 of the whole text, and a scrape made of
// cached compressed segments no longer has the text. zlib combines the
// CRCs of two pieces in the Galois field GF(2) (crc32_combine, with the
// x^(2^k) table of zlib 1.2.12); Go's hash/crc32 does not export that, and
// no maintained module does, hence these few lines. The polynomial is the
// IEEE one of hash/crc32, reflected, as gzip uses it.
const crcPoly = 0xedb88320

// crcX2n[k] is x^(2^k) modulo the polynomial.
var crcX2n = func() (t [32]uint32) {
	p := uint32(1) << 30 // x^1
	for k := range t {
		t[k] = p
		p = crcMul(p, p)
	}
	return t
}()

// crcMul is a(x)·b(x) modulo the polynomial, reflected.
func crcMul(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
		}
		if b&1 != 0 {
			b = b>>1 ^ crcPoly
		} else {
			b >>= 1
		}
	}
	return p
}

// crcShift is x^(8n) modulo the polynomial: what moving a CRC past n bytes
// multiplies it by.
func crcShift(n int) uint32 {
	p := uint32(1) << 31 // x^0
	for k := 3; n > 0; n, k = n>>1, k+1 {
		if n&1 != 0 {
			p = crcMul(crcX2n[k&31], p)
		}
	}
	return p
}

// crcCombine is the CRC of a followed by b, given a's CRC, b's CRC and
// crcShift(len(b)).
func crcCombine(crcA, crcB, shiftB uint32) uint32 { return crcMul(shiftB, crcA) ^ crcB }
