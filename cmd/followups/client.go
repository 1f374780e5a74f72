package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
)

// The environment variables the command reads.
const (
	envURL   = "FOLLOWUPS_URL"
	envToken = "FOLLOWUPS_API_TOKEN"
)

const defaultURL = "http://127.0.0.1:8080"

// requestTimeout bounds one request to the API.
const requestTimeout = 30 * time.Second

// globals are the flags every command takes, before or after its name.
type globals struct {
	url, token, region, output string
	sigv4                      bool
}

// register adds the flags to fs, with no defaults: those are resolved in
// client, so that help never shows a token from the environment.
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.url, "url", "", "the API's base `URL` (default $"+envURL+", else "+defaultURL+")")
	fs.StringVar(&g.token, "token", "", "followupd's bearer `token` (default $"+envToken+")")
	fs.BoolVar(&g.sigv4, "sigv4", false, "sign requests with AWS Signature Version 4 for API Gateway's IAM authorization, with the\n"+
		"default credential chain (environment, shared files, SSO, container and instance roles); implied by an\n"+
		"execute-api URL when no token is given")
	fs.StringVar(&g.region, "region", "", "the AWS `region` to sign for (default $AWS_REGION or the profile's, else the execute-api URL's)")
	fs.StringVar(&g.output, "o", "", "output `format`: json or table (default json)")
	fs.StringVar(&g.output, "output", "", "output `format`, the same as -o")
}

// overlay returns g with what later set.
func (g globals) overlay(later globals) globals {
	for _, f := range []struct{ dst, src *string }{{&g.url, &later.url}, {&g.token, &later.token}, {&g.region, &later.region}, {&g.output, &later.output}} {
		if *f.src != "" {
			*f.dst = *f.src
		}
	}
	g.sigv4 = g.sigv4 || later.sigv4
	return g
}

// executeAPI matches an API Gateway URL's host and captures its region.
var executeAPI = regexp.MustCompile(`^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$`)

// client checks the settings and returns the client they describe.
func (g *globals) client(ctx context.Context, e env) (*client, error) {
	switch g.output {
	case "", "json", "table":
	default:
		return nil, fmt.Errorf("-o %q: want json or table", g.output)
	}
	raw := g.url
	if raw == "" {
		raw, _ = e.lookup(envURL)
	}
	if raw == "" {
		raw = defaultURL
	}
	base, err := url.Parse(strings.TrimSuffix(raw, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" || base.RawQuery != "" {
		return nil, fmt.Errorf("--url %q: want an http or https URL such as %s", raw, defaultURL)
	}
	c := &client{base: base, http: &http.Client{Timeout: requestTimeout}, table: g.output == "table", env: e}
	gateway := executeAPI.FindStringSubmatch(base.Hostname())
	token := g.token
	if token == "" && !g.sigv4 {
		token, _ = e.lookup(envToken)
	}
	switch {
	case g.token != "" && g.sigv4:
		return nil, errors.New("--token and --sigv4 both given: followupd takes a token, the API on AWS a signature")
	case g.sigv4 || (gateway != nil && token == ""):
		return c, c.useSigV4(ctx, g.region, gateway)
	}
	c.token = token
	return c, nil
}

// useSigV4 makes the client sign its requests for execute-api.
func (c *client) useSigV4(ctx context.Context, region string, gateway []string) error {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return fmt.Errorf("AWS configuration: %w", err)
	}
	if cfg.Region == "" && gateway != nil {
		cfg.Region = gateway[1]
	}
	if cfg.Region == "" {
		return errors.New("no AWS region to sign for: give --region, set AWS_REGION, or use the API's execute-api URL")
	}
	c.aws = &cfg
	c.signer = v4.NewSigner()
	return nil
}

// client talks to the API.
type client struct {
	base   *url.URL
	http   *http.Client
	token  string
	aws    *aws.Config // set when requests are signed
	signer *v4.Signer
	table  bool
	// env is where answers are printed.
	env env
}

// reply is an answer of the API.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// apiError is an answer the API refused the request with.
type apiError struct {
	status        int
	code, message string
	field         string
	raw           []byte
}

func (e *apiError) Error() string {
	switch {
	case e.code != "" && e.field != "":
		return fmt.Sprintf("%s (%s): %s", e.code, e.field, e.message)
	case e.code != "":
		return e.code + ": " + e.message
	case e.message != "":
		// API Gateway's own answer, {"message": "..."}.
		return fmt.Sprintf("HTTP %d: %s", e.status, e.message)
	}
	return fmt.Sprintf("HTTP %d: %s", e.status, bytes.TrimSpace(e.raw))
}

// do sends one request; path is escaped, body nil for none. An answer that
// is not 2xx is an *apiError.
func (c *client) do(ctx context.Context, method, path string, body []byte, header http.Header) (*reply, error) {
	u, err := url.Parse(c.base.String() + path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "followups-cli")
	if err := c.authorize(ctx, req, body); err != nil {
		return nil, err
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	if res.StatusCode/100 != 2 {
		e := &apiError{status: res.StatusCode, raw: raw}
		var answer struct {
			Error struct {
				Code, Message, Field string
			} `json:"error"`
			Message string `json:"message"`
		}
		if json.Unmarshal(raw, &answer) == nil {
			e.code, e.message, e.field = answer.Error.Code, answer.Error.Message, answer.Error.Field
			if e.code == "" {
				e.message = answer.Message
			}
		}
		return nil, e
	}
	return &reply{status: res.StatusCode, header: res.Header, body: raw}, nil
}

// authorize adds the bearer token, or signs the request.
func (c *client) authorize(ctx context.Context, req *http.Request, body []byte) error {
	if c.aws == nil {
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		return nil
	}
	creds, err := c.aws.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("AWS credentials: %w", err)
	}
	sum := sha256.Sum256(body)
	if err := c.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "execute-api", c.aws.Region, time.Now()); err != nil {
		return fmt.Errorf("sign the request: %w", err)
	}
	return nil
}
