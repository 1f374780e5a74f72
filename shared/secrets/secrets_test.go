package secrets_test

import (
	"maps"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/followups/followups/shared/awscount"
	"github.com/followups/followups/shared/awstest"
	"github.com/followups/followups/shared/secrets"
)

func TestRead(t *testing.T) {
	awstest.Endpoint(t)
	cfg := awstest.Config(t)
	calls := &awscount.Counter{}
	calls.Add(&cfg)
	client := secretsmanager.NewFromConfig(cfg)
	create := func(name string, in *secretsmanager.CreateSecretInput) string {
		t.Helper()
		in.Name = aws.String(awstest.Name(name))
		out, err := client.CreateSecret(t.Context(), in)
		if err != nil {
			t.Fatalf("CreateSecret: %v", err)
		}
		t.Cleanup(func() {
			_, _ = client.DeleteSecret(t.Context(), &secretsmanager.DeleteSecretInput{SecretId: out.ARN, ForceDeleteWithoutRecovery: aws.Bool(true)})
		})
		return aws.ToString(out.ARN)
	}
	token := create("token", &secretsmanager.CreateSecretInput{SecretString: aws.String("tok-123")})
	binary := create("binary", &secretsmanager.CreateSecretInput{SecretBinary: []byte{1, 2}})

	before := calls.Snapshot()
	got, err := secrets.Read(t.Context(), client, token)
	if err != nil || got != "tok-123" {
		t.Fatalf("Read = %q, %v", got, err)
	}
	if d := calls.Delta(before); !maps.Equal(d, map[string]int{awscount.Key("Secrets Manager", "GetSecretValue"): 1}) {
		t.Fatalf("Read made calls %v, want one GetSecretValue", d)
	}
	if _, err := secrets.Read(t.Context(), client, binary); err == nil || !strings.Contains(err.Error(), "no string value") {
		t.Fatalf("Read of a binary secret: %v", err)
	}
	missing := strings.Replace(token, "token", "missing", 1)
	if _, err := secrets.Read(t.Context(), client, missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Read of a missing secret: %v, want an error naming it", err)
	}
}
