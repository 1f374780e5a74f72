package e2e

import (
	"io"
	"net/http"
	"testing"

	"github.com/followups/followups/shared/api/apitest"
)

// followupd serves its OpenAPI document open, with its delay bounds.
func TestOpenAPIServedOpen(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, newThread(t, ok201), "", "FOLLOWUPS_API_TOKEN=e2e-token", "FOLLOWUPS_MIN_DELAY=90s", "FOLLOWUPS_MAX_DELAY=72h")
	res, err := http.Get(d.base + "/openapi.json") // no token
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("GET /openapi.json: %d %s", res.StatusCode, raw)
	}
	doc, err := apitest.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if s := doc.Doc.Components.Schemas["DelaySeconds"].Value; *s.Min != 90 || *s.Max != 72*3600 {
		t.Errorf("served DelaySeconds bounds %v..%v, want 90..259200", *s.Min, *s.Max)
	}
	if r := d.do("GET", "/followups/fu_x", "", "Authorization", "Bearer wrong"); r.Status != 401 {
		t.Errorf("an API route with a wrong token: %d", r.Status)
	}
}
