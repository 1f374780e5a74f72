package e2e

import (
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/followups/followups/shared/api"
)

// Every route of the API reaches the schedule function through a route of
// its own, under the same authorizer as every other: the function's HttpApi
// events and the API's DefinitionBody name exactly the handler's routes.
func TestTemplateRoutesAreTheAPIs(t *testing.T) {
	root := loadTemplate(t)
	resources := get(root, "Resources")
	var events []string
	for _, ev := range pairs(get(get(get(resources, "ScheduleFunction"), "Properties"), "Events")) {
		p := get(ev.value, "Properties")
		if get(ev.value, "Type").Value != "HttpApi" || get(p, "Path").Value == "$default" {
			continue
		}
		events = append(events, get(p, "Method").Value+" "+get(p, "Path").Value)
	}
	var documented []string
	var security []string
	for _, path := range pairs(get(get(get(get(resources, "HttpApi"), "Properties"), "DefinitionBody"), "paths")) {
		for _, op := range pairs(path.value) {
			security = append(security, nodeText(t, get(op.value, "security")))
			if path.key != "$default" {
				documented = append(documented, strings.ToUpper(op.key)+" "+path.key)
			}
		}
	}
	want := api.Routes()
	slices.Sort(events)
	slices.Sort(documented)
	if !slices.Equal(events, want) {
		t.Errorf("ScheduleFunction's HttpApi events\n  %v\nare not the API's routes\n  %v", events, want)
	}
	if !slices.Equal(documented, want) {
		t.Errorf("HttpApi's DefinitionBody paths\n  %v\nare not the API's routes\n  %v", documented, want)
	}
	for _, s := range security {
		if s != security[0] || !strings.Contains(s, "AWS_IAM") || !strings.Contains(s, "JwtAuthorizer") {
			t.Errorf("a route's security is %q, not the one of every route (%q)", s, security[0])
		}
	}
}

type pair struct {
	key   string
	value *yaml.Node
}

// pairs lists a mapping node's entries.
func pairs(n *yaml.Node) []pair {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var out []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, pair{n.Content[i].Value, n.Content[i+1]})
	}
	return out
}

func nodeText(t *testing.T, n *yaml.Node) string {
	t.Helper()
	if n == nil {
		return "<none>"
	}
	b, err := yaml.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
