package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/straas/straas/shared/client"
)

// session is what `straas login` remembers.
type session struct {
	URL       string    `json:"url"`
	AuthURL   string    `json:"auth_url"`
	User      string    `json:"user"`
	Project   string    `json:"project"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

func sessionPath() string {
	if p := os.Getenv("STRAAS_CONFIG"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = "."
	}
	return filepath.Join(dir, "straas", "session.json")
}

func loadSession() session {
	var s session
	if b, err := os.ReadFile(sessionPath()); err == nil {
		_ = json.Unmarshal(b, &s)
	}
	return s
}

func saveSession(s session) error {
	p := sessionPath()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(s, "", "  ")
	return os.WriteFile(p, b, 0o600) // holds a token: owner only
}

// apiClient builds a client from flags, environment and the saved session.
func apiClient(cmd *cobra.Command) (*client.Client, error) {
	s := loadSession()
	url, _ := cmd.Flags().GetString("url")
	if url == "" {
		url = os.Getenv("STRAAS_URL")
	}
	if url == "" {
		url = s.URL
	}
	if url == "" {
		url = "http://127.0.0.1:8080"
	}
	token := os.Getenv("STRAAS_TOKEN")
	if token == "" {
		token = s.Token
		if token != "" && !s.ExpiresAt.IsZero() && time.Now().After(s.ExpiresAt) {
			return nil, fmt.Errorf("your token expired at %s: run `straas login`", s.ExpiresAt.Format(time.RFC3339))
		}
	}
	if token == "" {
		return nil, fmt.Errorf("not logged in: run `straas login` (or set STRAAS_TOKEN)")
	}
	return client.New(url, token), nil
}

func loginCmd() *cobra.Command {
	var authURL, user, password, project, domain string
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Get a Keystone token and remember it for the other commands",
		Long: `login asks Keystone (v3, password method) for a project-scoped token and saves it, with
the API URL, in $STRAAS_CONFIG (default: the user config dir, straas/session.json, mode 0600).
Defaults match ` + "`straas up`" + `: Keystone at http://127.0.0.1:8090/identity/v3, user admin/admin.
Environment: OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			pick := func(v, env, def string) string {
				if v != "" {
					return v
				}
				if e := os.Getenv(env); e != "" {
					return e
				}
				return def
			}
			authURL = pick(authURL, "OS_AUTH_URL", "http://127.0.0.1:8090/identity/v3")
			user = pick(user, "OS_USERNAME", "admin")
			password = pick(password, "OS_PASSWORD", "")
			if password == "" && user == "admin" {
				password = "admin" // the dev default of `straas up`
			}
			project = pick(project, "OS_PROJECT_NAME", user)
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			tok, exp, err := client.Login(ctx, authURL, user, password, project, domain)
			if err != nil {
				return err
			}
			url, _ := cmd.Flags().GetString("url")
			if url == "" {
				url = os.Getenv("STRAAS_URL")
			}
			if url == "" {
				url = "http://127.0.0.1:8080"
			}
			if err := saveSession(session{URL: url, AuthURL: authURL, User: user, Project: project, Token: tok, ExpiresAt: exp}); err != nil {
				return err
			}
			if out, _ := cmd.Flags().GetString("output"); out == "json" {
				return printJSON(map[string]any{"user": user, "project": project, "expires_at": exp, "token": tok})
			}
			fmt.Printf("logged in as %s in project %s until %s (session in %s)\n", user, project, exp.Local().Format(time.RFC3339), sessionPath())
			return nil
		},
	}
	cmd.Flags().StringVar(&authURL, "auth-url", "", "Keystone v3 URL")
	cmd.Flags().StringVar(&user, "user", "", "user name (default admin)")
	cmd.Flags().StringVar(&password, "password", "", "password")
	cmd.Flags().StringVar(&project, "project", "", "project name (default: the user name)")
	cmd.Flags().StringVar(&domain, "domain", "Default", "Keystone domain")
	return cmd
}
