package e2e

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/followups/followups/e2e/aws/harness"
	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/telemetry"
)

// The template's alarms and dashboard name only metrics, dimensions and the
// namespace the code emits, so renaming a metric cannot silently break an
// alarm.

const nsMarker = "@@NS@@"

func loadTemplate(t *testing.T) *yaml.Node {
	t.Helper()
	raw, err := os.ReadFile("../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0]
}

// get returns the value of key in a mapping node, or nil.
var get = harness.Lookup

// emitted reports whether the code emits metric name with exactly dims.
func emitted(name string, dims []string) bool {
	slices.Sort(dims)
	for _, m := range telemetry.EmittedMetrics() {
		d := slices.Clone(m.Dimensions)
		slices.Sort(d)
		if m.Name == name && slices.Equal(d, dims) {
			return true
		}
	}
	return false
}

// isOurNamespace reports whether a Namespace node is the MetricsNamespace
// parameter or the literal default.
func isOurNamespace(n *yaml.Node) bool {
	return (n.Tag == "!Ref" && n.Value == "MetricsNamespace") || n.Value == telemetry.DefaultNamespace
}

func TestTemplateAlarmsNameEmittedMetrics(t *testing.T) {
	root := loadTemplate(t)
	if def := get(get(get(root, "Parameters"), "MetricsNamespace"), "Default"); def == nil || def.Value != telemetry.DefaultNamespace {
		t.Fatalf("MetricsNamespace default is not %q", telemetry.DefaultNamespace)
	}
	// The functions get the namespace from Globals (or their own Environment).
	globalNS := get(get(get(get(get(root, "Globals"), "Function"), "Environment"), "Variables"), "FOLLOWUPS_METRICS_NAMESPACE")
	resources := get(root, "Resources")
	checked := 0
	for i := 0; i+1 < len(resources.Content); i += 2 {
		name, res := resources.Content[i].Value, resources.Content[i+1]
		props := get(res, "Properties")
		switch get(res, "Type").Value {
		case "AWS::Serverless::Function":
			env := get(get(get(props, "Environment"), "Variables"), "FOLLOWUPS_METRICS_NAMESPACE")
			if env == nil {
				env = globalNS
			}
			if env == nil || !isOurNamespace(env) {
				t.Errorf("%s: FOLLOWUPS_METRICS_NAMESPACE is not !Ref MetricsNamespace", name)
			}
		case "AWS::CloudWatch::Alarm":
			// A plain alarm names its metric; a metric math alarm names
			// one per MetricStat.
			metrics := []*yaml.Node{props}
			if m := get(props, "Metrics"); m != nil {
				metrics = nil
				for _, q := range m.Content {
					if stat := get(get(q, "MetricStat"), "Metric"); stat != nil {
						metrics = append(metrics, stat)
					}
				}
			}
			for _, m := range metrics {
				ns := get(m, "Namespace")
				if ns == nil || !isOurNamespace(ns) {
					continue // an AWS/* metric
				}
				var dims []string
				if d := get(m, "Dimensions"); d != nil {
					for _, dim := range d.Content {
						dims = append(dims, get(dim, "Name").Value)
					}
				}
				metric := get(m, "MetricName").Value
				if !emitted(metric, dims) {
					t.Errorf("alarm %s watches %s with dimensions %v, which the code does not emit", name, metric, dims)
				}
				checked++
			}
		}
	}
	if checked == 0 {
		t.Fatal("no alarm on the Followups namespace: the drop alarm is missing")
	}
}

func TestTemplateDashboardNamesEmittedMetrics(t *testing.T) {
	root := loadTemplate(t)
	board := get(get(get(root, "Resources"), "Dashboard"), "Properties")
	body := get(board, "DashboardBody")
	if body == nil || body.Tag != "!Sub" || body.Kind != yaml.SequenceNode {
		t.Fatal("DashboardBody is not a !Sub [template, {NS: !Ref MetricsNamespace}]")
	}
	if ns := get(body.Content[1], "NS"); ns == nil || !isOurNamespace(ns) {
		t.Fatal("the dashboard's NS is not the MetricsNamespace parameter")
	}
	text := strings.ReplaceAll(body.Content[0].Value, "${NS}", nsMarker)
	text = regexp.MustCompile(`\$\{[^}]+\}`).ReplaceAllString(text, "x")
	var dash struct {
		Widgets []struct {
			Properties struct {
				Metrics [][]any `json:"metrics"`
			} `json:"properties"`
		} `json:"widgets"`
	}
	if err := json.Unmarshal([]byte(text), &dash); err != nil {
		t.Fatalf("dashboard body is not JSON: %v", err)
	}
	search := regexp.MustCompile(`SEARCH\('\{` + nsMarker + `((?:,[A-Za-z]+)*)\} MetricName="([A-Za-z]+)"`)
	seen := 0
	for _, w := range dash.Widgets {
		for _, m := range w.Properties.Metrics {
			if len(m) == 0 {
				continue
			}
			if first, ok := m[0].(string); ok {
				if first != nsMarker {
					continue
				}
				metric := m[1].(string)
				var dims []string
				for i := 2; i+1 < len(m); i += 2 {
					if name, ok := m[i].(string); ok {
						dims = append(dims, name)
					}
				}
				if !emitted(metric, dims) {
					t.Errorf("dashboard shows %s with dimensions %v, which the code does not emit", metric, dims)
				}
				seen++
				continue
			}
			expr, _ := m[0].(map[string]any)["expression"].(string)
			if sm := search.FindStringSubmatch(expr); sm != nil {
				dims := strings.Split(strings.TrimPrefix(sm[1], ","), ",")
				if !emitted(sm[2], dims) {
					t.Errorf("dashboard searches %s with dimensions %v, which the code does not emit", sm[2], dims)
				}
				seen++
			} else if strings.Contains(expr, nsMarker) {
				t.Errorf("dashboard expression this test cannot read: %s", expr)
			}
		}
	}
	for _, want := range []string{"FollowupScheduled", "FollowupDelivered", "FollowupDropped", "FollowupCancelled", "DispatchAttempts", "DispatchLatency", "FireLateness"} {
		if !strings.Contains(text, `"`+want+`"`) {
			t.Errorf("dashboard does not show %s", want)
		}
	}
	if seen == 0 {
		t.Fatal("dashboard shows no Followups metric")
	}
}

// The alarms operators rely on: any drop above a threshold, drops that
// point at a fault at 1, a lost message found by the sweep, dead letters
// waiting, and every function's errors.
func TestTemplateAlarms(t *testing.T) {
	resources := get(loadTemplate(t), "Resources")
	alarm := func(name string) *yaml.Node {
		t.Helper()
		a := get(resources, name)
		if a == nil || get(a, "Type").Value != "AWS::CloudWatch::Alarm" {
			t.Fatalf("no alarm %s", name)
		}
		p := get(a, "Properties")
		if topic := get(p, "AlarmActions"); topic == nil || len(topic.Content) != 1 || topic.Content[0].Value != "AlarmTopic" {
			t.Errorf("alarm %s does not notify AlarmTopic", name)
		}
		return p
	}
	threshold := func(p *yaml.Node) string { return get(p, "Threshold").Tag + " " + get(p, "Threshold").Value }

	if p := alarm("FollowupDroppedAlarm"); get(p, "MetricName").Value != telemetry.MetricFollowupDropped || threshold(p) != "!Ref DropAlarmThreshold" {
		t.Errorf("FollowupDroppedAlarm: %s over %s", get(p, "MetricName").Value, threshold(p))
	}
	if d := get(get(get(loadTemplate(t), "Parameters"), "DropAlarmThreshold"), "Default"); d == nil || d.Value != "1" {
		t.Errorf("DropAlarmThreshold default %v, want 1", d)
	}

	// The fault alarm subtracts exactly the drop reasons that are not a
	// fault of the system.
	p := alarm("FaultDropAlarm")
	if threshold(p) != "!!int 1" {
		t.Errorf("FaultDropAlarm threshold %s, want 1", threshold(p))
	}
	var excluded []string
	for _, q := range get(p, "Metrics").Content {
		if d := get(get(get(q, "MetricStat"), "Metric"), "Dimensions"); d != nil {
			excluded = append(excluded, get(d.Content[0], "Value").Value)
		}
	}
	var notFaults []string
	for _, r := range followup.DropReasons {
		if !r.Fault() {
			notFaults = append(notFaults, string(r))
		}
	}
	slices.Sort(excluded)
	slices.Sort(notFaults)
	if !slices.Equal(excluded, notFaults) {
		t.Errorf("FaultDropAlarm leaves out %v, want exactly %v", excluded, notFaults)
	}

	if p := alarm("FollowupRedrivenAlarm"); get(p, "MetricName").Value != telemetry.MetricFollowupRedriven || threshold(p) != "!!int 1" {
		t.Errorf("FollowupRedrivenAlarm: %s over %s", get(p, "MetricName").Value, threshold(p))
	}
	if p := alarm("DlqOldestMessageAlarm"); get(p, "MetricName").Value != "ApproximateAgeOfOldestMessage" {
		t.Errorf("DlqOldestMessageAlarm watches %s", get(p, "MetricName").Value)
	}

	// Every function has an Errors alarm.
	errorsOf := map[string]bool{}
	for i := 0; i+1 < len(resources.Content); i += 2 {
		p := get(resources.Content[i+1], "Properties")
		if get(resources.Content[i+1], "Type").Value == "AWS::CloudWatch::Alarm" && get(p, "MetricName") != nil && get(p, "MetricName").Value == "Errors" {
			errorsOf[get(get(p, "Dimensions").Content[0], "Value").Value] = true
		}
	}
	for i := 0; i+1 < len(resources.Content); i += 2 {
		if get(resources.Content[i+1], "Type").Value == "AWS::Serverless::Function" && !errorsOf[resources.Content[i].Value] {
			t.Errorf("function %s has no Errors alarm", resources.Content[i].Value)
		}
	}
}

// TestTemplateKeepsSecretsOutOfConfiguration: the thread API's token and
// the signing key reach the fire function only by Secrets Manager ARN,
// read at cold start, so neither appears in the function's configuration
// (where GetFunctionConfiguration shows it), in a parameter, or in a
// dynamic reference CloudFormation would resolve into the configuration.
func TestTemplateKeepsSecretsOutOfConfiguration(t *testing.T) {
	raw, err := os.ReadFile("../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "{{resolve:") {
		t.Error("template.yaml uses a dynamic reference; secrets would land in the function configuration")
	}
	root := loadTemplate(t)
	plain := []string{"THREAD_API_TOKEN", "FOLLOWUPS_SIGNING_SECRET"}
	checkEnv := func(where string, vars *yaml.Node) {
		for i := 0; vars != nil && i+1 < len(vars.Content); i += 2 {
			if slices.Contains(plain, vars.Content[i].Value) {
				t.Errorf("%s sets %s: the secret itself in the function configuration", where, vars.Content[i].Value)
			}
		}
	}
	checkEnv("Globals", get(get(get(get(root, "Globals"), "Function"), "Environment"), "Variables"))
	resources := get(root, "Resources")
	arns := 0
	for i := 0; i+1 < len(resources.Content); i += 2 {
		name, res := resources.Content[i].Value, resources.Content[i+1]
		if get(res, "Type").Value != "AWS::Serverless::Function" {
			continue
		}
		vars := get(get(get(res, "Properties"), "Environment"), "Variables")
		checkEnv(name, vars)
		for _, v := range []string{"THREAD_API_TOKEN_SECRET_ARN", "FOLLOWUPS_SIGNING_SECRET_ARN"} {
			if get(vars, v) != nil {
				arns++
			}
		}
	}
	if arns != 2 {
		t.Errorf("%d secret ARN variables set on the functions, want 2 (both on the fire function)", arns)
	}
	params := get(root, "Parameters")
	for i := 0; i+1 < len(params.Content); i += 2 {
		name := params.Content[i].Value
		if (strings.Contains(name, "Token") || strings.Contains(name, "Secret")) && !strings.HasSuffix(name, "Arn") {
			t.Errorf("parameter %s looks like a secret; pass its Secrets Manager ARN instead", name)
		}
	}
}
