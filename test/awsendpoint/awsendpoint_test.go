package awsendpoint

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLocate(t *testing.T) {
	dir := t.TempDir()
	mk := func(path string, mode os.FileMode) string {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("#!/usr/bin/env python3\n"), mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	venv := filepath.Join(dir, "venv")
	inVenv := mk(filepath.Join(venv, "bin", "moto_server"), 0o755)
	root := filepath.Join(dir, "repo")
	inRoot := mk(filepath.Join(root, ".venv", "bin", "moto_server"), 0o755)
	notExec := filepath.Join(dir, "noexec")
	mk(filepath.Join(notExec, "bin", "moto_server"), 0o644)
	onPath := func(string) (string, error) { return "/usr/bin/moto_server", nil }
	nowhere := func(string) (string, error) { return "", errors.New("not found") }

	tests := []struct {
		name       string
		venv, root string
		look       func(string) (string, error)
		want       string
	}{
		{"STRAAS_VENV first", venv, root, onPath, inVenv},
		{"repo venv next", "", root, onPath, inRoot},
		{"not executable is skipped", notExec, root, onPath, inRoot},
		{"PATH last", "", filepath.Join(dir, "empty"), onPath, "/usr/bin/moto_server"},
		{"missing fails", "", "", nowhere, ""},
	}
	for _, tc := range tests {
		got, err := locate(tc.venv, tc.root, tc.look)
		if tc.want == "" {
			if err == nil || !strings.Contains(err.Error(), "make test-aws") || !strings.Contains(err.Error(), `pip install "moto[server]>=5.2.5"`) {
				t.Errorf("%s: got %q, %v; want an error telling how to install moto", tc.name, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestInterpreter(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		line, want string
		ok         bool
	}{
		{"#!/opt/venv/bin/python3\n", "/opt/venv/bin/python3", true},
		{"#!/opt/venv/bin/python3 -E\n", "/opt/venv/bin/python3", true},
		{"#!/usr/bin/env sh\n", "", true}, // resolved on PATH: only checked to succeed
		{"\x7fELF binary", "", false},
	}
	for i, tc := range tests {
		p := filepath.Join(dir, string(rune('a'+i)))
		if err := os.WriteFile(p, []byte(tc.line), 0o755); err != nil {
			t.Fatal(err)
		}
		got, err := interpreter(p)
		if (err == nil) != tc.ok || (tc.want != "" && got != tc.want) {
			t.Errorf("%q: got %q, %v", tc.line, got, err)
		}
	}
}

func TestOldMoto(t *testing.T) {
	tests := []struct {
		v   string
		old bool
	}{
		{"5.2.1", true}, {"5.1.9", true}, {"4.9.9", true}, {"5.2.5", false}, {"5.2.5.dev3", false},
		{"5.3.0", false}, {"6.0", false}, {"5.2", true},
	}
	for _, tc := range tests {
		if got := oldMoto(tc.v); got != tc.old {
			t.Errorf("%s: old %v, want %v", tc.v, got, tc.old)
		}
	}
}
