package config

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/telemetry"
)

// Config holds the parsed settings. A setting that was not asked for keeps
// its default.
type Config struct {
	ThreadAPIURL    *url.URL // nil when none is configured
	ThreadAPIToken  string
	SigningSecret   string
	Limits          followup.Limits
	Retry           followup.RetryPolicy
	DispatchTimeout time.Duration
	Retention       time.Duration
	LogLevel        slog.Level

	// MaxReceives is the fire queue's receive limit (followupd's queue,
	// the template's FireQueueMaxReceiveCount on AWS).
	MaxReceives int

	// followupd only.
	APIToken string
	Addr     string
	DataDir  string
	Workers  int
	// DebugAddr, when set, is a loopback address serving net/http/pprof.
	DebugAddr string

	// AWS resources, passed by the template.
	Table            string
	FireQueueURL     string
	FireQueueARN     string
	DLQURL           string
	DLQARN           string
	ScheduleGroup    string
	SchedulerRoleARN string
	MetricsNamespace string
	// DirectWithin: followups due sooner after their create skip
	// EventBridge Scheduler (the schedule function).
	DirectWithin time.Duration
	// ThreadAPITokenSecretARN and SigningSecretARN name the Secrets
	// Manager secrets the fire function reads at cold start.
	ThreadAPITokenSecretARN string
	SigningSecretARN        string

	// Given records the settings that were set, by variable name.
	Given map[string]bool
}

// Timing is the fire path's time limits, derived from the dispatch timeout.
func (c *Config) Timing() followup.Timing { return followup.NewTiming(c.DispatchTimeout) }

// Setting is one configuration value and how to check it.
type Setting struct {
	// Env is the variable name; the flag name is derived from it (FlagName).
	Env string
	// Default is used when the setting is not given; "" means none.
	Default string
	// Required settings must be given.
	Required bool
	// Usage says what the setting is for.
	Usage string
	parse func(c *Config, v string) error
}

// FlagName derives a flag from its variable as the README's configuration table shows: lower case,
// without FOLLOWUPS_, "-" for "_" (--thread-api-url, --max-retries).
func FlagName(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "FOLLOWUPS_")), "_", "-")
}

func (s Setting) String() string { return fmt.Sprintf("%s (--%s)", s.Env, FlagName(s.Env)) }

// Set checks v as s's value and sets it in c, as Load would have: for a
// value that arrives another way (a secret read at start).
func (s Setting) Set(c *Config, v string) error {
	if err := s.parse(c, v); err != nil {
		return fmt.Errorf("%s: %w", s, err)
	}
	return nil
}

