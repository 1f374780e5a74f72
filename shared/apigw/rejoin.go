package apigw

import (
	"fmt"
	"net/http"
	"strings"
)

// Rejoin returns a handler that puts back together, before h routes it, a
// path segment whose escaped slashes an HTTP API decoded into separators.
// Each pattern has exactly one wildcard segment whose value may contain
// "/", such as "/threads/{thread_id}/followups". A request whose escaped
// path starts with the pattern's prefix and ends with its suffix, with
// more than one segment between them, has everything between re-escaped as
// one segment: /threads/a/b/followups reaches h as /threads/a%2Fb/followups,
// so r.PathValue("thread_id") is "a/b". The rewrite is unambiguous because
// the prefix and suffix are fixed: what lies between can only be the one
// value. Paths that already have one segment there pass unchanged.
//
// Rejoin panics on a pattern without exactly one wildcard segment.
func Rejoin(h http.Handler, patterns ...string) http.Handler {
	rs := make([]rejoin, len(patterns))
	for i, p := range patterns {
		rs[i] = parseRejoin(p)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.EscapedPath()
		for _, rj := range rs {
			if joined, ok := rj.apply(path); ok {
				r2 := new(http.Request)
				*r2 = *r
				u := *r.URL
				u.RawPath = joined // Path is unchanged: %2F and / unescape alike
				r2.URL = &u
				r2.RequestURI = u.RequestURI()
				r = r2
				break
			}
		}
		h.ServeHTTP(w, r)
	})
}

// rejoin is one pattern, split around its wildcard segment.
type rejoin struct {
	prefix, suffix string // "/threads/", "/followups"
}

func parseRejoin(pattern string) rejoin {
	open := strings.Index(pattern, "/{")
	end := strings.Index(pattern, "}")
	if open < 0 || end < open || strings.Contains(pattern[end+1:], "{") ||
		(end+1 < len(pattern) && pattern[end+1] != '/') || strings.Contains(pattern[open+2:end], "...") {
		panic(fmt.Sprintf("apigw.Rejoin: pattern %q must have exactly one wildcard segment such as /threads/{thread_id}/followups", pattern))
	}
	return rejoin{prefix: pattern[:open+1], suffix: pattern[end+1:]}
}

// apply returns path with the value segment re-escaped, and whether it
// needed to be.
func (rj rejoin) apply(path string) (string, bool) {
	if len(path) <= len(rj.prefix)+len(rj.suffix) || !strings.HasPrefix(path, rj.prefix) || !strings.HasSuffix(path, rj.suffix) {
		return "", false
	}
	value := path[len(rj.prefix) : len(path)-len(rj.suffix)]
	if !strings.Contains(value, "/") {
		return "", false
	}
	return rj.prefix + strings.ReplaceAll(value, "/", "%2F") + rj.suffix, true
}
