package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr returns the address of the client a request came from: the
// connection's peer, or — when that peer is one of the trusted proxies — the
// address the trusted proxies saw. X-Forwarded-For is read from the right,
// because each proxy appends the address it received from: entries added by
// trusted proxies are skipped, and the first entry that is not a trusted
// proxy is the client. Everything to the left of it was written by the
// client itself and is ignored, so a client cannot choose its address (and
// with it a fresh per-address login limit) by sending the header.
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	peer, ok := parseAddr(r.RemoteAddr)
	if !ok {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			return r.RemoteAddr
		}
		return host
	}
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	client := peer
	hops := forwardedFor(r.Header)
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := parseAddr(hops[i])
		if !ok {
			// A trusted proxy passed on something that is no address: the
			// client lies beyond it, unknown. The proxy nearest to it is the
			// best that can be said, and it is not client-controlled.
			break
		}
		client = hop
		if !isTrusted(hop, trusted) {
			break
		}
	}
	return client.String()
}

// forwardedFor returns the X-Forwarded-For entries of every such header, in
// order: a proxy may add its own header line rather than extend the last.
func forwardedFor(h http.Header) []string {
	var out []string
	for _, line := range h.Values("X-Forwarded-For") {
		for _, e := range strings.Split(line, ",") {
			out = append(out, strings.TrimSpace(e))
		}
	}
	return out
}

// parseAddr reads an IP address with or without a port (IPv6 in brackets
// when it has one), IPv4-mapped IPv6 as plain IPv4. Addresses with a zone
// are not accepted.
func parseAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	// A zone is free text, not part of who the client is.
	if a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