// The settings. Each runner lists those it reads.
var (
	ThreadAPIURL = Setting{Env: "THREAD_API_URL", Usage: "base URL of the thread API", parse: func(c *Config, v string) error {
		if v == "" {
			return nil
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fmt.Errorf("%q is not an http(s) base URL such as https://threads.example.com/api", v)
		}
		c.ThreadAPIURL = u
		return nil
	}}
	ThreadAPIToken = Setting{Env: "THREAD_API_TOKEN", Usage: "bearer token sent to the thread API", parse: func(c *Config, v string) error {
		return token(v, &c.ThreadAPIToken)
	}}
	SigningSecret = Setting{Env: "FOLLOWUPS_SIGNING_SECRET", Usage: "HMAC secret for X-Followup-Signature", parse: func(c *Config, v string) error {
		c.SigningSecret = v
		return nil
	}}
	MinDelay = Setting{Env: "FOLLOWUPS_MIN_DELAY", Default: "60s", Usage: "shortest delay a followup may ask for", parse: func(c *Config, v string) error {
		return duration(v, time.Second, followup.MaxDelayLimit, &c.Limits.MinDelay)
	}}
	MaxDelay = Setting{Env: "FOLLOWUPS_MAX_DELAY", Default: "24h", Usage: "longest delay a followup may ask for (at most 8760h)", parse: func(c *Config, v string) error {
		return duration(v, time.Second, followup.MaxDelayLimit, &c.Limits.MaxDelay)
	}}
	MaxRetries = Setting{Env: "FOLLOWUPS_MAX_RETRIES", Default: "3", Usage: "retries after the first attempt", parse: func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100 {
			return fmt.Errorf("%q is not a whole number from 0 to 100", v)
		}
		c.Retry.MaxAttempts = n + 1
		return nil
	}}
	MaxReceiveCount = Setting{Env: "FOLLOWUPS_MAX_RECEIVE_COUNT", Default: "20", Usage: "receives of one fire-queue message before the queue gives up on it (at least 5, and max retries + 2)", parse: func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return fmt.Errorf("%q is not a whole number from 1 to 1000", v)
		}
		c.MaxReceives = n
		return nil
	}}
	RetryBase = Setting{Env: "FOLLOWUPS_RETRY_BASE", Default: "2s", Usage: "wait before the first retry", parse: func(c *Config, v string) error {
		return duration(v, time.Millisecond, followup.MaxRetryAfter, &c.Retry.Base)
	}}
	RetryMax = Setting{Env: "FOLLOWUPS_RETRY_MAX", Default: "5m", Usage: "longest wait between retries (a Retry-After may exceed it)", parse: func(c *Config, v string) error {
		return duration(v, time.Millisecond, followup.MaxRetryAfter, &c.Retry.Max)
	}}
	DispatchTimeout = Setting{Env: "FOLLOWUPS_DISPATCH_TIMEOUT", Default: "10s", Usage: "timeout of one attempt", parse: func(c *Config, v string) error {
		return duration(v, time.Millisecond, 15*time.Minute, &c.DispatchTimeout)
	}}
	Retention = Setting{Env: "FOLLOWUPS_RETENTION", Default: "168h", Usage: "how long settled followups are kept", parse: func(c *Config, v string) error {
		return duration(v, time.Minute, 100*365*24*time.Hour, &c.Retention)
	}}
	LogLevel = Setting{Env: "FOLLOWUPS_LOG_LEVEL", Default: "info", Usage: "debug, info, warn or error", parse: func(c *Config, v string) error {
		l, err := telemetry.ParseLevel(v)
		c.LogLevel = l
		return err
	}}
	APIToken = Setting{Env: "FOLLOWUPS_API_TOKEN", Usage: "bearer token required on every API route", parse: func(c *Config, v string) error {
		return token(v, &c.APIToken)
	}}
	Addr = Setting{Env: "FOLLOWUPS_ADDR", Default: "127.0.0.1:8080", Usage: "address to listen on", parse: func(c *Config, v string) error {
		if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
			return fmt.Errorf("%q is not a host:port address", v)
		}
		c.Addr = v
		return nil
	}}
	DebugAddr = Setting{Env: "FOLLOWUPS_DEBUG_ADDR", Usage: "loopback address serving Go's profiles at /debug/pprof/ (off when empty)", parse: func(c *Config, v string) error {
		if v == "" {
			return nil
		}
		host, port, err := net.SplitHostPort(v)
		if err != nil || port == "" {
			return fmt.Errorf("%q is not a host:port address", v)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("%q is not a loopback address: profiles show the process's insides, so they are served on this machine only", v)
		}
		c.DebugAddr = v
		return nil
	}}
	DataDir = Setting{Env: "FOLLOWUPS_DATA_DIR", Default: "./followups-data", Usage: "directory of the durable store", parse: func(c *Config, v string) error {
		c.DataDir = v
		return nil
	}}
	Workers = Setting{Env: "FOLLOWUPS_WORKERS", Default: "256", Usage: "concurrent dispatch attempts", parse: func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 4096 {
			return fmt.Errorf("%q is not a whole number from 1 to 4096", v)
		}
		c.Workers = n
		return nil
	}}
	Table = Setting{Env: "FOLLOWUPS_TABLE", Required: true, Usage: "DynamoDB table name", parse: func(c *Config, v string) error {
		return match(v, tableName, "a DynamoDB table name (3-255 of A-Za-z0-9_.-)", &c.Table)
	}}
	FireQueueURL = Setting{Env: "FOLLOWUPS_FIRE_QUEUE_URL", Required: true, Usage: "URL of the fire queue", parse: func(c *Config, v string) error {
		return queueURL(v, &c.FireQueueURL)
	}}
	FireQueueARN = Setting{Env: "FOLLOWUPS_FIRE_QUEUE_ARN", Required: true, Usage: "ARN of the fire queue", parse: func(c *Config, v string) error {
		return match(v, sqsARN, "an SQS queue ARN", &c.FireQueueARN)
	}}
	DLQARN = Setting{Env: "FOLLOWUPS_DLQ_ARN", Required: true, Usage: "ARN of the dead-letter queue", parse: func(c *Config, v string) error {
		return match(v, sqsARN, "an SQS queue ARN", &c.DLQARN)
	}}
	DLQURL = Setting{Env: "FOLLOWUPS_DLQ_URL", Required: true, Usage: "URL of the dead-letter queue", parse: func(c *Config, v string) error {
		return queueURL(v, &c.DLQURL)
	}}
	DirectWithin = Setting{Env: "FOLLOWUPS_DIRECT_WITHIN", Default: "15m", Usage: "followups due within this of their create skip EventBridge Scheduler (2m to 15m)", parse: func(c *Config, v string) error {
		return duration(v, eventbridgeMinDirect, eventbridgeMaxDirect, &c.DirectWithin)
	}}
	ThreadAPITokenSecretARN = Setting{Env: "THREAD_API_TOKEN_SECRET_ARN", Usage: "Secrets Manager secret holding THREAD_API_TOKEN", parse: func(c *Config, v string) error {
		return secretARN(v, &c.ThreadAPITokenSecretARN)
	}}
	SigningSecretARN = Setting{Env: "FOLLOWUPS_SIGNING_SECRET_ARN", Usage: "Secrets Manager secret holding FOLLOWUPS_SIGNING_SECRET", parse: func(c *Config, v string) error {
		return secretARN(v, &c.SigningSecretARN)
	}}
	ScheduleGroup = Setting{Env: "FOLLOWUPS_SCHEDULE_GROUP", Required: true, Usage: "EventBridge Scheduler group", parse: func(c *Config, v string) error {
		return match(v, groupName, "a schedule group name (1-64 of A-Za-z0-9_.-)", &c.ScheduleGroup)
	}}
	SchedulerRoleARN = Setting{Env: "FOLLOWUPS_SCHEDULER_ROLE_ARN", Required: true, Usage: "role Scheduler assumes to send to the queue", parse: func(c *Config, v string) error {
		return match(v, roleARN, "an IAM role ARN", &c.SchedulerRoleARN)
	}}
	MetricsNamespace = Setting{Env: "FOLLOWUPS_METRICS_NAMESPACE", Default: telemetry.DefaultNamespace, Usage: "CloudWatch metrics namespace", parse: func(c *Config, v string) error {
		if err := telemetry.CheckNamespace(v); err != nil {
			return err
		}
		c.MetricsNamespace = v
		return nil
	}}
)

