package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckFlag(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte("apiVersion: authgate.dev/v1alpha1\nkind: ProxyConfig\nupstream: {url: 'http://127.0.0.1:8080'}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("apiVersion: authgate.dev/v1alpha1\nkind: ProxyConfig\nupstream: {url: 'https://x'}\npolicies: [{name: p, routes: []}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{"--check", "--config", good}, &out); err != nil {
		t.Fatalf("good config: %v", err)
	}
	err := run([]string{"--check", "--config", bad}, &out)
	if err == nil {
		t.Fatal("got nil error for a bad config")
	}
	for _, want := range []string{"upstream.url", "policies[0].routes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestBadFlags(t *testing.T) {
	var out bytes.Buffer
	for _, args := range [][]string{{"--log-level", "loud"}, {"--labels", "novalue"}, {"--nope"}} {
		if err := run(args, &out); err == nil {
			t.Errorf("%v: got nil error", args)
		}
	}
}

func TestPlatformFlags(t *testing.T) {
	good := filepath.Join(t.TempDir(), "good.yaml")
	if err := os.WriteFile(good, []byte("apiVersion: authgate.dev/v1alpha1\nkind: ProxyConfig\nupstream: {url: 'http://127.0.0.1:8080'}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{"--check", "--config", good, "--trusted-proxies", "127.0.0.1/32, ::1/128,10.8.0.0/16", "--upstream-timeout", "300s"}, &out); err != nil {
		t.Fatalf("valid platform flags: %v", err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--trusted-proxies", "10.0.0.0/8,gateway"}, `--trusted-proxies "gateway"`},
		{[]string{"--trusted-proxies", "0.0.0.0/0"}, "trusts every address"},
		{[]string{"--upstream-timeout", "-1s"}, "--upstream-timeout"},
	} {
		err := run(append([]string{"--check", "--config", good}, tt.args...), &out)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want an error naming %s", tt.args, err, tt.want)
		}
	}
}
