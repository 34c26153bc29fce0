package main

import "testing"

func TestHealthURL(t *testing.T) {
	for _, tc := range []struct {
		listen string
		tls    bool
		want   string
	}{
		{":9879", false, "http://127.0.0.1:9879/-/healthy"},
		{"0.0.0.0:9879", true, "https://127.0.0.1:9879/-/healthy"},
		{"[::]:9879", false, "http://[::1]:9879/-/healthy"},
		{"127.0.0.2:1", false, "http://127.0.0.2:1/-/healthy"},
		{"localhost:9879", false, "http://localhost:9879/-/healthy"},
	} {
		if got, err := healthURL(tc.listen, tc.tls); err != nil || got != tc.want {
			t.Errorf("healthURL(%q, %v) = %q, %v; want %q", tc.listen, tc.tls, got, err, tc.want)
		}
	}
	if _, err := healthURL("9879", false); err == nil {
		t.Error("healthURL accepted an address without a port")
	}
}
