package samlocal

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/followups/followups/e2e/aws/harness"
)

// The copy of template.yaml that make sam-local builds for an x86_64
// host: only the architecture and the paths of the sources differ.
func TestTemplateForAnotherArchitecture(t *testing.T) {
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	orig, err := ReadTemplate(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	path, err := orig.For(X8664, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cp, err := ReadTemplate(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := cp.Architectures(); !slices.Equal(got, []string{X8664}) {
		t.Errorf("the copy builds for %v, want [x86_64] (template.yaml: %v)", got, orig.Architectures())
	}
	if !slices.Equal(cp.Functions(), orig.Functions()) {
		t.Errorf("functions %v, want %v", cp.Functions(), orig.Functions())
	}
	for _, fn := range cp.Functions() {
		uri := get(get(get(get(cp.root, "Resources"), fn), "Properties"), "CodeUri")
		if uri == nil || !filepath.IsAbs(uri.Value) {
			t.Errorf("%s: CodeUri %v, want an absolute path", fn, uri)
			continue
		}
		if _, err := os.Stat(filepath.Join(uri.Value, "main.go")); err != nil {
			t.Errorf("%s: CodeUri %s: %v", fn, uri.Value, err)
		}
	}
	oc, err := orig.Consumers()
	if err != nil {
		t.Fatal(err)
	}
	if len(oc) == 0 {
		t.Error("template.yaml has no SQS event source mapping")
	}
	cc, err := cp.Consumers()
	if err != nil || !slices.Equal(cc, oc) {
		t.Errorf("queue consumers %+v (%v), want %+v", cc, err, oc)
	}
	if o, c := tags(orig.root), tags(cp.root); o != c || o == 0 {
		t.Errorf("the copy has %d intrinsic function tags (!Ref, !If, …), template.yaml %d", c, o)
	}
}

// tags counts the nodes with a local tag such as !Ref.
func tags(n *yaml.Node) int {
	c := 0
	if len(n.Tag) > 1 && n.Tag[0] == '!' && n.Tag[1] != '!' {
		c++
	}
	for _, k := range n.Content {
		c += tags(k)
	}
	return c
}
