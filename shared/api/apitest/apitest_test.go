package apitest_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/followups/followups/shared/api/apitest"
)

func TestFindMatchesEscapedSegments(t *testing.T) {
	c, err := apitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/threads/team%2Fa%20b/followups?limit=2", nil)
	op, params, ok := c.Find(r.Method, r.URL)
	if !ok || op.Op.OperationID != "listThreadFollowups" || params["thread_id"] != "team/a b" {
		t.Errorf("Find: %v %v %v", op.Path, params, ok)
	}
	if _, _, ok := c.Find("PUT", r.URL); ok {
		t.Error("Find found an operation for PUT")
	}
}

func TestCheckRefusesWhatTheDocumentDoesNotSay(t *testing.T) {
	c, err := apitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	json := http.Header{"Content-Type": {"application/json"}}
	notFound := []byte(`{"error":{"code":"not_found","message":"followup \"x\" not found"}}`)
	for _, tc := range []struct {
		name         string
		method, path string
		status       int
		header       http.Header
		body         string
		ok           bool
	}{
		{"a documented error", "GET", "/followups/x", 404, json, string(notFound), true},
		{"an undocumented status", "GET", "/followups/x", 418, json, string(notFound), false},
		{"the wrong code for the status", "GET", "/followups/x", 404, json, `{"error":{"code":"conflict","message":"m"}}`, false},
		{"a field the schema does not have", "GET", "/followups/x", 404, json, `{"error":{"code":"not_found","message":"m","extra":1}}`, false},
		{"a 503 without Retry-After", "GET", "/followups/x", 503, json, `{"error":{"code":"unavailable","message":"m"}}`, false},
		{"an unknown path answered 404", "GET", "/nope", 404, json, string(notFound), true},
		{"an unknown path answered 200", "GET", "/nope", 200, json, `{}`, false},
		{"an unknown method without Allow", "PUT", "/followups", 405, json, `{"error":{"code":"method_not_allowed","message":"m"}}`, false},
		{"a body where none is documented", "POST", "/mcp", 202, json, `{}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Check(httptest.NewRequest(tc.method, tc.path, nil), tc.status, tc.header, []byte(tc.body))
			if (err == nil) != tc.ok {
				t.Errorf("Check: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
