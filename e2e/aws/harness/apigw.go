package harness

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// routes are the HTTP API's routes in template.yaml; anything else goes to
// the $default route.
var routes = []struct {
	method string
	parts  []string
}{
	{"POST", []string{"followups"}},
	{"GET", []string{"followups", "{id}"}},
	{"DELETE", []string{"followups", "{id}"}},
	{"GET", []string{"threads", "{thread_id}", "followups"}},
	{"DELETE", []string{"threads", "{thread_id}", "followups"}},
	{"POST", []string{"followups", "{id}", "rearm"}},
	{"POST", []string{"mcp"}},
	{"GET", []string{"openapi.json"}},
}

// API plays API Gateway's HTTP API in front of the schedule function: it
// turns a request into a payload format 2.0 event, invokes the function and
// reads its response.
type API struct {
	Fn *Function
	// Template is the event every request starts from (events/create.json
	// when there is one): the account, API id, stage and IAM authorizer
	// context of a signed request.
	Template events.APIGatewayV2HTTPRequest
}

// Response is the function's answer as API Gateway would send it.
type Response struct {
	Status     int
	Header     map[string]string
	Body       []byte
	Invocation *Invocation
}

// JSON decodes the body into v.
func (r *Response) JSON(v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("response %d %q: %w", r.Status, r.Body, err)
	}
	return nil
}

// LoadTemplate reads an API Gateway event to start requests from; a
// missing file gives a minimal event.
func LoadTemplate(path string) (events.APIGatewayV2HTTPRequest, error) {
	var ev events.APIGatewayV2HTTPRequest
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		ev.RequestContext.AccountID = "123456789012"
		ev.RequestContext.APIID = "e2eapi0001"
		ev.RequestContext.DomainName = "e2eapi0001.execute-api.us-east-1.amazonaws.com"
		ev.RequestContext.DomainPrefix = "e2eapi0001"
		ev.RequestContext.Stage = "$default"
		ev.Headers = map[string]string{"host": ev.RequestContext.DomainName}
		return ev, nil
	}
	if err != nil {
		return ev, err
	}
	if err := json.Unmarshal(b, &ev); err != nil {
		return ev, fmt.Errorf("%s: %w", path, err)
	}
	return ev, nil
}

// Do sends method target (a path with an optional ?query, escaped as a
// client would) with body and headers through the function.
func (a *API) Do(ctx context.Context, method, target, body string, headers map[string]string) (*Response, error) {
	ev, err := a.Event(method, target, body, headers)
	if err != nil {
		return nil, err
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	inv, err := a.Fn.Invoke(ctx, payload)
	if err != nil {
		return nil, err
	}
	if inv.Err != nil {
		// API Gateway answers 500 {"message":"Internal Server Error"}.
		return &Response{Status: 500, Body: []byte(`{"message":"Internal Server Error"}`), Invocation: inv},
			fmt.Errorf("%s %s: the function failed: %v", method, target, inv.Err)
	}
	var out events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(inv.Payload, &out); err != nil || out.StatusCode == 0 {
		return nil, fmt.Errorf("%s %s: not an API Gateway response: %s", method, target, inv.Payload)
	}
	resp := &Response{Status: out.StatusCode, Header: map[string]string{}, Body: []byte(out.Body), Invocation: inv}
	for k, v := range out.Headers {
		resp.Header[strings.ToLower(k)] = v
	}
	for k, vs := range out.MultiValueHeaders {
		resp.Header[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	if out.IsBase64Encoded {
		if resp.Body, err = base64.StdEncoding.DecodeString(out.Body); err != nil {
			return nil, fmt.Errorf("%s %s: body: %w", method, target, err)
		}
	}
	return resp, nil
}

// Event builds the payload format 2.0 event API Gateway would send for the
// request. As an HTTP API does, it puts the path percent-decoded in rawPath
// and requestContext.http.path, lower-cases header names and matches the
// route on the decoded path.
func (a *API) Event(method, target, body string, headers map[string]string) (events.APIGatewayV2HTTPRequest, error) {
	escapedPath, rawQuery, _ := strings.Cut(target, "?")
	path, err := url.PathUnescape(escapedPath)
	if err != nil {
		return events.APIGatewayV2HTTPRequest{}, fmt.Errorf("path %q: %w", escapedPath, err)
	}
	ev := a.Template
	ev.Version = "2.0"
	ev.RawPath = path
	ev.RawQueryString = rawQuery
	ev.Body = body
	ev.IsBase64Encoded = false
	ev.Cookies = nil
	ev.StageVariables = nil
	ev.RouteKey, ev.PathParameters = route(method, path)
	ev.QueryStringParameters = nil
	if rawQuery != "" {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return ev, fmt.Errorf("query %q: %w", rawQuery, err)
		}
		ev.QueryStringParameters = map[string]string{}
		for k, vs := range q {
			ev.QueryStringParameters[k] = strings.Join(vs, ",")
		}
	}
	now := time.Now().UTC()
	h := map[string]string{}
	for k, v := range a.Template.Headers {
		switch k = strings.ToLower(k); k {
		case "content-length", "content-type", "x-amz-content-sha256", "x-amz-date", "x-amzn-trace-id":
		default:
			h[k] = v
		}
	}
	sum := sha256.Sum256([]byte(body))
	h["x-amz-content-sha256"] = hex.EncodeToString(sum[:])
	h["x-amz-date"] = now.Format("20060102T150405Z")
	h["x-amzn-trace-id"] = "Root=1-" + strconv.FormatInt(now.Unix(), 16) + "-" + newRequestID()[:24]
	if body != "" {
		h["content-length"] = strconv.Itoa(len(body))
	}
	for k, v := range headers {
		h[strings.ToLower(k)] = v
	}
	ev.Headers = h
	rc := &ev.RequestContext
	rc.RouteKey = ev.RouteKey
	rc.RequestID = newRequestID()[:16]
	rc.Time = now.Format("02/Jan/2006:15:04:05 -0700")
	rc.TimeEpoch = now.UnixMilli()
	rc.HTTP.Method = method
	rc.HTTP.Path = path
	if rc.HTTP.Protocol == "" {
		rc.HTTP.Protocol = "HTTP/1.1"
	}
	if rc.HTTP.SourceIP == "" {
		rc.HTTP.SourceIP = "127.0.0.1"
	}
	rc.HTTP.UserAgent = h["user-agent"]
	return ev, nil
}

// route returns the route key and path parameters API Gateway would give a
// request, "$default" when no route matches.
func route(method, path string) (string, map[string]string) {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for _, r := range routes {
		if r.method != method || len(r.parts) != len(parts) {
			continue
		}
		params := map[string]string{}
		ok := true
		for i, p := range r.parts {
			switch {
			case strings.HasPrefix(p, "{"):
				if parts[i] == "" {
					ok = false
				}
				params[strings.Trim(p, "{}")] = parts[i]
			case p != parts[i]:
				ok = false
			}
		}
		if ok {
			if len(params) == 0 {
				params = nil
			}
			return method + " /" + strings.Join(r.parts, "/"), params
		}
	}
	return "$default", nil
}
