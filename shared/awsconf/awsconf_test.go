package awsconf

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		opts      []Option
		region    string
		endpoint  string // cfg.BaseEndpoint
		customS3  bool
		customSQS bool
		accessKey string
	}{
		{"defaults", nil, nil, DefaultRegion, "", false, false, ""},
		{"env endpoint", map[string]string{EnvEndpoint: "http://127.0.0.1:4566", EnvRegion: "eu-west-1"}, nil,
			"eu-west-1", "http://127.0.0.1:4566", true, true, "test"},
		{"option wins", map[string]string{EnvEndpoint: "http://a:1"}, []Option{WithEndpoint("http://b:2"), WithRegion("ap-south-1")},
			"ap-south-1", "http://b:2", true, true, "test"},
		{"per service", map[string]string{"AWS_ENDPOINT_URL_S3": "http://s3:1"}, nil, DefaultRegion, "", true, false, "test"},
		{"env credentials kept", map[string]string{EnvEndpoint: "http://a:1", "AWS_ACCESS_KEY_ID": "AKIDREAL", "AWS_SECRET_ACCESS_KEY": "s"}, nil,
			DefaultRegion, "http://a:1", true, true, "AKIDREAL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{EnvEndpoint, EnvRegion, "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID",
				"AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"} {
				t.Setenv(k, "")
			}
			t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, err := Load(context.Background(), tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Region != tc.region {
				t.Errorf("region: got %q, want %q", cfg.Region, tc.region)
			}
			if got := aws.ToString(cfg.BaseEndpoint); got != tc.endpoint {
				t.Errorf("endpoint: got %q, want %q", got, tc.endpoint)
			}
			if got := CustomEndpoint(cfg, "S3"); got != tc.customS3 {
				t.Errorf("custom S3: got %v", got)
			}
			if got := CustomEndpoint(cfg, "SQS"); got != tc.customSQS {
				t.Errorf("custom SQS: got %v", got)
			}
			if tc.accessKey != "" {
				creds, err := cfg.Credentials.Retrieve(context.Background())
				if err != nil || creds.AccessKeyID != tc.accessKey {
					t.Errorf("credentials: got %q, %v; want %q", creds.AccessKeyID, err, tc.accessKey)
				}
			}
		})
	}
}
