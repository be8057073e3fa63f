// Package awsconf loads the aws-sdk-go-v2 configuration every AWS adapter is built from.
// The endpoint comes from the SDK's standard settings (AWS_ENDPOINT_URL, and per service
// AWS_ENDPOINT_URL_DYNAMODB, _SQS, _SFN, _S3, _SNS), which config.LoadDefaultConfig
// honours; so the same binaries talk to AWS, LocalStack or moto without code changes.
package awsconf

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// DefaultRegion is used when neither AWS_REGION nor a profile names one.
const DefaultRegion = "us-east-1"

// Environment variables read here (the SDK reads the rest).
const (
	EnvEndpoint = "AWS_ENDPOINT_URL"
	EnvRegion   = "AWS_REGION"
)

// Option adjusts Load.
type Option func(*settings)

type settings struct {
	endpoint string
	region   string
}

// WithEndpoint sends every service to url (e.g. http://localhost:4566), overriding
// AWS_ENDPOINT_URL. Per-service variables still win, as in the SDK.
func WithEndpoint(url string) Option { return func(s *settings) { s.endpoint = url } }

// WithRegion overrides AWS_REGION.
func WithRegion(region string) Option { return func(s *settings) { s.region = region } }

// Load returns the SDK configuration. When an endpoint is set (by option or environment)
// and no credentials are in the environment, it uses the static test credentials that
// local stacks accept, so a developer needs no AWS account to run against them.
func Load(ctx context.Context, opts ...Option) (aws.Config, error) {
	var s settings
	for _, o := range opts {
		o(&s)
	}
	var lo []func(*config.LoadOptions) error
	if s.region != "" {
		lo = append(lo, config.WithRegion(s.region))
	}
	if s.endpoint != "" {
		lo = append(lo, config.WithBaseEndpoint(s.endpoint))
	}
	if (s.endpoint != "" || anyEndpointEnv()) && os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		lo = append(lo, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load aws config: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	return cfg, nil
}

// anyEndpointEnv reports whether AWS_ENDPOINT_URL or a per-service variant is set.
func anyEndpointEnv() bool {
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, EnvEndpoint) {
			if _, v, _ := strings.Cut(kv, "="); v != "" {
				return true
			}
		}
	}
	return false
}

// CustomEndpoint reports whether service (the SDK's service id: "S3", "SQS", "DynamoDB",
// "SFN", "SNS") is sent to an endpoint other than AWS's own: adapters switch to what
// local stacks need (S3 path-style addressing) when it is.
func CustomEndpoint(cfg aws.Config, service string) bool {
	if cfg.BaseEndpoint != nil && *cfg.BaseEndpoint != "" {
		return true
	}
	return os.Getenv(EnvEndpoint) != "" || os.Getenv(serviceEnv(service)) != ""
}

func serviceEnv(service string) string {
	b := []byte(service)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		case c == ' ':
			b[i] = '_'
		}
	}
	return EnvEndpoint + "_" + string(b)
}
