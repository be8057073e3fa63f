// Package bootstrap creates what straas needs on an AWS endpoint: the DynamoDB table,
// the status queue and its dead-letter queue, the blob bucket, the alert topic and the
// state machines. It is for local stacks (moto, LocalStack) and tests; on AWS itself the
// SAM template owns these. Every step is idempotent, so running it again is safe and
// brings an older stack up to date (new GSIs, new or changed state machines).
package bootstrap

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/straas/straas/shared/alert/snsalert"
	"github.com/straas/straas/shared/blob/s3blob"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/queue/sqsq"
	"github.com/straas/straas/shared/store/dynamo"
	"github.com/straas/straas/shared/workflow/sfn"
)

// DefaultRoleARN is the execution role given to state machines when Options.RoleARN is
// empty: local stacks accept any well-formed role (123456789012 is moto's account).
const DefaultRoleARN = "arn:aws:iam::123456789012:role/straas-states"

// Substitutions Bootstrap adds for the state machines (Options.Substitutions win).
const (
	SubStatusQueueURL = "StatusQueueUrl"
	SubTableName      = "TableName"
	SubBucketName     = "BucketName"
	SubAlertTopicARN  = "AlertTopicArn"
)

// Options name what to create; an empty name skips that resource.
type Options struct {
	Table            string
	StatusQueue      string // e.g. queue.Status; its DLQ is created with it
	Bucket           string
	Topic            string
	StateMachinesDir string            // *.asl.json files; "" skips the state machines
	Substitutions    map[string]string // ${Key} values for the definitions
	RoleARN          string            // execution role of the state machines; default DefaultRoleARN
	MachinePrefix    string            // prepended to machine names (sfn.Options.Prefix)
}

// Result reports what exists after Bootstrap.
type Result struct {
	Table          string
	StatusQueueURL string
	Bucket         string
	TopicARN       string
	StateMachines  map[string]string // machine name -> ARN
}

// Bootstrap creates the resources of o on the endpoint of cfg.
func Bootstrap(ctx context.Context, cfg aws.Config, o Options) (Result, error) {
	var r Result
	if o.Table != "" {
		if err := dynamo.CreateTable(ctx, cfg, o.Table); err != nil {
			return r, fmt.Errorf("bootstrap: %w", err)
		}
		r.Table = o.Table
	}
	if o.StatusQueue != "" {
		q := sqsq.New(cfg, sqsq.Options{})
		if err := q.Ensure(ctx, o.StatusQueue); err != nil {
			return r, fmt.Errorf("bootstrap: %w", err)
		}
		u, err := q.URL(ctx, o.StatusQueue)
		if err != nil {
			return r, fmt.Errorf("bootstrap: %w", err)
		}
		r.StatusQueueURL = u
	}
	if o.Bucket != "" {
		if err := s3blob.CreateBucket(ctx, cfg, o.Bucket); err != nil {
			return r, fmt.Errorf("bootstrap: %w", err)
		}
		r.Bucket = o.Bucket
	}
	if o.Topic != "" {
		arn, err := snsalert.CreateTopic(ctx, cfg, o.Topic)
		if err != nil {
			return r, fmt.Errorf("bootstrap: %w", err)
		}
		r.TopicARN = arn
	}
	if o.StateMachinesDir == "" {
		return r, nil
	}
	defs, err := sfn.LoadDefinitions(o.StateMachinesDir)
	if err != nil {
		return r, fmt.Errorf("bootstrap: %w", err)
	}
	if len(defs) == 0 {
		return r, errs.Invalidf("state_machines_dir", "no *%s files in %s", sfn.DefinitionSuffix, o.StateMachinesDir)
	}
	subs := map[string]string{}
	for k, v := range map[string]string{
		SubStatusQueueURL: r.StatusQueueURL, SubTableName: r.Table, SubBucketName: r.Bucket, SubAlertTopicARN: r.TopicARN,
	} {
		if v != "" {
			subs[k] = v
		}
	}
	for k, v := range o.Substitutions {
		subs[k] = v
	}
	defs, err = sfn.Substitute(defs, subs)
	if err != nil {
		return r, fmt.Errorf("bootstrap: %w", err)
	}
	role := o.RoleARN
	if role == "" {
		role = DefaultRoleARN
	}
	arns, err := sfn.New(cfg, sfn.Options{Prefix: o.MachinePrefix, RoleARN: role}).Deploy(ctx, defs)
	if err != nil {
		return r, fmt.Errorf("bootstrap: %w", err)
	}
	r.StateMachines = arns
	return r, nil
}

// EnableMotoExecution asks a moto server at endpoint to execute state machines (by
// default its Step Functions only records executions). It must run before the machines
// are created: moto keeps executing and recording machines apart. It fails on an
// endpoint that is not moto.
func EnableMotoExecution(ctx context.Context, endpoint string) error {
	body := []byte(`{"stepfunctions": {"execute_state_machine": true}}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(endpoint, "/")+"/moto-api/config", bytes.NewReader(body))
	if err != nil {
		return errs.Wrap(errs.Invalid, "enable moto execution", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return errs.Wrap(errs.Unavailable, "enable moto execution", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	// moto answers with its config (which does not echo the stepfunctions section): a
	// JSON object from this path means a moto server took the setting.
	if resp.StatusCode/100 != 2 || !bytes.HasPrefix(bytes.TrimSpace(out), []byte("{")) {
		return errs.E(errs.Unavailable, "enable moto execution", fmt.Sprintf("%s is not moto: POST /moto-api/config: %s", endpoint, resp.Status))
	}
	return nil
}
