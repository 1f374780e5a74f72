package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// Template is template.yaml as parsed, for the values the harness takes
// from it instead of repeating them: queue visibility timeouts, function
// timeouts, the fire queue's default receive limit.
type Template struct {
	root *yaml.Node
}

// LoadSAMTemplate reads template.yaml at the module root.
func LoadSAMTemplate(root string) (*Template, error) {
	raw, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("template.yaml: %w", err)
	}
	return &Template{root: doc.Content[0]}, nil
}

// Node returns the node at path (mapping keys), or nil.
func (t *Template) Node(path ...string) *yaml.Node {
	n := t.root
	for _, k := range path {
		n = Lookup(n, k)
	}
	return n
}

// Int returns the integer at path.
func (t *Template) Int(path ...string) (int, error) {
	n := t.Node(path...)
	if n == nil {
		return 0, fmt.Errorf("template.yaml has no %v", path)
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil {
		return 0, fmt.Errorf("template.yaml %v = %q: %w", path, n.Value, err)
	}
	return v, nil
}

// Seconds returns the whole seconds at path as a duration.
func (t *Template) Seconds(path ...string) (time.Duration, error) {
	n, err := t.Int(path...)
	return time.Duration(n) * time.Second, err
}

// Lookup returns the value of key in a mapping node, or nil (for any
// other node too).
func Lookup(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// Deployment is what the harness takes from the template.
type Deployment struct {
	FireVisibility, DLQVisibility time.Duration
	Retention                     time.Duration
	MaxReceiveCount               int
	FunctionTimeouts              map[string]time.Duration
	// FireWindow and DLQWindow are the event source mappings' batching
	// windows.
	FireWindow, DLQWindow time.Duration
}

// resourceOf names the template resource of each function.
var resourceOf = map[string]string{"schedule": "ScheduleFunction", "fire": "FireFunction", "dlq": "DlqFunction", "sweep": "SweepFunction"}

// ResourceName returns the template resource of function fn.
func ResourceName(fn string) string { return resourceOf[fn] }

// Deployment reads the deployment's numbers.
func (t *Template) Deployment() (Deployment, error) {
	var d Deployment
	var errs []error
	get := func(dst *time.Duration, path ...string) {
		v, err := t.Seconds(path...)
		*dst = v
		errs = append(errs, err)
	}
	get(&d.FireVisibility, "Resources", "FireQueue", "Properties", "VisibilityTimeout")
	get(&d.DLQVisibility, "Resources", "DeadLetterQueue", "Properties", "VisibilityTimeout")
	get(&d.Retention, "Resources", "FireQueue", "Properties", "MessageRetentionPeriod")
	get(&d.FireWindow, "Resources", "FireFunction", "Properties", "Events", "FireQueueMessages", "Properties", "MaximumBatchingWindowInSeconds")
	get(&d.DLQWindow, "Resources", "DlqFunction", "Properties", "Events", "DeadLetters", "Properties", "MaximumBatchingWindowInSeconds")
	n, err := t.Int("Parameters", "FireQueueMaxReceiveCount", "Default")
	d.MaxReceiveCount = n
	errs = append(errs, err)
	d.FunctionTimeouts = map[string]time.Duration{}
	for fn, res := range resourceOf {
		var v time.Duration
		get(&v, "Resources", res, "Properties", "Timeout")
		d.FunctionTimeouts[fn] = v
	}
	for _, err := range errs {
		if err != nil {
			return Deployment{}, err
		}
	}
	return d, nil
}
