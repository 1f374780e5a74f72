package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/followups/followups/shared/config"
)

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	c, err := config.Load(env(), config.Common...)
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.MinDelay != time.Minute || c.Limits.MaxDelay != 24*time.Hour || c.Retry.MaxAttempts != 4 ||
		c.Retry.Base != 2*time.Second || c.Retry.Max != 5*time.Minute || c.DispatchTimeout != 10*time.Second ||
		c.Retention != 168*time.Hour || c.ThreadAPIURL != nil || c.MetricsNamespace != "Followups" {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestAWSResources(t *testing.T) {
	good := []string{
		"FOLLOWUPS_TABLE", "followups-table",
		"FOLLOWUPS_FIRE_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/fire",
		"FOLLOWUPS_FIRE_QUEUE_ARN", "arn:aws:sqs:us-east-1:123456789012:fire",
		"FOLLOWUPS_DLQ_ARN", "arn:aws:sqs:us-east-1:123456789012:dlq",
		"FOLLOWUPS_SCHEDULE_GROUP", "followups",
		"FOLLOWUPS_SCHEDULER_ROLE_ARN", "arn:aws:iam::123456789012:role/stack-SchedulerRole-ABC",
		"FOLLOWUPS_METRICS_NAMESPACE", "Followups/Test",
	}
	all := []config.Setting{config.Table, config.FireQueueURL, config.FireQueueARN, config.DLQARN, config.ScheduleGroup, config.SchedulerRoleARN, config.MetricsNamespace}
	c, err := config.Load(env(good...), all...)
	if err != nil {
		t.Fatal(err)
	}
	if c.Table != "followups-table" || c.MetricsNamespace != "Followups/Test" || c.SchedulerRoleARN == "" {
		t.Fatalf("%+v", c)
	}
	for i := 0; i < len(good); i += 2 {
		name := good[i]
		t.Run("missing "+name, func(t *testing.T) {
			kv := append(append([]string{}, good[:i]...), good[i+2:]...)
			_, err := config.Load(env(kv...), all...)
			if name == "FOLLOWUPS_METRICS_NAMESPACE" {
				if err != nil {
					t.Fatalf("namespace has a default: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("err %v does not name %s", err, name)
			}
		})
		t.Run("bad "+name, func(t *testing.T) {
			kv := append([]string{}, good...)
			kv[i+1] = "not valid!"
			if _, err := config.Load(env(kv...), all...); err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("err %v does not name %s", err, name)
			}
		})
	}
}

func TestBadValuesNameTheSetting(t *testing.T) {
	tests := []struct{ name, value string }{
		{"THREAD_API_URL", "ftp://x"},
		{"THREAD_API_URL", "http://user:pw@x"},
		{"FOLLOWUPS_MIN_DELAY", "0s"},
		{"FOLLOWUPS_MAX_DELAY", "9000h"},
		{"FOLLOWUPS_MAX_RETRIES", "-1"},
		{"FOLLOWUPS_MAX_RETRIES", ""},
		{"FOLLOWUPS_RETRY_BASE", "fast"},
		{"FOLLOWUPS_RETRY_MAX", "13h"},
		{"FOLLOWUPS_DISPATCH_TIMEOUT", "0s"},
		{"FOLLOWUPS_RETENTION", "1s"},
		{"FOLLOWUPS_LOG_LEVEL", "chatty"},
		{"THREAD_API_TOKEN", "a\nb"},
		{"FOLLOWUPS_API_TOKEN", "a b"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			_, err := config.Load(env(tt.name, tt.value), append(config.Common, config.APIToken)...)
			if err == nil || !strings.Contains(err.Error(), tt.name) {
				t.Fatalf("err %v does not name %s", err, tt.name)
			}
		})
	}
	// retry_max below retry_base is meaningful: every wait is capped by it.
	if c, err := config.Load(env("FOLLOWUPS_RETRY_MAX", "1s"), config.Common...); err != nil || c.Retry.Max != time.Second {
		t.Fatalf("retry_max below the default base: %v", err)
	}
}
