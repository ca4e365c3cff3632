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