// The bounds of FOLLOWUPS_DIRECT_WITHIN (eventbridge.MinDirectWithin and
// MaxDirectWithin, which this package does not import).
const (
	eventbridgeMinDirect = 2 * time.Minute
	eventbridgeMaxDirect = 15 * time.Minute
)

var (
	secretARNPattern = regexp.MustCompile(`^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}$`)
	tableName        = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)
	groupName        = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	sqsARN           = regexp.MustCompile(`^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,80}(\.fifo)?$`)
	roleARN          = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$`)
)

// Common are the settings every runner reads.
var Common = []Setting{ThreadAPIURL, ThreadAPIToken, SigningSecret, MinDelay, MaxDelay, MaxRetries, RetryBase, RetryMax, DispatchTimeout, Retention, LogLevel}

// Load reads the given settings through lookup and checks them. Settings
// not listed keep their defaults. The error names the setting at fault.
func Load(lookup func(string) (string, bool), settings ...Setting) (*Config, error) {
	c := &Config{Given: map[string]bool{}}
	listed := map[string]bool{}
	for _, s := range settings {
		listed[s.Env] = true
	}
	all := append(append([]Setting{}, Common...), APIToken, Addr, DataDir, Workers, MetricsNamespace, MaxReceiveCount, DirectWithin)
	for _, s := range all {
		if !listed[s.Env] && s.Default != "" {
			if err := s.parse(c, s.Default); err != nil {
				return nil, fmt.Errorf("%s: default: %w", s.Env, err)
			}
		}
	}
	for _, s := range settings {
		v, ok := lookup(s.Env)
		switch {
		case ok && v == "" && (s.Default != "" || s.Required):
			return nil, fmt.Errorf("%s is set but empty", s)
		case ok:
			c.Given[s.Env] = true
		case s.Required:
			return nil, fmt.Errorf("%s is required: %s", s, s.Usage)
		default:
			v = s.Default
		}
		if err := s.parse(c, v); err != nil {
			return nil, fmt.Errorf("%s: %w", s, err)
		}
	}
	return c, c.check(listed)
}

func (c *Config) check(listed map[string]bool) error {
	switch {
	case c.Limits.MinDelay > c.Limits.MaxDelay:
		return fmt.Errorf("%s %s is above %s %s", MinDelay, c.Limits.MinDelay, MaxDelay, c.Limits.MaxDelay)
	case c.ThreadAPIToken != "" && c.ThreadAPITokenSecretARN != "":
		return fmt.Errorf("%s and %s are both set; give the token one way", ThreadAPIToken, ThreadAPITokenSecretARN)
	case c.SigningSecret != "" && c.SigningSecretARN != "":
		return fmt.Errorf("%s and %s are both set; give the secret one way", SigningSecret, SigningSecretARN)
	}
	if err := c.Timing().Validate(); err != nil {
		return fmt.Errorf("%s: %w", DispatchTimeout, err)
	}
	if listed[MaxReceiveCount.Env] {
		if err := followup.CheckMaxReceives(c.MaxReceives, c.Retry.MaxAttempts); err != nil {
			return fmt.Errorf("%s, %s: %w", MaxReceiveCount, MaxRetries, err)
		}
	}
	return nil
}

// queueURL checks an SQS queue URL.
func queueURL(v string, dst *string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an SQS queue URL", v)
	}
	*dst = v
	return nil
}

// secretARN checks a Secrets Manager secret ARN; empty means none.
func secretARN(v string, dst *string) error {
	if v != "" && !secretARNPattern.MatchString(v) {
		return fmt.Errorf("%q is not a Secrets Manager secret ARN (arn:aws:secretsmanager:region:account:secret:name)", v)
	}
	*dst = v
	return nil
}

func duration(v string, lo, hi time.Duration, dst *time.Duration) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q is not a Go duration such as 90s, 15m or 2h", v)
	}
	if d < lo || d > hi {
		return fmt.Errorf("%s is out of range: must be from %s to %s", v, lo, hi)
	}
	*dst = d
	return nil
}

// token checks a bearer token: it travels in a header, so it cannot hold
// control characters or spaces, and no client could ever send it.
func token(v string, dst *string) error {
	if strings.ContainsFunc(v, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) {
		return fmt.Errorf("the token contains a control character or space; it could never be sent in a header")
	}
	*dst = v
	return nil
}

func match(v string, re *regexp.Regexp, what string, dst *string) error {
	if !re.MatchString(v) {
		return fmt.Errorf("%q is not %s", v, what)
	}
	*dst = v
	return nil
}
