package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"sync"

	"github.com/followups/followups/shared/followup"
)

// openAPI is the API's OpenAPI document, written once (openapi.json) with
// the default delay bounds.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPIPath is where the handler serves the document, open like a probe.
const OpenAPIPath = "/openapi.json"

// OpenAPI returns the API's OpenAPI document as written, with the default
// delay bounds: what tests check responses against.
func OpenAPI() []byte { return bytes.Clone(openAPI) }

// OpenAPIFor returns the document a handler serves for the delay bounds l:
// the written one with l in DelaySeconds' minimum and maximum.
func OpenAPIFor(l followup.Limits) ([]byte, error) {
	lo, hi := l.DelaySeconds()
	doc, err := setMember(openAPI, []byte(strconv.FormatInt(lo, 10)), "components", "schemas", "DelaySeconds", "minimum")
	if err == nil {
		doc, err = setMember(doc, []byte(strconv.FormatInt(hi, 10)), "components", "schemas", "DelaySeconds", "maximum")
	}
	if err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, doc, "", "  "); err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// openAPIHandler serves the document for l, made at the first request:
// the few milliseconds it takes would otherwise add to every cold start of
// the schedule function. The written document is embedded and tested, so
// it always takes the bounds; if it did not, the request would get 500.
func openAPIHandler(l followup.Limits) http.Handler {
	doc := sync.OnceValues(func() ([]byte, error) { return OpenAPIFor(l) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := doc()
		if err != nil {
			writeError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(b)
	})
}

// withOpenAPI returns the open routes with the document added.
func withOpenAPI(open map[string]http.Handler, doc http.Handler) map[string]http.Handler {
	routes := maps.Clone(open)
	if routes == nil {
		routes = map[string]http.Handler{}
	}
	routes[OpenAPIPath] = doc
	return routes
}

// setMember returns the JSON object doc with the member at path, which
// must exist, set to value, and every other member where it was: the
// document keeps the order it was written in.
func setMember(doc, value []byte, path ...string) ([]byte, error) {
	if len(path) == 0 {
		return value, nil
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("%s: not inside an object", path[0])
	}
	var out bytes.Buffer
	out.WriteByte('{')
	found := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := tok.(string)
		var member json.RawMessage
		if err := dec.Decode(&member); err != nil {
			return nil, err
		}
		if name == path[0] {
			if member, err = setMember(member, value, path[1:]...); err != nil {
				return nil, fmt.Errorf("%s.%w", name, err)
			}
			found = true
		}
		if out.Len() > 1 {
			out.WriteByte(',')
		}
		key, _ := json.Marshal(name) // a string always encodes
		out.Write(key)
		out.WriteByte(':')
		out.Write(member)
	}
	if !found {
		return nil, fmt.Errorf("%s: no such member", path[0])
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}
