package awse2e

import (
	"testing"

	"github.com/followups/followups/e2e/aws/harness"
	"github.com/followups/followups/e2e/scenario"
	"github.com/followups/followups/shared/api/apitest"
	"github.com/followups/followups/shared/followup"
)

// target is e as a scenario's deployment.
func target(e *harness.Env) scenario.Target {
	return scenario.Target{
		BaseURL:    "https://" + e.API.Template.RequestContext.DomainName,
		Transport:  e.Transport(),
		Deliveries: func(id string) int { return len(e.Thread.Requests(id)) },
		Limits:     followup.Limits{MinDelay: e.Opts.MinDelay, MaxDelay: followup.DefaultLimits.MaxDelay},
		Settle:     settleTimeout,
	}
}

// The agent's tools through API Gateway and the schedule function, with
// the MCP SDK's own client, and the OpenAPI document the function serves.
// Authentication is API Gateway's here, which the harness does not play:
// that /mcp and /openapi.json have the same authorizer as every route is
// TestTemplateRoutesAreTheAPIs's (e2e).
func TestMCPAndOpenAPI(t *testing.T) {
	e := start(t, harness.Options{})
	scenario.MCP(t, target(e))

	resp := e.Do("GET", "/openapi.json", "")
	if resp.Status != 200 {
		t.Fatalf("GET /openapi.json: %d %s", resp.Status, resp.Body)
	}
	doc, err := apitest.Parse(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if s := doc.Doc.Components.Schemas["DelaySeconds"].Value; *s.Min != 1 || *s.Max != 86400 {
		t.Errorf("served DelaySeconds bounds %v..%v, want the function's 1..86400", *s.Min, *s.Max)
	}
}

func TestRearm(t *testing.T) {
	var outage scenario.Outage
	e := start(t, harness.Options{Thread: func(r harness.ThreadRequest) harness.ThreadAnswer {
		return harness.ThreadAnswer{Status: outage.Status(r.ThreadID), Body: `{}`}
	}})
	scenario.Rearm(t, target(e), &outage)
}
