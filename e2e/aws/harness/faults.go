package harness

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// Faults stands between the functions and the AWS endpoint and can make a
// service fail: while DynamoDB is down, every DynamoDB request gets the
// 500 InternalServerError DynamoDB answers when it fails, which the SDK
// retries and then returns. Nothing in the functions knows: their SDK
// clients meet real HTTP failures on a real socket.
type Faults struct {
	*httptest.Server
	dynamoDown atomic.Bool
	mu         sync.Mutex
	failed     map[string]int // operation → requests failed
}

// NewFaults starts a proxy to endpoint.
func NewFaults(endpoint string) (*Faults, error) {
	target, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	f := &Faults{failed: map[string]int{}}
	proxy := httputil.NewSingleHostReverseProxy(target)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op, isDynamo := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
		if isDynamo && f.dynamoDown.Load() {
			f.mu.Lock()
			f.failed[op]++
			f.mu.Unlock()
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error (injected by the test harness)"}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	return f, nil
}

// DynamoDown makes every DynamoDB request fail (true) or pass (false).
func (f *Faults) DynamoDown(down bool) { f.dynamoDown.Store(down) }

// Failed returns how many DynamoDB requests failed, by operation.
func (f *Faults) Failed() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.failed))
	for k, v := range f.failed {
		out[k] = v
	}
	return out
}
