package httpapi

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientAddr(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	for _, c := range []struct {
		name    string
		peer    string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"no proxies trusted: the header is ignored", "203.0.113.5:4000", []string{"1.2.3.4"}, nil, "203.0.113.5"},
		{"an untrusted peer cannot forward", "203.0.113.5:4000", []string{"1.2.3.4"}, proxies, "203.0.113.5"},
		{"one proxy: the address it saw", "10.0.0.2:4000", []string{"198.51.100.7"}, proxies, "198.51.100.7"},
		{"a spoofed entry left of what the proxy saw", "10.0.0.2:4000", []string{"1.2.3.4, 198.51.100.7"}, proxies, "198.51.100.7"},
		{"spoofed entries that look like our proxies", "10.0.0.2:4000", []string{"10.9.9.9, 198.51.100.7, 10.0.0.3"}, proxies, "198.51.100.7"},
		{"a chain of trusted proxies", "10.0.0.2:4000", []string{"1.2.3.4, 198.51.100.7, 10.0.0.5, 10.0.0.4"}, proxies, "198.51.100.7"},
		{"header lines read in order", "10.0.0.2:4000", []string{"1.2.3.4", "198.51.100.7", "10.0.0.4"}, proxies, "198.51.100.7"},
		{"garbage the client wrote on the left", "10.0.0.2:4000", []string{"<script>, 198.51.100.7"}, proxies, "198.51.100.7"},
		{"garbage from a trusted hop: the nearest known proxy", "10.0.0.2:4000", []string{"198.51.100.7, not-an-ip, 10.0.0.4"}, proxies, "10.0.0.4"},
		{"garbage at once: the peer", "10.0.0.2:4000", []string{"198.51.100.7, bad"}, proxies, "10.0.0.2"},
		{"no header from a trusted peer: the peer", "10.0.0.2:4000", nil, proxies, "10.0.0.2"},
		{"every hop trusted: the farthest", "10.0.0.2:4000", []string{"10.0.0.9, 10.0.0.4"}, proxies, "10.0.0.9"},
		{"an entry with a port", "10.0.0.2:4000", []string{"198.51.100.7:5555"}, proxies, "198.51.100.7"},
		{"IPv6 peer and client", "[2001:db8::1]:4000", []string{"2001:db9::7"}, proxies, "2001:db9::7"},
		{"bracketed IPv6 with a port", "[2001:db8::1]:4000", []string{"[2001:db9::7]:80"}, proxies, "2001:db9::7"},
		{"IPv4-mapped peer counts as IPv4", "[::ffff:10.0.0.2]:4000", []string{"198.51.100.7"}, proxies, "198.51.100.7"},
		{"a zone is not an address", "10.0.0.2:4000", []string{"fe80::1%eth0"}, proxies, "10.0.0.2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/graphql", nil)
			r.RemoteAddr = c.peer
			for _, v := range c.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientAddr(r, c.trusted); got != c.want {
				t.Fatalf("clientAddr = %q, want %q", got, c.want)
			}
		})
	}
}
