package deps

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/straas/straas/infra/bootstrap"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/statemachines"
)

// LocalStack names what BootstrapLocal creates on an endpoint.
type LocalStack struct {
	Table       string // default "straas"
	StatusQueue string // default queue.Status
	Bucket      string // default "straas-blobs"
	Topic       string // default "straas-alerts"
	// MachinePrefix is prepended to the state machines' names (default "straas-"); the
	// functions find them by it (STRAAS_STATE_MACHINE_PREFIX).
	MachinePrefix string
	// FunctionARN names the Lambda function of a stage ("" uses
	// arn:aws:lambda:<region>:<account>:function:straas-<Name>).
	FunctionARN func(name string) string
	Account     string // default: the endpoint's STS caller identity
}

func (o *LocalStack) defaults() {
	if o.Table == "" {
		o.Table = "straas"
	}
	if o.StatusQueue == "" {
		o.StatusQueue = queue.Status
	}
	if o.Bucket == "" {
		o.Bucket = "straas-blobs"
	}
	if o.Topic == "" {
		o.Topic = "straas-alerts"
	}
	if o.MachinePrefix == "" {
		o.MachinePrefix = "straas-"
	}
}

// BootstrapLocal creates (or brings up to date) on the endpoint of cfg what the Lambda
// functions need, with the state machines embedded in this binary: for local stacks
// (moto, LocalStack), where SAM does not deploy. It is idempotent.
func BootstrapLocal(ctx context.Context, cfg aws.Config, o LocalStack) (bootstrap.Result, error) {
	o.defaults()
	if o.Account == "" {
		id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return bootstrap.Result{}, errs.Wrap(errs.Unavailable, "account of the endpoint (sts get-caller-identity)", err)
		}
		o.Account = aws.ToString(id.Account)
	}
	if o.FunctionARN == nil {
		o.FunctionARN = func(name string) string {
			return fmt.Sprintf("arn:aws:lambda:%s:%s:function:straas-%s", cfg.Region, o.Account, name)
		}
	}
	subs, err := Substitutions(o.FunctionARN, func(m string) string {
		return fmt.Sprintf("arn:aws:states:%s:%s:stateMachine:%s%s", cfg.Region, o.Account, o.MachinePrefix, m)
	})
	if err != nil {
		return bootstrap.Result{}, err
	}
	// bootstrap reads definitions from a directory: the embedded ones, so the binary
	// works from anywhere.
	dir, err := os.MkdirTemp("", "straas-statemachines-")
	if err != nil {
		return bootstrap.Result{}, err
	}
	defer os.RemoveAll(dir)
	for _, name := range statemachines.Names() {
		def, err := statemachines.Definition(name)
		if err != nil {
			return bootstrap.Result{}, err
		}
		if err := os.WriteFile(filepath.Join(dir, name+".asl.json"), def, 0o600); err != nil {
			return bootstrap.Result{}, err
		}
	}
	return bootstrap.Bootstrap(ctx, cfg, bootstrap.Options{
		Table: o.Table, StatusQueue: o.StatusQueue, Bucket: o.Bucket, Topic: o.Topic,
		StateMachinesDir: dir, Substitutions: subs, MachinePrefix: o.MachinePrefix,
		RoleARN: fmt.Sprintf("arn:aws:iam::%s:role/straas-states", o.Account),
	})
}
