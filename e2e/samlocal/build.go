package samlocal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/followups/followups/e2e/aws/harness"
)

// The architectures of a Lambda function, as the template names them.
const (
	ARM64 = "arm64"
	X8664 = "x86_64"
)

// HostArch is the architecture that runs natively here.
func HostArch() string {
	if runtime.GOARCH == "arm64" {
		return ARM64
	}
	return X8664
}

// Template is template.yaml, read with its tags (!Ref, !If, …) kept.
type Template struct {
	Path string
	root *yaml.Node
}

// ReadTemplate reads a SAM template.
func ReadTemplate(path string) (*Template, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: not a template", path)
	}
	return &Template{Path: path, root: doc.Content[0]}, nil
}

// Functions returns the logical ids of the template's
// AWS::Serverless::Function resources, sorted.
func (t *Template) Functions() []string {
	var out []string
	forEach(get(t.root, "Resources"), func(name string, res *yaml.Node) {
		if typ := get(res, "Type"); typ != nil && typ.Value == "AWS::Serverless::Function" {
			out = append(out, name)
		}
	})
	slices.Sort(out)
	return out
}

// Consumer is a function behind a queue: its SQS event source mapping.
type Consumer struct {
	Function string
	// Queue is the queue's logical id.
	Queue     string
	BatchSize int
	// Window is MaximumBatchingWindowInSeconds.
	Window time.Duration
}

// Consumers returns the template's SQS event source mappings, by
// function.
func (t *Template) Consumers() ([]Consumer, error) {
	var out []Consumer
	var errs []error
	for _, fn := range t.Functions() {
		forEach(get(get(get(get(t.root, "Resources"), fn), "Properties"), "Events"), func(name string, ev *yaml.Node) {
			if typ := get(ev, "Type"); typ == nil || typ.Value != "SQS" {
				return
			}
			props := get(ev, "Properties")
			c := Consumer{Function: fn, BatchSize: 10}
			// !GetAtt Queue.Arn, or Fn::GetAtt: [Queue, Arn].
			switch q := get(props, "Queue"); {
			case q != nil && q.Tag == "!GetAtt" && strings.HasSuffix(q.Value, ".Arn"):
				c.Queue = strings.TrimSuffix(q.Value, ".Arn")
			case q != nil && get(q, "Fn::GetAtt") != nil && len(get(q, "Fn::GetAtt").Content) == 2:
				c.Queue = get(q, "Fn::GetAtt").Content[0].Value
			default:
				errs = append(errs, fmt.Errorf("%s event %s: Queue is not the ARN of a queue of the template", fn, name))
				return
			}
			if n := get(props, "BatchSize"); n != nil {
				fmt.Sscan(n.Value, &c.BatchSize)
			}
			if n := get(props, "MaximumBatchingWindowInSeconds"); n != nil {
				var sec int
				fmt.Sscan(n.Value, &sec)
				c.Window = time.Duration(sec) * time.Second
			}
			out = append(out, c)
		})
	}
	return out, errors.Join(errs...)
}

// Architectures returns the architectures the functions are built for.
func (t *Template) Architectures() []string {
	var out []string
	add := func(n *yaml.Node) {
		if n == nil {
			return
		}
		for _, a := range n.Content {
			if !slices.Contains(out, a.Value) {
				out = append(out, a.Value)
			}
		}
	}
	add(get(get(get(t.root, "Globals"), "Function"), "Architectures"))
	forEach(get(t.root, "Resources"), func(_ string, res *yaml.Node) {
		add(get(get(res, "Properties"), "Architectures"))
	})
	slices.Sort(out)
	return out
}

// For returns a copy of the template whose functions are built for arch,
// written to dir/template.yaml, with every CodeUri made absolute so that it
// still names the sources. Everything else is left as it is.
func (t *Template) For(arch, dir string) (string, error) {
	var doc yaml.Node
	raw, err := os.ReadFile(t.Path)
	if err != nil {
		return "", err
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return "", err
	}
	root := doc.Content[0]
	base := filepath.Dir(t.Path)
	changed := 0
	setArch := func(n *yaml.Node) {
		if n == nil {
			return
		}
		n.Kind, n.Tag, n.Style = yaml.SequenceNode, "!!seq", yaml.FlowStyle
		n.Content = []*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: arch}}
		changed++
	}
	setArch(get(get(get(root, "Globals"), "Function"), "Architectures"))
	forEach(get(root, "Resources"), func(_ string, res *yaml.Node) {
		if typ := get(res, "Type"); typ == nil || typ.Value != "AWS::Serverless::Function" {
			return
		}
		props := get(res, "Properties")
		setArch(get(props, "Architectures"))
		if uri := get(props, "CodeUri"); uri != nil && uri.Kind == yaml.ScalarNode && !filepath.IsAbs(uri.Value) {
			uri.Value = filepath.Join(base, uri.Value) + string(filepath.Separator)
		}
	})
	if changed == 0 {
		return "", fmt.Errorf("%s: no Architectures to set to %s", t.Path, arch)
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "template.yaml")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, out, 0o644)
}

// Build runs sam build of the template at root/template.yaml for arch into
// dir/build, as the README builds it (CGO_ENABLED=0,
// GOFLAGS=-tags=lambda.norpc), and returns the built template. For the
// template's own architecture it builds template.yaml itself, the
// artifacts that are deployed; for another it builds a copy (For) in dir.
func (s *SAM) Build(ctx context.Context, arch, dir string) (string, time.Duration, error) {
	t, err := ReadTemplate(filepath.Join(s.Root, "template.yaml"))
	if err != nil {
		return "", 0, err
	}
	src := t.Path
	if archs := t.Architectures(); !slices.Equal(archs, []string{arch}) {
		if src, err = t.For(arch, dir); err != nil {
			return "", 0, err
		}
	}
	build := filepath.Join(dir, "build")
	args := []string{"build", "--template", src, "--build-dir", build, "--parallel"}
	cmd := s.Command(ctx, args...)
	cmd.Env = s.Env(map[string]string{"CGO_ENABLED": "0", "GOFLAGS": "-tags=lambda.norpc"})
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", 0, fmt.Errorf("sam %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	built := filepath.Join(build, "template.yaml")
	if _, err := os.Stat(built); err != nil {
		return "", 0, errors.Join(fmt.Errorf("sam build wrote no %s", built), err)
	}
	return built, time.Since(start), nil
}

// get returns the value of key in a mapping node, or nil.
var get = harness.Lookup

// forEach calls f with each key and value of a mapping node.
func forEach(n *yaml.Node, f func(string, *yaml.Node)) {
	if n == nil || n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		f(n.Content[i].Value, n.Content[i+1])
	}
}
