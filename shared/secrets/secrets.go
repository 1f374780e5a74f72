// Package secrets reads the values a function needs from AWS Secrets
// Manager, once, at cold start: the thread API token and the signing
// secret then never sit in the function's configuration, where anyone
// allowed lambda:GetFunctionConfiguration could read them.
package secrets

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// Read returns the string value of the secret arn names, with one
// GetSecretValue call. A secret with no string value, or an empty one, is
// an error: a function started without its token would fail every
// request later, where nobody looks.
func Read(ctx context.Context, client *secretsmanager.Client, arn string) (string, error) {
	out, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if err != nil {
		return "", fmt.Errorf("read secret %s: %w", arn, err)
	}
	if out.SecretString == nil {
		return "", fmt.Errorf("read secret %s: %w", arn, errNoString)
	}
	if *out.SecretString == "" {
		return "", fmt.Errorf("read secret %s: its value is empty", arn)
	}
	return *out.SecretString, nil
}

var errNoString = errors.New("it has no string value (a binary secret?)")
