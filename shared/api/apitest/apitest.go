// Package apitest checks HTTP exchanges against the API's OpenAPI document
// (shared/api/openapi.json) with a real OpenAPI validator: kin-openapi
// loads and validates the document and checks a response's status and
// headers against its operation (openapi3filter), and the body is checked
// against the response's schema by the JSON Schema 2020-12 validator
// kin-openapi itself uses (santhosh-tekuri/jsonschema), each schema
// compiled once: kin-openapi compiles it again for every response, which
// the end-to-end tests, checking every response they receive, cannot
// afford. The tests of the handler, of followupd and of the schedule
// function pass every response through Check, so the document is the
// contract in machine form and cannot drift from what the API does.
//
// It is for tests only.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/followups/followups/shared/api"
)

// Contract is a loaded, validated OpenAPI document.
type Contract struct {
	Doc *openapi3.T

	mu       sync.Mutex
	compiler *jsonschema.Compiler
	compiled map[string]*jsonschema.Schema // by JSON pointer into the document
}

// docURL names the document for the schema compiler.
const docURL = "https://followups.invalid/openapi.json"

var (
	loadOnce sync.Once
	loaded   *Contract
	loadErr  error
)

// Load returns the API's document (api.OpenAPI), loaded and validated once
// for the test binary.
func Load() (*Contract, error) {
	loadOnce.Do(func() { loaded, loadErr = Parse(api.OpenAPI()) })
	return loaded, loadErr
}

// Parse loads and validates an OpenAPI document.
func Parse(raw []byte) (*Contract, error) {
	// An MCP answer to subscriptions/listen is a short event stream.
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		return nil, fmt.Errorf("load the OpenAPI document: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("the OpenAPI document is not valid: %w", err)
	}
	tree, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("the OpenAPI document is not JSON: %w", err)
	}
	c := &Contract{Doc: doc, compiler: jsonschema.NewCompiler(), compiled: map[string]*jsonschema.Schema{}}
	c.compiler.DefaultDraft(jsonschema.Draft2020)
	c.compiler.AssertFormat()
	if err := c.compiler.AddResource(docURL, tree); err != nil {
		return nil, err
	}
	return c, nil
}

// schemaAt returns the schema at a JSON pointer into the document,
// compiled the first time.
func (c *Contract) schemaAt(pointer string) (*jsonschema.Schema, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.compiled[pointer]; ok {
		return s, nil
	}
	s, err := c.compiler.Compile(docURL + "#" + pointer)
	if err != nil {
		return nil, fmt.Errorf("compile the schema at %s: %w", pointer, err)
	}
	c.compiled[pointer] = s
	return s, nil
}

// validate checks a value decoded by jsonschema.UnmarshalJSON (or a string)
// against the schema at pointer.
func (c *Contract) validate(pointer string, v any) error {
	s, err := c.schemaAt(pointer)
	if err != nil {
		return err
	}
	return s.Validate(v)
}

// Operation is one documented operation: a path template and a method.
type Operation struct {
	Method, Path string
	Op           *openapi3.Operation
	Item         *openapi3.PathItem
}

// Operations lists the document's operations, sorted by path and method.
func (c *Contract) Operations() []Operation {
	var ops []Operation
	for _, path := range c.Doc.Paths.InMatchingOrder() {
		item := c.Doc.Paths.Find(path)
		for method, op := range item.Operations() {
			ops = append(ops, Operation{Method: method, Path: path, Op: op, Item: item})
		}
	}
	slices.SortFunc(ops, func(a, b Operation) int {
		return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method)
	})
	return ops
}

// Find returns the operation a request names and its path parameters. It
// matches the escaped path segment by segment, so a thread id holding an
// escaped "/" is one parameter, as the API reads it.
func (c *Contract) Find(method string, u *url.URL) (Operation, map[string]string, bool) {
	segs := strings.Split(u.EscapedPath(), "/")
	for _, path := range c.Doc.Paths.InMatchingOrder() {
		tmpl := strings.Split(path, "/")
		if len(tmpl) != len(segs) {
			continue
		}
		params := map[string]string{}
		ok := true
		for i, t := range tmpl {
			if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
				v, err := url.PathUnescape(segs[i])
				if err != nil || v == "" {
					ok = false
					break
				}
				params[strings.Trim(t, "{}")] = v
			} else if t != segs[i] {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		item := c.Doc.Paths.Find(path)
		op := item.GetOperation(method)
		if op == nil {
			return Operation{Path: path, Item: item}, params, false
		}
		return Operation{Method: method, Path: path, Op: op, Item: item}, params, true
	}
	return Operation{}, nil, false
}

// Check validates one response to req (whose body need not be readable)
// against the document: its status must be documented for the operation,
// and its headers and body must match the response's schemas. A request
// for which the document names no operation must have been answered 401,
// 404 or 405 with the API's error object.
func (c *Contract) Check(req *http.Request, status int, header http.Header, body []byte) error {
	op, params, ok := c.Find(req.Method, req.URL)
	if !ok {
		return c.checkUndocumented(req, op, status, header, body)
	}
	ctx := context.Background()
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    req,
			PathParams: params,
			Route:      &routers.Route{Spec: c.Doc, Path: op.Path, PathItem: op.Item, Method: op.Method, Operation: op.Op},
		},
		Status: status,
		Header: header,
		Body:   io.NopCloser(bytes.NewReader(body)),
		// The body is checkBody's.
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, ExcludeResponseBody: true},
	}
	if err := openapi3filter.ValidateResponse(ctx, input); err != nil {
		return fmt.Errorf("%s %s answered %d %s: %w", req.Method, req.URL.RequestURI(), status, truncate(body), err)
	}
	if err := c.checkBody(op, status, header, body); err != nil {
		return fmt.Errorf("%s %s answered %d: %w", req.Method, req.URL.RequestURI(), status, err)
	}
	return nil
}

