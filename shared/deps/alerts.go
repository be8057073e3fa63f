package deps

import (
	"context"
	"log/slog"

	"github.com/straas/straas/shared/alert"
)

// logAlerts logs alerts; it stands in until the webhook publisher is wired.
type logAlerts struct{ log *slog.Logger }

func newAlerts(_ []string, log *slog.Logger) alert.Publisher { return logAlerts{log} }

func (l logAlerts) Publish(_ context.Context, a alert.Alert) error {
	l.log.Warn("alert", "key", a.Key, "level", a.Level, "title", a.Title, "message", a.Message)
	return nil
}
