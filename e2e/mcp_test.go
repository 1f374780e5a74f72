package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/followups/followups/e2e/scenario"
	"github.com/followups/followups/shared/followup"
)

// target is d as a scenario's deployment, th its thread API.
func target(d *daemon, th *thread) scenario.Target {
	tg := scenario.Target{
		BaseURL:    d.base,
		Transport:  checked,
		Deliveries: func(id string) int { return len(th.received(id)) },
		Limits:     followup.Limits{MinDelay: time.Second, MaxDelay: followup.DefaultLimits.MaxDelay},
		Settle:     30 * time.Second,
	}
	if d.token != "" {
		tg.Header = http.Header{"Authorization": {"Bearer " + d.token}}
	}
	return tg
}

// The agent's tools on a real followupd, through the MCP SDK's own client.
func TestMCP(t *testing.T) {
	t.Parallel()
	th := newThread(t, ok201)
	d := startDaemon(t, th, "", "FOLLOWUPS_API_TOKEN=e2e-token")
	scenario.MCP(t, target(d, th))

	// Authentication is enforced on /mcp as on every route.
	client := sdk.NewClient(&sdk.Implementation{Name: "e2e-gateway", Version: "1"}, nil)
	_, err := client.Connect(context.Background(), &sdk.StreamableClientTransport{
		Endpoint: d.base + "/mcp", HTTPClient: &http.Client{Transport: scenario.WithHeader(http.Header{"Authorization": {"Bearer wrong"}}, checked)},
	}, nil)
	if err == nil {
		t.Fatal("a session opened with a wrong token")
	}
	r := d.do("POST", "/mcp", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		"Authorization", "Bearer wrong", "Accept", "application/json, text/event-stream", "X-Thread-Id", "t-1")
	if e, _ := r.Body["error"].(map[string]any); r.Status != 401 || e["code"] != "unauthorized" {
		t.Errorf("tools/list with a wrong token: %d %v", r.Status, r.Body)
	}
}

func TestRearm(t *testing.T) {
	t.Parallel()
	var outage scenario.Outage
	th := newThread(t, func(thread string, _ int) (int, http.Header, string) { return outage.Status(thread), nil, `{}` })
	d := startDaemon(t, th, "")
	scenario.Rearm(t, target(d, th), &outage)
}
