package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/straas/straas/shared/client"
)

// storageCmd is the storage API: upload, list, download and delete binary files.
func storageCmd() *cobra.Command {
	var typ, region string
	cmd := &cobra.Command{Use: "storage", Short: "Upload, list, download and delete binary files (storm jars, files for nodes)"}
	cmd.PersistentFlags().StringVar(&typ, "type", "swift", "storage type")
	cmd.PersistentFlags().StringVar(&region, "region", "az1", "region (availability zone)")
	base := func(p string) string {
		return "/straas/v1.0/storage/" + typ + "/regions/" + region + "/" + strings.TrimLeft(p, "/")
	}
	put := &cobra.Command{
		Use: "put PATH FILE", Short: "Upload FILE (- for stdin) as PATH", Example: "  straas storage put jars/wc.jar target/wc.jar", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			var data []byte
			if args[1] == "-" {
				data, err = io.ReadAll(os.Stdin)
			} else {
				data, err = os.ReadFile(args[1])
			}
			if err != nil {
				return err
			}
			var out struct {
				Object struct {
					Path string `json:"path"`
					Size int64  `json:"size"`
				} `json:"object"`
			}
			if err := rawCall(cmd, c, "POST", base(args[0]), data, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			fmt.Printf("stored %s/regions/%s/%s (%d bytes)\n", typ, region, out.Object.Path, out.Object.Size)
			return nil
		},
	}
	ls := &cobra.Command{
		Use: "ls [PREFIX]", Short: "List stored files", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			p := ""
			if len(args) == 1 {
				p = args[0]
			}
			var out struct {
				Objects []struct {
					Path     string    `json:"path"`
					Size     int64     `json:"size"`
					Modified time.Time `json:"modified"`
				} `json:"objects"`
			}
			if _, err := c.Do(cmd.Context(), "GET", base(p), nil, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			w := table("PATH", "SIZE", "MODIFIED")
			for _, o := range out.Objects {
				row(w, o.Path, o.Size, o.Modified.Local().Format(time.DateTime))
			}
			return w.Flush()
		},
	}
	var outFile string
	get := &cobra.Command{
		Use: "get PATH", Short: "Download a stored file (to stdout, or -f FILE)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			// The listing signs a download URL for each object; the URL needs no token.
			var out struct {
				Objects []struct {
					Path string `json:"path"`
					URL  string `json:"url"`
				} `json:"objects"`
			}
			if _, err := c.Do(cmd.Context(), "GET", base(args[0])+"?urls=true", nil, &out); err != nil {
				return err
			}
			src := ""
			for _, o := range out.Objects {
				if o.Path == strings.TrimLeft(args[0], "/") {
					src = o.URL
				}
			}
			if src == "" {
				return fmt.Errorf("no stored file %s/regions/%s/%s", typ, region, args[0])
			}
			var data []byte
			if err := rawGet(cmd, c, src, &data); err != nil {
				return err
			}
			if outFile == "" {
				_, err = os.Stdout.Write(data)
				return err
			}
			return os.WriteFile(outFile, data, 0o644)
		},
	}
	get.Flags().StringVarP(&outFile, "file", "f", "", "write to this file")
	rm := &cobra.Command{
		Use: "rm PATH", Short: "Delete a stored file", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			if _, err := c.Do(cmd.Context(), "DELETE", base(args[0]), nil, nil); err != nil {
				return err
			}
			if !jsonOutput(cmd) {
				fmt.Printf("deleted %s/regions/%s/%s\n", typ, region, args[0])
			}
			return nil
		},
	}
	cmd.AddCommand(put, ls, get, rm)
	return cmd
}

// rawGet fetches a signed URL.
func rawGet(cmd *cobra.Command, c *client.Client, u string, out *[]byte) error {
	req, err := http.NewRequestWithContext(cmd.Context(), "GET", u, nil)
	if err != nil {
		return err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download: %s", resp.Status)
	}
	*out, err = io.ReadAll(resp.Body)
	return err
}

// rawCall sends a binary body (or none) and decodes a JSON answer into out, or keeps
// the raw answer when out is a *[]byte.
func rawCall(cmd *cobra.Command, c *client.Client, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(cmd.Context(), method, c.URL+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	req.Header.Set("X-Auth-Token", c.Token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error client.Error `json:"error"`
		}
		if jsonUnmarshal(data, &e) == nil && e.Error.Status != 0 {
			return &e.Error
		}
		return &client.Error{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode), Message: strings.TrimSpace(string(data))}
	}
	if b, ok := out.(*[]byte); ok {
		*b = data
		return nil
	}
	return jsonUnmarshal(data, out)
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
