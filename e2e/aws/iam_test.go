package awse2e

import (
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/followups/followups/e2e/aws/harness"
	"github.com/followups/followups/shared/followup"
)

// sdkCall matches an AWS SDK operation linked into a binary: the Go linker
// keeps only the client methods some reachable code calls, so the symbol
// table lists what the function's code can call.
var sdkCall = regexp.MustCompile(`aws-sdk-go-v2/service/([a-z]+)\.\(\*Client\)\.([A-Z][A-Za-z]+)$`)

// notGranted are the linked operations a function's role need not allow:
// the SDK's own credential chain (Lambda passes credentials in the
// environment) and endpoint discovery (off).
var notGranted = map[string]bool{
	"sts": true, "sso": true, "ssooidc": true, "signin": true, "dynamodb.DescribeEndpoints": true,
}

// iamActions are the IAM actions one SDK operation needs.
func iamActions(service, op string) []string {
	prefix := map[string]string{"dynamodb": "dynamodb", "sqs": "sqs", "scheduler": "scheduler", "secretsmanager": "secretsmanager"}[service]
	switch service + "." + op {
	case "dynamodb.TransactWriteItems":
		// IAM authorizes a transaction as its items' actions; the store's
		// transactions hold Put, Update and ConditionCheck items.
		return []string{"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"}
	case "scheduler.CreateSchedule":
		// A schedule's target names the role Scheduler assumes.
		return []string{"scheduler:CreateSchedule", "iam:PassRole"}
	}
	return []string{prefix + ":" + op}
}

// TestRolesGrantWhatTheCodeCalls compares each function's role in
// template.yaml with the AWS operations its bootstrap can call (the SDK
// client methods linked into it), plus what Lambda itself needs (its log
// group, and polling for an SQS event source): a missing grant or an
// unused one fails.
func TestRolesGrantWhatTheCodeCalls(t *testing.T) {
	setup.Require(t)
	tmpl, err := harness.LoadSAMTemplate(setup.Root)
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range harness.Functions {
		t.Run(fn, func(t *testing.T) {
			out, err := exec.Command("go", "tool", "nm", setup.Bootstraps[fn].Path).Output()
			if err != nil {
				t.Fatalf("go tool nm: %v", err)
			}
			want := map[string]bool{"logs:CreateLogStream": true, "logs:PutLogEvents": true}
			var linked []string
			for line := range strings.SplitSeq(string(out), "\n") {
				m := sdkCall.FindStringSubmatch(strings.TrimSpace(line))
				if m == nil || notGranted[m[1]] || notGranted[m[1]+"."+m[2]] {
					continue
				}
				linked = append(linked, m[1]+"."+m[2])
				for _, a := range iamActions(m[1], m[2]) {
					want[a] = true
				}
			}
			res := harness.ResourceName(fn)
			events := tmpl.Node("Resources", res, "Properties", "Events")
			for i := 1; events != nil && i < len(events.Content); i += 2 {
				if t := events.Content[i]; t.Kind == yaml.MappingNode && valueOf(t, "Type") == "SQS" {
					for _, a := range []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"} {
						want[a] = true
					}
				}
			}
			role := tmpl.Node("Resources", res+"Role")
			if role == nil {
				t.Fatalf("no role %sRole in template.yaml", res)
			}
			granted := grants(tmpl.Node("Resources", res+"Role", "Properties", "Policies"))
			t.Logf("%s links %s", fn, strings.Join(slices.Sorted(slices.Values(linked)), ", "))
			for a := range want {
				if !granted[a] {
					t.Errorf("%s's code can call %s, which its role does not grant", fn, a)
				}
			}
			for a := range granted {
				if !want[a] {
					t.Errorf("%s's role grants %s, which nothing in the function calls", fn, a)
				}
			}
		})
	}
}

// grants collects every action of a role's policies, the statements under
// an !If included.
func grants(policies *yaml.Node) map[string]bool {
	out := map[string]bool{}
	var statement func(n *yaml.Node)
	statement = func(n *yaml.Node) {
		switch {
		case n.Tag == "!If" && n.Kind == yaml.SequenceNode:
			for _, branch := range n.Content[1:] {
				statement(branch)
			}
		case n.Kind == yaml.MappingNode:
			if a := child(n, "Action"); a != nil {
				if a.Kind == yaml.SequenceNode {
					for _, x := range a.Content {
						out[x.Value] = true
					}
				} else {
					out[a.Value] = true
				}
			}
		}
	}
	for _, p := range policies.Content {
		for _, st := range child(child(p, "PolicyDocument"), "Statement").Content {
			statement(st)
		}
	}
	return out
}

func child(n *yaml.Node, key string) *yaml.Node {
	for i := 0; n != nil && i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func valueOf(n *yaml.Node, key string) string {
	if c := child(n, key); c != nil {
		return c.Value
	}
	return ""
}

// TestTemplateTimings: the queues' visibility timeouts and the function
// timeouts fit the attempt's timing at the template's dispatch timeout.
func TestTemplateTimings(t *testing.T) {
	tpl, err := harness.LoadSAMTemplate(setup.Root)
	if err != nil {
		t.Fatal(err)
	}
	d, err := tpl.Deployment()
	if err != nil {
		t.Fatal(err)
	}
	n := tpl.Node("Parameters", "DispatchTimeout", "Default")
	if n == nil {
		t.Fatal("template.yaml has no DispatchTimeout default")
	}
	dispatch, err := time.ParseDuration(n.Value)
	if err != nil {
		t.Fatal(err)
	}
	timing := followup.NewTiming(dispatch)
	// Lambda's advice for a queue a function polls: a visibility timeout
	// of at least six times the function's timeout.
	if fire := d.FunctionTimeouts["fire"]; d.FireVisibility < 6*fire {
		t.Errorf("fire queue visibility %s is under 6x the fire function's timeout %s", d.FireVisibility, fire)
	}
	if dlq := d.FunctionTimeouts["dlq"]; d.DLQVisibility < 6*dlq {
		t.Errorf("dead-letter queue visibility %s is under 6x the dlq function's timeout %s", d.DLQVisibility, dlq)
	}
	if d.FireVisibility < timing.Visibility {
		t.Errorf("fire queue visibility %s is shorter than an attempt's lease and margin %s", d.FireVisibility, timing.Visibility)
	}
	// A batch's records run at once, each needing one attempt's time.
	if fire := d.FunctionTimeouts["fire"]; fire < timing.AttemptTime() {
		t.Errorf("fire function timeout %s is shorter than one attempt (%s): every message would be given back", fire, timing.AttemptTime())
	}
}
