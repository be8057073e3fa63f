package deps

import (
	"log/slog"

	"github.com/straas/straas/shared/alert"
	"github.com/straas/straas/shared/alert/webhook"
)

// newAlerts is the embedded alert publisher: the log, plus the configured webhooks.
func newAlerts(urls []string, log *slog.Logger) alert.Publisher { return webhook.New(urls, log) }