// checkBody checks a documented response's body: its media type is one
// the response lists (none when it lists none), and it matches that
// media type's schema.
func (c *Contract) checkBody(op Operation, status int, header http.Header, body []byte) error {
	ref := op.Op.Responses.Status(status)
	if len(ref.Value.Content) == 0 {
		if len(body) > 0 {
			return fmt.Errorf("a body, which the document says it has not: %s", truncate(body))
		}
		return nil
	}
	mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	if ref.Value.Content[mt] == nil {
		return fmt.Errorf("Content-Type %q, which the document does not list", header.Get("Content-Type"))
	}
	// The response's place in the document: its component, or the
	// operation's own responses.
	at := strings.TrimPrefix(ref.Ref, "#")
	if at == "" {
		at = "/paths/" + pointerEscape(op.Path) + "/" + strings.ToLower(op.Method) + "/responses/" + strconv.Itoa(status)
	}
	var value any = string(body)
	if mt == "application/json" {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("not JSON: %w: %s", err, truncate(body))
		}
		value = v
	}
	if err := c.validate(at+"/content/"+pointerEscape(mt)+"/schema", value); err != nil {
		return fmt.Errorf("%s: %w", truncate(body), err)
	}
	return nil
}

// pointerEscape escapes a JSON pointer token (RFC 6901).
func pointerEscape(token string) string {
	return strings.ReplaceAll(strings.ReplaceAll(token, "~", "~0"), "/", "~1")
}

// checkUndocumented checks the answer to a request no operation covers:
// the path is unknown (op is zero) or takes other methods.
func (c *Contract) checkUndocumented(req *http.Request, op Operation, status int, header http.Header, body []byte) error {
	want := map[int]string{http.StatusUnauthorized: "unauthorized", http.StatusNotFound: "not_found", http.StatusMethodNotAllowed: "method_not_allowed"}
	what := "no documented path"
	if op.Item != nil {
		what = "a documented path (" + op.Path + ") but no documented " + req.Method
	}
	code, ok := want[status]
	if !ok {
		return fmt.Errorf("%s %s names %s, and was answered %d (want 401, 404 or 405): %s", req.Method, req.URL.RequestURI(), what, status, truncate(body))
	}
	if status == http.StatusMethodNotAllowed && header.Get("Allow") == "" {
		return fmt.Errorf("%s %s: 405 without Allow", req.Method, req.URL.RequestURI())
	}
	if err := c.CheckSchema("Error", body); err != nil {
		return fmt.Errorf("%s %s answered %d: %w", req.Method, req.URL.RequestURI(), status, err)
	}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if _ = json.Unmarshal(body, &e); e.Error.Code != code {
		return fmt.Errorf("%s %s answered %d with code %q, want %q", req.Method, req.URL.RequestURI(), status, e.Error.Code, code)
	}
	if mt, _, _ := mime.ParseMediaType(header.Get("Content-Type")); mt != "application/json" {
		return fmt.Errorf("%s %s answered %d as %q", req.Method, req.URL.RequestURI(), status, header.Get("Content-Type"))
	}
	return nil
}

// CheckSchema validates a JSON value against one of the document's
// component schemas (ToolFollowup, Error, ...).
func (c *Contract) CheckSchema(name string, value []byte) error {
	if c.Doc.Components.Schemas[name] == nil {
		return fmt.Errorf("the document has no schema %s", name)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(value))
	if err != nil {
		return fmt.Errorf("not JSON: %w: %s", err, truncate(value))
	}
	if err := c.validate("/components/schemas/"+pointerEscape(name), v); err != nil {
		return fmt.Errorf("%s does not match schema %s: %w", truncate(value), name, err)
	}
	return nil
}

func truncate(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}
