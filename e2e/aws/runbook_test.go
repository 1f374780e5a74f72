package awse2e

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/followups/followups/e2e/aws/harness"
	"github.com/followups/followups/shared/dynamo"
	"github.com/followups/followups/shared/followup"
)

// insightsKeywords are the words of a Logs Insights query that are not
// fields.
var insightsKeywords = map[string]bool{
	"fields": true, "filter": true, "stats": true, "sort": true, "limit": true, "by": true, "as": true,
	"asc": true, "desc": true, "and": true, "or": true, "not": true, "like": true, "in": true, "display": true,
}

var (
	queryBlock   = regexp.MustCompile("(?s)```\n(.*?)\n```")
	insightsWord = regexp.MustCompile(`@?[A-Za-z_][A-Za-z0-9_]*\(?`)
	aliasWord    = regexp.MustCompile(`\bas\s+([A-Za-z_][A-Za-z0-9_]*)`)
	msgEquals    = regexp.MustCompile(`msg\s*=\s*"([^"]*)"`)
	msgLike      = regexp.MustCompile(`msg\s+like\s+/\^([^/]*)/`)
)

// runbookQueries returns the Logs Insights queries of docs/OPERATIONS.md:
// the code blocks of its queries section.
func runbookQueries(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(setup.Root, "docs", "OPERATIONS.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start := strings.Index(doc, "## CloudWatch Logs Insights queries")
	end := strings.Index(doc[start+1:], "\n## ")
	if start < 0 || end < 0 {
		t.Fatal("docs/OPERATIONS.md has no queries section")
	}
	var out []string
	for _, m := range queryBlock.FindAllStringSubmatch(doc[start:start+1+end], -1) {
		out = append(out, m[1])
	}
	if len(out) < 5 {
		t.Fatalf("only %d queries in the runbook", len(out))
	}
	return out
}

// queryFields returns the fields a query names: its words that are not
// keywords, functions, @-fields, aliases, or inside literals.
func queryFields(q string) []string {
	bare := regexp.MustCompile(`"[^"]*"|/[^/\n]*/`).ReplaceAllString(q, " ")
	aliases := map[string]bool{}
	for _, m := range aliasWord.FindAllStringSubmatch(bare, -1) {
		aliases[m[1]] = true
	}
	var fields []string
	for _, w := range insightsWord.FindAllString(bare, -1) {
		if strings.HasPrefix(w, "@") || strings.HasSuffix(w, "(") || insightsKeywords[w] || aliases[w] {
			continue
		}
		fields = append(fields, w)
	}
	return fields
}

// TestRunbookQueriesNameLoggedFields runs a deployment through the paths
// an operator investigates (a delivery, a drop, retries into the
// dead-letter queue, a timeout, a DynamoDB outage, a lost message found
// by the sweep, a message the queue gave up on), gathers every field the
// functions logged, and checks that each runbook query names only those
// fields and only messages that were logged.
func TestRunbookQueriesNameLoggedFields(t *testing.T) {
	th := &throttle{n: 5}
	e := start(t, harness.Options{
		MaxRetries: 1, DispatchTimeout: time.Second, MaxReceiveCount: 5, FireVisibility: time.Second, Throttle: th.batch, HoldFire: true,
		Thread: func(r harness.ThreadRequest) harness.ThreadAnswer {
			switch {
			case strings.Contains(r.RequestURI, "gone"):
				return harness.ThreadAnswer{Status: 404, Body: `{"error":"no thread"}`}
			case strings.Contains(r.RequestURI, "down"):
				return harness.ThreadAnswer{Status: 503, Body: `{"error":"down"}`}
			case strings.Contains(r.RequestURI, "hang"):
				return harness.ThreadAnswer{Hang: true}
			}
			return harness.ThreadAnswer{Status: 201, Body: `{"ok":true}`}
		},
	})
	var ids []string
	for _, name := range []string{"ok", "gone", "down", "hang"} {
		f, _ := e.Create(createBody(threadID(name), 1))
		ids = append(ids, f.ID)
	}

	// The fire function meets DynamoDB down for a moment first.
	e.Faults.DynamoDown(true)
	e.StartFire()
	e.WaitUntil("the fire function logs the outage", 30*time.Second, func() bool {
		return slices.ContainsFunc(e.Fire.Invocations(), func(inv *harness.Invocation) bool {
			return slices.ContainsFunc(inv.Output.Logs, func(l map[string]any) bool { return l["receive_count"] != nil })
		})
	})
	e.Faults.DynamoDown(false)
	for _, id := range ids {
		e.WaitSettled(id, 2*settleTimeout)
	}

	// A followup the queue gives up on: alone, so that the throttled
	// batches carry only it.
	givenUp, _ := e.Create(createBody(threadID("given-up"), 1))
	th.set(givenUp.ID)
	ids = append(ids, givenUp.ID)

	// A followup whose message was lost, for the sweep.
	store := dynamo.New(dynamodb.NewFromConfig(e.AWS), e.Stack.Table, dynamo.Options{})
	svc, err := followup.New(followup.Config{Store: store, Scheduler: lost{}, Clock: at(time.Now().Add(-7 * time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := followup.ParseCreate([]byte(createBody(threadID("lost"), 60)))
	c, err := svc.Create(context.Background(), req, "")
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, c.Followup.ID)
	event, err := os.ReadFile(filepath.Join(setup.Root, "events", "sweep.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Sweep.Invoke(e.Ctx, event); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		e.WaitSettled(id, 2*settleTimeout)
	}

	fields, msgs := map[string]bool{}, map[string]bool{}
	for _, inv := range e.Invocations() {
		for _, l := range inv.Output.Logs {
			for k := range l {
				fields[k] = true
			}
			msgs[l["msg"].(string)] = true
		}
		for _, m := range inv.Output.Metrics {
			for k := range m {
				fields[k] = true
			}
		}
	}
	for i, q := range runbookQueries(t) {
		for _, f := range queryFields(q) {
			if !fields[f] {
				t.Errorf("runbook query %d names the field %q, which no log line carries:\n%s", i+1, f, q)
			}
		}
		for _, m := range msgEquals.FindAllStringSubmatch(q, -1) {
			if !msgs[m[1]] {
				t.Errorf("runbook query %d filters on msg %q, which no line logs", i+1, m[1])
			}
		}
		for _, m := range msgLike.FindAllStringSubmatch(q, -1) {
			if !slices.ContainsFunc(slices.Collect(maps.Keys(msgs)), func(s string) bool { return strings.HasPrefix(s, m[1]) }) {
				t.Errorf("runbook query %d filters on msgs starting %q, which no line logs", i+1, m[1])
			}
		}
	}
}
