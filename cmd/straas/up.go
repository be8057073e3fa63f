package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/straas/straas/shared/cloud"
	"github.com/straas/straas/shared/deps"
)

func upCmd() *cobra.Command {
	var cfg deps.Config
	var azs, logLevel, logFormat string
	var hooks []string
	var zoneSpecs []string // --zone: zones served by other clouds (shared/deps/zones.go)
	var zonesFile string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the embedded control plane with the mock cloud, in one process",
		Long: `up runs straas on one machine: the REST API, the mock cloud (Keystone v3 + Nova v2.1
with compute nodes whose VMs run dummy agents), the workflow interpreter, the conductor and
the checker, with everything durable under --data-dir. Kill it at any time: on restart
every workflow resumes where it was.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			lvl := slog.LevelInfo
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			opts := &slog.HandlerOptions{Level: lvl}
			var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
			if logFormat == "json" {
				h = slog.NewJSONHandler(os.Stderr, opts)
			}
			cfg.Logger = slog.New(h)
			slog.SetDefault(cfg.Logger)
			for _, z := range strings.Split(azs, ",") {
				if z = strings.TrimSpace(z); z != "" {
					cfg.AZs = append(cfg.AZs, z)
				}
			}
			cfg.AlertWebhooks = hooks
			zones, err := zonesFlags(zonesFile, zoneSpecs)
			if err != nil {
				return err
			}
			cfg.Zones = zones
			e, err := deps.New(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			done := make(chan error, 1)
			go func() { done <- e.Run(cmd.Context()) }()
			select {
			case <-e.Ready():
			case err := <-done:
				return err
			}
			fmt.Printf(`straas is up.
  API:        %s/straas/v1.0   (metrics: %s/metrics)
  Keystone:   %s/identity/v3
  Nova:       %s/compute/v2.1
  zones:      %s, %d compute nodes each
  data:       %s
  users:      admin/admin in project admin (admin), demo/demo in project demo
  try:        straas login && straas topology create -f examples/zk-kafka-storm.json --wait
`, e.APIURL, e.APIURL, e.CloudURL, e.CloudURL, strings.Join(cfgAZs(cfg), ","), cfgCNs(cfg), cfgDir(cfg))
			return <-done
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:8080", "address of the REST API")
	f.StringVar(&cfg.CloudListen, "cloud-listen", "127.0.0.1:8090", "address of the mock cloud (Keystone + Nova)")
	f.IntVar(&cfg.CNs, "cns", 8, "compute nodes per availability zone of the mock cloud")
	f.StringVar(&azs, "azs", "az1", "availability zones of the mock cloud, comma-separated")
	f.StringVar(&cfg.DataDir, "data-dir", ".straas", "where everything durable is kept")
	f.IntVar(&cfg.HeartbeatSeconds, "heartbeat", 10, "agents' heartbeat interval, seconds")
	f.DurationVar(&cfg.StageTimeout, "stage-timeout", 15*time.Minute, "how long a stage waits for its nodes")
	f.StringSliceVar(&hooks, "alert-webhook", nil, "URL alerts are POSTed to (repeatable)")
	f.StringArrayVar(&zoneSpecs, "zone", nil, "a zone served by another cloud: NAME=KEYSTONE_URL[,user=U][,project=P][,password=P][,domain=D][,region=R] "+
		"(repeatable; password default $STRAAS_ZONE_PASSWORD_<NAME>); it wins over an --azs zone of the same name")
	f.StringVar(&zonesFile, "zones-file", "", `JSON file of zones served by other clouds: {"az3": {"auth_url": ..., "username": ..., "password": ..., "project": ...}}`)
	f.DurationVar(&cfg.TokenTTL, "token-ttl", time.Hour, "lifetime of the mock Keystone's tokens")
	f.Float64Var(&cfg.APIRateLimit.PerSecond, "api-rate-limit", 0, "API requests per second per project (0: no limit)")
	f.IntVar(&cfg.APIRateLimit.Burst, "api-rate-burst", 0, "burst of the per-project API rate limit (default: the rate, at least 1)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "text or json")
	return cmd
}

func cfgAZs(c deps.Config) []string {
	if len(c.AZs) == 0 {
		return []string{"az1"}
	}
	return c.AZs
}

func cfgCNs(c deps.Config) int {
	if c.CNs == 0 {
		return 8
	}
	return c.CNs
}

func cfgDir(c deps.Config) string {
	if c.DataDir == "" {
		return ".straas"
	}
	return c.DataDir
}

// zonesFlags reads --zones-file, then --zone (which wins).
func zonesFlags(file string, specs []string) (map[string]cloud.Options, error) {
	out := map[string]cloud.Options{}
	if file != "" {
		m, err := deps.LoadZones(file, os.Getenv)
		if err != nil {
			return nil, err
		}
		out = m
	}
	for _, s := range specs {
		name, o, err := deps.ParseZone(s, os.Getenv)
		if err != nil {
			return nil, fmt.Errorf("--zone: %w", err)
		}
		out[name] = o
	}
	return out, nil
}
