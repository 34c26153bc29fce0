package config

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"
	"unicode/utf16"
)

// FuzzParse holds Parse to its contract on any input: no panic; either a
// usable config or Errors whose every entry names the file, says something a
// YAML user can read and points inside the file. The seeds are in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	// Relative paths in the seeds resolve against testdata, where the fixtures are.
	const file = "testdata/fuzz.yml"
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, file)
		if err != nil {
			checkErrors(t, err, file, maxLines(data))
			return
		}
		checkUsable(t, cfg)
	})
}

// maxLines bounds the lines YAML sees in data: it breaks lines at \r and
// \n (a \r\n counts twice here) and at NEL, LS and PS, and reads text
// that starts with a UTF-16 byte order mark as UTF-16.
func maxLines(data []byte) int {
	count := func(text []byte) int {
		n := 1
		for _, b := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
			n += bytes.Count(text, []byte(b))
		}
		return n
	}
	return max(count(data), count(utf16Text(data)))
}

// utf16Text is data decoded from UTF-16 if it starts with a byte order
// mark, as yaml.v3 decodes it; nil otherwise.
func utf16Text(data []byte) []byte {
	var order binary.ByteOrder
	switch {
	case bytes.HasPrefix(data, []byte{0xff, 0xfe}):
		order = binary.LittleEndian
	case bytes.HasPrefix(data, []byte{0xfe, 0xff}):
		order = binary.BigEndian
	default:
		return nil
	}
	units := make([]uint16, 0, len(data)/2)
	for i := 2; i+1 < len(data); i += 2 {
		units = append(units, order.Uint16(data[i:]))
	}
	return []byte(string(utf16.Decode(units)))
}

func checkErrors(t *testing.T, err error, file string, lines int) {
	var errs Errors
	if !errors.As(err, &errs) || len(errs) == 0 {
		t.Fatalf("error %q is %T, want a non-empty Errors", err, err)
	}
	for _, e := range errs {
		if e.File != file {
			t.Errorf("%q names file %q, want %q", e, e.File, file)
		}
		if e.Line < 0 || e.Line > lines {
			t.Errorf("%q points at line %d of %d", e, e.Line, lines)
		}
	}
	checkReadable(t, errs)
}

// checkUsable asserts what the collector relies on in a config Parse accepted.
func checkUsable(t *testing.T, cfg *Config) {
	if cfg.Interval <= 0 || cfg.Timeout <= 0 || cfg.PostureInterval <= 0 || cfg.Concurrency < 1 {
		t.Errorf("accepted unusable globals: %+v", cfg)
	}
	names := map[string]bool{}
	for _, e := range cfg.Endpoints {
		if e.Name == "" || names[e.Name] || e.Interval <= 0 || e.Timeout <= 0 || (e.URL == "") == (e.Address == "") {
			t.Errorf("accepted unusable endpoint %+v", e)
		}
		if e.HostPort() == "" || e.ServerName() == "" {
			t.Errorf("accepted endpoint %+v with no host", e)
		}
		names[e.Name] = true
	}
	for _, g := range cfg.Files {
		if g.Name == "" || names[g.Name] || g.Interval <= 0 || len(g.Paths) == 0 {
			t.Errorf("accepted unusable file group %+v", g)
		}
		names[g.Name] = true
	}
}

// FuzzConfigNumbers writes any numbers into every numeric key. A config
// that is accepted keeps each value in its documented range, and the
// arithmetic the scheduler does on them (interval plus 10% jitter, a
// semaphore of concurrency slots) cannot overflow.
func FuzzConfigNumbers(f *testing.F) {
	f.Add(int64(32), int64(60000), int64(10000), int64(3600000), int64(0), int64(250), int64(100000))
	f.Add(int64(9223372036854775807), int64(0), int64(-1), int64(1), int64(-9223372036854775808), int64(0), int64(1))
	f.Fuzz(func(t *testing.T, conc, intervalMS, timeoutMS, postureMS, validityMS, perFile, entries int64) {
		data := fmt.Sprintf("concurrency: %d\ninterval: %dms\ntimeout: %dms\nposture_interval: %dms\n"+
			"policy: {max_validity: %dms}\nlimits: {certificates_per_file: %d, glob_entries: %d}\n"+
			"endpoints:\n  - {name: a, address: 127.0.0.1:1, interval: %dms}\nfiles:\n  - {name: f, paths: [x.pem]}\n",
			conc, intervalMS, timeoutMS, postureMS, validityMS, perFile, entries, intervalMS/2)
		cfg, err := Parse([]byte(data), "numbers.yml")
		if err != nil {
			checkErrors(t, err, "numbers.yml", maxLines([]byte(data)))
			return
		}
		checkUsable(t, cfg)
		if cfg.Concurrency > MaxConcurrency {
			t.Errorf("accepted concurrency %d", cfg.Concurrency)
		}
		for _, d := range []struct {
			v   Duration
			max time.Duration
		}{{cfg.Interval, MaxInterval}, {cfg.Timeout, MaxTimeout}, {cfg.PostureInterval, MaxInterval},
			{cfg.Endpoints[0].Interval, MaxInterval}, {cfg.Files[0].Interval, MaxInterval}, {cfg.Policy.MaxValidity, MaxPolicyDuration}} {
			if d.v < 0 || d.v.D() > d.max {
				t.Errorf("accepted duration %v, outside [0, %v]", d.v.D(), d.max)
			}
			if jittered := d.v.D() + d.v.D()/10; jittered < d.v.D() {
				t.Errorf("%v plus its jitter overflows", d.v.D())
			}
		}
		for _, b := range cfg.Limits.bounds() {
			if *b.value < 1 || *b.value > b.max {
				t.Errorf("accepted limits.%s = %d", b.key, *b.value)
			}
		}
		if cfg.Files[0].Limits != cfg.Limits || cfg.Endpoints[0].Limits != cfg.Limits {
			t.Error("targets do not carry the config's limits")
		}
	})
}
