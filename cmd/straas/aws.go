package main

import (
	"fmt"
	"os"
	"sort"

	"github.com/spf13/cobra"

	"github.com/straas/straas/infra/bootstrap"
	"github.com/straas/straas/shared/awsconf"
	"github.com/straas/straas/shared/deps"
)

func awsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "aws",
		Short: "AWS mode: prepare an AWS endpoint (moto, LocalStack) for straas",
	}
	cmd.AddCommand(awsBootstrapCmd())
	return cmd
}

func awsBootstrapCmd() *cobra.Command {
	var o deps.LocalStack
	var endpoint, region string
	var moto bool
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Create the table, queues, bucket, topic and state machines on an AWS endpoint",
		Long: `bootstrap creates on an AWS endpoint what straas's Lambda functions use: the DynamoDB
table with its indexes and TTL, the status queue and its dead-letter queue, the blob bucket,
the alert topic, and the state machines of this binary's statemachines/*.asl.json. It is for
local stacks (moto: scripts/moto.sh; LocalStack): on AWS, sam deploy creates all of this.
Running it again is safe: it creates what is missing and updates the state machines.

The state machines name the stage functions arn:aws:lambda:<region>:<account>:function:straas-<Name>.`,
		Example: `  scripts/moto.sh 4566 &
  straas aws bootstrap --endpoint http://127.0.0.1:4566 --moto`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if endpoint == "" {
				endpoint = os.Getenv(awsconf.EnvEndpoint)
			}
			var opts []awsconf.Option
			if endpoint != "" {
				opts = append(opts, awsconf.WithEndpoint(endpoint))
			}
			if region != "" {
				opts = append(opts, awsconf.WithRegion(region))
			}
			cfg, err := awsconf.Load(ctx, opts...)
			if err != nil {
				return err
			}
			if moto {
				if endpoint == "" {
					return fmt.Errorf("--moto needs --endpoint (or AWS_ENDPOINT_URL)")
				}
				// Before the machines exist: moto executes only machines created after this.
				if err := bootstrap.EnableMotoExecution(ctx, endpoint); err != nil {
					return err
				}
			}
			r, err := deps.BootstrapLocal(ctx, cfg, o)
			if err != nil {
				return err
			}
			where := endpoint
			if where == "" {
				where = "AWS (" + cfg.Region + ")"
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "bootstrapped %s:\n", where)
			fmt.Fprintf(out, "  table:         %s\n", r.Table)
			fmt.Fprintf(out, "  status queue:  %s (dead letters: %s-dlq)\n", r.StatusQueueURL, o.StatusQueue)
			fmt.Fprintf(out, "  bucket:        %s\n", r.Bucket)
			fmt.Fprintf(out, "  alert topic:   %s\n", r.TopicARN)
			names := make([]string, 0, len(r.StateMachines))
			for n := range r.StateMachines {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				fmt.Fprintf(out, "  state machine: %s\n", r.StateMachines[n])
			}
			fmt.Fprintf(out, "\nThe functions' environment (see docs/aws.md):\n")
			fmt.Fprintf(out, "  %s=%s %s=%s %s=%s %s=%s %s=%s\n", deps.EnvTable, r.Table, deps.EnvStatusQueue, o.StatusQueue,
				deps.EnvBucket, r.Bucket, deps.EnvAlertTopic, r.TopicARN, deps.EnvMachinePrefix, o.MachinePrefix)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&endpoint, "endpoint", "", "AWS endpoint URL, e.g. http://127.0.0.1:4566 (default $AWS_ENDPOINT_URL; none: AWS itself)")
	f.StringVar(&region, "region", "", "region (default $AWS_REGION, else "+awsconf.DefaultRegion+")")
	f.BoolVar(&moto, "moto", false, "the endpoint is moto: make it execute the state machines")
	f.StringVar(&o.Table, "table", "straas", "DynamoDB table")
	f.StringVar(&o.StatusQueue, "status-queue", "straas-status", "status queue (its dead-letter queue is <name>-dlq)")
	f.StringVar(&o.Bucket, "bucket", "straas-blobs", "blob bucket")
	f.StringVar(&o.Topic, "topic", "straas-alerts", "alert topic")
	f.StringVar(&o.MachinePrefix, "prefix", "straas-", "prefix of the state machines' names")
	return cmd
}
