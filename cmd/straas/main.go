// Command straas is the straas control plane (`straas up`) and its client.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/straas/straas/shared/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := rootCmd()
	if err := root.ExecuteContext(ctx); err != nil {
		var ce *client.Error
		if errors.As(err, &ce) {
			fmt.Fprintln(os.Stderr, "error:", ce.Error())
		} else {
			fmt.Fprintln(os.Stderr, "error:", err)
		}
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "straas",
		Short:         "Provision and run application clusters (ZooKeeper, Kafka, Storm, ...) on cloud VMs",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("url", "", "straas API URL (default: from `straas login`, $STRAAS_URL, or http://127.0.0.1:8080)")
	root.PersistentFlags().StringP("output", "o", "table", "output format: table or json")
	root.AddCommand(upCmd(), loginCmd(), topologyCmd(), actionCmd(), componentCmd())
	root.AddCommand(cloudCmd())
	root.AddCommand(awsCmd())
	root.AddCommand(nodeCmd(), storageCmd())
	root.AddCommand(policyCmd())
	root.AddCommand(opstateCmd(), convergeCmd())
	root.AddCommand(eventsCmd(), cancelCmd())
	root.AddCommand(configCmd())
	addComponentTest(root) // component add|test|upgrade (componenttest.go)
	return root
}
